"""Push notifications through SNS mobile push (moto), driven through the handlers: devices and
settings over REST, the notifications worker through its SQS handler."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from chalicelib.domain import notifications as push
from deploy.wiring import Template
from local.outbox import disable_device, pushes, report_endpoint_event
from tests.integration.conftest import PUSH_CAP
from tests.support.crowd import Crowd, Person
from tests.support.events import sqs_event
from tests.support.push import (
    NOTIFICATIONS,
    delivered_notifications,
    device,
    drain,
    endpoints_for,
    handle,
    report,
    report_endpoint_events_to,
    rest,
    run_batch,
)

CAP = PUSH_CAP


@pytest.fixture
def crowd(push_crowd: Crowd) -> Crowd:
    return push_crowd


def send(crowd: Crowd, to: Person, what: push.Push, sender: Person | None = None) -> None:
    crowd.svc.notifier.send(to.user_id, what, sender.user_id if sender else None)
    drain(crowd)


def a_tip(name: str = "Ann") -> push.Push:
    return push.tip_received(name, 500, "usd")


def test_a_registered_device_receives_a_push_in_its_outbox(crowd: Crowd) -> None:
    ann = crowd.person("ann")
    token = device(crowd, ann)
    send(crowd, ann, a_tip("Bob"))
    [shown] = pushes(token)
    assert shown["title"] == "You received a tip"
    assert shown["body"] == "Bob sent you $5.00"
    assert shown["data"]["kind"] == "tip"


def test_fcm_devices_get_the_fcm_payload(crowd: Crowd) -> None:
    ann = crowd.person("ann")
    token = device(crowd, ann, "fcm")
    send(crowd, ann, push.stipend_paid(50_000, "usd", "2026-12"))
    [shown] = pushes(token)
    assert (shown["platform"], shown["body"]) == ("fcm", "$500.00 for 2026-12")


def test_registering_the_same_token_twice_is_one_device(crowd: Crowd) -> None:
    ann = crowd.person("ann")
    device(crowd, ann)
    device(crowd, ann)
    assert len(rest(crowd, "GET", "/me/devices", ann).json_body["items"]) == 1


def test_unregistering_deletes_the_endpoint(crowd: Crowd, applications: dict[str, str]) -> None:
    ann = crowd.person("ann")
    token = device(crowd, ann)
    [item] = rest(crowd, "GET", "/me/devices", ann).json_body["items"]
    assert rest(crowd, "DELETE", f"/me/devices/{item['device_id']}", ann).status_code == 204
    assert rest(crowd, "DELETE", f"/me/devices/{item['device_id']}", ann).status_code == 204
    assert rest(crowd, "GET", "/me/devices", ann).json_body["items"] == []
    sns = boto3.client("sns", region_name="us-east-1")
    endpoints = sns.list_endpoints_by_platform_application(
        PlatformApplicationArn=applications["apns"]
    )
    assert [e for e in endpoints["Endpoints"] if e["Attributes"]["Token"] == token] == []


def test_an_endpoint_sns_reports_disabled_is_removed(crowd: Crowd) -> None:
    ann = crowd.person("ann")
    dead, alive = device(crowd, ann), device(crowd, ann, "fcm")
    disable_device(dead)
    send(crowd, ann, a_tip())
    assert pushes(dead) == [] and len(pushes(alive)) == 1
    [left] = rest(crowd, "GET", "/me/devices", ann).json_body["items"]
    assert left["platform"] == "fcm"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"platform": "blackberry", "token": "abcdefgh1234"}, "platform"),
        ({"platform": "apns", "token": "short"}, "token"),
        ({"platform": "apns", "token": "has spaces in it"}, "token"),
        ({"platform": "apns"}, "token"),
    ],
)
def test_bad_device_registrations_are_refused_with_the_field(
    crowd: Crowd, payload: dict[str, Any], field: str
) -> None:
    ann = crowd.person("ann", connect=False)
    answer = rest(crowd, "POST", "/me/devices", ann, payload)
    assert answer.status_code == 400
    assert answer.json_body["error"]["field"] == field


def test_devices_need_a_signed_in_member(crowd: Crowd) -> None:
    answer = crowd.client.http.post(
        "/me/devices", body=json.dumps({"platform": "apns", "token": "abcdefgh1234"})
    )
    assert answer.status_code == 401


def test_a_muted_kind_is_not_sent_and_the_others_are(crowd: Crowd) -> None:
    ann = crowd.person("ann")
    token = device(crowd, ann)
    changed = rest(crowd, "PATCH", "/me/notification-settings", ann, {"receive": {"tip": False}})
    assert changed.status_code == 200 and changed.json_body["receive"]["tip"] is False
    send(crowd, ann, a_tip())
    send(crowd, ann, push.stipend_paid(100, "usd", "2026-12"))
    assert [p["data"]["kind"] for p in pushes(token)] == ["stipend"]


def quiet_around_now(zone: str, minutes: int) -> dict[str, str]:
    local = datetime.now(UTC).astimezone(ZoneInfo(zone))
    start = (local - timedelta(minutes=minutes)).strftime("%H:%M")
    end = (local + timedelta(minutes=minutes)).strftime("%H:%M")
    return {"from": start, "to": end}


def test_quiet_hours_on_the_members_own_clock_hold_pushes(crowd: Crowd) -> None:
    ann = crowd.person("ann")
    token = device(crowd, ann)
    zone = "Asia/Kathmandu"  # UTC+05:45: a member's clock, not the server's
    quiet = {"quiet_hours": quiet_around_now(zone, 30), "time_zone": zone}
    assert rest(crowd, "PATCH", "/me/notification-settings", ann, quiet).status_code == 200
    send(crowd, ann, a_tip())
    assert pushes(token) == []
    # The same hours on another clock are not now.
    elsewhere = {"time_zone": "America/Los_Angeles"}
    assert rest(crowd, "PATCH", "/me/notification-settings", ann, elsewhere).status_code == 200
    send(crowd, ann, a_tip())
    assert len(pushes(token)) == 1
    cleared = rest(crowd, "PATCH", "/me/notification-settings", ann, {"quiet_hours": None})
    assert cleared.json_body["quiet_hours"] is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"quiet_hours": {"from": "25:00", "to": "07:00"}}, "quiet_hours"),
        ({"quiet_hours": {"from": "22:00"}}, "quiet_hours"),
        ({"receive": {"spam": True}}, "receive"),
        ({"receive": {"tip": "no"}}, "receive"),
        ({"volume": 11}, "volume"),
    ],
)
def test_bad_settings_are_refused_with_the_field(
    crowd: Crowd, payload: dict[str, Any], field: str
) -> None:
    ann = crowd.person("ann", connect=False)
    answer = rest(crowd, "PATCH", "/me/notification-settings", ann, payload)
    assert answer.status_code == 400, answer.body
    assert answer.json_body["error"]["field"] == field


def test_a_member_gets_at_most_the_cap_an_hour(crowd: Crowd) -> None:
    ann = crowd.person("ann")
    token = device(crowd, ann)
    for _ in range(CAP + 3):
        send(crowd, ann, a_tip())
    assert len(pushes(token)) == CAP


def test_the_cap_counts_a_push_once_for_all_devices(crowd: Crowd) -> None:
    ann = crowd.person("ann")
    phone, tablet = device(crowd, ann), device(crowd, ann, "fcm")
    for _ in range(CAP):
        send(crowd, ann, a_tip())
    assert len(pushes(phone)) == len(pushes(tablet)) == CAP


def test_the_cap_starts_again_the_next_hour(crowd: Crowd) -> None:
    ann = crowd.person("ann")
    token = device(crowd, ann)
    for _ in range(CAP + 1):
        send(crowd, ann, a_tip())
    later = datetime.now(UTC) + timedelta(hours=1)
    crowd.svc.notifications.clock = lambda: later
    send(crowd, ann, a_tip())
    assert len(pushes(token)) == CAP + 1


def test_a_retried_push_is_counted_once_against_the_cap(
    crowd: Crowd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last push the cap allows fails after it was counted; its retry is the same
    notification, so it is sent, and is not a push over the cap."""
    ann = crowd.person("ann")
    token = device(crowd, ann)
    for _ in range(CAP - 1):
        send(crowd, ann, a_tip())
    gateway = crowd.svc.notifications.gateway
    publish = gateway.publish
    failed: list[str] = []

    def fail_once(endpoint_arn: str, what: push.Push) -> bool:
        if not failed:
            failed.append(endpoint_arn)
            raise ClientError({"Error": {"Code": "Throttling"}}, "Publish")  # type: ignore[arg-type]
        return publish(endpoint_arn, what)

    monkeypatch.setattr(gateway, "publish", fail_once)
    crowd.svc.notifier.send(ann.user_id, a_tip("Cy"))
    batch = sqs_event(queued(crowd), NOTIFICATIONS)
    with pytest.raises(BatchProcessingError):
        run_batch(crowd, batch)
    assert failed and len(pushes(token)) == CAP - 1
    assert run_batch(crowd, batch) == []  # the redelivery
    bodies = [shown["body"] for shown in pushes(token)]
    assert len(bodies) == CAP and "Cy sent you $5.00" in bodies
    send(crowd, ann, a_tip())  # and the cap still holds
    assert len(pushes(token)) == CAP


