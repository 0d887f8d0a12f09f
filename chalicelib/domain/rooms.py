"""The rules of a live room: who may enter, speak and moderate, and whom each change tells."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import Enum
from types import MappingProxyType
from typing import ClassVar, Final

from chalicelib.domain.errors import (
    ConflictError,
    ForbiddenError,
    Kind,
    NotFoundError,
    SalonError,
    ValidationError,
)
from chalicelib.domain.text import MAX_TITLE_LENGTH

DEFAULT_CAPACITY: Final = 8_000
DEFAULT_MAX_PUBLISHERS: Final = 12
DEFAULT_PAGE_SIZE: Final = 50
# How often the audience count may go out, by the audience's size: (fewer than, seconds).
# Every count is one message to every member, so a room of 8,000 at the small rooms' 3 s
# would cost $0.02 per 1,000 listener-minutes in messages alone (docs/benchmarks.md, "Cost").
COUNT_INTERVALS: Final = ((100, 0), (1_000, 10), (None, 30))


def audience_count_interval_s(audience: int, smallest_s: int) -> int:
    """The seconds between two audience counts of a room of `audience` (at least
    `smallest_s`, the interval of small rooms)."""
    for below, seconds in COUNT_INTERVALS:
        if below is None or audience < below:
            return max(smallest_s, seconds)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
# Errors about the *actor* (the person asking) are ForbiddenError; errors about the *target* of a
# moderator's action are NotFound/Conflict, so a client can tell "you may not" from "they are no
# longer in that state" without reading messages.


class RoomEndedError(SalonError):
    code = "room_ended"
    kind = Kind.GONE
    default_message = "This room has ended."


class NotInRoomError(ForbiddenError):
    code = "not_in_room"
    default_message = "You are not in this room."


class NotAModeratorError(ForbiddenError):
    code = "not_a_moderator"
    default_message = "Only a moderator can do that."


class NotAListenerError(ForbiddenError):
    code = "not_a_listener"
    default_message = "Only a listener in the audience can do that."


class NotOnStageError(ForbiddenError):
    code = "not_on_stage"
    default_message = "Only someone on stage can do that."


class CannotUnmuteOthersError(ForbiddenError):
    code = "cannot_unmute_others"
    default_message = "Only the speaker can unmute themselves."


class CannotRemoveYourselfError(ForbiddenError):
    code = "cannot_remove_yourself"
    default_message = "You cannot remove yourself; leave the room instead."


class RemovedFromRoomError(ForbiddenError):
    code = "removed_from_room"
    default_message = "You were removed from this room and cannot return."


class BlockedFromRoomError(ForbiddenError):
    code = "blocked"
    default_message = "You cannot enter this room."


class NotAllowedInRoomError(ForbiddenError):
    code = "room_not_open_to_you"
    default_message = "This room is only open to people its moderators follow or invite."


class ClubMembersOnlyError(NotAllowedInRoomError):
    code = "club_members_only"
    default_message = "This room is for the club's members only."


class RoomFullError(ConflictError):
    code = "room_full"
    default_message = "This room is full."


class HandsClosedError(ConflictError):
    code = "hands_closed"
    default_message = "The moderators have turned hand raising off."


class NoInvitationError(ConflictError):
    code = "no_invitation"
    default_message = "You have no pending invitation to speak."


class LastModeratorError(ConflictError):
    code = "last_moderator"
    default_message = "The room needs a moderator: make someone else a moderator first."


class MemberNotFoundError(NotFoundError):
    code = "member_not_found"
    default_message = "That person is not in this room."


class TargetRoleError(ConflictError):
    """The person a moderator acted on is not (or no longer) in the role the action needs."""

    code = "target_wrong_role"
    default_message = "That person's role has changed; reload the room."


class TargetNotAListenerError(TargetRoleError):
    code = "target_not_a_listener"
    default_message = "That person is not in the audience."


class TargetNotASpeakerError(TargetRoleError):
    code = "target_not_a_speaker"
    default_message = "That person is not a speaker."


class TargetNotOnStageError(TargetRoleError):
    code = "target_not_on_stage"
    default_message = "That person is not on stage."


class TargetNotAModeratorError(TargetRoleError):
    code = "target_not_a_moderator"
    default_message = "That person is not a moderator."


class AlreadyAModeratorError(TargetRoleError):
    code = "already_a_moderator"
    default_message = "That person is already a moderator."


class TooManyPublishersError(ConflictError):
    code = "too_many_publishers"
    default_message = (
        "Too many people are unmuted on this stage right now: wait until someone mutes."
    )


class InvalidRoomTitleError(ValidationError):
    code = "invalid_room_title"
    default_message = f"A room title needs 1 to {MAX_TITLE_LENGTH} characters."


class InvalidCapacityError(ValidationError):
    code = "invalid_capacity"
    default_message = "A room's capacity must be at least 1."


class InvalidPageSizeError(ValidationError):
    code = "invalid_page_size"
    default_message = "The page size must be at least 1."


class InvalidGraceError(ValidationError):
    code = "invalid_grace"
    default_message = "The reconnection grace period cannot be negative."


class TimeNotUtcError(ValidationError):
    code = "time_not_utc"
    default_message = "Times must be timezone-aware UTC."


# --------------------------------------------------------------------------------------------
# The aggregate
# --------------------------------------------------------------------------------------------


class RoomType(Enum):
    OPEN = "open"  # any member of Salon
    SOCIAL = "social"  # people followed by one of the room's moderators
    CLOSED = "closed"  # only people the moderators invited
    MEMBERS = "members"  # a club's room for its members only (chalicelib/domain/clubs.py)


class Role(Enum):
    MODERATOR = "moderator"
    SPEAKER = "speaker"
    LISTENER = "listener"

    @property
    def on_stage(self) -> bool:
        return self is not Role.LISTENER


@dataclass
class Member:
    """One person in the room. Listeners are always muted; only listeners raise hands."""

    user_id: str
    role: Role
    joined_at: datetime
    # Everyone steps onto the stage muted (as Clubhouse did) so no one is live by surprise.
    muted: bool = True
    hand_raised_at: datetime | None = None
    invited_to_speak_at: datetime | None = None
    # A dropped connection keeps the seat and role until the grace period runs out.
    connected: bool = True
    disconnected_at: datetime | None = None

    @property
    def publishing(self) -> bool:
        """May send audio: on stage and unmuted (what the media plane lets through)."""
        return self.role.on_stage and not self.muted


@dataclass
class Room:
    """A live room. `version` grows by one with every change, for optimistic concurrency."""

    room_id: str
    title: str
    kind: RoomType
    creator_id: str
    created_at: datetime
    capacity: int = DEFAULT_CAPACITY
    # Unmuted speakers at once: each takes one of the media plane's publishing slots.
    max_publishers: int = DEFAULT_MAX_PUBLISHERS
    # The media plane's handle on this room (a Janus room, an IVS stage ARN): opaque here.
    media_ref: str = ""
    hands_allowed: bool = True
    # Closing hands starts a new round: a hand raised in an earlier round is down, whether or
    # not the action that closed them loaded its owner (a room of 8,000 is never loaded whole).
    # The repository loads such a hand as lowered, so every rule sees only this round's hands.
    hands_round: int = 0
    ended_at: datetime | None = None
    members: dict[str, Member] = field(default_factory=dict)
    # People a moderator removed: they are never members again.
    removed: set[str] = field(default_factory=set)
    # The guest list: people a moderator invited *into* the room (what admits them to a closed
    # room). Invitations *to speak* are a different thing and live on `Member.invited_to_speak_at`.
    invited: set[str] = field(default_factory=set)
    # The hosts of a scheduled event (its co-hosts), and a club room's admins: each enters
    # as a moderator.
    hosts: set[str] = field(default_factory=set)
    # The club whose room this is (its members-only rooms admit its members).
    club_id: str | None = None
    version: int = 0
    # A big room is never loaded whole: the repository loads the stage and the people an action
    # touches, and counts the listeners it left out here. No rule ever needs their details.
    unloaded_listeners: int = 0

    @property
    def is_live(self) -> bool:
        return self.ended_at is None

    def member(self, user_id: str) -> Member:
        try:
            return self.members[user_id]
        except KeyError:
            raise NotInRoomError(user_id=user_id) from None

    def moderators(self) -> list[Member]:
        return [m for m in self.members.values() if m.role is Role.MODERATOR]

    def publishers(self) -> list[Member]:
        return [m for m in self.members.values() if m.publishing]

    def listeners(self) -> list[Member]:
        return [m for m in self.members.values() if m.role is Role.LISTENER]

    @property
    def audience_count(self) -> int:
        loaded = sum(1 for m in self.members.values() if m.role is Role.LISTENER)
        return loaded + self.unloaded_listeners

    @property
    def headcount(self) -> int:
        return len(self.members) + self.unloaded_listeners


@dataclass(frozen=True)
class EntryContext:
    """Facts about the joiner's relationships, looked up by the caller so the rules stay pure."""

    followed_by_moderator: bool  # does any current moderator follow the joiner?
    blocked_by_moderator: bool  # has any current moderator blocked the joiner?
    club_member: bool = False  # is the joiner a member of the room's club?


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


