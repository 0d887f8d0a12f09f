"""The club rules on plain values: founding, invitations, leaving, removal, handing over, and
who may start a club room; and a members-only room at the door."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import clubs
from chalicelib.domain import rooms as rooms_domain
from chalicelib.domain.clubs import Club, ClubRole, Membership
from chalicelib.domain.errors import ValidationError

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


def club(**changes: object) -> Club:
    founded = clubs.found("c1", "ada", "Jazz", "Standards", False, 0, NOW)
    return replace(founded, **changes)  # type: ignore[arg-type]


def place(user_id: str, role: ClubRole | None = None, **changes: object) -> Membership:
    fields: dict[str, object] = {"since": NOW if role else None, **changes}
    return Membership("c1", user_id, role, **fields)  # type: ignore[arg-type]


ADA = place("ada", ClubRole.ADMIN)


def test_a_founder_is_the_clubs_one_admin_and_member() -> None:
    new = club()
    assert (new.admin_count, new.member_count, new.follower_count) == (1, 1, 0)
    assert new.founder_id == "ada" and new.status is clubs.ClubStatus.OPEN


def test_a_member_founds_at_most_five_open_clubs() -> None:
    clubs.found("c5", "ada", "Fifth", "", False, clubs.MAX_FOUNDED - 1, NOW)
    with pytest.raises(clubs.TooManyClubsError):
        clubs.found("c6", "ada", "Sixth", "", False, clubs.MAX_FOUNDED, NOW)


@pytest.mark.parametrize("name", ["", "   ", "x" * (clubs.MAX_NAME_LENGTH + 1)])
def test_a_club_has_a_name(name: str) -> None:
    with pytest.raises(ValidationError):
        clubs.found("c1", "ada", name, "", False, 0, NOW)


def test_only_an_admin_invites_and_the_invitee_accepts_or_declines() -> None:
    invited = clubs.invite(club(), ADA, place("bob"), NOW)
    assert (invited.role, invited.invited_by) == (ClubRole.INVITED, "ada")
    assert not invited.is_member
    assert clubs.invite(club(), ADA, invited, NOW) == invited  # asking again changes nothing
    with pytest.raises(clubs.NotAClubAdminError):
        clubs.invite(club(), place("cy", ClubRole.MEMBER), place("dee"), NOW)
    joined = clubs.accept(club(), invited, NOW + timedelta(minutes=1))
    assert joined.role is ClubRole.MEMBER and joined.is_member
    assert clubs.accept(club(), joined, NOW) == joined  # a retried accept
    assert clubs.decline(club(), invited).role is None
    with pytest.raises(clubs.NoClubInvitationError):
        clubs.accept(club(), place("eve"), NOW)


def test_a_member_is_not_invited_again() -> None:
    with pytest.raises(clubs.AlreadyAClubMemberError):
        clubs.invite(club(), ADA, place("bob", ClubRole.MEMBER), NOW)


def test_following_survives_leaving() -> None:
    left = clubs.leave(club(member_count=2), place("bob", ClubRole.MEMBER, following=True))
    assert left.role is None and left.following


def test_the_last_admin_cannot_leave_or_step_down_but_can_hand_over() -> None:
    with pytest.raises(clubs.LastClubAdminError):
        clubs.leave(club(), ADA)
    with pytest.raises(clubs.LastClubAdminError):
        clubs.set_role(club(), ADA, ADA, ClubRole.MEMBER)
    heir = clubs.set_role(club(member_count=2), ADA, place("bob", ClubRole.MEMBER), ClubRole.ADMIN)
    assert heir.is_admin
    assert clubs.leave(club(admin_count=2, member_count=2), ADA).role is None


def test_a_closed_clubs_last_admin_may_leave() -> None:
    closed = clubs.close(club(), ADA)
    assert closed.status is clubs.ClubStatus.CLOSED
    assert clubs.leave(closed, ADA).role is None
    with pytest.raises(clubs.ClubClosedError):
        clubs.invite(closed, ADA, place("bob"), NOW)


def test_admins_remove_members_and_invitations_but_not_admins() -> None:
    assert clubs.remove(club(), ADA, place("bob", ClubRole.MEMBER)).role is None
    assert clubs.remove(club(), ADA, place("cy", ClubRole.INVITED)).role is None
    with pytest.raises(clubs.ClubAdminTargetError):
        clubs.remove(club(admin_count=2), ADA, place("dee", ClubRole.ADMIN))
    with pytest.raises(clubs.NotAClubAdminError):
        clubs.remove(club(), place("bob", ClubRole.MEMBER), place("cy", ClubRole.MEMBER))
    with pytest.raises(clubs.NotAClubMemberError):
        clubs.remove(club(), ADA, place("eve"))


def test_a_club_has_at_most_ten_admins() -> None:
    with pytest.raises(clubs.TooManyClubAdminsError):
        clubs.set_role(
            club(admin_count=clubs.MAX_ADMINS), ADA, place("bob", ClubRole.MEMBER), ClubRole.ADMIN
        )


def test_who_starts_a_club_room_and_of_which_kind() -> None:
    assert clubs.room_kind(club(), ADA, "members") == rooms_domain.RoomType.MEMBERS.value
    member = place("bob", ClubRole.MEMBER)
    with pytest.raises(clubs.ClubRoomsForAdminsError):
        clubs.room_kind(club(), member, "open")
    assert clubs.room_kind(club(members_start_rooms=True), member, "closed") == "closed"
    with pytest.raises(clubs.NotAClubMemberError):
        clubs.room_kind(club(members_start_rooms=True), place("eve", following=True), "open")
    with pytest.raises(ValidationError):
        clubs.room_kind(club(), ADA, "social")


def test_the_successor_is_the_longest_standing_member() -> None:
    older = place("zed", ClubRole.MEMBER, since=NOW - timedelta(days=3))
    newer = place("amy", ClubRole.MEMBER, since=NOW - timedelta(days=1))
    assert clubs.successor([ADA, newer, older, place("fan", following=True)]) == older
    assert clubs.successor([ADA, place("fan", following=True)]) is None


# --- a members-only room at the door (chalicelib/domain/rooms.py) ----------------------------


def members_room() -> rooms_domain.Room:
    room, _ = rooms_domain.create_room(
        "r1", "ada", "Club night", rooms_domain.RoomType.MEMBERS, NOW, hosts={"bob"}, club_id="c1"
    )
    return room


def test_a_members_only_room_admits_club_members_and_refuses_others_with_its_code() -> None:
    room = members_room()
    entry = rooms_domain.EntryContext(followed_by_moderator=True, blocked_by_moderator=False)
    with pytest.raises(rooms_domain.ClubMembersOnlyError) as refused:
        rooms_domain.join(room, "eve", entry, NOW)
    assert refused.value.code == "club_members_only"
    member = replace(entry, club_member=True)
    [joined] = rooms_domain.join(room, "cy", member, NOW)
    assert isinstance(joined, rooms_domain.MemberJoined)
    assert room.members["cy"].role is rooms_domain.Role.LISTENER


def test_a_club_admin_enters_their_clubs_room_as_a_moderator() -> None:
    room = members_room()
    entry = rooms_domain.EntryContext(False, False, club_member=True)
    rooms_domain.join(room, "bob", entry, NOW)
    assert room.members["bob"].role is rooms_domain.Role.MODERATOR
    rooms_domain.join(room, "cy", entry, NOW)
    events = rooms_domain.remove_member(room, "bob", "cy", NOW)
    assert any(isinstance(e, rooms_domain.MemberRemoved) for e in events)


def test_only_a_clubs_room_is_for_members_only() -> None:
    with pytest.raises(ValidationError):
        rooms_domain.create_room("r2", "ada", "Nope", rooms_domain.RoomType.MEMBERS, NOW)
