"""Unit tests for the rules of a live room: one behaviour per test."""

from __future__ import annotations

import copy
import inspect
import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.domain import rooms
from chalicelib.domain.errors import SalonError
from chalicelib.domain.rooms import (
    COUNT_ONLY,
    EVERYONE,
    MODERATORS,
    AlreadyAModeratorError,
    Audience,
    BlockedFromRoomError,
    CannotRemoveYourselfError,
    CannotUnmuteOthersError,
    EndReason,
    EntryContext,
    HandLowered,
    HandRaised,
    HandsClosedError,
    HandsToggled,
    InvalidCapacityError,
    InvalidGraceError,
    InvalidPageSizeError,
    InvalidRoomTitleError,
    InvitationAccepted,
    InvitationDeclined,
    LastModeratorError,
    LeaveReason,
    MemberDisconnected,
    MemberJoined,
    MemberLeft,
    MemberNotFoundError,
    MemberReconnected,
    MemberRemoved,
    ModeratorAdded,
    ModeratorRemoved,
    MovedToAudience,
    NoInvitationError,
    NotAListenerError,
    NotAllowedInRoomError,
    NotAModeratorError,
    NotInRoomError,
    NotOnStageError,
    RemovedFromRoomError,
    Role,
    Room,
    RoomCreated,
    RoomEnded,
    RoomEndedError,
    RoomFullError,
    RoomInvitationSent,
    RoomType,
    Scope,
    SpeakerInvited,
    SpeakerMuted,
    SpeakerUnmuted,
    TargetNotAListenerError,
    TargetNotAModeratorError,
    TargetNotASpeakerError,
    TargetNotOnStageError,
    TimeNotUtcError,
)