class Scope(Enum):
    """Who an event is fanned out to."""

    EVERYONE = "everyone"  # every connected member: stage changes, the room ending
    MODERATORS = "moderators"  # the raised-hands queue and replies to invitations
    USERS = "users"  # only the people in `Audience.user_ids`
    # Listener churn: never fanned out one by one (in a full room each join would cost 8,000
    # messages); the app broadcasts the coalesced `Room.audience_count` instead.
    COUNT_ONLY = "count_only"


@dataclass(frozen=True)
class Audience:
    scope: Scope
    # Told in addition to `scope`, e.g. someone just removed, who is no longer a member.
    user_ids: frozenset[str] = frozenset()


EVERYONE: Final = Audience(Scope.EVERYONE)
MODERATORS: Final = Audience(Scope.MODERATORS)
COUNT_ONLY: Final = Audience(Scope.COUNT_ONLY)


def only(*user_ids: str) -> Audience:
    return Audience(Scope.USERS, frozenset(user_ids))


def _presence_audience(role: Role) -> Audience:
    return EVERYONE if role.on_stage else COUNT_ONLY


def _wire(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (tuple, list, frozenset, set)):
        return [_wire(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something that happened to a room. `name` is the stable wire type."""

    name: ClassVar[str] = "event"
    room_id: str
    at: datetime

    @property
    def audience(self) -> Audience:
        return EVERYONE

    def to_dict(self) -> dict[str, object]:
        wire: dict[str, object] = {"type": self.name}
        for f in fields(self):
            wire[f.name] = _wire(getattr(self, f.name))
        return wire

    def to_message(self, version: int) -> dict[str, object]:
        """As sent: with the room's version after the change, by which a client that gets two
        actions' events crossed (or one twice) keeps the newer state (docs/asyncapi.yaml)."""
        return {**self.to_dict(), "version": version}


class LeaveReason(Enum):
    LEFT = "left"
    TIMED_OUT = "timed_out"  # disconnected for longer than the grace period


class EndReason(Enum):
    ENDED_BY_MODERATOR = "ended_by_moderator"
    LAST_MODERATOR_LEFT = "last_moderator_left"


@dataclass(frozen=True, kw_only=True)
class RoomCreated(Event):
    name: ClassVar[str] = "room_created"
    creator_id: str
    title: str
    kind: RoomType
    capacity: int


@dataclass(frozen=True, kw_only=True)
class MemberJoined(Event):
    """Someone entered as a listener."""

    name: ClassVar[str] = "member_joined"
    user_id: str

    @property
    def audience(self) -> Audience:
        return COUNT_ONLY


@dataclass(frozen=True, kw_only=True)
class MemberLeft(Event):
    name: ClassVar[str] = "member_left"
    user_id: str
    role: Role
    reason: LeaveReason

    @property
    def audience(self) -> Audience:
        return _presence_audience(self.role)


@dataclass(frozen=True, kw_only=True)
class MemberDisconnected(Event):
    name: ClassVar[str] = "member_disconnected"
    user_id: str
    role: Role

    @property
    def audience(self) -> Audience:
        return _presence_audience(self.role)


@dataclass(frozen=True, kw_only=True)
class MemberReconnected(Event):
    name: ClassVar[str] = "member_reconnected"
    user_id: str
    role: Role

    @property
    def audience(self) -> Audience:
        return _presence_audience(self.role)


@dataclass(frozen=True, kw_only=True)
class HandRaised(Event):
    name: ClassVar[str] = "hand_raised"
    user_id: str

    @property
    def audience(self) -> Audience:
        return MODERATORS


@dataclass(frozen=True, kw_only=True)
class HandLowered(Event):
    """A hand went down: lowered by its owner, or because they left, were removed or promoted."""

    name: ClassVar[str] = "hand_lowered"
    user_id: str

    @property
    def audience(self) -> Audience:
        return MODERATORS


@dataclass(frozen=True, kw_only=True)
class HandsToggled(Event):
    """Hand raising turned on or off; turning it off lowers every raised hand, so it goes to
    everyone: each listener whose hand was up learns it is down, and moderators that the queue
    is empty."""

    name: ClassVar[str] = "hands_toggled"
    by_id: str
    allowed: bool


@dataclass(frozen=True, kw_only=True)
class SpeakerInvited(Event):
    name: ClassVar[str] = "speaker_invited"
    user_id: str
    by_id: str

    @property
    def audience(self) -> Audience:
        return only(self.user_id)


@dataclass(frozen=True, kw_only=True)
class InvitationAccepted(Event):
    """A listener accepted an invitation to speak and is now a (muted) speaker."""

    name: ClassVar[str] = "invitation_accepted"
    user_id: str
    muted: bool


@dataclass(frozen=True, kw_only=True)
class InvitationDeclined(Event):
    name: ClassVar[str] = "invitation_declined"
    user_id: str

    @property
    def audience(self) -> Audience:
        return MODERATORS


@dataclass(frozen=True, kw_only=True)
class MovedToAudience(Event):
    """Someone left the stage for the audience; `by_id == user_id` when they stepped down."""

    name: ClassVar[str] = "moved_to_audience"
    user_id: str
    by_id: str


@dataclass(frozen=True, kw_only=True)
class SpeakerMuted(Event):
    name: ClassVar[str] = "speaker_muted"
    user_id: str
    by_id: str


@dataclass(frozen=True, kw_only=True)
class SpeakerUnmuted(Event):
    name: ClassVar[str] = "speaker_unmuted"
    user_id: str


@dataclass(frozen=True, kw_only=True)
class ModeratorAdded(Event):
    name: ClassVar[str] = "moderator_added"
    user_id: str
    by_id: str
    previous_role: Role
    muted: bool


@dataclass(frozen=True, kw_only=True)
class ModeratorRemoved(Event):
    """A moderator became a speaker (or, when followed by MovedToAudience, a listener)."""

    name: ClassVar[str] = "moderator_removed"
    user_id: str
    by_id: str


@dataclass(frozen=True, kw_only=True)
class MemberRemoved(Event):
    name: ClassVar[str] = "member_removed"
    user_id: str
    by_id: str
    role: Role

    @property
    def audience(self) -> Audience:
        # The removed person is no longer a member, so they are named explicitly.
        if self.role.on_stage:
            return Audience(Scope.EVERYONE, frozenset({self.user_id}))
        return only(self.user_id)


@dataclass(frozen=True, kw_only=True)
class RoomInvitationSent(Event):
    """A moderator put someone on the room's guest list (what admits them to a closed room)."""

    name: ClassVar[str] = "room_invitation_sent"
    user_id: str
    by_id: str

    @property
    def audience(self) -> Audience:
        return only(self.user_id)


@dataclass(frozen=True, kw_only=True)
class RoomEnded(Event):
    name: ClassVar[str] = "room_ended"
    reason: EndReason
    by_id: str | None


# --------------------------------------------------------------------------------------------
# Authorization: which standing may attempt which action
# --------------------------------------------------------------------------------------------


class Action(Enum):
    JOIN = "join"
    LEAVE = "leave"
    DISCONNECT = "disconnect"
    RESUME = "resume"
    RAISE_HAND = "raise_hand"
    LOWER_HAND = "lower_hand"
    SET_HANDS_ALLOWED = "set_hands_allowed"
    INVITE_TO_SPEAK = "invite_to_speak"
    ACCEPT_INVITATION = "accept_invitation"
    DECLINE_INVITATION = "decline_invitation"
    MOVE_TO_AUDIENCE = "move_to_audience"
    STEP_DOWN = "step_down"
    MUTE_SELF = "mute_self"
    MUTE_OTHER = "mute_other"
    UNMUTE_SELF = "unmute_self"
    UNMUTE_OTHER = "unmute_other"
    MAKE_MODERATOR = "make_moderator"
    UNMAKE_MODERATOR = "unmake_moderator"
    REMOVE_MEMBER = "remove_member"
    INVITE_TO_ROOM = "invite_to_room"
    END_ROOM = "end_room"


class Standing(Enum):
    """Where a person stands relative to a room: their role, or why they have none."""

    OUTSIDER = "outsider"
    LISTENER = "listener"
    SPEAKER = "speaker"
    MODERATOR = "moderator"
    REMOVED = "removed"
    # Known only at the door (from EntryContext): an outsider a moderator has blocked.
    BLOCKED = "blocked"


_STANDING_OF_ROLE: Final = {
    Role.LISTENER: Standing.LISTENER,
    Role.SPEAKER: Standing.SPEAKER,
    Role.MODERATOR: Standing.MODERATOR,
}


@dataclass(frozen=True)
class Permission:
    allowed: frozenset[Standing]
    refusal: type[SalonError]  # raised for a *member* whose role is not allowed


_MEMBERS: Final = frozenset({Standing.LISTENER, Standing.SPEAKER, Standing.MODERATOR})
_STAGE: Final = frozenset({Standing.SPEAKER, Standing.MODERATOR})
_MODERATOR: Final = frozenset({Standing.MODERATOR})
_LISTENER: Final = frozenset({Standing.LISTENER})
_OUTSIDERS: Final = frozenset({Standing.OUTSIDER, Standing.REMOVED, Standing.BLOCKED})

PERMISSIONS: Final[Mapping[Action, Permission]] = MappingProxyType(
    {
        # A member "joining" again is a reconnect (or nothing): it is how a client rejoins.
        Action.JOIN: Permission(_MEMBERS | {Standing.OUTSIDER}, NotAllowedInRoomError),
        Action.LEAVE: Permission(_MEMBERS, NotInRoomError),
        Action.DISCONNECT: Permission(_MEMBERS, NotInRoomError),
        Action.RESUME: Permission(_MEMBERS, NotInRoomError),
        Action.RAISE_HAND: Permission(_LISTENER, NotAListenerError),
        Action.LOWER_HAND: Permission(_LISTENER, NotAListenerError),
        Action.SET_HANDS_ALLOWED: Permission(_MODERATOR, NotAModeratorError),
        Action.INVITE_TO_SPEAK: Permission(_MODERATOR, NotAModeratorError),
        Action.ACCEPT_INVITATION: Permission(_LISTENER, NotAListenerError),
        Action.DECLINE_INVITATION: Permission(_LISTENER, NotAListenerError),
        Action.MOVE_TO_AUDIENCE: Permission(_MODERATOR, NotAModeratorError),
        Action.STEP_DOWN: Permission(_STAGE, NotOnStageError),
        Action.MUTE_SELF: Permission(_STAGE, NotOnStageError),
        Action.MUTE_OTHER: Permission(_MODERATOR, NotAModeratorError),
        Action.UNMUTE_SELF: Permission(_STAGE, NotOnStageError),
        Action.UNMUTE_OTHER: Permission(frozenset(), CannotUnmuteOthersError),
        Action.MAKE_MODERATOR: Permission(_MODERATOR, NotAModeratorError),
        Action.UNMAKE_MODERATOR: Permission(_MODERATOR, NotAModeratorError),
        Action.REMOVE_MEMBER: Permission(_MODERATOR, NotAModeratorError),
        Action.INVITE_TO_ROOM: Permission(_MODERATOR, NotAModeratorError),
        Action.END_ROOM: Permission(_MODERATOR, NotAModeratorError),
    }
)


def standing_of(room: Room, user_id: str, *, blocked_by_moderator: bool = False) -> Standing:
    member = room.members.get(user_id)
    if member is not None:
        # Someone already inside stays inside; blocking acts at the door, removal acts inside.
        return _STANDING_OF_ROLE[member.role]
    if user_id in room.removed:
        return Standing.REMOVED
    if blocked_by_moderator:
        return Standing.BLOCKED
    return Standing.OUTSIDER


def is_allowed(action: Action, standing: Standing) -> bool:
    return standing in PERMISSIONS[action].allowed


def refusal_for(action: Action, standing: Standing) -> type[SalonError] | None:
    """The error refusing `standing` the `action`, or None when the table allows it."""
    if is_allowed(action, standing):
        return None
    if action is Action.JOIN and standing is Standing.REMOVED:
        return RemovedFromRoomError
    if action is Action.JOIN and standing is Standing.BLOCKED:
        return BlockedFromRoomError
    if standing in _OUTSIDERS:
        return NotInRoomError
    return PERMISSIONS[action].refusal


def _authorize(room: Room, actor_id: str, action: Action) -> Member:
    refusal = refusal_for(action, standing_of(room, actor_id))
    if refusal is not None:
        raise refusal(user_id=actor_id)
    return room.members[actor_id]


# --------------------------------------------------------------------------------------------
# Operations. Each validates everything first, then mutates, then returns its events. A request
# that is already satisfied (raising a raised hand, muting a muted speaker) returns no events and
# changes nothing, so retries are safe; `version` grows exactly when events are returned.
# --------------------------------------------------------------------------------------------


def _require_utc(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() != timedelta(0):
        raise TimeNotUtcError(at=str(at))


def _require_live(room: Room, at: datetime) -> None:
    _require_utc(at)
    if not room.is_live:
        raise RoomEndedError(room_id=room.room_id)


def _record(room: Room, events: list[Event]) -> list[Event]:
    if events:
        room.version += 1
    return events


def _target(room: Room, user_id: str) -> Member:
    try:
        return room.members[user_id]
    except KeyError:
        raise MemberNotFoundError(user_id=user_id) from None


def _clear_hand(room: Room, member: Member, at: datetime) -> list[Event]:
    if member.hand_raised_at is None:
        return []
    member.hand_raised_at = None
    return [HandLowered(room_id=room.room_id, at=at, user_id=member.user_id)]


def _to_audience(member: Member) -> None:
    member.role = Role.LISTENER
    member.muted = True


def _end(room: Room, at: datetime, reason: EndReason, by_id: str | None) -> RoomEnded:
    room.ended_at = at
    return RoomEnded(room_id=room.room_id, at=at, reason=reason, by_id=by_id)


def _depart(room: Room, member: Member, reason: LeaveReason, at: datetime) -> list[Event]:
    """The leave rules, shared by leaving and timing out."""
    was_last_moderator = member.role is Role.MODERATOR and len(room.moderators()) == 1
    events = _clear_hand(room, member, at)
    del room.members[member.user_id]
    events.append(
        MemberLeft(
            room_id=room.room_id, at=at, user_id=member.user_id, role=member.role, reason=reason
        )
    )
    if was_last_moderator:
        # The rule: a room without a moderator ends, even if speakers remain.
        events.append(_end(room, at, EndReason.LAST_MODERATOR_LEFT, None))
    return events


def create_room(
    room_id: str,
    creator_id: str,
    title: str,
    kind: RoomType,
    at: datetime,
    *,
    capacity: int = DEFAULT_CAPACITY,
    max_publishers: int = DEFAULT_MAX_PUBLISHERS,
    media_ref: str = "",
    invited: Iterable[str] = (),
    hosts: Iterable[str] = (),
    club_id: str | None = None,
) -> tuple[Room, list[Event]]:
    """Open a room with its creator as first (muted) moderator; `invited` seeds the guest list,
    and `hosts` (an event's co-hosts, a club's admins) enter as moderators whenever they come.
    Only a club's room may be for members only."""
    _require_utc(at)
    if kind is RoomType.MEMBERS and club_id is None:
        raise ValidationError("Only a club's room is for members only.", field="kind")
    clean_title = title.strip()
    if not clean_title or len(clean_title) > MAX_TITLE_LENGTH:
        raise InvalidRoomTitleError(title=title)
    if capacity < 1:
        raise InvalidCapacityError(capacity=capacity)
    room = Room(
        room_id=room_id,
        title=clean_title,
        kind=kind,
        creator_id=creator_id,
        created_at=at,
        capacity=capacity,
        max_publishers=max_publishers,
        media_ref=media_ref,
        invited=set(invited),
        hosts=set(hosts) - {creator_id},
        club_id=club_id,
    )
    room.members[creator_id] = Member(user_id=creator_id, role=Role.MODERATOR, joined_at=at)
    created = RoomCreated(
        room_id=room_id,
        at=at,
        creator_id=creator_id,
        title=clean_title,
        kind=kind,
        capacity=capacity,
    )
    return room, _record(room, [created])


def _admits(room: Room, user_id: str, entry: EntryContext) -> bool:
    # The creator and anyone on the guest list may always come (back) in, whatever the type.
    if user_id == room.creator_id or user_id in room.invited or user_id in room.hosts:
        return True
    if room.kind is RoomType.OPEN:
        return True
    if room.kind is RoomType.SOCIAL:
        return entry.followed_by_moderator
    if room.kind is RoomType.MEMBERS:
        return entry.club_member
    return False


def _reconnect(room: Room, member: Member, at: datetime) -> list[Event]:
    if member.connected:
        return []
    member.connected = True
    member.disconnected_at = None
    event = MemberReconnected(room_id=room.room_id, at=at, user_id=member.user_id, role=member.role)
    return _record(room, [event])


def join(room: Room, user_id: str, entry: EntryContext, at: datetime) -> list[Event]:
    """Enter as a listener. A member still within their grace period resumes with their role."""
    _require_live(room, at)
    existing = room.members.get(user_id)
    if existing is not None:
        return _reconnect(room, existing, at)
    standing = standing_of(room, user_id, blocked_by_moderator=entry.blocked_by_moderator)
    refusal = refusal_for(Action.JOIN, standing)
    if refusal is not None:
        raise refusal(user_id=user_id)
    if not _admits(room, user_id, entry):
        if room.kind is RoomType.MEMBERS:
            raise ClubMembersOnlyError(user_id=user_id, club_id=room.club_id)
        raise NotAllowedInRoomError(user_id=user_id, kind=room.kind.value)
    if room.headcount >= room.capacity:
        raise RoomFullError(capacity=room.capacity)
    if user_id in room.hosts:
        # A co-host of the event: a moderator from the start, muted like everyone on stage.
        room.members[user_id] = Member(user_id=user_id, role=Role.MODERATOR, joined_at=at)
        added = ModeratorAdded(
            room_id=room.room_id,
            at=at,
            user_id=user_id,
            by_id=room.creator_id,
            previous_role=Role.LISTENER,
            muted=True,
        )
        return _record(room, [added])
    room.members[user_id] = Member(user_id=user_id, role=Role.LISTENER, joined_at=at)
    return _record(room, [MemberJoined(room_id=room.room_id, at=at, user_id=user_id)])


def leave(room: Room, user_id: str, at: datetime) -> list[Event]:
    """Leave for good; the last moderator leaving ends the room."""
    _require_live(room, at)
    member = _authorize(room, user_id, Action.LEAVE)
    return _record(room, _depart(room, member, LeaveReason.LEFT, at))


def disconnect(room: Room, user_id: str, at: datetime) -> list[Event]:
    """The connection dropped: keep the seat, role, hand and invitation for the grace period."""
    _require_live(room, at)
    member = _authorize(room, user_id, Action.DISCONNECT)
    if not member.connected:
        return []
    member.connected = False
    member.disconnected_at = at
    event = MemberDisconnected(room_id=room.room_id, at=at, user_id=user_id, role=member.role)
    return _record(room, [event])


def resume(room: Room, user_id: str, at: datetime) -> list[Event]:
    """Reconnect within the grace period, keeping everything."""
    _require_live(room, at)
    member = _authorize(room, user_id, Action.RESUME)
    return _reconnect(room, member, at)


# At most this many leaves per sweep: each is up to two items of one transaction (the row and
# the hallway's index), which holds 100. Everyone who dropped has a sweep of their own.
EXPIRE_BATCH: Final = 30


def expire_disconnected(
    room: Room, grace: timedelta, at: datetime, *, first: str | None = None
) -> list[Event]:
    """Turn those disconnected for longer than `grace` into leaves: `first` (the member whose
    sweep this is) if they are, then the others oldest first, EXPIRE_BATCH at most.

    A sweeper calls this; on an ended room there is nothing to sweep, so it returns no events
    rather than refusing.
    """
    _require_utc(at)
    if grace < timedelta(0):
        raise InvalidGraceError(grace_seconds=grace.total_seconds())
    if not room.is_live:
        return []
    expired = sorted(
        (
            m
            for m in room.members.values()
            if m.disconnected_at is not None and at - m.disconnected_at > grace
        ),
        key=lambda m: (m.user_id != first, m.disconnected_at, m.user_id),
    )
    events: list[Event] = []
    for member in expired[:EXPIRE_BATCH]:
        events.extend(_depart(room, member, LeaveReason.TIMED_OUT, at))
        if not room.is_live:
            break  # an ended room changes no further
    return _record(room, events)


def raise_hand(room: Room, user_id: str, at: datetime) -> list[Event]:
    _require_live(room, at)
    member = _authorize(room, user_id, Action.RAISE_HAND)
    if not room.hands_allowed:
        raise HandsClosedError(room_id=room.room_id)
    if member.hand_raised_at is not None:
        return []  # raising again must not move the hand to the back of the queue
    member.hand_raised_at = at
    return _record(room, [HandRaised(room_id=room.room_id, at=at, user_id=user_id)])


def lower_hand(room: Room, user_id: str, at: datetime) -> list[Event]:
    _require_live(room, at)
    member = _authorize(room, user_id, Action.LOWER_HAND)
    return _record(room, _clear_hand(room, member, at))


def set_hands_allowed(room: Room, actor_id: str, allowed: bool, at: datetime) -> list[Event]:
    """Turn hand raising on or off; turning it off lowers every raised hand, loaded or not,
    in O(1): it starts a new round of hands, and everyone is told (`HandsToggled`)."""
    _require_live(room, at)
    _authorize(room, actor_id, Action.SET_HANDS_ALLOWED)
    if room.hands_allowed == allowed:
        return []
    room.hands_allowed = allowed
    if not allowed:
        room.hands_round += 1
        for member in room.listeners():
            member.hand_raised_at = None
    toggled = HandsToggled(room_id=room.room_id, at=at, by_id=actor_id, allowed=allowed)
    return _record(room, [toggled])


def invite_to_speak(room: Room, actor_id: str, user_id: str, at: datetime) -> list[Event]:
    """A moderator asks a listener onto the stage; their hand need not be raised."""
    _require_live(room, at)
    _authorize(room, actor_id, Action.INVITE_TO_SPEAK)
    target = _target(room, user_id)
    if target.role is not Role.LISTENER:
        raise TargetNotAListenerError(user_id=user_id)
    if target.invited_to_speak_at is not None:
        return []
    target.invited_to_speak_at = at
    invited = SpeakerInvited(room_id=room.room_id, at=at, user_id=user_id, by_id=actor_id)
    return _record(room, [invited])


def accept_invitation(room: Room, user_id: str, at: datetime) -> list[Event]:
    """The invited listener steps onto the stage, muted, with their hand lowered."""
    _require_live(room, at)
    member = _authorize(room, user_id, Action.ACCEPT_INVITATION)
    if member.invited_to_speak_at is None:
        raise NoInvitationError(user_id=user_id)
    events = _clear_hand(room, member, at)
    member.invited_to_speak_at = None
    member.role = Role.SPEAKER
    member.muted = True
    events.append(InvitationAccepted(room_id=room.room_id, at=at, user_id=user_id, muted=True))
    return _record(room, events)


def decline_invitation(room: Room, user_id: str, at: datetime) -> list[Event]:
    """The invited listener stays in the audience; their hand, if raised, stays raised."""
    _require_live(room, at)
    member = _authorize(room, user_id, Action.DECLINE_INVITATION)
    if member.invited_to_speak_at is None:
        raise NoInvitationError(user_id=user_id)
    member.invited_to_speak_at = None
    return _record(room, [InvitationDeclined(room_id=room.room_id, at=at, user_id=user_id)])


def move_to_audience(room: Room, actor_id: str, user_id: str, at: datetime) -> list[Event]:
    """A moderator sends a speaker back to the audience (a moderator must be unmade first)."""
    _require_live(room, at)
    _authorize(room, actor_id, Action.MOVE_TO_AUDIENCE)
    target = _target(room, user_id)
    if target.role is not Role.SPEAKER:
        raise TargetNotASpeakerError(user_id=user_id)
    _to_audience(target)
    moved = MovedToAudience(room_id=room.room_id, at=at, user_id=user_id, by_id=actor_id)
    return _record(room, [moved])


def step_down(room: Room, user_id: str, at: datetime) -> list[Event]:
    """Someone on stage moves themselves to the audience; a moderator gives up moderating too."""
    _require_live(room, at)
    member = _authorize(room, user_id, Action.STEP_DOWN)
    events: list[Event] = []
    if member.role is Role.MODERATOR:
        if len(room.moderators()) == 1:
            raise LastModeratorError(user_id=user_id)
        events.append(ModeratorRemoved(room_id=room.room_id, at=at, user_id=user_id, by_id=user_id))
    _to_audience(member)
    events.append(MovedToAudience(room_id=room.room_id, at=at, user_id=user_id, by_id=user_id))
    return _record(room, events)


def mute(room: Room, actor_id: str, user_id: str, at: datetime) -> list[Event]:
    """Anyone on stage mutes themselves; a moderator may mute anyone on stage."""
    _require_live(room, at)
    action = Action.MUTE_SELF if actor_id == user_id else Action.MUTE_OTHER
    _authorize(room, actor_id, action)
    target = _target(room, user_id)
    if not target.role.on_stage:
        raise TargetNotOnStageError(user_id=user_id)
    if target.muted:
        return []
    target.muted = True
    muted = SpeakerMuted(room_id=room.room_id, at=at, user_id=user_id, by_id=actor_id)
    return _record(room, [muted])


def unmute(room: Room, actor_id: str, user_id: str, at: datetime) -> list[Event]:
    """Someone on stage unmutes themselves; nobody else may, moderators included.

    A microphone is never switched on remotely: that is what makes muting safe to trust.
    """
    _require_live(room, at)
    action = Action.UNMUTE_SELF if actor_id == user_id else Action.UNMUTE_OTHER
    member = _authorize(room, actor_id, action)
    if not member.muted:
        return []
    if len(room.publishers()) >= room.max_publishers:
        raise TooManyPublishersError(max_publishers=room.max_publishers)
    member.muted = False
    return _record(room, [SpeakerUnmuted(room_id=room.room_id, at=at, user_id=user_id)])


def make_moderator(room: Room, actor_id: str, user_id: str, at: datetime) -> list[Event]:
    """A speaker or listener becomes a moderator; a listener comes onto the stage muted."""
    _require_live(room, at)
    _authorize(room, actor_id, Action.MAKE_MODERATOR)
    target = _target(room, user_id)
    if target.role is Role.MODERATOR:
        raise AlreadyAModeratorError(user_id=user_id)
    previous_role = target.role
    events = _clear_hand(room, target, at)
    target.invited_to_speak_at = None
    target.role = Role.MODERATOR
    events.append(
        ModeratorAdded(
            room_id=room.room_id,
            at=at,
            user_id=user_id,
            by_id=actor_id,
            previous_role=previous_role,
            muted=target.muted,
        )
    )
    return _record(room, events)


def unmake_moderator(room: Room, actor_id: str, user_id: str, at: datetime) -> list[Event]:
    """A moderator (possibly oneself) becomes a speaker; the last moderator cannot be unmade."""
    _require_live(room, at)
    _authorize(room, actor_id, Action.UNMAKE_MODERATOR)
    target = _target(room, user_id)
    if target.role is not Role.MODERATOR:
        raise TargetNotAModeratorError(user_id=user_id)
    if len(room.moderators()) == 1:
        raise LastModeratorError(user_id=user_id)
    target.role = Role.SPEAKER
    removed = ModeratorRemoved(room_id=room.room_id, at=at, user_id=user_id, by_id=actor_id)
    return _record(room, [removed])


def remove_member(room: Room, actor_id: str, user_id: str, at: datetime) -> list[Event]:
    """A moderator removes anyone but themselves, other moderators included, for good."""
    _require_live(room, at)
    _authorize(room, actor_id, Action.REMOVE_MEMBER)
    if user_id == actor_id:
        raise CannotRemoveYourselfError(user_id=user_id)
    target = _target(room, user_id)
    events = _clear_hand(room, target, at)
    del room.members[user_id]
    room.removed.add(user_id)
    # A guest-list place would otherwise be a way back in.
    room.invited.discard(user_id)
    removed = MemberRemoved(
        room_id=room.room_id, at=at, user_id=user_id, by_id=actor_id, role=target.role
    )
    return _record(room, [*events, removed])


def invite_to_room(room: Room, actor_id: str, user_id: str, at: datetime) -> list[Event]:
    """A moderator adds someone to the guest list, which admits them whatever the room type."""
    _require_live(room, at)
    _authorize(room, actor_id, Action.INVITE_TO_ROOM)
    if user_id in room.removed:
        raise RemovedFromRoomError("That person was removed from this room.", user_id=user_id)
    if user_id in room.invited:
        return []
    room.invited.add(user_id)
    sent = RoomInvitationSent(room_id=room.room_id, at=at, user_id=user_id, by_id=actor_id)
    return _record(room, [sent])


def end_room(room: Room, actor_id: str, at: datetime) -> list[Event]:
    _require_live(room, at)
    _authorize(room, actor_id, Action.END_ROOM)
    return _record(room, [_end(room, at, EndReason.ENDED_BY_MODERATOR, actor_id)])


# --------------------------------------------------------------------------------------------
# Reading a room
# --------------------------------------------------------------------------------------------

_STAGE_ORDER: Final = {Role.MODERATOR: 0, Role.SPEAKER: 1, Role.LISTENER: 2}


def stage(room: Room) -> list[Member]:
    """Moderators first, then speakers, each in the order they joined the room."""
    on_stage = (m for m in room.members.values() if m.role.on_stage)
    return sorted(on_stage, key=lambda m: (_STAGE_ORDER[m.role], m.joined_at, m.user_id))


def raised_hands(room: Room) -> list[Member]:
    """Listeners with a raised hand, first raised first."""
    raised = [m for m in room.listeners() if m.hand_raised_at is not None]
    return sorted(raised, key=lambda m: (m.hand_raised_at, m.user_id))


def audience_page(
    room: Room, *, limit: int = DEFAULT_PAGE_SIZE, after: tuple[datetime, str] | None = None
) -> list[Member]:
    """Listeners in join order. `after` is the (joined_at, user_id) of the last one already seen,
    a cursor that stays valid when people leave."""
    if limit < 1:
        raise InvalidPageSizeError(limit=limit)
    ordered = sorted(room.listeners(), key=lambda m: (m.joined_at, m.user_id))
    if after is not None:
        ordered = [m for m in ordered if (m.joined_at, m.user_id) > after]
    return ordered[:limit]


def _stage_entry(member: Member) -> dict[str, object]:
    return {
        "user_id": member.user_id,
        "role": member.role.value,
        "muted": member.muted,
        "connected": member.connected,
    }


def snapshot(
    room: Room, viewer_id: str, *, page_size: int = DEFAULT_PAGE_SIZE
) -> dict[str, object]:
    """What `viewer_id` sees on opening the room, JSON-safe. Only moderators see raised hands."""
    first_page = audience_page(room, limit=page_size)
    audience_count = room.audience_count
    view: dict[str, object] = {
        "room_id": room.room_id,
        "title": room.title,
        "kind": room.kind.value,
        "club_id": room.club_id,
        "creator_id": room.creator_id,
        "created_at": room.created_at.isoformat(),
        "ended_at": room.ended_at.isoformat() if room.ended_at else None,
        "hands_allowed": room.hands_allowed,
        "capacity": room.capacity,
        "version": room.version,
        "stage": [_stage_entry(m) for m in stage(room)],
        "audience_count": audience_count,
        "audience": [{"user_id": m.user_id} for m in first_page],
        "audience_has_more": audience_count > len(first_page),
        "viewer": None,
    }
    viewer = room.members.get(viewer_id)
    if viewer is not None:
        view["viewer"] = {
            "user_id": viewer.user_id,
            "role": viewer.role.value,
            "muted": viewer.muted,
            "hand_raised": viewer.hand_raised_at is not None,
            "invited_to_speak": viewer.invited_to_speak_at is not None,
        }
        if viewer.role is Role.MODERATOR:
            view["raised_hands"] = [
                {"user_id": m.user_id, "raised_at": m.hand_raised_at.isoformat()}
                for m in raised_hands(room)
                if m.hand_raised_at is not None
            ]
    return view
