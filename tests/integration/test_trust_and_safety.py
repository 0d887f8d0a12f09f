"""Reports from members to operators' decisions and back, and rooms' moderation logs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from chalice.test import Client

from tests.support import contract
from tests.support.crowd import Crowd, Person, speaker_in
from tests.support.fakes import RecordingConnections
from tests.support.flows import verify


@pytest.fixture
def crowd(client: Client, svc: Any, sockets: RecordingConnections) -> Crowd:
    return Crowd(client, svc, sockets)


def call(client: Client, method: str, path: str, person: Person, payload: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {person.token}", "Content-Type": "application/json"}
    body = json.dumps(payload) if payload is not None else None
    return getattr(client.http, method)(path, headers=headers, body=body)


def report(client: Client, by: Person, kind: str, target: str, **more: Any) -> Any:
    payload = {"target_kind": kind, "target_id": target, "reason": "harassment", **more}
    return call(client, "post", "/reports", by, payload)


def admin(client: Client, name: str, event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = client.lambda_.invoke(name, event).payload
    assert answer["ok"], answer
    return dict(answer["result"])


def test_a_report_reaches_the_operator_and_the_decision_reaches_the_reporter(
    client: Client, crowd: Crowd, sockets: RecordingConnections
) -> None:
    ada, troll = crowd.person("ada"), crowd.person("troll")
    made = report(client, ada, "member", troll.user_id, note="kept shouting at me")
    assert made.status_code == 201, made.json_body
    assert made.json_body["status"] == "open" and "reporter_id" not in made.json_body

    queue = admin(client, "admin_reports", {})
    assert [r["report_id"] for r in queue["items"]] == [made.json_body["report_id"]]
    assert queue["items"][0]["reporter_id"] == ada.user_id  # never anonymous to operators
    opened = admin(client, "admin_report_open", {"report_id": made.json_body["report_id"]})
    assert opened["reporter"]["username"] == "ada"
    assert opened["target"]["username"] == "troll"

    decided = admin(
        client,
        "admin_report_decide",
        {"report_id": made.json_body["report_id"], "decision": "suspend", "days": 7},
    )
    assert (decided["decision"], decided["suspended_days"]) == ("suspend", 7)
    told = ada.events("report_decided")[-1]
    assert told["outcome"] == "suspend"
    contract.validate_server_message(told)
    # Suspension closes the troll's sockets and refuses their token.
    assert troll.connection_id in sockets.closed
    refused = call(client, "get", "/me", troll)
    assert (refused.status_code, refused.json_body["error"]["code"]) == (403, "account_suspended")
    mine = call(client, "get", "/me/reports", ada).json_body["items"]
    assert [(r["status"], r["outcome"]) for r in mine] == [("decided", "suspend")]
    # The reported member never hears who reported them.
    assert all(ada.user_id not in json.dumps(m) for m in troll.inbox())
    assert admin(client, "admin_reports", {})["items"] == []
    again = client.lambda_.invoke(
        "admin_report_decide", {"report_id": made.json_body["report_id"], "decision": "dismiss"}
    ).payload
    assert again["error"]["code"] == "report_already_decided"


def test_a_suspension_for_a_period_ends_by_itself(client: Client, crowd: Crowd, svc: Any) -> None:
    ada, troll = crowd.person("ada"), crowd.person("troll")
    made = report(client, ada, "member", troll.user_id).json_body
    admin(
        client,
        "admin_report_decide",
        {"report_id": made["report_id"], "decision": "suspend", "days": 2},
    )
    assert call(client, "get", "/me", troll).status_code == 403
    phone = svc.identity.repo.profile(troll.user_id).phone
    clock = svc.identity.clock
    svc.identity.clock = lambda: clock() + timedelta(days=2, minutes=1)
    assert verify(client, phone)["status"] == "member"  # signs in again
    assert svc.identity.repo.profile(troll.user_id).status.value == "active"


def test_a_warning_tells_the_member_and_not_who_reported(client: Client, crowd: Crowd) -> None:
    ada, troll = crowd.person("ada"), crowd.person("troll")
    made = report(client, ada, "member", troll.user_id).json_body
    admin(client, "admin_report_decide", {"report_id": made["report_id"], "decision": "warn"})
    warning = troll.events("warning")[-1]
    contract.validate_server_message(warning)
    assert warning["reason"] == "harassment"
    assert ada.user_id not in json.dumps(warning)
    assert ada.events("report_decided")[-1]["outcome"] == "warn"
    assert call(client, "get", "/me", troll).status_code == 200


def test_a_room_report_names_whom_a_suspension_applies_to(client: Client, crowd: Crowd) -> None:
    host, ada = crowd.person("host"), crowd.person("ada")
    room_id = host.ok("create_room", title="Loud", kind="open")["room_id"]
    made = report(client, ada, "room", room_id).json_body
    unnamed = client.lambda_.invoke(
        "admin_report_decide", {"report_id": made["report_id"], "decision": "suspend"}
    ).payload
    assert (unnamed["error"]["code"], unnamed["error"]["field"]) == ("invalid_request", "user_id")
    admin(
        client,
        "admin_report_decide",
        {"report_id": made["report_id"], "decision": "suspend", "user_id": host.user_id},
    )
    assert call(client, "get", "/me", host).status_code == 403


def test_reports_are_refused_for_oneself_for_nobody_and_past_the_hourly_limit(
    client: Client, crowd: Crowd, svc: Any
) -> None:
    ada, bob = crowd.person("ada"), crowd.person("bob")
    own = report(client, ada, "member", ada.user_id)
    assert (own.status_code, own.json_body["error"]["code"]) == (400, "cannot_report_yourself")
    nobody = report(client, ada, "member", "nobody")
    assert (nobody.status_code, nobody.json_body["error"]["code"]) == (404, "member_not_found")
    no_room = report(client, ada, "room", "nowhere")
    assert (no_room.status_code, no_room.json_body["error"]["code"]) == (404, "room_not_found")
    bad = report(client, ada, "member", bob.user_id, reason="vibes")
    assert (bad.status_code, bad.json_body["error"]["field"]) == (400, "reason")
    limit = svc.settings.reports_per_hour
    statuses = [report(client, ada, "member", bob.user_id).status_code for _ in range(limit + 2)]
    assert statuses == [201] * limit + [429, 429]


def test_the_moderation_log_records_what_moderators_did_to_others(
    client: Client, crowd: Crowd
) -> None:
    host = crowd.person("host")
    room_id = host.ok("create_room", title="Town hall", kind="open")["room_id"]
    speaker = speaker_in(crowd, room_id, host, "speaker")
    loud = speaker_in(crowd, room_id, host, "loud")
    listener = crowd.person("listener")
    listener.ok("join_room", room_id=room_id)
    speaker.ok("unmute")
    speaker.ok("mute")  # their own: not moderation
    loud.ok("unmute")
    host.ok("mute", user_id=loud.user_id)
    host.ok("move_to_audience", user_id=loud.user_id)
    host.ok("make_moderator", user_id=speaker.user_id)
    host.ok("remove_member", user_id=listener.user_id)

    log = host.ok("moderation_log")
    contract.validate_server_message(log)
    assert log["type"] == "moderation_log"
    assert [(e["actor_id"], e["action"], e["target_id"]) for e in log["items"]] == [
        (host.user_id, "mute", loud.user_id),
        (host.user_id, "move_to_audience", loud.user_id),
        (host.user_id, "make_moderator", speaker.user_id),
        (host.user_id, "remove_member", listener.user_id),
    ]
    assert set(log["items"][0]) == {"actor_id", "action", "target_id", "at"}
    assert speaker.ok("moderation_log")["items"] == log["items"]  # moderators all see it
    assert loud.refused("moderation_log") == "not_a_moderator"

    host.ok("end_room")
    assert host.refused("moderation_log") == "room_ended"
    # Operators read it after the room ended.
    kept = admin(client, "admin_moderation_log", {"room_id": room_id})["items"]
    assert [e["action"] for e in kept][-1] == "end_room"
    assert len(kept) == 5
