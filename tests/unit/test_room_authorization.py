"""Every action tried by every standing: exactly the ones the permission table allows succeed."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import rooms
from chalicelib.domain.rooms import (
    PERMISSIONS,
    Action,
    EntryContext,
    Event,
    Role,
    Room,
    RoomType,
    Standing,
)

T0 = datetime(2024, 5, 1, 20, 0, tzinfo=UTC)
SETUP_AT = T0 + timedelta(seconds=1)
ACT_AT = T0 + timedelta(seconds=2)
WELCOME = EntryContext(followed_by_moderator=False, blocked_by_moderator=False)
ACTOR = "actor"


def room_with_actor(standing: Standing) -> Room:
    """An open room with a target for every action: a second moderator, an unmuted speaker, a
    muted speaker and a listener with a raised hand, plus the actor in the given standing."""
    room, _ = rooms.create_room("r1", "mod", "Authorization", RoomType.OPEN, T0)
    for user_id in ("co", "spk", "spk_muted", "lis"):
        rooms.join(room, user_id, WELCOME, SETUP_AT)
    rooms.make_moderator(room, "mod", "co", SETUP_AT)
    for user_id in ("spk", "spk_muted"):
        rooms.invite_to_speak(room, "mod", user_id, SETUP_AT)
        rooms.accept_invitation(room, user_id, SETUP_AT)
    rooms.unmute(room, "spk", "spk", SETUP_AT)
    rooms.raise_hand(room, "lis", SETUP_AT)

    if standing in (Standing.LISTENER, Standing.SPEAKER, Standing.MODERATOR, Standing.REMOVED):
        rooms.join(room, ACTOR, WELCOME, SETUP_AT)
    if standing is Standing.SPEAKER:
        rooms.invite_to_speak(room, "mod", ACTOR, SETUP_AT)
        rooms.accept_invitation(room, ACTOR, SETUP_AT)
    if standing is Standing.MODERATOR:
        rooms.make_moderator(room, "mod", ACTOR, SETUP_AT)
    if standing is Standing.REMOVED:
        rooms.remove_member(room, "mod", ACTOR, SETUP_AT)
    return room


def _role(room: Room) -> Role | None:
    member = room.members.get(ACTOR)
    return member.role if member else None


def _prepare(action: Action, room: Room) -> None:
    """Put the actor in the state the action is about, where their role allows that state."""
    role = _role(room)
    if action is Action.RESUME and role is not None:
        rooms.disconnect(room, ACTOR, SETUP_AT)
    if action is Action.LOWER_HAND and role is Role.LISTENER:
        rooms.raise_hand(room, ACTOR, SETUP_AT)
    if action in (Action.ACCEPT_INVITATION, Action.DECLINE_INVITATION) and role is Role.LISTENER:
        rooms.invite_to_speak(room, "mod", ACTOR, SETUP_AT)
    if action is Action.MUTE_SELF and role is not None and role.on_stage:
        rooms.unmute(room, ACTOR, ACTOR, SETUP_AT)


def _attempt(action: Action, standing: Standing) -> Callable[[Room], list[Event]]:
    entry = EntryContext(
        followed_by_moderator=False, blocked_by_moderator=standing is Standing.BLOCKED
    )
    attempts: dict[Action, Callable[[Room], list[Event]]] = {
        Action.JOIN: lambda r: rooms.join(r, ACTOR, entry, ACT_AT),
        Action.LEAVE: lambda r: rooms.leave(r, ACTOR, ACT_AT),
        Action.DISCONNECT: lambda r: rooms.disconnect(r, ACTOR, ACT_AT),
        Action.RESUME: lambda r: rooms.resume(r, ACTOR, ACT_AT),
        Action.RAISE_HAND: lambda r: rooms.raise_hand(r, ACTOR, ACT_AT),
        Action.LOWER_HAND: lambda r: rooms.lower_hand(r, ACTOR, ACT_AT),
        Action.SET_HANDS_ALLOWED: lambda r: rooms.set_hands_allowed(r, ACTOR, False, ACT_AT),
        Action.INVITE_TO_SPEAK: lambda r: rooms.invite_to_speak(r, ACTOR, "lis", ACT_AT),
        Action.ACCEPT_INVITATION: lambda r: rooms.accept_invitation(r, ACTOR, ACT_AT),
        Action.DECLINE_INVITATION: lambda r: rooms.decline_invitation(r, ACTOR, ACT_AT),
        Action.MOVE_TO_AUDIENCE: lambda r: rooms.move_to_audience(r, ACTOR, "spk", ACT_AT),
        Action.STEP_DOWN: lambda r: rooms.step_down(r, ACTOR, ACT_AT),
        Action.MUTE_SELF: lambda r: rooms.mute(r, ACTOR, ACTOR, ACT_AT),
        Action.MUTE_OTHER: lambda r: rooms.mute(r, ACTOR, "spk", ACT_AT),
        Action.UNMUTE_SELF: lambda r: rooms.unmute(r, ACTOR, ACTOR, ACT_AT),
        Action.UNMUTE_OTHER: lambda r: rooms.unmute(r, ACTOR, "spk_muted", ACT_AT),
        Action.MAKE_MODERATOR: lambda r: rooms.make_moderator(r, ACTOR, "lis", ACT_AT),
        Action.UNMAKE_MODERATOR: lambda r: rooms.unmake_moderator(r, ACTOR, "co", ACT_AT),
        Action.REMOVE_MEMBER: lambda r: rooms.remove_member(r, ACTOR, "lis", ACT_AT),
        Action.INVITE_TO_ROOM: lambda r: rooms.invite_to_room(r, ACTOR, "guest", ACT_AT),
        Action.END_ROOM: lambda r: rooms.end_room(r, ACTOR, ACT_AT),
    }
    return attempts[action]


CASES = [(action, standing) for action in Action for standing in Standing]


def _case_id(case: tuple[Action, Standing]) -> str:
    return f"{case[0].value}-by-{case[1].value}"


def test_the_table_has_a_rule_for_every_action() -> None:
    assert set(PERMISSIONS) == set(Action)


def test_nobody_outside_the_room_may_act_in_it_except_to_join() -> None:
    for action in Action:
        if action is not Action.JOIN:
            assert not PERMISSIONS[action].allowed & {
                Standing.OUTSIDER,
                Standing.REMOVED,
                Standing.BLOCKED,
            }


@pytest.mark.parametrize("case", [c for c in CASES if rooms.is_allowed(*c)], ids=_case_id)
def test_an_allowed_action_succeeds(case: tuple[Action, Standing]) -> None:
    action, standing = case
    room = room_with_actor(standing)
    _prepare(action, room)
    events = _attempt(action, standing)(room)
    if action is Action.JOIN and standing is not Standing.OUTSIDER:
        assert events == []  # a member "joining" while connected is already where they want to be
    else:
        assert events


@pytest.mark.parametrize("case", [c for c in CASES if not rooms.is_allowed(*c)], ids=_case_id)
def test_a_forbidden_action_is_refused_with_the_tables_error(
    case: tuple[Action, Standing],
) -> None:
    action, standing = case
    room = room_with_actor(standing)
    _prepare(action, room)
    before = copy.deepcopy(room)
    expected = rooms.refusal_for(action, standing)
    assert expected is not None
    with pytest.raises(expected) as refused:
        _attempt(action, standing)(room)
    assert type(refused.value) is expected
    assert room == before
