"""Live rooms through the WebSocket handlers, on moto: membership, stage, events, pings.

The media actions, on a real Janus: tests/integration/test_media_janus.py.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.adapters.dynamo.models import RoomMemberModel, RoomModel, UserModel
from chalicelib.adapters.dynamo.rooms import _member_row
from chalicelib.domain import rooms as domain
from chalicelib.domain.errors import SalonError
from tests.support.crowd import Crowd, Person, speaker_in
from tests.support.cursors import FORGED_CURSORS
from tests.support.events import sqs_event, ws_event
from tests.support.fakes import RecordingConnections


@pytest.fixture
def crowd(client: Client, svc: Any, sockets: RecordingConnections) -> Crowd:
    return Crowd(client, svc, sockets)


def open_room(crowd: Crowd, host: str = "host", kind: str = "open") -> tuple[Person, str]:
    person = crowd.people.get(host) or crowd.person(host)
    reply = person.ok("create_room", title="Jazz at night", kind=kind)
    return person, str(reply["room_id"])


def test_the_creator_is_the_first_moderator(crowd: Crowd) -> None:
    host, _ = open_room(crowd)
    snapshot = host.inbox()[-1]
    assert snapshot["type"] == "room"
    assert [(s["username"], s["role"], s["muted"]) for s in snapshot["stage"]] == [
        ("host", "moderator", True)
    ]
    assert snapshot["audience_count"] == 0


def test_a_listener_joins_and_gets_a_snapshot_without_messaging_the_room(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    before = len(host.inbox())
    fan = crowd.person("fan")
    snapshot = fan.ok("join_room", room_id=room_id)
    assert snapshot["viewer"]["role"] == "listener"
    assert snapshot["audience_count"] == 1
    assert [p["username"] for p in snapshot["audience"]] == ["fan"]
    assert len(host.inbox()) == before  # a listener's arrival is not fanned out


def test_audience_counts_are_coalesced_and_the_last_change_is_delivered(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    fans = [crowd.person(f"fan{i}") for i in range(5)]
    for fan in fans:
        fan.ok("join_room", room_id=room_id)
    fans[0].ok("leave_room")
    assert crowd.fire("flush_count") == 1  # one flush scheduled for the whole burst
    assert host.events("audience_count")[-1]["count"] == 4
    fans[1].ok("leave_room")
    assert crowd.fire("flush_count") == 1
    assert host.events("audience_count")[-1]["count"] == 3
    assert fans[2].events("audience_count")[-1]["count"] == 3


def test_raised_hands_reach_moderators_in_order(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    first, second = crowd.person("first"), crowd.person("second")
    for fan in (first, second):
        fan.ok("join_room", room_id=room_id)
        assert fan.ok("raise_hand")["type"] == "ack"
    assert [e["user_id"] for e in host.events("hand_raised")] == [first.user_id, second.user_id]
    assert second.events("hand_raised") == []  # listeners do not see the queue
    snapshot = host.ok("join_room", room_id=room_id)
    assert [h["username"] for h in snapshot["raised_hands"]] == ["first", "second"]
    assert "raised_hands" not in first.ok("join_room", room_id=room_id)


def test_a_moderator_turns_hands_off_and_raising_is_refused(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    fan = crowd.person("fan")
    fan.ok("join_room", room_id=room_id)
    host.ok("set_hands_allowed", allowed=False)
    assert fan.refused("raise_hand") == "hands_closed"


def test_invite_to_speak_accept_and_the_whole_room_sees_the_new_speaker(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    speaker, listener = crowd.person("speaker"), crowd.person("listener")
    speaker.ok("join_room", room_id=room_id)
    listener.ok("join_room", room_id=room_id)
    speaker.ok("raise_hand")
    host.ok("invite_to_speak", user_id=speaker.user_id)
    assert speaker.events("speaker_invited")
    assert not listener.events("speaker_invited")
    speaker.ok("accept_speaker_invite")
    assert listener.events("invitation_accepted")[-1]["user_id"] == speaker.user_id
    snapshot = listener.ok("join_room", room_id=room_id)
    assert {s["username"]: s["role"] for s in snapshot["stage"]} == {
        "host": "moderator",
        "speaker": "speaker",
    }
    assert snapshot["audience_count"] == 1


def test_declining_tells_the_moderators(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    fan = crowd.person("fan")
    fan.ok("join_room", room_id=room_id)
    host.ok("invite_to_speak", user_id=fan.user_id)
    fan.ok("decline_speaker_invite")
    assert host.events("invitation_declined")[-1]["user_id"] == fan.user_id
    assert fan.refused("accept_speaker_invite") == "no_invitation"


def test_only_the_speaker_unmutes_themselves(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    speaker = speaker_in(crowd, room_id, host, "speaker")
    speaker.ok("unmute")
    assert host.events("speaker_unmuted")[-1]["user_id"] == speaker.user_id
    host.ok("mute", user_id=speaker.user_id)
    assert speaker.events("speaker_muted")[-1]["user_id"] == speaker.user_id
    assert host.refused("unmute", user_id=speaker.user_id) == "cannot_unmute_others"
    speaker.ok("unmute")


def test_move_to_audience_and_step_down(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    one = speaker_in(crowd, room_id, host, "one")
    two = speaker_in(crowd, room_id, host, "two")
    host.ok("move_to_audience", user_id=one.user_id)
    two.ok("step_down")
    snapshot = host.ok("join_room", room_id=room_id)
    assert [s["username"] for s in snapshot["stage"]] == ["host"]
    assert snapshot["audience_count"] == 2
    assert one.refused("unmute") == "not_on_stage"


def test_removed_people_cannot_rejoin(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    troll = crowd.person("troll")
    troll.ok("join_room", room_id=room_id)
    host.ok("remove_member", user_id=troll.user_id)
    assert troll.events("member_removed")[-1]["user_id"] == troll.user_id
    assert troll.refused("join_room", room_id=room_id) == "removed_from_room"
    assert troll.refused("raise_hand") in {"not_in_room", "removed_from_room"}


def test_people_blocked_by_a_moderator_cannot_enter(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    pest = crowd.person("pest")
    crowd.svc.identity.block(host.user_id, pest.user_id)
    assert pest.refused("join_room", room_id=room_id) == "blocked"


def test_social_rooms_admit_people_a_moderator_follows(crowd: Crowd) -> None:
    host, room_id = open_room(crowd, kind="social")
    friend, stranger = crowd.person("friend"), crowd.person("stranger")
    crowd.follow(host, friend)
    friend.ok("join_room", room_id=room_id)
    assert stranger.refused("join_room", room_id=room_id) == "room_not_open_to_you"


def test_closed_rooms_admit_only_people_the_moderators_invite(crowd: Crowd) -> None:
    host, room_id = open_room(crowd, kind="closed")
    guest, stranger = crowd.person("guest"), crowd.person("stranger")
    assert stranger.refused("join_room", room_id=room_id) == "room_not_open_to_you"
    host.ok("invite_to_room", user_id=guest.user_id)
    assert guest.events("room_invitation_sent")[-1]["room_id"] == room_id
    guest.ok("join_room", room_id=room_id)


def test_make_and_unmake_moderator(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    cohost = speaker_in(crowd, room_id, host, "cohost")
    host.ok("make_moderator", user_id=cohost.user_id)
    assert host.events("moderator_added")[-1]["user_id"] == cohost.user_id
    cohost.ok("set_hands_allowed", allowed=False)
    host.ok("unmake_moderator", user_id=cohost.user_id)
    assert cohost.refused("set_hands_allowed", allowed=True) == "not_a_moderator"


def test_the_creator_leaving_hands_the_room_to_another_moderator(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    cohost = speaker_in(crowd, room_id, host, "cohost")
    host.ok("make_moderator", user_id=cohost.user_id)
    host.ok("leave_room")
    assert not cohost.events("room_ended")
    assert {s["username"]: s["role"] for s in cohost.ok("join_room", room_id=room_id)["stage"]} == {
        "cohost": "moderator"
    }


def test_the_last_moderator_leaving_ends_the_room_and_it_leaves_the_hallway(
    crowd: Crowd,
) -> None:
    host, room_id = open_room(crowd)
    fan = crowd.person("fan")
    fan.ok("join_room", room_id=room_id)
    assert [r["room_id"] for r in crowd.svc.rooms.hallway(fan.user_id, 20, None)["items"]] == [
        room_id
    ]
    host.ok("leave_room")
    assert fan.events("room_ended")[-1]["reason"] == "last_moderator_left"
    assert crowd.svc.rooms.hallway(fan.user_id, 20, None)["items"] == []
    assert fan.refused("raise_hand") == "room_ended"
    assert crowd.fire("cleanup") == 1
    assert crowd.svc.rooms.repo.connections(room_id) == {}


def test_a_moderator_ends_the_room_for_everyone(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    fan = crowd.person("fan")
    fan.ok("join_room", room_id=room_id)
    assert fan.refused("end_room") == "not_a_moderator"
    host.ok("end_room")
    assert fan.events("room_ended")[-1]["reason"] == "ended_by_moderator"
    assert fan.refused("join_room", room_id=room_id) == "room_ended"


def test_a_dropped_member_resumes_their_role_within_the_grace_period(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    speaker = speaker_in(crowd, room_id, host, "speaker")
    speaker.disconnect()
    assert host.events("member_disconnected")[-1]["user_id"] == speaker.user_id
    speaker.connect()
    snapshot = speaker.ok("join_room", room_id=room_id)
    assert snapshot["viewer"]["role"] == "speaker"
    crowd.fire("expire")  # the grace timer finds them back: nothing happens
    assert speaker.ok("join_room", room_id=room_id)["viewer"]["role"] == "speaker"


def test_after_the_grace_period_a_dropped_member_has_left(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    speaker = speaker_in(crowd, room_id, host, "speaker")
    speaker.disconnect()
    svc.rooms.clock = lambda: datetime.now(UTC) + timedelta(seconds=60)
    assert crowd.fire("expire") == 1
    assert host.events("member_left")[-1]["reason"] == "timed_out"
    svc.rooms.clock = lambda: datetime.now(UTC)
    speaker.connect()
    assert speaker.ok("join_room", room_id=room_id)["viewer"]["role"] == "listener"


def test_the_last_moderator_timing_out_ends_the_room(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    fan = crowd.person("fan")
    fan.ok("join_room", room_id=room_id)
    host.disconnect()
    svc.rooms.clock = lambda: datetime.now(UTC) + timedelta(seconds=60)
    crowd.fire("expire")
    assert fan.events("room_ended")[-1]["reason"] == "last_moderator_left"


def test_pinging_someone_you_follow_into_your_room(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    friend, stranger = crowd.person("friend"), crowd.person("stranger")
    crowd.follow(host, friend)
    host.ok("ping_into_room", user_id=friend.user_id)
    ping = friend.events("room_ping")[-1]
    assert (ping["room_id"], ping["from"]["username"]) == (room_id, "host")
    assert host.refused("ping_into_room", user_id=stranger.user_id) == "not_following"


def test_a_gone_connection_is_removed_when_a_post_gets_410(
    crowd: Crowd, sockets: RecordingConnections, svc: Any
) -> None:
    host, room_id = open_room(crowd)
    fan = crowd.person("fan")
    fan.ok("join_room", room_id=room_id)
    sockets.gone.add(fan.connection_id)
    host.ok("end_room")
    assert svc.connections.get(fan.connection_id, datetime.now(UTC)) is None


def test_every_incoming_room_message_is_validated(crowd: Crowd) -> None:
    host, _room_id = open_room(crowd)
    assert host.refused("create_room", title="", kind="open") == "invalid_request"
    assert host.refused("create_room", title="x", kind="secret") == "invalid_request"
    assert host.refused("join_room", room_id="../../etc") == "invalid_request"
    assert host.refused("join_room", room_id="no-such-room") == "room_not_found"
    assert host.refused("invite_to_speak") == "invalid_request"
    assert host.refused("set_hands_allowed", allowed="no") == "invalid_request"


def test_concurrent_conflicting_actions_resolve_to_one_state(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    cohost = speaker_in(crowd, room_id, host, "cohost")
    host.ok("make_moderator", user_id=cohost.user_id)
    target = speaker_in(crowd, room_id, host, "target")
    who = {p.name: svc.connections.get(p.connection_id, datetime.now(UTC)) for p in (host, cohost)}

    def attempt(name: str, op: Any) -> str:
        try:
            svc.rooms.act(who[name], op, target.user_id)
        except SalonError as error:
            return error.code
        return "ok"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(
            pool.map(
                lambda args: attempt(*args),
                [("host", domain.make_moderator), ("cohost", domain.remove_member)],
            )
        )
    state = svc.rooms.repo.load(room_id, [target.user_id]).room
    if target.user_id in state.removed:
        assert target.user_id not in state.members
    else:
        assert state.members[target.user_id].role is domain.Role.MODERATOR
    assert "ok" in outcomes


def test_the_hallway_ranks_rooms_with_people_you_follow_on_stage_first(crowd: Crowd) -> None:
    viewer = crowd.person("viewer")
    _big_host, big_room = open_room(crowd, host="bighost")
    for i in range(3):
        crowd.person(f"crowd{i}").ok("join_room", room_id=big_room)
    friend_host, friend_room = open_room(crowd, host="friend")
    crowd.follow(viewer, friend_host)
    _, closed_room = open_room(crowd, host="secret", kind="closed")
    social_host, social_room = open_room(crowd, host="social", kind="social")
    items = crowd.svc.rooms.hallway(viewer.user_id, 20, None)["items"]
    assert [r["room_id"] for r in items] == [friend_room, big_room]
    assert items[0]["followed_on_stage"] == 1
    crowd.follow(social_host, viewer)
    ids = [r["room_id"] for r in crowd.svc.rooms.hallway(viewer.user_id, 20, None)["items"]]
    assert social_room in ids and closed_room not in ids


def test_the_hallway_pages(crowd: Crowd, client: Client) -> None:
    viewer = crowd.person("viewer")
    rooms = [open_room(crowd, host=f"host{i}")[1] for i in range(3)]
    auth = {"Authorization": f"Bearer {viewer.token}"}
    first = client.http.get("/rooms?limit=2", headers=auth).json_body
    second = client.http.get(f"/rooms?limit=2&cursor={first['cursor']}", headers=auth).json_body
    assert len(first["items"]) == 2 and second["cursor"] is None
    assert {r["room_id"] for r in first["items"] + second["items"]} == set(rooms)
    assert client.http.get("/rooms").status_code == 401


def test_a_refused_join_keeps_you_in_the_room_you_are_in(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    _, closed_room = open_room(crowd, host="other", kind="closed")
    assert host.refused("join_room", room_id=closed_room) == "room_not_open_to_you"
    assert not host.events("room_ended")
    assert host.ok("join_room", room_id=room_id)["viewer"]["role"] == "moderator"


def test_a_forged_audience_cursor_is_a_clear_error(crowd: Crowd) -> None:
    host, _ = open_room(crowd)
    assert host.refused("list_audience", cursor="eyJhIjogMX0=") == "invalid_request"
    for cursor in FORGED_CURSORS.values():
        assert host.refused("list_audience", cursor=cursor) == "invalid_request"
    outsider = crowd.person("outsider")
    assert outsider.refused("list_audience") == "not_in_a_room"


def test_closing_hands_lowers_the_hands_of_listeners_the_action_did_not_load(
    crowd: Crowd,
) -> None:
    host, room_id = open_room(crowd)
    fans = [crowd.person(f"fan{i}") for i in range(3)]
    for fan in fans:
        fan.ok("join_room", room_id=room_id)
        fan.ok("raise_hand")
    host.ok("set_hands_allowed", allowed=False)
    assert all(f.events("hands_toggled")[-1]["allowed"] is False for f in fans)  # all told
    host.ok("set_hands_allowed", allowed=True)
    assert host.ok("join_room", room_id=room_id)["raised_hands"] == []
    assert fans[0].ok("join_room", room_id=room_id)["viewer"]["hand_raised"] is False
    raised_before = len(host.events("hand_raised"))
    fans[1].ok("raise_hand")  # a new hand, at the back of a new queue: not a no-op
    assert len(host.events("hand_raised")) == raised_before + 1
    queue = host.ok("join_room", room_id=room_id)["raised_hands"]
    assert [h["user_id"] for h in queue] == [fans[1].user_id]


def test_a_hand_raised_while_hands_close_does_not_survive_the_closing(
    crowd: Crowd, svc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, room_id = open_room(crowd)
    fan = crowd.person("fan")
    fan.ok("join_room", room_id=room_id)
    save = svc.rooms.repo.save
    closed: list[bool] = []
    host_socket = svc.connections.get(host.connection_id, datetime.now(UTC))

    def close_hands_first(loaded: Any, actor_id: str) -> None:
        # The fan's raise has read the room with hands open; the host closes them now.
        if actor_id == fan.user_id and not closed:
            closed.append(True)
            svc.rooms.act(host_socket, domain.set_hands_allowed, False)
        save(loaded, actor_id)

    monkeypatch.setattr(svc.rooms.repo, "save", close_hands_first)
    assert fan.refused("raise_hand") == "hands_closed"
    host.ok("set_hands_allowed", allowed=True)
    assert host.ok("join_room", room_id=room_id)["raised_hands"] == []


def test_after_the_room_ends_its_sockets_can_leave_and_go_elsewhere(crowd: Crowd) -> None:
    host, room_id = open_room(crowd)
    fan, other = crowd.person("fan"), crowd.person("other")
    for person in (fan, other):
        person.ok("join_room", room_id=room_id)
    host.ok("end_room")
    assert fan.refused("raise_hand") == "room_ended"
    assert fan.refused("list_audience") == "room_ended"
    assert fan.refused("media_subscribe", user_id=host.user_id) == "room_ended"
    assert fan.ok("leave_room")["room_id"] == room_id
    assert fan.refused("leave_room") == "not_in_a_room"
    _, elsewhere = open_room(crowd, host="elsewhere")
    assert fan.ok("join_room", room_id=elsewhere)["viewer"]["role"] == "listener"
    assert other.ok("create_room", title="Next", kind="open")["viewer"]["role"] == "moderator"
    assert host.ok("leave_room")["room_id"] == room_id


def test_media_actions_never_relay_nan_or_infinity(crowd: Crowd, svc: Any) -> None:
    host, room_id = open_room(crowd)
    host.ok("unmute")
    body = '{"action": "media_publish", "ref": "s", "sdp": "v=0", "extra": NaN}'
    crowd.client.lambda_.invoke("ws_message", ws_event("$default", host.connection_id, body=body))
    assert host.inbox()[-1]["code"] == "invalid_request"
    ref = svc.rooms.repo.load(room_id, []).room.media_ref
    listed = svc.media._plugin({"request": "listparticipants", "room": ref})
    assert listed["participants"] == [], "nothing reached the SFU"


def seat_on_stage(
    crowd: Crowd, room_id: str, count: int, dropped_at: datetime | None = None
) -> list[str]:
    """`count` members seated on the room's stage, written as saving their acceptance would
    (their rows, the room item's stage, their `on_stage_in`), without a socket each; with
    `dropped_at`, all of them lost their connection then."""
    now = datetime.now(UTC)
    ids = [f"voice{i:03d}" for i in range(count)]
    with UserModel.batch_write() as users, RoomMemberModel.batch_write() as rows:
        for uid in ids:
            users.save(
                UserModel(
                    uid,
                    phone=f"+1{uid}",
                    username=uid,
                    name=uid,
                    created_at=now,
                    on_stage_in={room_id},
                )
            )
            member = domain.Member(uid, domain.Role.SPEAKER, joined_at=now, muted=True)
            member.connected, member.disconnected_at = dropped_at is None, dropped_at
            rows.save(_member_row(room_id, member, 1, None, 0))
    RoomModel(room_id).update(
        actions=[
            RoomModel.stage_ids.add(set(ids)),
            RoomModel.stage.remove(),
            RoomModel.revision.add(1),
        ]
    )
    return ids


def test_a_room_with_more_people_on_stage_than_a_transaction_holds_ends(crowd: Crowd) -> None:
    # DynamoDB takes at most 100 items in a transaction (local/service_limits.py holds moto to
    # it). Ending must not write one item per person on stage: the hallway's index of their
    # stages is cleaned by the cleanup timer, and the hallway shows live rooms only meanwhile.
    host, room_id = open_room(crowd)
    stage = seat_on_stage(crowd, room_id, 110)
    speaker = speaker_in(crowd, room_id, host, "speaker")  # a real acceptance on that stage
    fan = crowd.person("fan")
    crowd.follow(fan, speaker)
    assert room_id in crowd.svc.rooms.people.stages_of([speaker.user_id])[speaker.user_id]
    host.ok("end_room")
    assert speaker.events("room_ended")[-1]["reason"] == "ended_by_moderator"
    assert crowd.svc.rooms.hallway(fan.user_id, 20, None)["items"] == []
    assert crowd.fire("cleanup") == 1
    on_stage = [host.user_id, speaker.user_id, *stage]
    assert crowd.svc.rooms.people.stages_of(on_stage) == {}
    assert crowd.svc.rooms.repo.connections(room_id) == {}


def test_a_big_stage_dropped_at_once_times_out_in_sweeps_that_fit_a_transaction(
    crowd: Crowd,
) -> None:
    host, room_id = open_room(crowd)
    dropped = seat_on_stage(crowd, room_id, 110, dropped_at=datetime.now(UTC) - timedelta(hours=1))
    # Each dropped member's sweep, as the timers queue delivers them (in batches of 10).
    sweeps = [{"kind": "expire", "room_id": room_id, "user_id": uid} for uid in dropped]
    for at in range(0, len(sweeps), 10):
        crowd.client.lambda_.invoke("timers", sqs_event(sweeps[at : at + 10]))  # raises on failure
    room = crowd.svc.rooms.repo.load(room_id).room
    assert set(room.members) == {host.user_id} and room.is_live
    assert crowd.svc.rooms.people.stages_of(dropped) == {}
