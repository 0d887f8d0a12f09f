"""Rights at the SFU beyond publish and kick (tests/integration/test_media_janus.py): what a
room of one Janus node holds, what removal and a closed socket take away at Janus, and two
unmutes racing for the last publishing slot."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.adapters.media import Limits
from chalicelib.domain import rooms as domain
from tests.support.crowd import Crowd, speaker_in
from tests.support.fakes import RecordingConnections
from tests.support.media import OFFER, in_janus_room, open_room, ref_of


@pytest.fixture
def crowd(client: Client, svc: Any, sockets: RecordingConnections) -> Crowd:
    return Crowd(client, svc, sockets)


def test_a_room_holds_what_its_janus_node_serves(crowd: Crowd, svc: Any) -> None:
    svc.media.limits = Limits(max_publishers=12, max_listeners=3)
    _, room_id = open_room(crowd)
    for name in ("one", "two"):
        crowd.person(name).ok("join_room", room_id=room_id)
    assert crowd.person("three").refused("join_room", room_id=room_id) == "room_full"


def test_removal_and_a_closed_socket_take_everything_away_at_janus(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    ref = ref_of(svc, room_id)
    ann = speaker_in(crowd, room_id, host, "ann")
    ann.ok("unmute")
    ann.ok("media_publish", sdp=OFFER)
    assert in_janus_room(svc, ref) == {ann.user_id}
    host.ok("remove_member", user_id=ann.user_id)
    assert in_janus_room(svc, ref) == set()

    bob = speaker_in(crowd, room_id, host, "bob")
    bob.ok("unmute")
    bob.ok("media_publish", sdp=OFFER)
    assert in_janus_room(svc, ref) == {bob.user_id}
    bob.disconnect()  # the socket's audio goes with it; the seat is kept for the grace period
    assert in_janus_room(svc, ref) == set()
    bob.connect()
    bob.ok("join_room", room_id=room_id)
    assert bob.ok("media_publish", sdp=OFFER)["type"] == "media_answer"
    assert in_janus_room(svc, ref) == {bob.user_id}


def test_two_unmutes_at_once_cannot_both_take_the_last_slot(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    host.ok("unmute")
    speakers = [speaker_in(crowd, room_id, host, f"speaker{i}") for i in range(12)]
    for speaker in speakers[:10]:
        speaker.ok("unmute")  # 11 of 12 slots taken
    racers = speakers[10:]
    now = datetime.now(UTC)
    who = [svc.connections.get(p.connection_id, now) for p in racers]
    start = threading.Barrier(len(racers))
    outcomes: list[str] = []

    def unmute(record: Any) -> None:
        start.wait()
        try:
            svc.rooms.act(record, domain.unmute, record.user_id)
            outcomes.append("unmuted")
        except Exception as error:  # the refusal is the point
            outcomes.append(getattr(error, "code", repr(error)))

    threads = [threading.Thread(target=unmute, args=(record,)) for record in who]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["too_many_publishers", "unmuted"], outcomes
    room = svc.rooms.repo.load(room_id, []).room
    assert len(room.publishers()) == 12