T0 = datetime(2024, 5, 1, 20, 0, tzinfo=UTC)
OPEN_DOOR = EntryContext(followed_by_moderator=False, blocked_by_moderator=False)
FOLLOWED = EntryContext(followed_by_moderator=True, blocked_by_moderator=False)
BLOCKED = EntryContext(followed_by_moderator=True, blocked_by_moderator=True)
GRACE = timedelta(seconds=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def new_room(
    kind: RoomType = RoomType.OPEN,
    *,
    capacity: int = rooms.DEFAULT_CAPACITY,
    invited: tuple[str, ...] = (),
) -> Room:
    room, _ = rooms.create_room(
        "r1", "mod", "Late night jazz", kind, T0, capacity=capacity, invited=invited
    )
    return room


def listener(room: Room, user_id: str, seconds: float = 1) -> None:
    rooms.join(room, user_id, OPEN_DOOR, at(seconds))


def speaker(room: Room, user_id: str, seconds: float = 1) -> None:
    listener(room, user_id, seconds)
    rooms.invite_to_speak(room, "mod", user_id, at(seconds))
    rooms.accept_invitation(room, user_id, at(seconds))


def co_moderator(room: Room, user_id: str, seconds: float = 1) -> None:
    listener(room, user_id, seconds)
    rooms.make_moderator(room, "mod", user_id, at(seconds))


@pytest.fixture
def room() -> Room:
    return new_room()


# --- creating a room ----------------------------------------------------------------------------


def test_creating_a_room_makes_the_creator_its_first_moderator() -> None:
    room, events = rooms.create_room("r1", "mod", "Jazz", RoomType.SOCIAL, T0)
    assert room.members["mod"].role is Role.MODERATOR
    assert events == [
        RoomCreated(
            room_id="r1",
            at=T0,
            creator_id="mod",
            title="Jazz",
            kind=RoomType.SOCIAL,
            capacity=rooms.DEFAULT_CAPACITY,
        )
    ]


def test_the_creator_starts_on_stage_muted(room: Room) -> None:
    assert room.members["mod"].muted is True


def test_a_new_room_is_at_version_one(room: Room) -> None:
    assert room.version == 1


def test_a_room_title_is_trimmed() -> None:
    room, _ = rooms.create_room("r1", "mod", "  Jazz  ", RoomType.OPEN, T0)
    assert room.title == "Jazz"


def test_a_blank_title_is_refused() -> None:
    with pytest.raises(InvalidRoomTitleError):
        rooms.create_room("r1", "mod", "   ", RoomType.OPEN, T0)


def test_a_title_over_the_limit_is_refused() -> None:
    with pytest.raises(InvalidRoomTitleError):
        rooms.create_room("r1", "mod", "x" * (rooms.MAX_TITLE_LENGTH + 1), RoomType.OPEN, T0)


def test_capacity_defaults_to_eight_thousand(room: Room) -> None:
    assert room.capacity == 8_000


def test_a_capacity_below_one_is_refused() -> None:
    with pytest.raises(InvalidCapacityError):
        rooms.create_room("r1", "mod", "Jazz", RoomType.OPEN, T0, capacity=0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(TimeNotUtcError):
        rooms.create_room("r1", "mod", "Jazz", RoomType.OPEN, datetime(2024, 5, 1))


def test_non_utc_times_are_refused(room: Room) -> None:
    paris = datetime(2024, 5, 1, 22, 0, tzinfo=timezone(timedelta(hours=2)))
    with pytest.raises(TimeNotUtcError):
        rooms.join(room, "ann", OPEN_DOOR, paris)


# --- entering -----------------------------------------------------------------------------------


def test_anyone_may_join_an_open_room_as_a_listener(room: Room) -> None:
    events = rooms.join(room, "ann", OPEN_DOOR, at(1))
    assert room.members["ann"].role is Role.LISTENER
    assert events == [MemberJoined(room_id="r1", at=at(1), user_id="ann")]


def test_a_listener_joining_is_not_fanned_out_to_everyone(room: Room) -> None:
    [joined] = rooms.join(room, "ann", OPEN_DOOR, at(1))
    assert joined.audience == COUNT_ONLY


def test_joining_a_full_room_is_refused() -> None:
    room = new_room(capacity=2)
    listener(room, "ann")
    with pytest.raises(RoomFullError):
        rooms.join(room, "bob", OPEN_DOOR, at(2))


def test_a_removed_person_cannot_rejoin(room: Room) -> None:
    listener(room, "ann")
    rooms.remove_member(room, "mod", "ann", at(2))
    with pytest.raises(RemovedFromRoomError):
        rooms.join(room, "ann", OPEN_DOOR, at(3))


def test_a_person_blocked_by_a_moderator_cannot_enter(room: Room) -> None:
    with pytest.raises(BlockedFromRoomError):
        rooms.join(room, "ann", BLOCKED, at(1))


def test_a_social_room_admits_people_a_moderator_follows() -> None:
    room = new_room(RoomType.SOCIAL)
    rooms.join(room, "ann", FOLLOWED, at(1))
    assert "ann" in room.members


def test_a_social_room_refuses_people_no_moderator_follows() -> None:
    room = new_room(RoomType.SOCIAL)
    with pytest.raises(NotAllowedInRoomError):
        rooms.join(room, "ann", OPEN_DOOR, at(1))


def test_a_closed_room_refuses_people_who_were_not_invited_even_if_followed() -> None:
    room = new_room(RoomType.CLOSED)
    with pytest.raises(NotAllowedInRoomError):
        rooms.join(room, "ann", FOLLOWED, at(1))


def test_a_closed_room_admits_people_on_its_guest_list() -> None:
    room = new_room(RoomType.CLOSED, invited=("ann",))
    rooms.join(room, "ann", OPEN_DOOR, at(1))
    assert "ann" in room.members


def test_blocking_wins_over_an_invitation() -> None:
    room = new_room(RoomType.CLOSED, invited=("ann",))
    with pytest.raises(BlockedFromRoomError):
        rooms.join(room, "ann", BLOCKED, at(1))


def test_the_creator_can_always_return_to_their_room() -> None:
    room = new_room(RoomType.CLOSED, invited=("ann",))
    co_moderator(room, "ann")
    rooms.leave(room, "mod", at(2))
    rooms.join(room, "mod", OPEN_DOOR, at(3))
    assert room.members["mod"].role is Role.LISTENER


def test_joining_again_while_connected_changes_nothing(room: Room) -> None:
    listener(room, "ann")
    before = copy.deepcopy(room)
    assert rooms.join(room, "ann", OPEN_DOOR, at(2)) == []
    assert room == before


def test_joining_an_ended_room_is_refused(room: Room) -> None:
    rooms.end_room(room, "mod", at(1))
    with pytest.raises(RoomEndedError):
        rooms.join(room, "ann", OPEN_DOOR, at(2))


# --- connections --------------------------------------------------------------------------------


def test_a_disconnected_member_keeps_their_seat_and_role(room: Room) -> None:
    speaker(room, "ann")
    events = rooms.disconnect(room, "ann", at(5))
    ann = room.members["ann"]
    assert (ann.role, ann.connected, ann.disconnected_at) == (Role.SPEAKER, False, at(5))
    assert events == [MemberDisconnected(room_id="r1", at=at(5), user_id="ann", role=Role.SPEAKER)]


def test_resuming_restores_the_connection_with_the_same_role(room: Room) -> None:
    speaker(room, "ann")
    rooms.disconnect(room, "ann", at(5))
    events = rooms.resume(room, "ann", at(6))
    ann = room.members["ann"]
    assert (ann.role, ann.connected, ann.disconnected_at) == (Role.SPEAKER, True, None)
    assert events == [MemberReconnected(room_id="r1", at=at(6), user_id="ann", role=Role.SPEAKER)]


def test_joining_again_within_the_grace_period_resumes_with_the_same_role(room: Room) -> None:
    speaker(room, "ann")
    rooms.disconnect(room, "ann", at(5))
    rooms.join(room, "ann", OPEN_DOOR, at(6))
    assert room.members["ann"].role is Role.SPEAKER
    assert room.members["ann"].connected


def test_disconnecting_twice_changes_nothing(room: Room) -> None:
    listener(room, "ann")
    rooms.disconnect(room, "ann", at(5))
    assert rooms.disconnect(room, "ann", at(6)) == []


def test_resuming_while_connected_changes_nothing(room: Room) -> None:
    listener(room, "ann")
    assert rooms.resume(room, "ann", at(2)) == []


def test_expiry_turns_members_gone_longer_than_the_grace_period_into_leaves(room: Room) -> None:
    listener(room, "ann")
    rooms.disconnect(room, "ann", at(5))
    events = rooms.expire_disconnected(room, GRACE, at(36))
    assert "ann" not in room.members
    assert events == [
        MemberLeft(
            room_id="r1", at=at(36), user_id="ann", role=Role.LISTENER, reason=LeaveReason.TIMED_OUT
        )
    ]


def test_expiry_keeps_members_at_exactly_the_grace_period(room: Room) -> None:
    listener(room, "ann")
    rooms.disconnect(room, "ann", at(5))
    assert rooms.expire_disconnected(room, GRACE, at(35)) == []
    assert "ann" in room.members


def test_expiring_the_last_moderator_ends_the_room(room: Room) -> None:
    speaker(room, "ann")
    rooms.disconnect(room, "mod", at(5))
    events = rooms.expire_disconnected(room, GRACE, at(60))
    assert room.ended_at == at(60)
    assert isinstance(events[-1], RoomEnded)
    assert events[-1].reason is EndReason.LAST_MODERATOR_LEFT


def test_expiry_stops_once_the_room_has_ended(room: Room) -> None:
    listener(room, "ann")
    rooms.disconnect(room, "mod", at(5))
    rooms.disconnect(room, "ann", at(6))
    rooms.expire_disconnected(room, GRACE, at(60))
    assert "ann" in room.members


def test_a_sweep_expires_its_own_member_first_and_a_batch_at_most(room: Room) -> None:
    # A batch fits one transaction; everyone who dropped has a sweep of their own for the rest.
    for i in range(rooms.EXPIRE_BATCH + 5):
        listener(room, f"l{i:02d}")
        rooms.disconnect(room, f"l{i:02d}", at(5))
    listener(room, "late")
    rooms.disconnect(room, "late", at(6))  # the newest: last in age order
    left = [e.user_id for e in rooms.expire_disconnected(room, GRACE, at(60), first="late")]
    assert len(left) == rooms.EXPIRE_BATCH and left[0] == "late"
    assert [e.user_id for e in rooms.expire_disconnected(room, GRACE, at(61))] == [
        f"l{i:02d}" for i in range(rooms.EXPIRE_BATCH - 1, rooms.EXPIRE_BATCH + 5)
    ]


def test_a_negative_grace_period_is_refused(room: Room) -> None:
    with pytest.raises(InvalidGraceError):
        rooms.expire_disconnected(room, timedelta(seconds=-1), at(1))


def test_expiring_an_ended_room_does_nothing(room: Room) -> None:
    rooms.disconnect(room, "mod", at(1))
    rooms.end_room(room, "mod", at(2))
    assert rooms.expire_disconnected(room, GRACE, at(100)) == []


def test_resuming_after_expiry_is_refused(room: Room) -> None:
    listener(room, "ann")
    rooms.disconnect(room, "ann", at(5))
    rooms.expire_disconnected(room, GRACE, at(60))
    with pytest.raises(NotInRoomError):
        rooms.resume(room, "ann", at(61))


# --- leaving ------------------------------------------------------------------------------------


def test_leaving_removes_the_member(room: Room) -> None:
    listener(room, "ann")
    rooms.leave(room, "ann", at(2))
    assert "ann" not in room.members
    assert "ann" not in room.removed


def test_a_listener_leaving_is_not_fanned_out_to_everyone(room: Room) -> None:
    listener(room, "ann")
    [left] = rooms.leave(room, "ann", at(2))
    assert left.audience == COUNT_ONLY


def test_a_speaker_leaving_is_told_to_everyone(room: Room) -> None:
    speaker(room, "ann")
    [left] = rooms.leave(room, "ann", at(2))
    assert left.audience == EVERYONE


def test_the_last_moderator_leaving_ends_the_room_even_with_speakers_left(room: Room) -> None:
    speaker(room, "ann")
    events = rooms.leave(room, "mod", at(2))
    assert room.ended_at == at(2)
    assert events[-1] == RoomEnded(
        room_id="r1", at=at(2), reason=EndReason.LAST_MODERATOR_LEFT, by_id=None
    )


def test_the_creator_leaving_hands_the_room_to_the_remaining_moderators(room: Room) -> None:
    co_moderator(room, "ann")
    events = rooms.leave(room, "mod", at(2))
    assert room.is_live
    assert [m.user_id for m in room.moderators()] == ["ann"]
    assert not any(isinstance(e, RoomEnded) for e in events)


def test_leaving_lowers_a_raised_hand_for_the_moderators(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    events = rooms.leave(room, "ann", at(3))
    assert events[0] == HandLowered(room_id="r1", at=at(3), user_id="ann")


def test_someone_not_in_the_room_cannot_leave_it(room: Room) -> None:
    with pytest.raises(NotInRoomError):
        rooms.leave(room, "ann", at(1))


# --- hands --------------------------------------------------------------------------------------


def test_a_listener_raises_their_hand(room: Room) -> None:
    listener(room, "ann")
    events = rooms.raise_hand(room, "ann", at(2))
    assert room.members["ann"].hand_raised_at == at(2)
    assert events == [HandRaised(room_id="r1", at=at(2), user_id="ann")]


def test_raised_hands_are_told_only_to_moderators(room: Room) -> None:
    listener(room, "ann")
    [raised] = rooms.raise_hand(room, "ann", at(2))
    assert raised.audience == MODERATORS


def test_raising_a_raised_hand_keeps_its_place_in_the_queue(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    assert rooms.raise_hand(room, "ann", at(3)) == []
    assert room.members["ann"].hand_raised_at == at(2)


def test_speakers_cannot_raise_a_hand(room: Room) -> None:
    speaker(room, "ann")
    with pytest.raises(NotAListenerError):
        rooms.raise_hand(room, "ann", at(2))


def test_a_listener_lowers_their_hand(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    events = rooms.lower_hand(room, "ann", at(3))
    assert room.members["ann"].hand_raised_at is None
    assert events == [HandLowered(room_id="r1", at=at(3), user_id="ann")]


def test_lowering_a_lowered_hand_changes_nothing(room: Room) -> None:
    listener(room, "ann")
    assert rooms.lower_hand(room, "ann", at(2)) == []


def test_hands_cannot_be_raised_while_hand_raising_is_off(room: Room) -> None:
    listener(room, "ann")
    rooms.set_hands_allowed(room, "mod", False, at(2))
    with pytest.raises(HandsClosedError):
        rooms.raise_hand(room, "ann", at(3))


def test_turning_hand_raising_off_lowers_every_raised_hand(room: Room) -> None:
    listener(room, "ann")
    listener(room, "bob")
    rooms.raise_hand(room, "ann", at(2))
    rooms.raise_hand(room, "bob", at(3))
    events = rooms.set_hands_allowed(room, "mod", False, at(4))
    assert rooms.raised_hands(room) == []
    assert events == [HandsToggled(room_id="r1", at=at(4), by_id="mod", allowed=False)]


def test_turning_hand_raising_off_starts_a_new_round_of_hands(room: Room) -> None:
    # The repository loads a hand from an earlier round as lowered: that is what lowers the
    # hands of listeners the closing action never loaded.
    first_round = room.hands_round
    rooms.set_hands_allowed(room, "mod", False, at(1))
    rooms.set_hands_allowed(room, "mod", True, at(2))
    assert room.hands_round == first_round + 1
    rooms.set_hands_allowed(room, "mod", True, at(3))
    assert room.hands_round == first_round + 1


def test_hand_raising_being_toggled_is_told_to_everyone(room: Room) -> None:
    [toggled] = rooms.set_hands_allowed(room, "mod", False, at(1))
    assert toggled.audience == EVERYONE


def test_moderators_turn_hand_raising_back_on(room: Room) -> None:
    listener(room, "ann")
    rooms.set_hands_allowed(room, "mod", False, at(2))
    rooms.set_hands_allowed(room, "mod", True, at(3))
    rooms.raise_hand(room, "ann", at(4))
    assert room.members["ann"].hand_raised_at == at(4)


def test_only_moderators_toggle_hand_raising(room: Room) -> None:
    speaker(room, "ann")
    with pytest.raises(NotAModeratorError):
        rooms.set_hands_allowed(room, "ann", False, at(2))


def test_setting_hand_raising_to_its_current_state_changes_nothing(room: Room) -> None:
    assert rooms.set_hands_allowed(room, "mod", True, at(1)) == []


# --- invitations to speak -----------------------------------------------------------------------


def test_a_moderator_invites_a_listener_to_speak(room: Room) -> None:
    listener(room, "ann")
    events = rooms.invite_to_speak(room, "mod", "ann", at(2))
    assert room.members["ann"].invited_to_speak_at == at(2)
    assert events == [SpeakerInvited(room_id="r1", at=at(2), user_id="ann", by_id="mod")]


def test_an_invitation_to_speak_is_told_only_to_the_invitee(room: Room) -> None:
    listener(room, "ann")
    [invited] = rooms.invite_to_speak(room, "mod", "ann", at(2))
    assert invited.audience == Audience(Scope.USERS, frozenset({"ann"}))


def test_inviting_a_pending_invitee_again_changes_nothing(room: Room) -> None:
    listener(room, "ann")
    rooms.invite_to_speak(room, "mod", "ann", at(2))
    assert rooms.invite_to_speak(room, "mod", "ann", at(3)) == []
    assert room.members["ann"].invited_to_speak_at == at(2)


def test_only_listeners_can_be_invited_to_speak(room: Room) -> None:
    speaker(room, "ann")
    with pytest.raises(TargetNotAListenerError):
        rooms.invite_to_speak(room, "mod", "ann", at(2))


def test_inviting_someone_not_in_the_room_to_speak_is_refused(room: Room) -> None:
    with pytest.raises(MemberNotFoundError):
        rooms.invite_to_speak(room, "mod", "ann", at(1))


def test_only_moderators_invite_to_speak(room: Room) -> None:
    speaker(room, "ann")
    listener(room, "bob")
    with pytest.raises(NotAModeratorError):
        rooms.invite_to_speak(room, "ann", "bob", at(2))


def test_accepting_an_invitation_puts_the_listener_on_stage_muted(room: Room) -> None:
    listener(room, "ann")
    rooms.invite_to_speak(room, "mod", "ann", at(2))
    events = rooms.accept_invitation(room, "ann", at(3))
    ann = room.members["ann"]
    assert (ann.role, ann.muted, ann.invited_to_speak_at) == (Role.SPEAKER, True, None)
    assert events == [InvitationAccepted(room_id="r1", at=at(3), user_id="ann", muted=True)]


def test_accepting_an_invitation_lowers_the_hand(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    rooms.invite_to_speak(room, "mod", "ann", at(3))
    events = rooms.accept_invitation(room, "ann", at(4))
    assert room.members["ann"].hand_raised_at is None
    assert HandLowered(room_id="r1", at=at(4), user_id="ann") in events


def test_accepting_without_an_invitation_is_refused(room: Room) -> None:
    listener(room, "ann")
    with pytest.raises(NoInvitationError):
        rooms.accept_invitation(room, "ann", at(2))


def test_declining_an_invitation_keeps_the_listener_in_the_audience(room: Room) -> None:
    listener(room, "ann")
    rooms.invite_to_speak(room, "mod", "ann", at(2))
    events = rooms.decline_invitation(room, "ann", at(3))
    ann = room.members["ann"]
    assert (ann.role, ann.invited_to_speak_at) == (Role.LISTENER, None)
    assert events == [InvitationDeclined(room_id="r1", at=at(3), user_id="ann")]


def test_declining_is_told_to_the_moderators(room: Room) -> None:
    listener(room, "ann")
    rooms.invite_to_speak(room, "mod", "ann", at(2))
    [declined] = rooms.decline_invitation(room, "ann", at(3))
    assert declined.audience == MODERATORS


def test_declining_without_an_invitation_is_refused(room: Room) -> None:
    listener(room, "ann")
    with pytest.raises(NoInvitationError):
        rooms.decline_invitation(room, "ann", at(2))


# --- the stage ----------------------------------------------------------------------------------


def test_a_moderator_moves_a_speaker_to_the_audience(room: Room) -> None:
    speaker(room, "ann")
    rooms.unmute(room, "ann", "ann", at(2))
    events = rooms.move_to_audience(room, "mod", "ann", at(3))
    assert (room.members["ann"].role, room.members["ann"].muted) == (Role.LISTENER, True)
    assert events == [MovedToAudience(room_id="r1", at=at(3), user_id="ann", by_id="mod")]


def test_a_moderator_must_be_unmade_before_being_moved_to_the_audience(room: Room) -> None:
    co_moderator(room, "ann")
    with pytest.raises(TargetNotASpeakerError):
        rooms.move_to_audience(room, "mod", "ann", at(2))


def test_only_moderators_move_speakers_to_the_audience(room: Room) -> None:
    speaker(room, "ann")
    speaker(room, "bob")
    with pytest.raises(NotAModeratorError):
        rooms.move_to_audience(room, "ann", "bob", at(2))


def test_a_speaker_steps_down_to_the_audience(room: Room) -> None:
    speaker(room, "ann")
    events = rooms.step_down(room, "ann", at(2))
    assert room.members["ann"].role is Role.LISTENER
    assert events == [MovedToAudience(room_id="r1", at=at(2), user_id="ann", by_id="ann")]


def test_a_moderator_stepping_down_stops_moderating(room: Room) -> None:
    co_moderator(room, "ann")
    events = rooms.step_down(room, "ann", at(2))
    assert room.members["ann"].role is Role.LISTENER
    assert events == [
        ModeratorRemoved(room_id="r1", at=at(2), user_id="ann", by_id="ann"),
        MovedToAudience(room_id="r1", at=at(2), user_id="ann", by_id="ann"),
    ]


def test_the_last_moderator_cannot_step_down(room: Room) -> None:
    with pytest.raises(LastModeratorError):
        rooms.step_down(room, "mod", at(1))


def test_listeners_cannot_step_down(room: Room) -> None:
    listener(room, "ann")
    with pytest.raises(NotOnStageError):
        rooms.step_down(room, "ann", at(2))


# --- microphones --------------------------------------------------------------------------------


def test_a_speaker_unmutes_themselves(room: Room) -> None:
    speaker(room, "ann")
    events = rooms.unmute(room, "ann", "ann", at(2))
    assert room.members["ann"].muted is False
    assert events == [SpeakerUnmuted(room_id="r1", at=at(2), user_id="ann")]


def test_a_speaker_mutes_themselves(room: Room) -> None:
    speaker(room, "ann")
    rooms.unmute(room, "ann", "ann", at(2))
    events = rooms.mute(room, "ann", "ann", at(3))
    assert room.members["ann"].muted is True
    assert events == [SpeakerMuted(room_id="r1", at=at(3), user_id="ann", by_id="ann")]


def test_a_moderator_mutes_a_speaker(room: Room) -> None:
    speaker(room, "ann")
    rooms.unmute(room, "ann", "ann", at(2))
    events = rooms.mute(room, "mod", "ann", at(3))
    assert room.members["ann"].muted is True
    assert events == [SpeakerMuted(room_id="r1", at=at(3), user_id="ann", by_id="mod")]


def test_a_moderator_mutes_another_moderator(room: Room) -> None:
    co_moderator(room, "ann")
    rooms.unmute(room, "ann", "ann", at(2))
    rooms.mute(room, "mod", "ann", at(3))
    assert room.members["ann"].muted is True


def test_only_the_speaker_can_unmute_themselves(room: Room) -> None:
    speaker(room, "ann")
    with pytest.raises(CannotUnmuteOthersError):
        rooms.unmute(room, "mod", "ann", at(2))


def test_a_speaker_cannot_mute_someone_else(room: Room) -> None:
    speaker(room, "ann")
    speaker(room, "bob")
    rooms.unmute(room, "bob", "bob", at(2))
    with pytest.raises(NotAModeratorError):
        rooms.mute(room, "ann", "bob", at(3))


def test_listeners_have_no_microphone_to_unmute(room: Room) -> None:
    listener(room, "ann")
    with pytest.raises(NotOnStageError):
        rooms.unmute(room, "ann", "ann", at(2))


def test_muting_someone_in_the_audience_is_refused(room: Room) -> None:
    listener(room, "ann")
    with pytest.raises(TargetNotOnStageError):
        rooms.mute(room, "mod", "ann", at(2))


def test_muting_a_muted_speaker_changes_nothing(room: Room) -> None:
    speaker(room, "ann")
    assert rooms.mute(room, "mod", "ann", at(2)) == []


def test_unmuting_an_unmuted_speaker_changes_nothing(room: Room) -> None:
    speaker(room, "ann")
    rooms.unmute(room, "ann", "ann", at(2))
    assert rooms.unmute(room, "ann", "ann", at(3)) == []


def test_each_unmuted_person_on_stage_takes_a_publishing_slot(room: Room) -> None:
    """At most `max_publishers` (IVS's 12 per stage) unmuted at once; muting frees a slot."""
    assert room.max_publishers == rooms.DEFAULT_MAX_PUBLISHERS == 12
    rooms.unmute(room, "mod", "mod", at(1))
    for n in range(11):
        speaker(room, f"s{n}", 2)
        rooms.unmute(room, f"s{n}", f"s{n}", at(2))
    speaker(room, "late", 3)
    assert [m.user_id for m in room.publishers()] == ["mod", *(f"s{n}" for n in range(11))]
    with pytest.raises(rooms.TooManyPublishersError) as refused:
        rooms.unmute(room, "late", "late", at(4))
    assert refused.value.code == "too_many_publishers"
    assert room.members["late"].muted is True
    rooms.mute(room, "mod", "s3", at(5))
    rooms.unmute(room, "late", "late", at(6))
    assert room.members["late"].publishing


def test_only_people_on_stage_and_unmuted_publish(room: Room) -> None:
    listener(room, "lee")
    speaker(room, "ann")
    assert not room.members["lee"].publishing
    assert not room.members["ann"].publishing  # on stage, muted
    rooms.unmute(room, "ann", "ann", at(2))
    assert room.members["ann"].publishing
    rooms.move_to_audience(room, "mod", "ann", at(3))
    assert not room.members["ann"].publishing


# --- moderators ---------------------------------------------------------------------------------


def test_a_speaker_made_moderator_keeps_their_microphone_state(room: Room) -> None:
    speaker(room, "ann")
    rooms.unmute(room, "ann", "ann", at(2))
    events = rooms.make_moderator(room, "mod", "ann", at(3))
    assert (room.members["ann"].role, room.members["ann"].muted) == (Role.MODERATOR, False)
    assert events == [
        ModeratorAdded(
            room_id="r1",
            at=at(3),
            user_id="ann",
            by_id="mod",
            previous_role=Role.SPEAKER,
            muted=False,
        )
    ]


def test_a_listener_made_moderator_comes_on_stage_muted_with_hand_lowered(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    rooms.invite_to_speak(room, "mod", "ann", at(3))
    events = rooms.make_moderator(room, "mod", "ann", at(4))
    ann = room.members["ann"]
    assert (ann.role, ann.muted, ann.hand_raised_at, ann.invited_to_speak_at) == (
        Role.MODERATOR,
        True,
        None,
        None,
    )
    assert events[0] == HandLowered(room_id="r1", at=at(4), user_id="ann")


def test_making_a_moderator_a_moderator_again_is_refused(room: Room) -> None:
    co_moderator(room, "ann")
    with pytest.raises(AlreadyAModeratorError):
        rooms.make_moderator(room, "mod", "ann", at(2))


def test_only_moderators_make_moderators(room: Room) -> None:
    speaker(room, "ann")
    with pytest.raises(NotAModeratorError):
        rooms.make_moderator(room, "ann", "ann", at(2))


def test_a_moderator_unmakes_another_moderator_into_a_speaker(room: Room) -> None:
    co_moderator(room, "ann")
    events = rooms.unmake_moderator(room, "mod", "ann", at(2))
    assert room.members["ann"].role is Role.SPEAKER
    assert events == [ModeratorRemoved(room_id="r1", at=at(2), user_id="ann", by_id="mod")]


def test_a_moderator_can_unmake_themselves_while_another_remains(room: Room) -> None:
    co_moderator(room, "ann")
    rooms.unmake_moderator(room, "mod", "mod", at(2))
    assert room.members["mod"].role is Role.SPEAKER


def test_the_last_moderator_cannot_be_unmade(room: Room) -> None:
    with pytest.raises(LastModeratorError):
        rooms.unmake_moderator(room, "mod", "mod", at(1))


def test_unmaking_someone_who_is_not_a_moderator_is_refused(room: Room) -> None:
    speaker(room, "ann")
    with pytest.raises(TargetNotAModeratorError):
        rooms.unmake_moderator(room, "mod", "ann", at(2))


# --- removal ------------------------------------------------------------------------------------


def test_a_moderator_removes_a_listener_for_good(room: Room) -> None:
    listener(room, "ann")
    events = rooms.remove_member(room, "mod", "ann", at(2))
    assert "ann" not in room.members
    assert "ann" in room.removed
    assert events == [
        MemberRemoved(room_id="r1", at=at(2), user_id="ann", by_id="mod", role=Role.LISTENER)
    ]


def test_a_removed_listener_is_told_directly(room: Room) -> None:
    listener(room, "ann")
    [removed] = rooms.remove_member(room, "mod", "ann", at(2))
    assert removed.audience == Audience(Scope.USERS, frozenset({"ann"}))


def test_removing_someone_on_stage_is_told_to_everyone_and_to_them(room: Room) -> None:
    speaker(room, "ann")
    [removed] = rooms.remove_member(room, "mod", "ann", at(2))
    assert removed.audience == Audience(Scope.EVERYONE, frozenset({"ann"}))


def test_a_moderator_can_remove_another_moderator(room: Room) -> None:
    co_moderator(room, "ann")
    rooms.remove_member(room, "mod", "ann", at(2))
    assert "ann" in room.removed
    assert room.is_live


def test_a_moderator_cannot_remove_themselves(room: Room) -> None:
    with pytest.raises(CannotRemoveYourselfError):
        rooms.remove_member(room, "mod", "mod", at(1))


def test_removing_someone_not_in_the_room_is_refused(room: Room) -> None:
    with pytest.raises(MemberNotFoundError):
        rooms.remove_member(room, "mod", "ann", at(1))


def test_removal_lowers_a_raised_hand_for_the_moderators(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    events = rooms.remove_member(room, "mod", "ann", at(3))
    assert events[0] == HandLowered(room_id="r1", at=at(3), user_id="ann")


def test_removal_takes_the_person_off_the_guest_list() -> None:
    room = new_room(RoomType.CLOSED, invited=("ann",))
    listener(room, "ann")
    rooms.remove_member(room, "mod", "ann", at(2))
    assert "ann" not in room.invited


def test_speakers_cannot_remove_people(room: Room) -> None:
    speaker(room, "ann")
    listener(room, "bob")
    with pytest.raises(NotAModeratorError):
        rooms.remove_member(room, "ann", "bob", at(2))


# --- the guest list -----------------------------------------------------------------------------


def test_a_moderator_invites_someone_into_a_closed_room() -> None:
    room = new_room(RoomType.CLOSED)
    events = rooms.invite_to_room(room, "mod", "ann", at(1))
    rooms.join(room, "ann", OPEN_DOOR, at(2))
    assert "ann" in room.members
    assert events == [RoomInvitationSent(room_id="r1", at=at(1), user_id="ann", by_id="mod")]


def test_a_guest_list_invitation_is_told_only_to_the_guest(room: Room) -> None:
    [sent] = rooms.invite_to_room(room, "mod", "ann", at(1))
    assert sent.audience == Audience(Scope.USERS, frozenset({"ann"}))


def test_an_invitation_admits_to_a_social_room_without_a_follow() -> None:
    room = new_room(RoomType.SOCIAL)
    rooms.invite_to_room(room, "mod", "ann", at(1))
    rooms.join(room, "ann", OPEN_DOOR, at(2))
    assert "ann" in room.members


def test_inviting_someone_removed_is_refused(room: Room) -> None:
    listener(room, "ann")
    rooms.remove_member(room, "mod", "ann", at(2))
    with pytest.raises(RemovedFromRoomError):
        rooms.invite_to_room(room, "mod", "ann", at(3))


def test_inviting_someone_already_invited_changes_nothing(room: Room) -> None:
    rooms.invite_to_room(room, "mod", "ann", at(1))
    assert rooms.invite_to_room(room, "mod", "ann", at(2)) == []


def test_only_moderators_invite_people_into_the_room(room: Room) -> None:
    listener(room, "ann")
    with pytest.raises(NotAModeratorError):
        rooms.invite_to_room(room, "ann", "bob", at(2))


# --- ending -------------------------------------------------------------------------------------


def test_a_moderator_ends_the_room(room: Room) -> None:
    events = rooms.end_room(room, "mod", at(1))
    assert room.ended_at == at(1)
    assert events == [
        RoomEnded(room_id="r1", at=at(1), reason=EndReason.ENDED_BY_MODERATOR, by_id="mod")
    ]


def test_only_moderators_end_the_room(room: Room) -> None:
    speaker(room, "ann")
    with pytest.raises(NotAModeratorError):
        rooms.end_room(room, "ann", at(2))


def test_nothing_changes_in_an_ended_room(room: Room) -> None:
    listener(room, "ann")
    rooms.end_room(room, "mod", at(2))
    before = copy.deepcopy(room)
    with pytest.raises(RoomEndedError):
        rooms.raise_hand(room, "ann", at(3))
    with pytest.raises(RoomEndedError):
        rooms.end_room(room, "mod", at(3))
    assert room == before


# --- versions, counts and the wire --------------------------------------------------------------


def test_every_change_increments_the_version_once(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    rooms.invite_to_speak(room, "mod", "ann", at(3))
    version = room.version
    rooms.accept_invitation(room, "ann", at(4))  # two events, one change
    assert room.version == version + 1


def test_a_request_already_satisfied_keeps_the_version(room: Room) -> None:
    listener(room, "ann")
    version = room.version
    rooms.lower_hand(room, "ann", at(2))
    assert room.version == version


def test_a_refused_operation_leaves_the_room_unchanged(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    before = copy.deepcopy(room)
    with pytest.raises(NotAModeratorError):
        rooms.set_hands_allowed(room, "ann", False, at(3))
    assert room == before


def test_the_audience_count_is_the_number_of_listeners(room: Room) -> None:
    listener(room, "ann")
    listener(room, "bob")
    speaker(room, "cat")
    assert room.audience_count == 2


def test_events_serialise_to_json_with_iso_times(room: Room) -> None:
    listener(room, "ann")
    [left] = rooms.leave(room, "ann", at(2))
    assert json.loads(json.dumps(left.to_dict())) == {
        "type": "member_left",
        "room_id": "r1",
        "at": "2024-05-01T20:00:02+00:00",
        "user_id": "ann",
        "role": "listener",
        "reason": "left",
    }


def test_every_event_has_a_distinct_snake_case_wire_name() -> None:
    names = [
        cls.name
        for _, cls in inspect.getmembers(rooms, inspect.isclass)
        if issubclass(cls, rooms.Event) and cls is not rooms.Event
    ]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in names)


def test_every_room_error_has_a_distinct_snake_case_code() -> None:
    errors = [
        cls
        for _, cls in inspect.getmembers(rooms, inspect.isclass)
        if issubclass(cls, SalonError) and cls.__module__ == rooms.__name__
    ]
    codes = [cls.code for cls in errors]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", code) for code in codes)
    assert all(cls.default_message for cls in errors)


# --- snapshots ----------------------------------------------------------------------------------


def test_a_snapshot_lists_moderators_then_speakers_with_their_microphones(room: Room) -> None:
    speaker(room, "ann", seconds=1)
    co_moderator(room, "bob", seconds=2)
    rooms.unmute(room, "ann", "ann", at(3))
    view = rooms.snapshot(room, "ann")
    assert view["stage"] == [
        {"user_id": "mod", "role": "moderator", "muted": True, "connected": True},
        {"user_id": "bob", "role": "moderator", "muted": True, "connected": True},
        {"user_id": "ann", "role": "speaker", "muted": False, "connected": True},
    ]


def test_a_snapshot_pages_the_audience_in_join_order(room: Room) -> None:
    for second, user_id in enumerate(["dan", "ann", "cat"], start=1):
        listener(room, user_id, seconds=second)
    view = rooms.snapshot(room, "mod", page_size=2)
    assert view["audience_count"] == 3
    assert view["audience"] == [{"user_id": "dan"}, {"user_id": "ann"}]
    assert view["audience_has_more"] is True


def test_the_audience_page_continues_after_a_cursor(room: Room) -> None:
    for second, user_id in enumerate(["dan", "ann", "cat"], start=1):
        listener(room, user_id, seconds=second)
    page = rooms.audience_page(room, limit=5, after=(at(1), "dan"))
    assert [m.user_id for m in page] == ["ann", "cat"]


def test_a_page_size_below_one_is_refused(room: Room) -> None:
    with pytest.raises(InvalidPageSizeError):
        rooms.snapshot(room, "mod", page_size=0)


def test_moderators_see_raised_hands_in_the_order_they_were_raised(room: Room) -> None:
    listener(room, "ann", seconds=1)
    listener(room, "bob", seconds=2)
    rooms.raise_hand(room, "bob", at(3))
    rooms.raise_hand(room, "ann", at(4))
    view = rooms.snapshot(room, "mod")
    assert view["raised_hands"] == [
        {"user_id": "bob", "raised_at": at(3).isoformat()},
        {"user_id": "ann", "raised_at": at(4).isoformat()},
    ]


def test_people_who_are_not_moderators_do_not_see_raised_hands(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    assert "raised_hands" not in rooms.snapshot(room, "ann")
    assert "raised_hands" not in rooms.snapshot(room, "stranger")


def test_a_snapshot_shows_the_viewer_their_own_state(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    rooms.invite_to_speak(room, "mod", "ann", at(3))
    assert rooms.snapshot(room, "ann")["viewer"] == {
        "user_id": "ann",
        "role": "listener",
        "muted": True,
        "hand_raised": True,
        "invited_to_speak": True,
    }


def test_a_snapshot_is_json_safe(room: Room) -> None:
    listener(room, "ann")
    rooms.raise_hand(room, "ann", at(2))
    rooms.end_room(room, "mod", at(3))
    view = rooms.snapshot(room, "mod")
    assert json.loads(json.dumps(view)) == view


@pytest.mark.parametrize(
    ("audience", "seconds"), [(0, 3), (99, 3), (100, 10), (999, 10), (1_000, 30), (8_000, 30)]
)
def test_the_audience_count_goes_out_less_often_the_bigger_the_room(
    audience: int, seconds: int
) -> None:
    assert rooms.audience_count_interval_s(audience, 3) == seconds
    assert rooms.audience_count_interval_s(audience, 60) == 60  # never below the setting
