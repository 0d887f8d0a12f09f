"""Clubs and everyone's place in them, in DynamoDB: each change of a place moves the club's
counts in the same transaction, conditioned on what was read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.adapters.dynamo.models import ClubMemberModel, ClubModel, UserModel
from chalicelib.adapters.dynamo.paging import decode_cursor, read_page
from chalicelib.adapters.dynamo.tx import condition_failed, transaction
from chalicelib.domain.clubs import (
    MAX_ADMINS,
    MAX_FOUNDED,
    Club,
    ClubNotFoundError,
    ClubRole,
    ClubStatus,
    Membership,
    TooManyClubsError,
)
from chalicelib.domain.errors import ConflictError, ValidationError

OPEN = ClubStatus.OPEN.value
# The hallway and a member's list read this many of their clubs (one Query page).
CLUBS_READ = 100


class ClubChangedError(ConflictError):
    code = "club_changed"
    default_message = "The club changed at the same moment; try again."


class _ClubRefused(Exception):
    """The club's own condition failed: the caller reads it again and asks the rule."""


def _club(row: ClubModel) -> Club:
    return Club(
        club_id=row.club_id,
        name=row.name,
        description=row.description or "",
        founder_id=row.founder_id,
        created_at=row.created_at,
        members_start_rooms=bool(row.members_start_rooms),
        status=ClubStatus(row.status),
        admin_count=int(row.admin_count or 0),
        member_count=int(row.member_count or 0),
        follower_count=int(row.follower_count or 0),
        live_room_ids=frozenset(row.live_room_ids or ()),
        version=int(row.revision),
    )


def _membership(row: ClubMemberModel) -> Membership:
    return Membership(
        club_id=row.club_id,
        user_id=row.user_id,
        role=ClubRole(row.role) if row.role else None,
        following=bool(row.following),
        invited_by=row.invited_by,
        since=row.since,
    )


