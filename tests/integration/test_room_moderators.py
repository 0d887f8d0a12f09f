"""The room item's moderator list (what the hallway filters on) follows every change of who
moderates: made, unmade, stepping down, removed, leaving and timing out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.adapters.dynamo.models import RoomMemberModel, RoomModel
from tests.support.crowd import Crowd, Person
from tests.support.fakes import RecordingConnections


@pytest.fixture
def crowd(client: Client, svc: Any, sockets: RecordingConnections) -> Crowd:
    return Crowd(client, svc, sockets)


def social_room(crowd: Crowd) -> tuple[Person, str]:
    host = crowd.person("host")
    return host, str(host.ok("create_room", title="Late talk", kind="social")["room_id"])


def speaker_in(crowd: Crowd, room_id: str, host: Person, name: str) -> Person:
    person = crowd.person(name)
    crowd.follow(host, person)  # a social room admits people its moderators follow
    person.ok("join_room", room_id=room_id)
    host.ok("invite_to_speak", user_id=person.user_id)
    person.ok("accept_speaker_invite")
    return person


def hallway_ids(crowd: Crowd, viewer: Person) -> list[str]:
    return [r["room_id"] for r in crowd.svc.rooms.hallway(viewer.user_id, 20, None)["items"]]


def stored_moderators(room_id: str) -> set[str]:
    return set(RoomModel.get(room_id, consistent_read=True).moderator_ids or ())


def actual_moderators(room_id: str) -> set[str]:
    return {
        row.user_id
        for row in RoomMemberModel.query(room_id, consistent_read=True)
        if row.role == "moderator" and not row.removed
    }


def test_a_speaker_made_moderator_shows_the_room_to_people_they_follow(crowd: Crowd) -> None:
    host, room_id = social_room(crowd)
    cohost = speaker_in(crowd, room_id, host, "cohost")
    friend = crowd.person("friend")
    crowd.follow(cohost, friend)
    assert room_id not in hallway_ids(crowd, friend)
    host.ok("make_moderator", user_id=cohost.user_id)
    assert room_id in hallway_ids(crowd, friend)
    host.ok("unmake_moderator", user_id=cohost.user_id)
    assert room_id not in hallway_ids(crowd, friend)


def test_a_speaker_made_moderator_hides_the_room_from_people_they_blocked(crowd: Crowd) -> None:
    host = crowd.person("host")
    room_id = str(host.ok("create_room", title="Open talk", kind="open")["room_id"])
    cohost = speaker_in(crowd, room_id, host, "cohost")
    pest = crowd.person("pest")
    crowd.svc.identity.block(cohost.user_id, pest.user_id)
    assert room_id in hallway_ids(crowd, pest)
    host.ok("make_moderator", user_id=cohost.user_id)
    assert room_id not in hallway_ids(crowd, pest)
    cohost.ok("step_down")
    assert room_id in hallway_ids(crowd, pest)


def test_every_change_of_who_moderates_is_saved_on_the_room_item(crowd: Crowd, svc: Any) -> None:
    host, room_id = social_room(crowd)
    a = speaker_in(crowd, room_id, host, "alpha")
    b = speaker_in(crowd, room_id, host, "beta")
    listener = crowd.person("listener")
    crowd.follow(host, listener)
    listener.ok("join_room", room_id=room_id)
    quitter = speaker_in(crowd, room_id, host, "quitter")
    dropper = speaker_in(crowd, room_id, host, "dropper")

    def check(step: str) -> None:
        assert stored_moderators(room_id) == actual_moderators(room_id), step

    check("created")
    steps: list[tuple[str, Any]] = [
        ("speaker made moderator", lambda: host.ok("make_moderator", user_id=a.user_id)),
        ("listener made moderator", lambda: host.ok("make_moderator", user_id=listener.user_id)),
        ("moderator unmade", lambda: a.ok("unmake_moderator", user_id=listener.user_id)),
        ("moderator unmakes themselves", lambda: a.ok("unmake_moderator", user_id=a.user_id)),
        ("made again", lambda: host.ok("make_moderator", user_id=b.user_id)),
        ("moderator steps down", lambda: b.ok("step_down")),
        ("made once more", lambda: host.ok("make_moderator", user_id=a.user_id)),
        ("moderator removed", lambda: host.ok("remove_member", user_id=a.user_id)),
        ("quitter made", lambda: host.ok("make_moderator", user_id=quitter.user_id)),
        ("moderator leaves", lambda: quitter.ok("leave_room")),
        ("dropper made", lambda: host.ok("make_moderator", user_id=dropper.user_id)),
    ]
    for step, run in steps:
        run()
        check(step)
    dropper.disconnect()
    check("moderator dropped (keeps the role for the grace period)")
    svc.rooms.clock = lambda: datetime.now(UTC) + timedelta(seconds=60)
    crowd.fire("expire")
    check("moderator timed out")
    assert stored_moderators(room_id) == {host.user_id}


def test_the_hallway_does_not_offer_a_room_that_removed_you(crowd: Crowd) -> None:
    host = crowd.person("host")
    room_id = str(host.ok("create_room", title="Open talk", kind="open")["room_id"])
    pest, other = crowd.person("pest"), crowd.person("other")
    pest.ok("join_room", room_id=room_id)
    other.ok("join_room", room_id=room_id)
    host.ok("remove_member", user_id=pest.user_id)
    assert pest.refused("join_room", room_id=room_id) == "removed_from_room"
    assert room_id not in hallway_ids(crowd, pest)
    assert room_id in hallway_ids(crowd, other)
