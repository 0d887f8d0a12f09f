"""Clubs: recurring communities with admins, members and followers, and the rooms they hold.

Who may create one: any signed-in member, at most `MAX_FOUNDED` open clubs each (closing one
frees its place). Admins invite members (the invitee accepts or declines), promote and demote,
remove members and close the club; members leave; anyone follows. A club always has an admin:
the last one cannot leave or step down (hand over first, or close the club).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from chalicelib.domain.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError

MAX_FOUNDED = 5
MAX_ADMINS = 10  # every admin is a moderator of the club's rooms (the room item lists them)
MAX_NAME_LENGTH = 60
MAX_DESCRIPTION_LENGTH = 500
# A club room is open (anyone), for the club's members only, or closed (the guest list): the
# values of chalicelib.domain.rooms.RoomType it may have.
ROOM_KINDS = ("open", "members", "closed")


class ClubStatus(Enum):
    OPEN = "open"
    CLOSED = "closed"


class ClubRole(Enum):
    ADMIN = "admin"
    MEMBER = "member"
    INVITED = "invited"  # asked in by an admin; not a member until they accept

    @property
    def is_member(self) -> bool:
        return self is not ClubRole.INVITED


class ClubNotFoundError(NotFoundError):
    code = "club_not_found"
    default_message = "There is no such club."


class ClubClosedError(ConflictError):
    code = "club_closed"
    default_message = "The club is closed."


class TooManyClubsError(ConflictError):
    code = "too_many_clubs"
    default_message = f"A member can found at most {MAX_FOUNDED} open clubs."


class NotAClubAdminError(ForbiddenError):
    code = "not_club_admin"
    default_message = "Only the club's admins can do that."


class NotAClubMemberError(ForbiddenError):
    code = "not_club_member"
    default_message = "Only the club's members can do that."


class AlreadyAClubMemberError(ConflictError):
    code = "already_club_member"
    default_message = "They are already a member of the club."


class NoClubInvitationError(ConflictError):
    code = "no_club_invitation"
    default_message = "There is no invitation to this club to answer."


class LastClubAdminError(ConflictError):
    code = "last_club_admin"
    default_message = "A club needs an admin: make another member admin first, or close the club."


class ClubAdminTargetError(ConflictError):
    code = "club_target_is_admin"
    default_message = "An admin is made a member again before they can be removed."


class TooManyClubAdminsError(ConflictError):
    code = "too_many_club_admins"
    default_message = f"A club has at most {MAX_ADMINS} admins."


class ClubRoomsForAdminsError(ForbiddenError):
    code = "club_rooms_admins_only"
    default_message = "In this club only admins start rooms."


@dataclass(frozen=True)
class Club:
    club_id: str
    name: str
    description: str
    founder_id: str
    created_at: datetime
    # Whether members (not only admins) may start the club's rooms.
    members_start_rooms: bool = False
    status: ClubStatus = ClubStatus.OPEN
    admin_count: int = 1
    member_count: int = 1  # admins included
    follower_count: int = 0
    # Rooms of the club that were live when last started (ended ones are filtered on read).
    live_room_ids: frozenset[str] = frozenset()
    version: int = 1


@dataclass(frozen=True)
class Membership:
    """One person's place in one club: a role (or none) and whether they follow it."""

    club_id: str
    user_id: str
    role: ClubRole | None = None
    following: bool = False
    invited_by: str | None = None
    since: datetime | None = None  # when they became a member (or were invited)

    @property
    def is_member(self) -> bool:
        return self.role is not None and self.role.is_member

    @property
    def is_admin(self) -> bool:
        return self.role is ClubRole.ADMIN


def _text(value: str, field: str, low: int, high: int) -> str:
    clean = value.strip()
    if not low <= len(clean) <= high:
        raise ValidationError(f"{field} has {low} to {high} characters.", field=field)
    return clean


