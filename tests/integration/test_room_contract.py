"""A whole room's life through the WebSocket handlers, every message checked against the contract.

Every message a person sends is validated against docs/asyncapi.yaml (`ClientMessage`) and every
answer against the action's documented replies and room codes; when each test ends, every message
any socket received is validated against `ServerMessage`, and each room event against whom it is
documented to reach. The room's life sends every registered action, each both done and refused,
and sees every server message Salon sends.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from tests.support import contract
from tests.support.crowd import Crowd, Person
from tests.support.fakes import RecordingConnections
from tests.support.media import OFFER

# Documented, but never sent: `create_room` answers its creator with `room` instead of
# `room_created`, and a listener's arrival only moves the coalesced `audience_count`.
NEVER_SENT = {"room_created", "member_joined"}
# Sent when an operator decides a report, not by anything in a room: driven and checked
# against the contract by tests/integration/test_trust_and_safety.py.
OPERATORS_DECIDE = {"report_decided", "warning"}
# Sent unasked, yet not room events: every other message that is not an event is a reply.
PUSHED = {"audience_count", "media_credentials", "room_ping"}
# Both: the reply to a speaker's own `media_live`, and pushed to everyone else.
REPLY_AND_PUSHED = {"media_live"}
# The room runs on a real Janus (the `svc` fixture) but no peer here ever completes DTLS, so
# Janus never reports a publication as live nor offers it to a subscriber: these actions are
# only refused here, and their replies are driven and checked by tests/browser/test_audio.py
# (and their schemas by the examples, tests/unit/test_contract.py).
NEEDS_A_PEER = {"media_live", "media_subscribe", "media_answer"}
NEEDS_A_PEER_TYPES = {"media_live", "media_offer", "media_started"}
ANSWER = "v=0\r\no=- 9283746 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


class Wire:
    """The crowd of tests/support/crowd.py, checking every message against the contract."""

    def __init__(self, crowd: Crowd) -> None:
        self.crowd = crowd
        self.done: set[str] = set()
        self.refusals: dict[str, set[str]] = defaultdict(set)

    def person(self, name: str, *, connect: bool = True) -> Person:
        return self.crowd.person(name, connect=connect)

    def _message(self, person: Person, action: str, fields: dict[str, Any]) -> dict[str, Any]:
        # Exactly what Person.send puts on the wire, ref included.
        return {"action": action, "ref": f"{action}-{len(person.inbox())}", **fields}

    def send(self, person: Person, action: str, **fields: Any) -> dict[str, Any]:
        message = self._message(person, action, fields)
        contract.validate_client_message(message)
        reply = person.send(action, **fields)
        contract.validate_reply(action, reply)
        assert reply["ref"] == message["ref"], reply
        if reply["type"] == "error":
            self.refusals[action].add(reply["code"])
        else:
            self.done.add(action)
        return reply

    def ok(self, person: Person, action: str, **fields: Any) -> dict[str, Any]:
        reply = self.send(person, action, **fields)
        assert reply["type"] != "error", reply
        return reply

    def refused(self, person: Person, action: str, code: str, **fields: Any) -> None:
        reply = self.send(person, action, **fields)
        assert (reply["type"], reply.get("code")) == ("error", code), reply

    def invalid(self, person: Person, action: str, **fields: Any) -> None:
        """A message the contract refuses: Salon refuses it too, with `invalid_request`."""
        message = self._message(person, action, fields)
        with pytest.raises(AssertionError, match="does not match the contract"):
            contract.validate_client_message(message)
        reply = person.send(action, **fields)
        contract.validate_reply(action, reply)
        assert (reply["type"], reply["code"]) == ("error", "invalid_request"), reply
        self.refusals[action].add(reply["code"])

    def _owners(self) -> dict[str, str]:
        """connection id -> user id, for every socket anyone in the crowd opened."""
        return {
            f"{p.name}-{n}=": p.user_id
            for p in self.crowd.people.values()
            for n in range(1, p.reconnects + 1)
        }

    def check_everything_received(self) -> set[str]:
        """Every message any socket got is documented, and each room event reached only people
        it may reach; returns the types seen."""
        owners = self._owners()
        seen = set()
        for connection_id, messages in self.crowd.sockets.sent.items():
            for message in messages:
                contract.validate_server_message(message)
                seen.add(message["type"])
                audience = contract.event_audience(message)
                if audience is None:
                    if message["type"] in REPLY_AND_PUSHED:
                        continue
                    # Every message here carried a ref: each reply echoes it; nothing else does.
                    assert ("ref" in message) != (message["type"] in PUSHED), message
                    continue
                where = f"{message['type']} reached {connection_id}: {message}"
                assert audience["scope"] != "count_only", f"count only, yet {where}"
                if audience["scope"] == "users":
                    named = {message[field] for field in audience["users"]}
                    assert owners[connection_id] in named, f"not for them, yet {where}"
        return seen


@pytest.fixture
def wire(client: Client, svc: Any, sockets: RecordingConnections) -> Iterator[Wire]:
    wire = Wire(Crowd(client, svc, sockets))
    yield wire
    wire.check_everything_received()


@dataclasses.dataclass
class Cast:
    room_id: str
    host: Person
    cohost: Person
    speaker: Person
    fan: Person
    shy: Person
    troll: Person
    outsider: Person
    pest: Person


def enter(wire: Wire) -> Cast:
    host = wire.person("host")
    wire.ok(host, "ping")
    wire.invalid(host, "ping", colour="red")
    wire.refused(host, "leave_room", "not_in_a_room")
    wire.refused(host, "list_audience", "not_in_a_room")
    wire.invalid(host, "create_room", title="Jazz at night", kind="secret")
    wire.invalid(host, "create_room", title="", kind="open")
    room = wire.ok(host, "create_room", title="Jazz at night", kind="open")
    assert (room["viewer"]["role"], room["raised_hands"]) == ("moderator", [])
    assert [(s["user_id"], s["muted"]) for s in room["stage"]] == [(host.user_id, True)]
    room_id = room["room_id"]

    names = ("cohost", "speaker", "fan", "shy", "troll")
    people = {name: wire.person(name) for name in names}
    for person in people.values():
        joined = wire.ok(person, "join_room", room_id=room_id)
        assert joined["viewer"]["role"] == "listener"
        assert "raised_hands" not in joined
    # Nobody is told of a listener's arrival; joining again refreshes the snapshot.
    assert host.inbox()[-1]["type"] == "room"
    assert wire.ok(host, "join_room", room_id=room_id)["audience_count"] == len(names)

    outsider, pest = wire.person("outsider"), wire.person("pest")
    wire.refused(outsider, "join_room", "room_not_found", room_id="no-such-room")
    wire.invalid(outsider, "join_room", room_id="../../etc")
    wire.crowd.svc.identity.block(host.user_id, pest.user_id)
    wire.refused(pest, "join_room", "blocked", room_id=room_id)

    fan = people["fan"]
    page = wire.ok(fan, "list_audience")
    assert ([p["username"] for p in page["audience"]], page["cursor"]) == (list(names), None)
    wire.refused(fan, "list_audience", "invalid_request", cursor="not a cursor!")
    wire.invalid(fan, "list_audience", cursor="x" * 2049)
    assert wire.crowd.fire("flush_count") == 1  # one coalesced count for the whole burst
    assert host.events("audience_count")[-1]["count"] == len(names)
    assert fan.events("audience_count")[-1]["count"] == len(names)
    return Cast(room_id, host, outsider=outsider, pest=pest, **people)


def hands(wire: Wire, c: Cast) -> None:
    wire.ok(c.fan, "raise_hand")
    assert c.host.events("hand_raised")[-1]["user_id"] == c.fan.user_id
    assert not c.shy.events("hand_raised")  # the queue is for moderators
    wire.ok(c.fan, "raise_hand")  # already raised: acked, nothing changes
    assert len(c.host.events("hand_raised")) == 1
    wire.refused(c.host, "raise_hand", "not_a_listener")
    wire.ok(c.fan, "lower_hand")
    assert c.host.events("hand_lowered")[-1]["user_id"] == c.fan.user_id
    wire.refused(c.host, "lower_hand", "not_a_listener")

    wire.refused(c.fan, "set_hands_allowed", "not_a_moderator", allowed=False)
    wire.invalid(c.host, "set_hands_allowed", allowed="no")
    wire.ok(c.host, "set_hands_allowed", allowed=False)
    assert c.fan.events("hands_toggled")[-1]["allowed"] is False
    wire.refused(c.fan, "raise_hand", "hands_closed")
    wire.ok(c.host, "set_hands_allowed", allowed=True)
    wire.ok(c.fan, "raise_hand")
    assert wire.ok(c.host, "join_room", room_id=c.room_id)["raised_hands"][0]["username"] == "fan"


def stage(wire: Wire, c: Cast) -> None:
    wire.ok(c.host, "invite_to_speak", user_id=c.speaker.user_id)
    assert c.speaker.events("speaker_invited")[-1]["by_id"] == c.host.user_id
    assert not c.fan.events("speaker_invited")  # the invitee only
    wire.refused(c.host, "invite_to_speak", "target_not_a_listener", user_id=c.host.user_id)
    wire.refused(c.host, "invite_to_speak", "member_not_found", user_id=c.outsider.user_id)
    wire.refused(c.fan, "invite_to_speak", "not_a_moderator", user_id=c.shy.user_id)
    wire.invalid(c.host, "invite_to_speak")
    wire.ok(c.speaker, "accept_speaker_invite")
    accepted = c.shy.events("invitation_accepted")[-1]
    assert (accepted["user_id"], accepted["muted"]) == (c.speaker.user_id, True)
    wire.refused(c.shy, "accept_speaker_invite", "no_invitation")

    wire.ok(c.host, "invite_to_speak", user_id=c.shy.user_id)
    wire.ok(c.shy, "decline_speaker_invite")
    assert c.host.events("invitation_declined")[-1]["user_id"] == c.shy.user_id
    wire.refused(c.shy, "decline_speaker_invite", "no_invitation")
    wire.refused(c.host, "decline_speaker_invite", "not_a_listener")

    wire.ok(c.host, "invite_to_speak", user_id=c.fan.user_id)
    wire.ok(c.fan, "accept_speaker_invite")  # their raised hand goes down
    assert c.host.events("hand_lowered")[-1]["user_id"] == c.fan.user_id

    # Everyone mutes; only the speaker unmutes.
    wire.ok(c.speaker, "unmute")
    assert c.shy.events("speaker_unmuted")[-1]["user_id"] == c.speaker.user_id
    wire.refused(c.host, "unmute", "cannot_unmute_others", user_id=c.speaker.user_id)
    wire.refused(c.shy, "unmute", "not_on_stage")
    wire.ok(c.host, "mute", user_id=c.speaker.user_id)
    # The events an action causes come before its reply, to the actor too.
    assert [m["type"] for m in c.host.inbox()[-2:]] == ["speaker_muted", "ack"]
    muted = c.speaker.events("speaker_muted")[-1]
    assert (muted["user_id"], muted["by_id"]) == (c.speaker.user_id, c.host.user_id)
    wire.ok(c.speaker, "mute")  # already muted: acked, nothing changes
    wire.ok(c.host, "unmute")
    wire.ok(c.host, "mute")
    assert c.shy.events("speaker_muted")[-1]["by_id"] == c.host.user_id
    wire.refused(c.fan, "mute", "not_a_moderator", user_id=c.speaker.user_id)
    wire.refused(c.host, "mute", "target_not_on_stage", user_id=c.shy.user_id)
    wire.invalid(c.host, "mute", user_id="not an id")

    # Back to the audience.
    wire.ok(c.host, "move_to_audience", user_id=c.fan.user_id)
    assert c.shy.events("moved_to_audience")[-1]["by_id"] == c.host.user_id
    wire.refused(c.host, "move_to_audience", "target_not_a_speaker", user_id=c.host.user_id)
    wire.ok(c.speaker, "step_down")
    stepped = c.host.events("moved_to_audience")[-1]
    assert stepped["user_id"] == stepped["by_id"] == c.speaker.user_id
    wire.refused(c.shy, "step_down", "not_on_stage")
    wire.refused(c.host, "step_down", "last_moderator")


def moderators(wire: Wire, c: Cast) -> None:
    wire.ok(c.host, "make_moderator", user_id=c.cohost.user_id)  # a listener: onto the stage
    added = c.fan.events("moderator_added")[-1]
    assert (added["previous_role"], added["muted"]) == ("listener", True)
    wire.refused(c.host, "make_moderator", "already_a_moderator", user_id=c.cohost.user_id)
    wire.ok(c.host, "unmake_moderator", user_id=c.cohost.user_id)
    assert c.fan.events("moderator_removed")[-1]["user_id"] == c.cohost.user_id
    wire.refused(c.host, "unmake_moderator", "target_not_a_moderator", user_id=c.cohost.user_id)
    wire.refused(c.host, "unmake_moderator", "last_moderator", user_id=c.host.user_id)
    wire.refused(c.cohost, "unmake_moderator", "not_a_moderator", user_id=c.host.user_id)
    wire.ok(c.host, "make_moderator", user_id=c.cohost.user_id)  # a speaker now
    assert c.fan.events("moderator_added")[-1]["previous_role"] == "speaker"
    wire.ok(c.cohost, "step_down")  # a moderator stepping down stops moderating too
    assert [m["type"] for m in c.fan.inbox()[-2:]] == ["moderator_removed", "moved_to_audience"]
    wire.ok(c.host, "make_moderator", user_id=c.cohost.user_id)


def removals_and_guests(wire: Wire, c: Cast) -> None:
    wire.ok(c.host, "remove_member", user_id=c.troll.user_id)  # a listener: only they hear
    assert c.troll.events("member_removed")[-1]["role"] == "listener"
    assert not c.fan.events("member_removed")
    wire.refused(c.troll, "join_room", "removed_from_room", room_id=c.room_id)
    wire.refused(c.troll, "raise_hand", "not_in_room")
    wire.refused(c.host, "remove_member", "cannot_remove_yourself", user_id=c.host.user_id)
    wire.refused(c.host, "remove_member", "member_not_found", user_id=c.outsider.user_id)

    wire.refused(c.host, "invite_to_room", "removed_from_room", user_id=c.troll.user_id)
    wire.refused(c.fan, "invite_to_room", "not_a_moderator", user_id=c.outsider.user_id)
    wire.ok(c.host, "invite_to_room", user_id=c.outsider.user_id)  # reached outside any room
    assert c.outsider.events("room_invitation_sent")[-1]["room_id"] == c.room_id

    # Someone removed from the stage: the whole room hears it, and so do they.
    wire.ok(c.host, "invite_to_speak", user_id=c.shy.user_id)
    wire.ok(c.shy, "accept_speaker_invite")
    wire.ok(c.host, "remove_member", user_id=c.shy.user_id)
    assert c.fan.events("member_removed")[-1]["user_id"] == c.shy.user_id
    assert c.shy.events("member_removed")[-1]["role"] == "speaker"

    # What the moderators did is in the room's log, for them only.
    log = wire.ok(c.host, "moderation_log")["items"]
    removed = [e["target_id"] for e in log if e["action"] == "remove_member"]
    assert removed == [c.troll.user_id, c.shy.user_id]
    wire.refused(c.fan, "moderation_log", "not_a_moderator")
    wire.refused(c.outsider, "moderation_log", "not_in_a_room")


def audio(wire: Wire, c: Cast) -> None:
    # Only someone on stage and unmuted may send: nothing else reaches the SFU.
    wire.refused(c.host, "media_publish", "not_allowed_to_publish", sdp=OFFER)
    wire.refused(c.fan, "media_publish", "not_allowed_to_publish", sdp=OFFER)
    wire.refused(c.outsider, "media_publish", "not_in_a_room", sdp=OFFER)
    wire.invalid(c.host, "media_publish", sdp="")
    wire.invalid(c.host, "media_publish", sdp="x" * (wire.crowd.svc.settings.max_signal_bytes + 1))
    wire.ok(c.host, "unmute")
    granted = c.host.events("media_credentials")[-1]
    assert (granted["kind"], granted["may_publish"]) == ("janus", True)
    assert not c.fan.events("media_credentials")  # to the member alone
    answer = wire.ok(c.host, "media_publish", sdp=OFFER)
    assert answer["sdp"].startswith("v=0") and answer["sdp"] != OFFER
    wire.refused(c.host, "media_live", "not_publishing")  # no DTLS without a peer
    wire.refused(c.fan, "media_live", "not_allowed_to_publish")

    # Listening: to someone sending, through a handle of one's own.
    wire.refused(c.fan, "media_subscribe", "not_publishing", user_id=c.cohost.user_id)
    wire.refused(c.fan, "media_subscribe", "media_negotiation_failed", user_id=c.host.user_id)
    wire.invalid(c.fan, "media_subscribe", user_id="not an id")
    wire.refused(c.fan, "media_answer", "media_negotiation_failed", handle="4096", sdp=ANSWER)
    wire.invalid(c.fan, "media_answer", handle="0", sdp=ANSWER)
    gone = wire.ok(c.fan, "media_unsubscribe", handle="4096")  # already gone: still answered
    assert (gone["room_id"], gone["handle"]) == (c.room_id, "4096")
    wire.invalid(c.fan, "media_unsubscribe", handle="x")
    wire.refused(c.outsider, "media_unsubscribe", "not_in_a_room", handle="4096")

    wire.ok(c.host, "mute")
    assert c.host.events("media_credentials")[-1]["may_publish"] is False

    friend, away = wire.person("friend"), wire.person("away", connect=False)
    wire.crowd.follow(c.host, friend)
    wire.crowd.follow(c.host, away)
    wire.ok(c.host, "ping_into_room", user_id=friend.user_id)
    ping = friend.events("room_ping")[-1]
    assert (ping["room_id"], ping["from"]["username"]) == (c.room_id, "host")
    wire.refused(c.host, "ping_into_room", "not_following", user_id=c.pest.user_id)
    wire.ok(c.host, "ping_into_room", user_id=away.user_id)  # not connected: pushed
    wire.refused(friend, "ping_into_room", "not_in_a_room", user_id=c.host.user_id)


def drops(wire: Wire, c: Cast) -> None:
    rooms = wire.crowd.svc.rooms
    wire.ok(c.host, "invite_to_speak", user_id=c.speaker.user_id)
    wire.ok(c.speaker, "accept_speaker_invite")

    # Someone on stage drops: the room is told, and they resume their role on a new socket.
    c.speaker.disconnect()
    dropped = c.fan.events("member_disconnected")[-1]
    assert (dropped["user_id"], dropped["role"]) == (c.speaker.user_id, "speaker")
    stage = wire.ok(c.host, "join_room", room_id=c.room_id)["stage"]
    assert {s["user_id"]: s["connected"] for s in stage}[c.speaker.user_id] is False
    c.speaker.connect()
    assert wire.ok(c.speaker, "join_room", room_id=c.room_id)["viewer"]["role"] == "speaker"
    assert c.fan.events("member_reconnected")[-1]["user_id"] == c.speaker.user_id

    # A listener's drop and return are not told to anyone (count only).
    c.fan.disconnect()
    c.fan.connect()
    assert wire.ok(c.fan, "join_room", room_id=c.room_id)["viewer"]["role"] == "listener"

    # After the grace period, a dropped speaker has left; they come back as a listener.
    c.speaker.disconnect()
    clock, grace = rooms.clock, wire.crowd.svc.settings.reconnect_grace_s
    rooms.clock = lambda: clock() + timedelta(seconds=grace + 1)
    try:
        assert wire.crowd.fire("expire") == 3  # one per drop; only the last one expires
    finally:
        rooms.clock = clock
    left = c.host.events("member_left")[-1]
    assert (left["user_id"], left["role"], left["reason"]) == (
        c.speaker.user_id,
        "speaker",
        "timed_out",
    )
    c.speaker.connect()
    assert wire.ok(c.speaker, "join_room", room_id=c.room_id)["viewer"]["role"] == "listener"


def endings(wire: Wire, c: Cast) -> None:
    # A moderator leaving hands the room to the other moderator; the last one ends it.
    assert wire.ok(c.host, "leave_room")["room_id"] == c.room_id
    left = c.cohost.events("member_left")[-1]
    assert (left["user_id"], left["role"], left["reason"]) == (c.host.user_id, "moderator", "left")
    assert not c.fan.events("room_ended")
    wire.refused(c.fan, "end_room", "not_a_moderator")
    wire.ok(c.cohost, "leave_room")
    ended = c.fan.events("room_ended")[-1]
    assert (ended["reason"], ended["by_id"]) == ("last_moderator_left", None)
    wire.refused(c.fan, "raise_hand", "room_ended")
    wire.refused(c.fan, "list_audience", "room_ended")
    wire.refused(c.speaker, "media_subscribe", "room_ended", user_id=c.fan.user_id)
    assert wire.ok(c.fan, "leave_room")["room_id"] == c.room_id  # letting go of an ended room
    wire.refused(c.speaker, "join_room", "room_ended", room_id=c.room_id)

    # A closed room admits its guests only, until a moderator ends it for everyone.
    friend = wire.crowd.people["friend"]
    closed = wire.ok(c.outsider, "create_room", title="Book club", kind="closed")["room_id"]
    wire.refused(c.pest, "join_room", "room_not_open_to_you", room_id=closed)
    wire.ok(c.outsider, "invite_to_room", user_id=friend.user_id)
    wire.ok(friend, "join_room", room_id=closed)
    wire.refused(friend, "end_room", "not_a_moderator")
    wire.ok(c.outsider, "end_room")
    ended = friend.events("room_ended")[-1]
    assert (ended["reason"], ended["by_id"]) == ("ended_by_moderator", c.outsider.user_id)

    # A social room admits the people its moderators follow.
    social = wire.ok(friend, "create_room", title="Friends only", kind="social")["room_id"]
    wire.refused(c.troll, "join_room", "room_not_open_to_you", room_id=social)
    wire.crowd.follow(friend, c.troll)
    wire.ok(c.troll, "join_room", room_id=social)

    # A full room refuses the next person.
    rooms = wire.crowd.svc.rooms
    settings = rooms.settings
    rooms.settings = dataclasses.replace(settings, room_capacity=2)
    try:
        tiny = wire.ok(c.pest, "create_room", title="Tiny", kind="open")
        assert tiny["capacity"] == 2
        wire.ok(c.shy, "join_room", room_id=tiny["room_id"])
        wire.refused(c.outsider, "join_room", "room_full", room_id=tiny["room_id"])
    finally:
        rooms.settings = settings
    wire.crowd.fire("flush_count")


def events(wire: Wire, c: Cast) -> None:
    """A scheduled event starts as a room once, by one of its hosts, with the others
    moderators when they come in."""
    starts_at = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    scheduled = wire.crowd.svc.events.schedule(
        c.outsider.user_id,
        {"title": "Listening party", "starts_at": starts_at, "cohost_ids": [c.fan.user_id]},
    )
    event_id = scheduled["event_id"]
    wire.refused(c.pest, "start_event", "not_event_host", event_id=event_id)
    wire.refused(c.pest, "start_event", "event_not_found", event_id="no-such-event")
    room = wire.ok(c.outsider, "start_event", event_id=event_id)
    assert room["viewer"]["role"] == "moderator"
    entered = wire.ok(c.fan, "join_room", room_id=room["room_id"])
    assert entered["viewer"]["role"] == "moderator"
    wire.refused(c.fan, "start_event", "event_not_scheduled", event_id=event_id)
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    early = wire.crowd.svc.events.schedule(
        c.pest.user_id, {"title": "Tomorrow", "starts_at": later}
    )
    wire.refused(c.pest, "start_event", "event_too_early", event_id=early["event_id"])


def clubs(wire: Wire, c: Cast) -> None:
    """A club's rooms: started by its admins, a members room refusing outsiders, the other
    admins moderators when they come in."""
    service = wire.crowd.svc.clubs
    club_id = service.create(c.outsider.user_id, {"name": "Listeners"})["club_id"]
    wire.refused(
        c.pest,
        "start_club_room",
        "club_not_found",
        club_id="no-such-club",
        title="Nope",
        kind="open",
    )
    wire.refused(
        c.pest, "start_club_room", "not_club_member", club_id=club_id, title="Nope", kind="open"
    )
    service.invite(c.outsider.user_id, club_id, c.fan.user_id)
    service.accept(c.fan.user_id, club_id)
    wire.refused(
        c.fan,
        "start_club_room",
        "club_rooms_admins_only",
        club_id=club_id,
        title="Mine",
        kind="open",
    )
    service.set_role(c.outsider.user_id, club_id, c.fan.user_id, "admin")
    room = wire.ok(c.outsider, "start_club_room", club_id=club_id, title="Members", kind="members")
    assert (room["kind"], room["club_id"]) == ("members", club_id)
    wire.refused(c.pest, "join_room", "club_members_only", room_id=room["room_id"])
    entered = wire.ok(c.fan, "join_room", room_id=room["room_id"])
    assert entered["viewer"]["role"] == "moderator"
    closed = service.create(c.pest.user_id, {"name": "Gone"})["club_id"]
    service.close(c.pest.user_id, closed)
    wire.refused(
        c.pest, "start_club_room", "club_closed", club_id=closed, title="Late", kind="open"
    )
    wire.invalid(c.pest, "start_club_room", club_id=club_id, title="Social", kind="social")


def test_a_whole_room_life_speaks_the_documented_protocol(wire: Wire) -> None:
    cast = enter(wire)
    phases: list[Callable[[Wire, Cast], None]] = [
        hands,
        stage,
        moderators,
        removals_and_guests,
        audio,
        drops,
        endings,
        events,
        clubs,
    ]
    for phase in phases:
        phase(wire, cast)

    actions = set(wire.crowd.svc.realtime.actions)
    assert wire.done == actions - NEEDS_A_PEER, "every action done at least once"
    assert set(wire.refusals) == actions, "every action refused at least once"
    seen = wire.check_everything_received()
    expected = set(contract.server_types()) - NEVER_SENT - NEEDS_A_PEER_TYPES - OPERATORS_DECIDE
    assert seen == expected, "every documented message, sent"


def test_a_refusal_never_moves_the_room(wire: Wire) -> None:
    host = wire.person("host")
    room = wire.ok(host, "create_room", title="Quiet", kind="open")
    fan = wire.person("fan")
    wire.ok(fan, "join_room", room_id=room["room_id"])
    before = len(fan.inbox())
    for action, fields in (
        ("unmute", {"user_id": fan.user_id}),
        ("step_down", {}),
        ("move_to_audience", {"user_id": host.user_id}),
        ("make_moderator", {"user_id": host.user_id}),
    ):
        assert wire.send(host, action, **fields)["type"] == "error"
    assert len(fan.inbox()) == before, "refusals send no events"