def test_a_ping_reaches_the_phone_with_the_room_to_join(crowd: Crowd) -> None:
    host, ann = crowd.person("host"), crowd.person("ann", connect=False)
    token = device(crowd, ann)
    crowd.follow(host, ann)
    room = host.ok("create_room", title="Late show", kind="open")
    host.ok("ping_into_room", user_id=ann.user_id)  # not connected: the phone is how
    drain(crowd)
    [shown] = pushes(token)
    assert shown["data"] == {"kind": "ping", "room_id": room["room_id"]}
    assert shown["title"] == "Host wants you in their room"


def test_no_push_crosses_a_block_either_way(crowd: Crowd) -> None:
    host, ann, bob = crowd.person("host"), crowd.person("ann"), crowd.person("bob")
    ann_phone, bob_phone = device(crowd, ann), device(crowd, bob)
    crowd.svc.identity.block(ann.user_id, host.user_id)  # ann blocked the host
    crowd.svc.identity.block(host.user_id, bob.user_id)  # the host blocked bob
    send(crowd, ann, a_tip(), sender=host)
    send(crowd, bob, a_tip(), sender=host)
    assert pushes(ann_phone) == [] and pushes(bob_phone) == []


@pytest.mark.parametrize("who_blocks", ["follower", "followed"])
def test_a_block_keeps_a_follower_from_the_fan_out(crowd: Crowd, who_blocks: str) -> None:
    """Blocking ends following, but a fan-out already reading the followers may still see
    the edge: the worker checks blocks itself."""
    host, fan, other = crowd.person("host"), crowd.person("fan"), crowd.person("other")
    fan_phone, other_phone = device(crowd, fan), device(crowd, other)
    crowd.follow(fan, host)
    crowd.follow(other, host)
    blocker, blocked = (fan, host) if who_blocks == "follower" else (host, fan)
    crowd.svc.identity.repo.block(blocker.user_id, blocked.user_id, datetime.now(UTC))
    host.ok("create_room", title="Late show", kind="open")
    drain(crowd)
    assert pushes(fan_phone) == [] and len(pushes(other_phone)) == 1