def found(
    club_id: str,
    founder_id: str,
    name: str,
    description: str,
    members_start_rooms: bool,
    founded_open: int,
    now: datetime,
) -> Club:
    """A new club with its founder as its one admin (and member)."""
    if founded_open >= MAX_FOUNDED:
        raise TooManyClubsError()
    return Club(
        club_id=club_id,
        name=_text(name, "name", 1, MAX_NAME_LENGTH),
        description=_text(description, "description", 0, MAX_DESCRIPTION_LENGTH),
        founder_id=founder_id,
        created_at=now,
        members_start_rooms=members_start_rooms,
    )


def _require_open(club: Club) -> None:
    if club.status is not ClubStatus.OPEN:
        raise ClubClosedError()


def _require_admin(club: Club, actor: Membership) -> None:
    _require_open(club)
    if not actor.is_admin:
        raise NotAClubAdminError()


def invite(club: Club, actor: Membership, target: Membership, now: datetime) -> Membership:
    """An admin asks someone in; asking again changes nothing."""
    _require_admin(club, actor)
    if target.is_member:
        raise AlreadyAClubMemberError()
    if target.role is ClubRole.INVITED:
        return target
    return replace(target, role=ClubRole.INVITED, invited_by=actor.user_id, since=now)


def accept(club: Club, me: Membership, now: datetime) -> Membership:
    _require_open(club)
    if me.is_member:
        return me  # a retried accept
    if me.role is not ClubRole.INVITED:
        raise NoClubInvitationError()
    # Who invited them mattered while it was pending; a member's place does not keep it.
    return replace(me, role=ClubRole.MEMBER, invited_by=None, since=now)


def decline(club: Club, me: Membership) -> Membership:
    if me.role is not ClubRole.INVITED:
        raise NoClubInvitationError()
    return replace(me, role=None, invited_by=None, since=None)


def leave(club: Club, me: Membership) -> Membership:
    """A member leaves (they still follow, if they did); the last admin cannot."""
    if not me.is_member:
        raise NotAClubMemberError()
    if me.is_admin and club.admin_count <= 1 and club.status is ClubStatus.OPEN:
        raise LastClubAdminError()
    return replace(me, role=None, invited_by=None, since=None)


def remove(club: Club, actor: Membership, target: Membership) -> Membership:
    """An admin removes a member, or withdraws an invitation."""
    _require_admin(club, actor)
    if target.is_admin:
        raise ClubAdminTargetError()
    if target.role is None:
        raise NotAClubMemberError("They are not a member of the club.")
    return replace(target, role=None, invited_by=None, since=None)


def set_role(club: Club, actor: Membership, target: Membership, role: ClubRole) -> Membership:
    """An admin makes a member an admin (handing over), or an admin a member again."""
    _require_admin(club, actor)
    if not target.is_member or role is ClubRole.INVITED:
        raise NotAClubMemberError("Only members can be made admins.")
    if target.role is role:
        return target
    if role is ClubRole.ADMIN and club.admin_count >= MAX_ADMINS:
        raise TooManyClubAdminsError()
    if role is ClubRole.MEMBER and club.admin_count <= 1:
        raise LastClubAdminError()
    return replace(target, role=role)


def close(club: Club, actor: Membership) -> Club:
    _require_admin(club, actor)
    return replace(club, status=ClubStatus.CLOSED, live_room_ids=frozenset())


def room_kind(club: Club, me: Membership, kind: str) -> str:
    """Who may start a club room: an admin, or a member if the club lets members."""
    _require_open(club)
    if not me.is_member:
        raise NotAClubMemberError()
    if not me.is_admin and not club.members_start_rooms:
        raise ClubRoomsForAdminsError()
    if kind not in ROOM_KINDS:
        raise ValidationError("A club room is open, members or closed.", field="kind")
    return kind


def successor(candidates: list[Membership]) -> Membership | None:
    """Who takes over a club whose last admin goes: its longest-standing member."""
    members = [m for m in candidates if m.is_member and not m.is_admin]
    if not members:
        return None
    return min(members, key=lambda m: (m.since.timestamp() if m.since else 0.0, m.user_id))
