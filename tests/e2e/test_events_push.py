"""A member RSVPs to an event, the host starts it, the member's device gets the push in the
local outbox and joins the room from it: over real HTTP and WebSockets on the local stack,
with the notifications queue polled by the stack as Lambda's event source would. Quiet hours,
blocks and the hourly cap are checked on the same stack."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from tests.support.http import HttpClient, member_of_their_own
from tests.support.wsclient import WsClient

_numbers = itertools.count(7000)
QUEUE = "salon-dev-notifications"


def member(api: HttpClient, name: str) -> dict[str, Any]:
    """A member of their own (the operators' founder function), signed in."""
    signed_in = member_of_their_own(api, f"+1415555{next(_numbers):04d}", name)
    return {
        "name": name,
        "token": signed_in["access_token"],
        "user_id": signed_in["user"]["user_id"],
    }


def device(api: HttpClient, person: dict[str, Any], platform: str = "apns") -> str:
    token = f"e2e-{person['name']}-{platform}-0123456789abcdef"
    answer = api.post("/me/devices", {"platform": platform, "token": token}, person["token"])
    assert answer.status == 201, answer.body
    return token


def outbox(api: HttpClient, token: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(f"/_local/push/{token}").body["items"]
    return items


def until(check: Callable[[], Any], what: str, timeout_s: float = 20) -> Any:
    """Wait for the stack's queue poller (a deadline for a hang, not a timed assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def drained(stack: dict[str, Any]) -> None:
    """Every queued notification handled: none waiting, none in flight."""
    sqs = boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url=stack["aws"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]

    def empty() -> bool:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        return all(attributes[n] == "0" for n in names)

    until(empty, "the notifications queue drained")


@pytest.fixture(scope="module")
def host(api: HttpClient) -> dict[str, Any]:
    return member(api, "eventhost")


@pytest.fixture
def sockets(stack: dict[str, Any]) -> Iterator[dict[str, WsClient]]:
    opened: dict[str, WsClient] = {}
    yield opened
    for client in opened.values():
        client.close()


def quiet_now(zone: str) -> dict[str, Any]:
    local = datetime.now(UTC).astimezone(ZoneInfo(zone))
    return {
        "time_zone": zone,
        "quiet_hours": {
            "from": (local - timedelta(minutes=30)).strftime("%H:%M"),
            "to": (local + timedelta(minutes=30)).strftime("%H:%M"),
        },
    }


def test_an_rsvp_gets_the_push_when_the_host_starts_and_joins_from_it(
    api: HttpClient,
    stack: dict[str, Any],
    host: dict[str, Any],
    sockets: dict[str, WsClient],
) -> None:
    fan, sleeper, blocked = (member(api, n) for n in ("eventfan", "eventsleeper", "eventpest"))
    phones = {p["name"]: device(api, p) for p in (fan, sleeper, blocked)}
    starts_at = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    event = api.post(
        "/events",
        {"title": "Release party", "description": "Come say hi", "starts_at": starts_at},
        host["token"],
    )
    assert event.status == 201, event.body
    event_id = event.body["event_id"]

    # The public link shows the event to anyone.
    preview = api.get(f"/events/{event_id}/preview")
    assert (preview.status, preview.body["title"]) == (200, "Release party")

    for person in (fan, sleeper, blocked):
        rsvp = api.put(f"/events/{event_id}/rsvp", token=person["token"])
        assert rsvp.status == 200 and rsvp.body["rsvp"] is True, rsvp.body
    # Quiet hours on the sleeper's own clock; the host blocks the pest after their RSVP.
    settings = api.request(
        "PATCH", "/me/notification-settings", quiet_now("Pacific/Auckland"), sleeper["token"]
    )
    assert settings.status == 200, settings.body
    assert api.put(f"/users/{blocked['user_id']}/block", token=host["token"]).status == 200

    sockets["host"] = WsClient(stack["websocket"], host["token"], "host")
    room = sockets["host"].ok("start_event", event_id=event_id)
    assert room["type"] == "room" and room["viewer"]["role"] == "moderator"

    [push] = until(lambda: outbox(api, phones["eventfan"]), "the fan's push")
    assert (push["title"], push["body"]) == ("Starting now", "Release party")
    assert push["data"] == {
        "kind": "event_started",
        "room_id": room["room_id"],
        "event_id": event_id,
    }
    drained(stack)
    # The same fan-out message reached the sleeper and the pest: neither was pushed.
    assert outbox(api, phones["eventsleeper"]) == []
    assert outbox(api, phones["eventpest"]) == []

    # The fan opens the push: the app joins the room it names.
    sockets["fan"] = WsClient(stack["websocket"], fan["token"], "fan")
    joined = sockets["fan"].ok("join_room", room_id=push["data"]["room_id"])
    assert joined["room_id"] == room["room_id"]
    assert joined["viewer"]["role"] == "listener"
    live = api.get(f"/events/{event_id}", fan["token"]).body
    assert (live["status"], live["room_id"]) == ("live", room["room_id"])


def test_pings_to_a_phone_stop_at_the_hourly_cap(
    api: HttpClient,
    stack: dict[str, Any],
    host: dict[str, Any],
    sockets: dict[str, WsClient],
) -> None:
    friend = member(api, "eventfriend")
    phone = device(api, friend, "fcm")
    assert api.put(f"/users/{friend['user_id']}/follow", token=host["token"]).status == 200
    sockets["host"] = WsClient(stack["websocket"], host["token"], "host")
    room = sockets["host"].ok("create_room", title="Come in", kind="closed")
    cap = 10  # SALON_PUSH_CAP_PER_HOUR's default, which the stack keeps
    for _ in range(cap + 3):
        sockets["host"].ok("ping_into_room", user_id=friend["user_id"])
    drained(stack)
    pushes = outbox(api, phone)
    assert len(pushes) == cap
    assert {p["data"]["room_id"] for p in pushes} == {room["room_id"]}
    assert pushes[0]["platform"] == "fcm"


def test_a_device_its_platform_reports_dead_is_removed(
    api: HttpClient, stack: dict[str, Any], host: dict[str, Any], sockets: dict[str, WsClient]
) -> None:
    gone = member(api, "eventgone")
    phone = device(api, gone)
    assert api.put(f"/users/{gone['user_id']}/follow", token=host["token"]).status == 200
    assert api.post(f"/_local/push/{phone}/disable").body["disabled"] == 1
    sockets["host"] = WsClient(stack["websocket"], host["token"], "host")
    sockets["host"].ok("create_room", title="Anyone?", kind="closed")
    sockets["host"].ok("ping_into_room", user_id=gone["user_id"])
    drained(stack)
    assert api.get("/me/devices", gone["token"]).body["items"] == []


def test_a_device_sns_reports_disabled_is_removed_without_a_push_to_it(
    api: HttpClient, stack: dict[str, Any]
) -> None:
    """SNS reports the disabled endpoint to the stack's endpoint events topic, whose
    subscribed function removes the device: nothing had to be pushed to find out."""
    quiet = member(api, "eventquiet")
    phone, other = device(api, quiet), device(api, quiet, "fcm")
    assert api.post(f"/_local/push/{phone}/disable").body["disabled"] == 1

    def devices() -> list[str]:
        return [d["platform"] for d in api.get("/me/devices", quiet["token"]).body["items"]]

    until(lambda: devices() == ["fcm"], "the disabled device removed")
    assert outbox(api, phone) == [] and outbox(api, other) == []
