"""Abuse limits on the socket: token buckets per connection, and the Origin allow-list."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.services import container
from tests.support.crowd import Crowd, Person
from tests.support.events import ws_event
from tests.support.fakes import RecordingConnections

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def crowd(client: Client, svc: Any, sockets: RecordingConnections) -> Crowd:
    return Crowd(client, svc, sockets)


@pytest.fixture
def frozen(svc: Any) -> list[datetime]:
    """The sockets' clock, stopped at T0 until a test moves it: refills happen only then."""
    now = [T0]
    svc.realtime._clock = lambda: now[0]
    return now


def flood(person: Person, action: str, count: int, **fields: Any) -> list[dict[str, Any]]:
    """Send `count` messages with distinct refs; every one's reply, in order."""
    before = len(person.inbox())
    for n in range(count):
        body = json.dumps({"action": action, "ref": f"f{n}", **fields})
        person.crowd.client.lambda_.invoke(
            "ws_message", ws_event("$default", person.connection_id, body=body)
        )
    replies = [m for m in person.inbox()[before:] if str(m.get("ref", "")).startswith("f")]
    assert [m["ref"] for m in replies] == [f"f{n}" for n in range(count)]  # none lost
    return replies


def refused(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in replies if r.get("code") == "rate_limited"]


def test_a_flood_of_actions_gets_the_burst_then_rate_limited_with_retry_after(
    crowd: Crowd, svc: Any, frozen: list[datetime]
) -> None:
    ada = crowd.person("ada")
    burst = svc.settings.ws_action_burst
    replies = flood(ada, "ping", burst + 10)
    assert [r["type"] for r in replies[:burst]] == ["pong"] * burst
    limited = refused(replies)
    assert len(limited) == 10
    assert all(r["type"] == "error" and r["retry_after"] == 1 for r in limited)
    # A second later the bucket has earned `per_second` tokens, and no more.
    frozen[0] = T0 + timedelta(seconds=1)
    per_second = svc.settings.ws_actions_per_second
    later = flood(ada, "ping", per_second + 3)
    assert [r["type"] for r in later] == ["pong"] * per_second + ["error"] * 3


def test_media_actions_spend_their_own_bucket_and_leave_the_others_alone(
    crowd: Crowd, svc: Any, frozen: list[datetime]
) -> None:
    ada = crowd.person("ada")
    burst = svc.settings.ws_media_burst
    # Not in a room: each is refused for that, until the media bucket is empty.
    replies = flood(ada, "media_live", burst + 5)
    assert {r["code"] for r in replies[:burst]} == {"not_in_a_room"}
    assert len(refused(replies)) == 5
    assert flood(ada, "ping", 3)[0]["type"] == "pong"  # the action bucket is untouched
    media_free = flood(ada, "ping", svc.settings.ws_action_burst - 3)
    assert not refused(media_free)


def test_two_lambdas_of_one_socket_spend_the_same_bucket(
    crowd: Crowd, svc: Any, sockets: RecordingConnections, frozen: list[datetime]
) -> None:
    """The buckets live on the connection row: a second container (another Lambda) spends
    from the same tokens, so spreading a flood over Lambdas does not multiply the limit."""
    ada = crowd.person("ada")
    other = container.Services(svc.settings)
    other.__dict__["poster"] = sockets
    other.realtime._clock = lambda: frozen[0]
    burst = svc.settings.ws_action_burst
    for n in range(burst + 6):
        realtime = svc.realtime if n % 2 else other.realtime
        realtime.receive(ada.connection_id, json.dumps({"action": "ping", "ref": f"f{n}"}))
    replies = [m for m in ada.inbox() if str(m.get("ref", "")).startswith("f")]
    assert len(replies) == burst + 6
    assert len(refused(replies)) == 6


def test_other_sockets_keep_their_own_buckets(
    crowd: Crowd, svc: Any, frozen: list[datetime]
) -> None:
    flooder, bystander = crowd.person("flooder"), crowd.person("bystander")
    flood(flooder, "ping", svc.settings.ws_action_burst + 5)
    assert not refused(flood(bystander, "ping", 5))


def connect_from(client: Client, origin: str | None, token: str) -> Any:
    event = ws_event("$connect", "origin-1=", query={"token": token})
    if origin is not None:
        event["headers"]["Origin"] = origin
    return client.lambda_.invoke("ws_connect", event).payload


def test_browsers_connect_only_from_allowed_origins_and_native_apps_without_one(
    client: Client, crowd: Crowd, svc: Any
) -> None:
    ada = crowd.person("ada", connect=False)
    refused_handshake = connect_from(client, "https://evil.example", ada.token)
    assert refused_handshake["statusCode"] == 403
    assert json.loads(refused_handshake["body"])["error"]["code"] == "origin_not_allowed"
    (own,) = svc.settings.browser_origins
    assert connect_from(client, own, ada.token)["statusCode"] == 200
    assert connect_from(client, None, ada.token)["statusCode"] == 200