def test_followers_hear_a_followed_member_start_an_open_room(crowd: Crowd) -> None:
    host = crowd.person("host")
    fans = [crowd.person(f"fan{i}", connect=False) for i in range(5)]
    phones = [device(crowd, fan) for fan in fans]
    for fan in fans:
        crowd.follow(fan, host)
    room = host.ok("create_room", title="Morning talk", kind="open")
    drain(crowd)  # pages of 2 followers, each page queueing the next
    for phone in phones:
        [shown] = pushes(phone)
        assert shown["title"] == "Host is talking"
        assert shown["data"]["room_id"] == room["room_id"]


def test_a_closed_room_is_not_announced(crowd: Crowd) -> None:
    host, fan = crowd.person("host"), crowd.person("fan", connect=False)
    phone = device(crowd, fan)
    crowd.follow(fan, host)
    host.ok("create_room", title="Private", kind="closed")
    drain(crowd)
    assert pushes(phone) == []


def test_a_burst_of_followed_people_talking_is_one_push(crowd: Crowd) -> None:
    fan = crowd.person("fan", connect=False)
    phone = device(crowd, fan)
    hosts = [crowd.person(name) for name in ("ann", "bob", "cat")]
    for host in hosts:
        crowd.follow(fan, host)
    room = hosts[0].ok("create_room", title="Morning talk", kind="open")
    queue = crowd.svc.notifications_queue
    # Each start fans out before the collapse window closes: run only the fan-outs.
    for host in hosts[1:]:
        host.ok("create_room", title=f"{host.name}'s room", kind="open")
    for delay, message in list(queue.pending):
        if message["kind"] == "fanout":
            queue.pending.remove((delay, message))
            handle(crowd, message)
    assert [d for d, m in queue.pending] == [crowd.svc.settings.push_collapse_s]
    drain(crowd)
    [shown] = pushes(phone)
    assert shown["title"] == "3 people you follow are talking"
    assert shown["data"]["room_id"] == room["room_id"]