def _iso(at: datetime | None) -> str:
    return (at or datetime.fromtimestamp(0, UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def roster_key(m: Membership) -> str | None:
    """Admins, then invitations, then members; each in order of seniority."""
    return f"{m.role.value}#{_iso(m.since)}#{m.user_id}" if m.role else None


def _row_matches(before: Membership) -> Any:
    if before.role is None and not before.following:
        return ClubMemberModel.user_id.does_not_exist()
    role = (
        ClubMemberModel.role == before.role.value
        if before.role
        else ClubMemberModel.role.does_not_exist()
    )
    return role & (ClubMemberModel.following == before.following)


def _role_and_user(row: ClubMemberModel) -> tuple[ClubRole, str]:
    return ClubRole(row.roster_key.split("#")[0]), row.user_id


def _counts(m: Membership) -> tuple[int, int, int]:
    return (int(m.is_admin), int(m.is_member), int(m.following))


class ClubRepository:
    def create(self, club: Club, founder: Membership) -> None:
        """The club, its founder's place as admin, and one more club founded on their row, at
        most MAX_FOUNDED (the same transaction: parallel creations cannot pass it)."""
        try:
            with transaction() as tx:
                tx.save(
                    ClubModel(
                        club.club_id,
                        name=club.name,
                        description=club.description,
                        founder_id=club.founder_id,
                        created_at=club.created_at,
                        members_start_rooms=club.members_start_rooms,
                        status=club.status.value,
                        admin_count=1,
                        member_count=1,
                        follower_count=0,
                        revision=1,
                    ),
                    condition=ClubModel.club_id.does_not_exist(),
                )
                tx.save(self._row(founder), condition=ClubMemberModel.user_id.does_not_exist())
                tx.update(
                    UserModel(club.founder_id),
                    actions=[UserModel.clubs_founded.add(1)],
                    condition=UserModel.user_id.exists()
                    & (
                        UserModel.clubs_founded.does_not_exist()
                        | (UserModel.clubs_founded < MAX_FOUNDED)
                    ),
                )
        except TransactWriteError as error:
            if tx.failed(error)[2]:
                raise TooManyClubsError() from error
            raise

    def get(self, club_id: str) -> Club:
        try:
            return _club(ClubModel.get(club_id, consistent_read=True))
        except ClubModel.DoesNotExist as exc:
            raise ClubNotFoundError() from exc

    def many(self, club_ids: Iterable[str]) -> dict[str, Club]:
        ids = sorted(set(club_ids))
        return {row.club_id: _club(row) for row in ClubModel.batch_get(ids)} if ids else {}

    def membership(self, club_id: str, user_id: str) -> Membership:
        try:
            return _membership(ClubMemberModel.get(club_id, user_id, consistent_read=True))
        except ClubMemberModel.DoesNotExist:
            return Membership(club_id, user_id)

    def of_user(self, user_id: str, limit: int = CLUBS_READ) -> list[Membership]:
        """The clubs they belong to, are invited to or follow (one Query page)."""
        return [_membership(r) for r in ClubMemberModel.by_user.query(user_id, limit=limit)]

    def all_of_user(self, user_id: str) -> list[Membership]:
        return [_membership(r) for r in ClubMemberModel.by_user.query(user_id)]

    def roster(
        self, club_id: str, limit: int, cursor: str | None, invitations: bool
    ) -> tuple[list[Any], str | None]:
        """(role, user id) of admins, invitations (if asked for) and members, in that order.

        Without the invitations, the admins' rows then the members' are read, each by its own
        key range, so that no page stops on an invitation's row: a cursor (the last row read)
        never names who is invited, nor when."""
        start = decode_cursor(cursor)
        if invitations:
            rows = ClubMemberModel.roster.query(club_id, limit=limit, last_evaluated_key=start)
            return read_page(rows, _role_and_user)
        roles = [ClubRole.ADMIN, ClubRole.MEMBER]
        if start is not None:
            at = str(start.get("roster_key", {}).get("S", "")).split("#")[0]
            if at not in {r.value for r in roles}:
                raise ValidationError("That cursor is not valid.", field="cursor")
            roles = roles[roles.index(ClubRole(at)) :]
        items: list[Any] = []
        for role in roles:
            rows = ClubMemberModel.roster.query(
                club_id,
                ClubMemberModel.roster_key.startswith(f"{role.value}#"),
                limit=limit - len(items),
                last_evaluated_key=start,
            )
            page, next_cursor = read_page(rows, _role_and_user)
            items += page
            if next_cursor is not None:  # the page is full (its last row: an admin or a member)
                return items, next_cursor
            start = None
        return items, None

    def admin_ids(self, club_id: str) -> set[str]:
        """The club's admins (at most MAX_ADMINS: one Query page)."""
        rows = ClubMemberModel.roster.query(
            club_id, ClubMemberModel.roster_key.startswith("admin#"), limit=MAX_ADMINS
        )
        return {r.user_id for r in rows}

    def senior_member(self, club_id: str) -> str | None:
        """The longest-standing member who is not an admin (who takes over a club)."""
        rows = ClubMemberModel.roster.query(
            club_id, ClubMemberModel.roster_key.startswith("member#"), limit=1
        )
        return next((r.user_id for r in rows), None)

    def change(self, club: Club, before: Membership, after: Membership) -> None:
        """Save one place's change with the club's counts, conditioned on the place as read and
        on the club allowing it (an admin fewer leaves one; one more stays within the cap; a
        role is gained only in an open club). Raises ClubChangedError if either moved."""
        admins, members, followers = (
            a - b for a, b in zip(_counts(after), _counts(before), strict=True)
        )
        condition = ClubModel.club_id.exists()
        if admins < 0:
            condition &= (ClubModel.admin_count > 1) | (ClubModel.status != OPEN)
        if admins > 0:
            condition &= ClubModel.admin_count < MAX_ADMINS
        gained = after.role is not None and after.role is not before.role
        if gained:
            condition &= ClubModel.status == OPEN
        actions = [
            getattr(ClubModel, name).add(delta)
            for name, delta in (
                ("admin_count", admins),
                ("member_count", members),
                ("follower_count", followers),
            )
            if delta
        ]
        try:
            with transaction() as tx:
                if after.role is None and not after.following:
                    tx.delete(ClubMemberModel(before.club_id, before.user_id), _row_matches(before))
                else:
                    tx.save(self._row(after), condition=_row_matches(before))
                if actions:
                    tx.update(ClubModel(club.club_id), actions=actions, condition=condition)
                else:
                    tx.condition_check(ClubModel, club.club_id, condition=condition)
        except TransactWriteError as error:
            raise ClubChangedError() from error

    def close(self, club: Club, founder_present: bool) -> None:
        """Closed once; the founder gets their place back (if they are still a member)."""
        try:
            with transaction() as tx:
                tx.update(
                    ClubModel(club.club_id),
                    actions=[
                        ClubModel.status.set(ClubStatus.CLOSED.value),
                        ClubModel.live_room_ids.remove(),
                        ClubModel.revision.add(1),
                    ],
                    condition=ClubModel.status == OPEN,
                )
                if founder_present:
                    tx.update(
                        UserModel(club.founder_id),
                        actions=[UserModel.clubs_founded.add(-1)],
                        condition=UserModel.clubs_founded > 0,
                    )
        except TransactWriteError as error:
            raise ClubChangedError() from error

    def add_live_room(self, club_id: str, room_id: str, ended: Iterable[str]) -> None:
        """A room started in the club; rooms that ended since the last start are pruned."""
        gone = set(ended) - {room_id}
        try:
            ClubModel(club_id).update(
                actions=[ClubModel.live_room_ids.add({room_id})],
                condition=ClubModel.status == OPEN,
            )
        except UpdateError as error:
            if condition_failed(error):
                return  # closed at the same moment: the room runs, unlisted
            raise
        if gone:
            ClubModel(club_id).update(actions=[ClubModel.live_room_ids.delete(gone)])

    def _row(self, m: Membership) -> ClubMemberModel:
        return ClubMemberModel(
            m.club_id,
            m.user_id,
            role=m.role.value if m.role else None,
            following=m.following,
            invited_by=m.invited_by,
            since=m.since,
            roster_key=roster_key(m),
        )
