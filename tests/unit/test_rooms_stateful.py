"""Random sequences of every room operation by random people keep the room's invariants."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from chalicelib.domain import rooms
from chalicelib.domain.errors import SalonError
from chalicelib.domain.rooms import Action, EntryContext, Event, Role, Room, RoomType, Standing

T0 = datetime(2024, 5, 1, 20, 0, tzinfo=UTC)
CREATOR = "mod"
# A small cast so that the same people keep meeting: joining, being promoted, removed, returning.
PEOPLE = (CREATOR, "ann", "bob", "cat", "dan", "eve")

people = st.sampled_from(PEOPLE)
pause = st.integers(min_value=0, max_value=20)
REFUSALS_AFTER_END = 3
mostly_true = st.sampled_from([True, True, True, False])
rarely_true = st.sampled_from([False, False, False, False, False, True])

# After a room ends, let a few operations be refused, then only allow starting another room.
live_or_just_ended = precondition(
    lambda self: self.room.is_live or self.steps_since_end < REFUSALS_AFTER_END
)


class RoomMachine(RuleBasedStateMachine):
    room: Room
    now: datetime
    final: Room | None
    steps_since_end: int

    @initialize(
        kind=st.sampled_from(RoomType),
        capacity=st.integers(min_value=1, max_value=8),
        guests=st.frozensets(people),
        audience=st.frozensets(people),
        stage=st.frozensets(people),
        hands=st.frozensets(people),
    )
    def create(
        self,
        kind: RoomType,
        capacity: int,
        guests: frozenset[str],
        audience: frozenset[str],
        stage: frozenset[str],
        hands: frozenset[str],
    ) -> None:
        self.now = T0
        self.final = None
        self.steps_since_end = 0
        self.room, events = rooms.create_room(
            "r1",
            CREATOR,
            "Property tests",
            kind,
            T0,
            capacity=capacity,
            invited=sorted(guests),
            club_id="c1",  # a `members` room is a club's
        )
        assert self.room.version == 1
        assert len(events) == 1
        # Start with people in the room, so a run does not spend its steps filling it.
        welcome = EntryContext(
            followed_by_moderator=True, blocked_by_moderator=False, club_member=True
        )
        for user in sorted(audience | stage):
            self._apply(partial(rooms.join, self.room, user, welcome, self.now))
        for user in sorted(stage):
            self._apply(partial(rooms.invite_to_speak, self.room, CREATOR, user, self.now))
            self._apply(partial(rooms.accept_invitation, self.room, user, self.now))
        for user in sorted(hands):
            self._apply(partial(rooms.raise_hand, self.room, user, self.now))

    # --- the harness ----------------------------------------------------------------------------

    def _tick(self, seconds: int) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def _pick(self, data: st.DataObject, likely: Iterable[str]) -> str:
        """Mostly someone for whom the operation makes sense, sometimes anyone at all (outsiders
        and removed people included), so that both successes and refusals are explored."""
        candidates = sorted(set(likely))
        sensible: bool = data.draw(mostly_true)
        if candidates and sensible:
            return data.draw(st.sampled_from(candidates))
        return data.draw(people)

    def _with_role(self, *roles: Role) -> list[str]:
        return [m.user_id for m in self.room.members.values() if m.role in roles]

    def _apply(
        self,
        op: Callable[[], list[Event]],
        *,
        action: Action | None = None,
        standing: Standing | None = None,
    ) -> None:
        if not self.room.is_live:
            self.steps_since_end += 1
        before = copy.deepcopy(self.room)
        try:
            events = op()
        except SalonError:
            assert self.room == before, "a refused operation changed the room"
            return
        if action is not None and standing is not None:
            assert rooms.is_allowed(action, standing), f"{standing} was allowed to {action}"
        if events:
            assert before.is_live, "an ended room changed"
            assert self.room.version == before.version + 1
            for event in events:
                assert event.room_id == self.room.room_id
                json.dumps(event.to_dict())
            ended = [i for i, e in enumerate(events) if isinstance(e, rooms.RoomEnded)]
            assert ended in ([], [len(events) - 1]), "something happened after the room ended"
        else:
            assert self.room == before, "an operation without events changed the room"
        if not self.room.is_live and self.final is None:
            self.final = copy.deepcopy(self.room)

    def _act(
        self, action: Action, actor: str, op: Callable[[], list[Event]], *, blocked: bool = False
    ) -> None:
        standing = rooms.standing_of(self.room, actor, blocked_by_moderator=blocked)
        self._apply(op, action=action, standing=standing)

    # --- rules: one per operation ----------------------------------------------------------------
    # Once the room has ended, a few refused steps are enough; then a new room is started.

    @precondition(lambda self: not self.room.is_live and self.steps_since_end >= REFUSALS_AFTER_END)
    @rule(kind=st.sampled_from(RoomType))
    def start_another_room(self, kind: RoomType) -> None:
        self.room, _ = rooms.create_room(
            "r2", CREATOR, "Encore", kind, self._tick(1), capacity=6, club_id="c1"
        )
        self.final = None
        self.steps_since_end = 0

    @live_or_just_ended
    @rule(data=st.data(), followed=mostly_true, blocked=rarely_true, wait=pause)
    def join(self, data: st.DataObject, followed: bool, blocked: bool, wait: int) -> None:
        # Everyone outside, removed people included: they will try to come back.
        user = self._pick(data, set(PEOPLE) - set(self.room.members))
        entry = EntryContext(
            followed_by_moderator=followed, blocked_by_moderator=blocked, club_member=followed
        )
        at = self._tick(wait)
        self._act(
            Action.JOIN, user, lambda: rooms.join(self.room, user, entry, at), blocked=blocked
        )

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def leave(self, data: st.DataObject, wait: int) -> None:
        # Mostly people off the moderators' bench, or every room would end within a few steps.
        user = self._pick(data, self._with_role(Role.LISTENER, Role.SPEAKER))
        at = self._tick(wait)
        self._act(Action.LEAVE, user, lambda: rooms.leave(self.room, user, at))

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def disconnect(self, data: st.DataObject, wait: int) -> None:
        user = self._pick(data, self.room.members)
        at = self._tick(wait)
        self._act(Action.DISCONNECT, user, lambda: rooms.disconnect(self.room, user, at))

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def resume(self, data: st.DataObject, wait: int) -> None:
        user = self._pick(data, [m.user_id for m in self.room.members.values() if not m.connected])
        at = self._tick(wait)
        self._act(Action.RESUME, user, lambda: rooms.resume(self.room, user, at))

    @live_or_just_ended
    @rule(grace=st.integers(min_value=0, max_value=30), wait=pause)
    def expire_disconnected(self, grace: int, wait: int) -> None:
        at = self._tick(wait)
        self._apply(lambda: rooms.expire_disconnected(self.room, timedelta(seconds=grace), at))

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def raise_hand(self, data: st.DataObject, wait: int) -> None:
        user = self._pick(data, self._with_role(Role.LISTENER))
        at = self._tick(wait)
        self._act(Action.RAISE_HAND, user, lambda: rooms.raise_hand(self.room, user, at))

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def lower_hand(self, data: st.DataObject, wait: int) -> None:
        user = self._pick(data, [m.user_id for m in rooms.raised_hands(self.room)])
        at = self._tick(wait)
        self._act(Action.LOWER_HAND, user, lambda: rooms.lower_hand(self.room, user, at))

    @live_or_just_ended
    @rule(data=st.data(), allowed=st.booleans(), wait=pause)
    def set_hands_allowed(self, data: st.DataObject, allowed: bool, wait: int) -> None:
        actor = self._pick(data, self._with_role(Role.MODERATOR))
        at = self._tick(wait)
        self._act(
            Action.SET_HANDS_ALLOWED,
            actor,
            lambda: rooms.set_hands_allowed(self.room, actor, allowed, at),
        )

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def invite_to_speak(self, data: st.DataObject, wait: int) -> None:
        actor = self._pick(data, self._with_role(Role.MODERATOR))
        # Moderators mostly call up raised hands, as they would in a real room.
        hands = [m.user_id for m in rooms.raised_hands(self.room)]
        other = self._pick(data, hands or self._with_role(Role.LISTENER))
        at = self._tick(wait)
        self._act(
            Action.INVITE_TO_SPEAK,
            actor,
            lambda: rooms.invite_to_speak(self.room, actor, other, at),
        )

    def _invited_to_speak(self) -> list[str]:
        return [m.user_id for m in self.room.members.values() if m.invited_to_speak_at]

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def accept_invitation(self, data: st.DataObject, wait: int) -> None:
        user = self._pick(data, self._invited_to_speak())
        at = self._tick(wait)
        self._act(
            Action.ACCEPT_INVITATION, user, lambda: rooms.accept_invitation(self.room, user, at)
        )

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def decline_invitation(self, data: st.DataObject, wait: int) -> None:
        user = self._pick(data, self._invited_to_speak())
        at = self._tick(wait)
        self._act(
            Action.DECLINE_INVITATION, user, lambda: rooms.decline_invitation(self.room, user, at)
        )

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def move_to_audience(self, data: st.DataObject, wait: int) -> None:
        actor = self._pick(data, self._with_role(Role.MODERATOR))
        other = self._pick(data, self._with_role(Role.SPEAKER))
        at = self._tick(wait)
        self._act(
            Action.MOVE_TO_AUDIENCE,
            actor,
            lambda: rooms.move_to_audience(self.room, actor, other, at),
        )

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def step_down(self, data: st.DataObject, wait: int) -> None:
        user = self._pick(data, self._with_role(Role.SPEAKER, Role.MODERATOR))
        at = self._tick(wait)
        self._act(Action.STEP_DOWN, user, lambda: rooms.step_down(self.room, user, at))

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def mute(self, data: st.DataObject, wait: int) -> None:
        actor = self._pick(data, self._with_role(Role.SPEAKER, Role.MODERATOR))
        other = self._pick(data, [actor, *self._with_role(Role.SPEAKER, Role.MODERATOR)])
        at = self._tick(wait)
        action = Action.MUTE_SELF if actor == other else Action.MUTE_OTHER
        self._act(action, actor, lambda: rooms.mute(self.room, actor, other, at))

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def unmute(self, data: st.DataObject, wait: int) -> None:
        actor = self._pick(data, self._with_role(Role.SPEAKER, Role.MODERATOR))
        other = self._pick(data, [actor])
        at = self._tick(wait)
        action = Action.UNMUTE_SELF if actor == other else Action.UNMUTE_OTHER
        self._act(action, actor, lambda: rooms.unmute(self.room, actor, other, at))

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def make_moderator(self, data: st.DataObject, wait: int) -> None:
        actor = self._pick(data, self._with_role(Role.MODERATOR))
        other = self._pick(data, self._with_role(Role.SPEAKER, Role.LISTENER))
        at = self._tick(wait)
        self._act(
            Action.MAKE_MODERATOR, actor, lambda: rooms.make_moderator(self.room, actor, other, at)
        )

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def unmake_moderator(self, data: st.DataObject, wait: int) -> None:
        actor = self._pick(data, self._with_role(Role.MODERATOR))
        other = self._pick(data, self._with_role(Role.MODERATOR))
        at = self._tick(wait)
        self._act(
            Action.UNMAKE_MODERATOR,
            actor,
            lambda: rooms.unmake_moderator(self.room, actor, other, at),
        )

    @live_or_just_ended
    @rule(data=st.data(), wait=pause)
    def remove_member(self, data: st.DataObject, wait: int) -> None:
        actor = self._pick(data, self._with_role(Role.MODERATOR))
        other = self._pick(data, self.room.members)
        at = self._tick(wait)
        self._act(
            Action.REMOVE_MEMBER, actor, lambda: rooms.remove_member(self.room, actor, other, at)
        )

    @live_or_just_ended
    @rule(data=st.data(), other=people, wait=pause)
    def invite_to_room(self, data: st.DataObject, other: str, wait: int) -> None:
        actor = self._pick(data, self._with_role(Role.MODERATOR))
        at = self._tick(wait)
        self._act(
            Action.INVITE_TO_ROOM, actor, lambda: rooms.invite_to_room(self.room, actor, other, at)
        )

    @live_or_just_ended
    @rule(data=st.data(), by_a_moderator=rarely_true, wait=pause)
    def end_room(self, data: st.DataObject, by_a_moderator: bool, wait: int) -> None:
        # Rarely aimed at a moderator, so rooms live long enough to become interesting.
        actor = self._pick(data, self._with_role(Role.MODERATOR) if by_a_moderator else ())
        at = self._tick(wait)
        self._act(Action.END_ROOM, actor, lambda: rooms.end_room(self.room, actor, at))

    # --- invariants -----------------------------------------------------------------------------

    @invariant()
    def each_member_has_exactly_one_role(self) -> None:
        for user_id, member in self.room.members.items():
            assert member.user_id == user_id
            assert isinstance(member.role, Role)

    @invariant()
    def a_live_room_always_has_a_moderator(self) -> None:
        if self.room.is_live:
            assert self.room.moderators()

    @invariant()
    def only_listeners_have_raised_hands_or_invitations_to_speak(self) -> None:
        for member in self.room.members.values():
            if member.role is not Role.LISTENER:
                assert member.hand_raised_at is None
                assert member.invited_to_speak_at is None

    @invariant()
    def listeners_are_always_muted(self) -> None:
        assert all(m.muted for m in self.room.listeners())

    @invariant()
    def no_hands_are_raised_while_hand_raising_is_off(self) -> None:
        if not self.room.hands_allowed:
            assert rooms.raised_hands(self.room) == []

    @invariant()
    def removed_people_are_never_members(self) -> None:
        assert not self.room.removed & set(self.room.members)
        assert not self.room.removed & self.room.invited

    @invariant()
    def the_audience_count_is_the_number_of_listeners(self) -> None:
        listeners = [m for m in self.room.members.values() if m.role is Role.LISTENER]
        assert self.room.audience_count == len(listeners)
        assert rooms.snapshot(self.room, CREATOR)["audience_count"] == len(listeners)

    @invariant()
    def the_room_never_holds_more_than_its_capacity(self) -> None:
        assert len(self.room.members) <= self.room.capacity

    @invariant()
    def a_disconnection_time_is_kept_exactly_while_disconnected(self) -> None:
        for member in self.room.members.values():
            assert member.connected is (member.disconnected_at is None)

    @invariant()
    def an_ended_room_never_changes_again(self) -> None:
        if self.final is not None:
            assert self.room == self.final


RoomMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_room_state_machine = RoomMachine.TestCase