def test_going_on_stage_in_an_open_room_tells_followers(crowd: Crowd) -> None:
    host = crowd.person("host")
    room = host.ok("create_room", title="Panel", kind="open")
    drain(crowd)
    fan = crowd.person("fan", connect=False)
    phone = device(crowd, fan)
    speaker = crowd.person("speaker")
    crowd.follow(fan, speaker)
    speaker.ok("join_room", room_id=room["room_id"])
    host.ok("invite_to_speak", user_id=speaker.user_id)
    speaker.ok("accept_speaker_invite")
    drain(crowd)
    [shown] = pushes(phone)
    assert (shown["title"], shown["data"]["room_id"]) == ("Speaker is talking", room["room_id"])


def test_muting_followed_rooms_keeps_the_fan_out_from_you(crowd: Crowd) -> None:
    host, fan = crowd.person("host"), crowd.person("fan", connect=False)
    phone = device(crowd, fan)
    crowd.follow(fan, host)
    off = {"receive": {"room_started": False}}
    assert rest(crowd, "PATCH", "/me/notification-settings", fan, off).status_code == 200
    host.ok("create_room", title="Morning talk", kind="open")
    drain(crowd)
    assert pushes(phone) == []


def test_forgetting_a_member_removes_their_devices_endpoints_and_settings(
    crowd: Crowd, applications: dict[str, str]
) -> None:
    """What account deletion calls (Notifications.forget): nothing of push is left."""
    ann = crowd.person("ann")
    phone, tablet = device(crowd, ann), device(crowd, ann, "fcm")
    rest(crowd, "PATCH", "/me/notification-settings", ann, {"time_zone": "Europe/Paris"})
    crowd.svc.notifications.forget(ann.user_id)
    assert crowd.svc.notifications.repo.devices(ann.user_id) == []
    assert crowd.svc.notifications.preferences(ann.user_id)["time_zone"] == "UTC"
    sns = boto3.client("sns", region_name="us-east-1")
    tokens = {
        e["Attributes"]["Token"]
        for arn in applications.values()
        for e in sns.list_endpoints_by_platform_application(PlatformApplicationArn=arn)["Endpoints"]
    }
    assert {phone, tablet} & tokens == set()


# --- retries: SQS delivers at least once, and batches come back -------------------------------


def queued(crowd: Crowd) -> list[dict[str, Any]]:
    """The messages waiting on the notifications queue, taken off it."""
    queue = crowd.svc.notifications_queue
    messages = [m for _, m in queue.pending]
    queue.pending.clear()
    return messages


