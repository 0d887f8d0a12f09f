"""Scheduled rooms (events), driven through the handlers: REST to schedule, edit, cancel, RSVP,
list and preview; the WebSocket to start one; the notifications function to push the RSVPs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.outbox import pushes
from tests.support.crowd import Crowd, Person
from tests.support.push import device, drain, rest


@pytest.fixture
def crowd(push_crowd: Crowd) -> Crowd:
    return push_crowd


def soon(minutes: int = 10) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def schedule(crowd: Crowd, host: Person, **fields: Any) -> dict[str, Any]:
    payload = {"title": "Jazz night", "starts_at": soon(), **fields}
    answer = rest(crowd, "POST", "/events", host, payload)
    assert answer.status_code == 201, answer.body
    return dict(answer.json_body)


def at_start(crowd: Crowd, minutes_late: int = 0) -> None:
    """Move the services' clocks to the event's start time (+ minutes)."""
    later = datetime.now(UTC) + timedelta(minutes=10 + minutes_late)
    crowd.svc.events.clock = lambda: later


def test_an_rsvp_is_pushed_when_the_host_starts_the_event(crowd: Crowd) -> None:
    host, fan = crowd.person("host"), crowd.person("fan")
    phone = device(crowd, fan)
    event = schedule(crowd, host, description="Standards, requests welcome")
    answer = rest(crowd, "PUT", f"/events/{event['event_id']}/rsvp", fan)
    assert answer.status_code == 200 and answer.json_body["rsvp"] is True
    assert answer.json_body["rsvp_count"] == 1
    room = host.ok("start_event", event_id=event["event_id"])
    assert room["type"] == "room" and room["title"] == "Jazz night"
    drain(crowd)
    [shown] = pushes(phone)
    assert shown["title"] == "Starting now" and shown["body"] == "Jazz night"
    assert shown["data"]["room_id"] == room["room_id"]
    # The push leads into the room.
    joined = fan.ok("join_room", room_id=shown["data"]["room_id"])
    assert joined["room_id"] == room["room_id"]
    live = rest(crowd, "GET", f"/events/{event['event_id']}", fan).json_body
    assert (live["status"], live["room_id"]) == ("live", room["room_id"])


def test_co_hosts_are_moderators_of_the_room_it_becomes(crowd: Crowd) -> None:
    host, cohost, fan = crowd.person("host"), crowd.person("cohost"), crowd.person("fan")
    event = schedule(crowd, host, cohost_ids=[cohost.user_id])
    room = cohost.ok("start_event", event_id=event["event_id"])  # any host may start it
    entered = host.ok("join_room", room_id=room["room_id"])
    assert entered["viewer"]["role"] == "moderator"
    listener = fan.ok("join_room", room_id=room["room_id"])
    assert listener["viewer"]["role"] == "listener"
    assert fan.refused("start_event", event_id=event["event_id"]) == "not_event_host"


def test_an_event_starts_once(crowd: Crowd) -> None:
    host, cohost = crowd.person("host"), crowd.person("cohost")
    event = schedule(crowd, host, cohost_ids=[cohost.user_id])
    host.ok("start_event", event_id=event["event_id"])
    assert cohost.refused("start_event", event_id=event["event_id"]) == "event_not_scheduled"


def test_an_event_starts_at_most_fifteen_minutes_early(crowd: Crowd) -> None:
    host = crowd.person("host")
    event = schedule(crowd, host, starts_at=soon(60))
    assert host.refused("start_event", event_id=event["event_id"]) == "event_too_early"


def test_an_event_nobody_starts_lapses_after_the_grace_period(crowd: Crowd) -> None:
    host, fan = crowd.person("host"), crowd.person("fan")
    event = schedule(crowd, host)
    grace_min = crowd.svc.settings.event_grace_s // 60
    at_start(crowd, minutes_late=grace_min + 1)
    view = rest(crowd, "GET", f"/events/{event['event_id']}", fan).json_body
    assert view["status"] == "lapsed"
    assert host.refused("start_event", event_id=event["event_id"]) == "event_not_scheduled"
    late = rest(crowd, "PUT", f"/events/{event['event_id']}/rsvp", fan)
    assert (late.status_code, late.json_body["error"]["code"]) == (409, "event_not_scheduled")
    mine = rest(crowd, "GET", "/events?scope=mine", host).json_body["items"]
    assert mine == []


def test_a_late_start_within_the_grace_period_is_fine(crowd: Crowd) -> None:
    host = crowd.person("host")
    event = schedule(crowd, host)
    at_start(crowd, minutes_late=30)
    assert host.ok("start_event", event_id=event["event_id"])["type"] == "room"


def test_the_host_edits_and_cancels_and_nobody_else_does(crowd: Crowd) -> None:
    host, cohost, fan = crowd.person("host"), crowd.person("cohost"), crowd.person("fan")
    event = schedule(crowd, host, cohost_ids=[cohost.user_id])
    path = f"/events/{event['event_id']}"
    edited = rest(crowd, "PATCH", path, host, {"title": "Jazz night, live", "cohost_ids": []})
    assert edited.status_code == 200, edited.body
    assert edited.json_body["title"] == "Jazz night, live"
    assert [h["user_id"] for h in edited.json_body["hosts"]] == [host.user_id]
    for who in (cohost, fan):
        refused = rest(crowd, "PATCH", path, who, {"title": "Mine now"})
        assert refused.json_body["error"]["code"] == "not_event_host"
        assert rest(crowd, "DELETE", path, who).status_code == 403
    cancelled = rest(crowd, "DELETE", path, host)
    assert cancelled.json_body["status"] == "cancelled"
    assert host.refused("start_event", event_id=event["event_id"]) == "event_not_scheduled"
    again = rest(crowd, "PATCH", path, host, {"title": "Back on"})
    assert again.json_body["error"]["code"] == "event_not_scheduled"


def test_moving_an_event_moves_it_in_the_lists(crowd: Crowd) -> None:
    host = crowd.person("host")
    first = schedule(crowd, host, starts_at=soon(60))
    second = schedule(crowd, host, starts_at=soon(120), title="Second")
    moved = rest(crowd, "PATCH", f"/events/{second['event_id']}", host, {"starts_at": soon(30)})
    assert moved.status_code == 200
    mine = rest(crowd, "GET", "/events?scope=mine", host).json_body["items"]
    assert [e["event_id"] for e in mine] == [second["event_id"], first["event_id"]]


def test_upcoming_lists_mine_and_those_of_people_i_follow(crowd: Crowd) -> None:
    host, cohost, fan, stranger = (crowd.person(n) for n in ("host", "cohost", "fan", "stranger"))
    event = schedule(crowd, host, cohost_ids=[cohost.user_id])
    schedule(crowd, stranger, title="Elsewhere")
    crowd.follow(fan, host)
    following = rest(crowd, "GET", "/events", fan).json_body["items"]
    assert [e["event_id"] for e in following] == [event["event_id"]]
    cohosted = rest(crowd, "GET", "/events?scope=mine", cohost).json_body["items"]
    assert [e["event_id"] for e in cohosted] == [event["event_id"]]
    assert cohosted[0]["is_host"] is True


def test_the_public_preview_needs_no_sign_in_and_names_no_ids(crowd: Crowd) -> None:
    host = crowd.person("host")
    event = schedule(crowd, host, description="Standards")
    answer = crowd.client.http.get(f"/events/{event['event_id']}/preview")
    assert answer.status_code == 200
    preview = answer.json_body
    assert preview["title"] == "Jazz night" and preview["hosts"] == [
        {"username": "host", "name": "Host"}
    ]
    assert host.user_id not in answer.body.decode()
    assert preview["link"].endswith(f"/events/{event['event_id']}")
    assert crowd.client.http.get("/events/nope/preview").status_code == 404


def test_rsvp_is_idempotent_and_can_be_taken_back(crowd: Crowd) -> None:
    host, fan = crowd.person("host"), crowd.person("fan")
    phone = device(crowd, fan)
    event = schedule(crowd, host)
    path = f"/events/{event['event_id']}/rsvp"
    rest(crowd, "PUT", path, fan)
    assert rest(crowd, "PUT", path, fan).json_body["rsvp_count"] == 1
    back = rest(crowd, "DELETE", path, fan).json_body
    assert (back["rsvp"], back["rsvp_count"]) == (False, 0)
    assert rest(crowd, "DELETE", path, fan).json_body["rsvp_count"] == 0
    host.ok("start_event", event_id=event["event_id"])
    drain(crowd)
    assert pushes(phone) == []


def test_someone_blocked_by_the_host_cannot_rsvp_or_see_it(crowd: Crowd) -> None:
    host, pest = crowd.person("host"), crowd.person("pest")
    event = schedule(crowd, host)
    crowd.svc.identity.block(host.user_id, pest.user_id)
    refused = rest(crowd, "PUT", f"/events/{event['event_id']}/rsvp", pest)
    assert refused.json_body["error"]["code"] == "blocked"
    assert rest(crowd, "GET", f"/events/{event['event_id']}", pest).status_code == 404


def test_many_rsvps_are_pushed_page_by_page(crowd: Crowd) -> None:
    host = crowd.person("host")
    event = schedule(crowd, host)
    fans = [crowd.person(f"fan{i}", connect=False) for i in range(5)]
    phones = [device(crowd, fan) for fan in fans]
    for fan in fans:
        rest(crowd, "PUT", f"/events/{event['event_id']}/rsvp", fan)
    host.ok("start_event", event_id=event["event_id"])
    drain(crowd)  # pages of two
    assert [len(pushes(phone)) for phone in phones] == [1] * 5


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({"title": "", "starts_at": "2030-01-01T00:00:00Z"}, "invalid_request", "title"),
        ({"title": "T", "starts_at": "tomorrow"}, "invalid_event_time", "starts_at"),
        ({"title": "T", "starts_at": "2030-01-01T00:00:00"}, "invalid_event_time", "starts_at"),
        ({"title": "T", "starts_at": "2020-01-01T00:00:00Z"}, "invalid_event_time", "starts_at"),
        ({"title": "T", "starts_at": "2099-01-01T00:00:00Z"}, "invalid_event_time", "starts_at"),
        ({"title": "T", "starts_at": "SOON", "cohost_ids": "x"}, "invalid_request", "cohost_ids"),
        ({"title": "T", "starts_at": "SOON", "cohost_ids": ["nobody"]}, "member_not_found", None),
        ({"title": "T", "starts_at": "SOON", "club": "x"}, "invalid_request", "club"),
    ],
)
def test_bad_events_are_refused_with_a_code(
    crowd: Crowd, payload: dict[str, Any], code: str, field: str | None
) -> None:
    host = crowd.person("host", connect=False)
    payload = {k: soon() if v == "SOON" else v for k, v in payload.items()}
    answer = rest(crowd, "POST", "/events", host, payload)
    assert answer.status_code in (400, 404), answer.body
    assert answer.json_body["error"]["code"] == code
    if field:
        assert answer.json_body["error"]["field"] == field