def test_a_replayed_batch_pushes_each_device_once(crowd: Crowd) -> None:
    ann, bob = crowd.person("ann"), crowd.person("bob")
    phones = [device(crowd, ann), device(crowd, ann, "fcm"), device(crowd, bob)]
    crowd.svc.notifier.send(ann.user_id, a_tip("Cy"))
    crowd.svc.notifier.send(bob.user_id, a_tip("Cy"))
    batch = sqs_event(queued(crowd), NOTIFICATIONS)
    assert run_batch(crowd, batch) == []
    assert run_batch(crowd, batch) == []  # SQS delivered the batch again
    assert [len(pushes(phone)) for phone in phones] == [1, 1, 1]
    # A new notification of the same content is a new push.
    send(crowd, bob, a_tip("Cy"))
    assert len(pushes(phones[2])) == 2


def test_a_failed_message_alone_comes_back_and_its_retry_sends_only_what_was_not_sent(
    crowd: Crowd, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, bob = crowd.person("ann"), crowd.person("bob")
    ann_apns, ann_fcm, bob_apns = device(crowd, ann), device(crowd, ann, "fcm"), device(crowd, bob)
    gateway = crowd.svc.notifications.gateway
    publish = gateway.publish
    throttled = []

    def throttle_fcm_once(endpoint_arn: str, what: push.Push) -> bool:
        if "/GCM/" in endpoint_arn and not throttled:
            throttled.append(endpoint_arn)
            error = {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}
            raise ClientError(error, "Publish")  # type: ignore[arg-type]
        return publish(endpoint_arn, what)

    monkeypatch.setattr(gateway, "publish", throttle_fcm_once)
    crowd.svc.notifier.send(ann.user_id, a_tip("Cy"))
    crowd.svc.notifier.send(bob.user_id, a_tip("Cy"))
    batch = sqs_event(queued(crowd), NOTIFICATIONS)
    to_ann = batch["Records"][0]["messageId"]
    # Only Ann's message is reported: Bob's is done and must not come back.
    assert run_batch(crowd, batch) == [to_ann]
    assert [len(pushes(p)) for p in (ann_apns, ann_fcm, bob_apns)] == [1, 0, 1]
    # Even the whole batch again (a retry that does not honour the report) adds only the push
    # that failed.
    assert run_batch(crowd, batch) == []
    assert [len(pushes(p)) for p in (ann_apns, ann_fcm, bob_apns)] == [1, 1, 1]


def test_a_batch_whose_every_message_failed_is_an_error_lambda_retries(
    crowd: Crowd, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = crowd.person("ann")
    device(crowd, ann)

    def outage(endpoint_arn: str, what: push.Push) -> bool:
        raise ClientError({"Error": {"Code": "InternalError"}}, "Publish")  # type: ignore[arg-type]

    monkeypatch.setattr(crowd.svc.notifications.gateway, "publish", outage)
    crowd.svc.notifier.send(ann.user_id, a_tip())
    with pytest.raises(BatchProcessingError):
        run_batch(crowd, sqs_event(queued(crowd), NOTIFICATIONS))


def test_rsvps_told_twice_of_a_start_get_one_push(crowd: Crowd) -> None:
    fans = [crowd.person(f"fan{i}", connect=False) for i in range(3)]
    phones = [device(crowd, fan) for fan in fans]
    host = crowd.person("host")
    starts_at = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    event = rest(crowd, "POST", "/events", host, {"title": "Jazz night", "starts_at": starts_at})
    event_id = event.json_body["event_id"]
    for fan in fans:
        assert rest(crowd, "PUT", f"/events/{event_id}/rsvp", fan).status_code == 200
    for _ in range(2):  # the start's message, queued twice (a retried SendMessage)
        crowd.svc.notifier.rsvps_starting(event_id, "r1", "Jazz night", host.user_id)
    drain(crowd)
    assert [len(pushes(phone)) for phone in phones] == [1, 1, 1]


def test_a_fan_out_page_run_twice_still_makes_one_collapsed_push(crowd: Crowd) -> None:
    host = crowd.person("host")
    fans = [crowd.person(f"fan{i}", connect=False) for i in range(3)]
    phones = [device(crowd, fan) for fan in fans]
    for fan in fans:
        crowd.follow(fan, host)
    host.ok("create_room", title="Morning talk", kind="open")
    [fanout] = queued(crowd)
    handle(crowd, fanout)
    drain(crowd)  # the later pages and the bursts: each fan pushed once
    handle(crowd, fanout)  # the first page, delivered again after all that
    drain(crowd)
    assert [len(pushes(phone)) for phone in phones] == [1, 1, 1]


# --- SNS's endpoint events: a dead device goes before anyone pushes to it -----------------------


@pytest.fixture
def topic(packaged: Template) -> str:
    """The stage's endpoint events topic, as the template names it."""
    return packaged.sns_sources()["push_endpoint_events"]


@pytest.fixture
def seen(topic: str, applications: dict[str, str]) -> str:
    """The platform applications pointed at the topic as the runbook says; answers the URL of
    a queue that sees what the topic delivers."""
    return report_endpoint_events_to(topic, applications)


def my_devices(crowd: Crowd, person: Person) -> list[str]:
    return [d["platform"] for d in rest(crowd, "GET", "/me/devices", person).json_body["items"]]


def test_a_device_sns_reports_disabled_is_removed_before_any_push(crowd: Crowd, seen: str) -> None:
    ann = crowd.person("ann")
    dead, alive = device(crowd, ann), device(crowd, ann, "fcm")
    disable_device(dead)  # APNs told SNS the token is dead: SNS reports the endpoint updated
    [notification] = delivered_notifications(seen)
    assert json.loads(notification["Message"])["EventType"] == "EndpointUpdated"
    report(crowd, notification)
    assert my_devices(crowd, ann) == ["fcm"]
    assert endpoints_for(dead) == []  # its endpoint deleted too
    assert endpoints_for(alive)
    send(crowd, ann, a_tip())
    assert pushes(dead) == [] and len(pushes(alive)) == 1


def test_a_late_report_for_a_device_registered_again_since_removes_nothing(
    crowd: Crowd, seen: str
) -> None:
    ann = crowd.person("ann")
    token = device(crowd, ann)
    disable_device(token)
    [notification] = delivered_notifications(seen)
    # Before the report is handled, the app registered its token again, which enables the
    # same endpoint (PushGateway.create_endpoint). moto refuses CreatePlatformEndpoint for a
    # disabled endpoint's token, so the enabling step is played alone here.
    [arn] = endpoints_for(token)
    boto3.client("sns", region_name="us-east-1").set_endpoint_attributes(
        EndpointArn=arn, Attributes={"Enabled": "true"}
    )
    report(crowd, notification)
    assert my_devices(crowd, ann) == ["apns"]
    send(crowd, ann, a_tip())
    assert len(pushes(token)) == 1


def test_a_deleted_endpoint_reported_removes_its_device(
    crowd: Crowd, topic: str, seen: str
) -> None:
    ann = crowd.person("ann")
    token = device(crowd, ann)
    [arn] = endpoints_for(token)
    # Deleted outside Salon (the console, a cleanup script): SNS reports it.
    boto3.client("sns", region_name="us-east-1").delete_endpoint(EndpointArn=arn)
    report_endpoint_event(topic, "EndpointDeleted", arn, "us-east-1")
    [notification] = delivered_notifications(seen)
    report(crowd, notification)
    assert my_devices(crowd, ann) == []


# AWS's documented shapes: the record is the Lambda Developer Guide's example SNS event
# (docs.aws.amazon.com/lambda/latest/dg/with-sns.html); the Message is a DeliveryFailure as an
# AWS re:Post question quotes one (repost.aws, "SNS push notification list of available
# FailureTypes"; AWS's own pages name the event but show no body).
DOCUMENTED_DELIVERY_FAILURE = {
    "DeliveryAttempts": 1,
    "EventType": "DeliveryFailure",
    "FailureMessage": "Platform token associated with the endpoint is not valid",
    "FailureType": "InvalidPlatformToken",
    "MessageId": "dd686e01-3f8f-56f7-9683-348cb97d649a",
    "Service": "SNS",
    "Time": "2022-02-21T12:25:22.787Z",
}
DOCUMENTED_SNS_RECORD = {
    "EventVersion": "1.0",
    "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:sns-lambda:"
    "21be56ed-a058-49f5-8c98-aedd2564c486",
    "EventSource": "aws:sns",
    "Sns": {
        "SignatureVersion": "1",
        "Timestamp": "2019-01-02T12:45:07.000Z",
        "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
        "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/"
        "SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
        "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
        "MessageAttributes": {},
        "Type": "Notification",
        "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&amp;"
        "SubscriptionArn=arn:aws:sns:us-east-1:123456789012:test-lambda:"
        "21be56ed-a058-49f5-8c98-aedd2564c486",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:sns-lambda",
        "Subject": "DeliveryFailure event for app salon-test-gcm (GCM)",
    },
}


def documented_delivery_failure(endpoint_arn: str) -> dict[str, Any]:
    application = endpoint_arn.replace(":endpoint/", ":app/").rsplit("/", 1)[0]
    message = {**DOCUMENTED_DELIVERY_FAILURE, "EndpointArn": endpoint_arn, "Resource": application}
    record = {**DOCUMENTED_SNS_RECORD, "Sns": {**DOCUMENTED_SNS_RECORD["Sns"]}}
    record["Sns"]["Message"] = json.dumps(message)  # type: ignore[index]
    return {"Records": [record]}


def test_the_documented_delivery_failure_event_removes_the_device(crowd: Crowd) -> None:
    ann = crowd.person("ann")
    token = device(crowd, ann, "fcm")
    [arn] = endpoints_for(token)
    sns = boto3.client("sns", region_name="us-east-1")
    # A permanent failure: SNS disabled the endpoint, then reported the failure.
    sns.set_endpoint_attributes(EndpointArn=arn, Attributes={"Enabled": "false"})
    crowd.client.lambda_.invoke("push_endpoint_events", documented_delivery_failure(arn))
    assert my_devices(crowd, ann) == []
    assert endpoints_for(token) == []


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        json.dumps({"EventType": "EndpointCreated", "EndpointArn": "arn:aws:sns:x"}),
        json.dumps({"EventType": "EndpointUpdated", "EndpointArn": "not an endpoint"}),
        json.dumps(["a list"]),
    ],
)
def test_anything_else_on_the_topic_is_ignored_and_removes_nothing(
    crowd: Crowd, message: str
) -> None:
    ann = crowd.person("ann")
    device(crowd, ann)
    record = {**DOCUMENTED_SNS_RECORD, "Sns": {**DOCUMENTED_SNS_RECORD["Sns"], "Message": message}}
    crowd.client.lambda_.invoke("push_endpoint_events", {"Records": [record]})
    assert my_devices(crowd, ann) == ["apns"]


def test_a_collapsed_push_that_failed_is_sent_by_the_retry_once_per_device(
    crowd: Crowd, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, fan = crowd.person("host"), crowd.person("fan", connect=False)
    apns, fcm = device(crowd, fan), device(crowd, fan, "fcm")
    crowd.follow(fan, host)
    host.ok("create_room", title="Morning talk", kind="open")
    [fanout] = queued(crowd)
    handle(crowd, fanout)
    [burst] = queued(crowd)
    gateway = crowd.svc.notifications.gateway
    publish = gateway.publish

    published: list[str] = []

    def second_one_fails(endpoint_arn: str, what: push.Push) -> bool:
        if published:
            raise ClientError({"Error": {"Code": "InternalError"}}, "Publish")  # type: ignore[arg-type]
        published.append(endpoint_arn)
        return publish(endpoint_arn, what)

    monkeypatch.setattr(gateway, "publish", second_one_fails)
    with pytest.raises(BatchProcessingError):
        handle(crowd, burst)
    assert sorted([len(pushes(apns)), len(pushes(fcm))]) == [0, 1]
    monkeypatch.setattr(gateway, "publish", publish)
    handle(crowd, burst)  # SQS delivers it again
    assert [len(pushes(apns)), len(pushes(fcm))] == [1, 1]
    assert pushes(fcm)[0]["title"] == "Host is talking"
