"""Club use cases: found, invite, answer, leave, remove, hand over, follow, close, start a room,
and erase a member's places (account deletion)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from chalicelib.adapters.dynamo.clubs import ClubChangedError, ClubRepository
from chalicelib.adapters.dynamo.connections import ConnectionRecord
from chalicelib.adapters.dynamo.identity import IdentityRepository
from chalicelib.domain import clubs as domain
from chalicelib.domain.clubs import Club, ClubRole, ClubStatus, Membership
from chalicelib.domain.identity import BlockedError, MemberNotFoundError
from chalicelib.services.rooms import Rooms

logger = logging.getLogger("salon.clubs")

ATTEMPTS = 3
Rule = Callable[[Club, Membership], Membership]


@dataclass
class Clubs:
    repo: ClubRepository
    people: IdentityRepository
    rooms: Rooms
    clock: Callable[[], datetime]
    new_id: Callable[[], str]

    # --- founding and closing ---------------------------------------------------------------

    def create(self, user_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        club = domain.found(
            self.new_id(),
            user_id,
            fields["name"],
            fields.get("description") or "",
            bool(fields.get("members_start_rooms", False)),
            0,  # the cap itself is a condition on the founder's row, in the same transaction
            now,
        )
        founder = Membership(club.club_id, user_id, ClubRole.ADMIN, since=now)
        self.repo.create(club, founder)
        logger.info("club founded", extra={"club_id": club.club_id})
        return self.view(user_id, club.club_id)

    def close(self, user_id: str, club_id: str) -> dict[str, Any]:
        club = self.repo.get(club_id)
        if club.status is ClubStatus.CLOSED:
            return self.view(user_id, club_id)
        domain.close(club, self.repo.membership(club_id, user_id))
        self._close(club)
        return self.view(user_id, club_id)

    def _close(self, club: Club) -> None:
        try:
            self.repo.close(club, founder_present=bool(self.people.profiles([club.founder_id])))
        except ClubChangedError:
            if self.repo.get(club.club_id).status is not ClubStatus.CLOSED:
                raise
        logger.info("club closed", extra={"club_id": club.club_id})

    # --- places -----------------------------------------------------------------------------

    def invite(self, user_id: str, club_id: str, target_id: str) -> dict[str, Any]:
        if target_id not in self.people.profiles([target_id]):
            raise MemberNotFoundError(field="user_id")
        if self.people.blocked_either_way(user_id, [target_id]):
            raise BlockedError()
        self._change(
            club_id,
            target_id,
            lambda club, target: domain.invite(
                club, self.repo.membership(club_id, user_id), target, self.clock()
            ),
        )
        return self.view(user_id, club_id)

    def accept(self, user_id: str, club_id: str) -> dict[str, Any]:
        self._change(club_id, user_id, lambda club, me: domain.accept(club, me, self.clock()))
        return self.view(user_id, club_id)

    def leave(self, user_id: str, club_id: str) -> dict[str, Any]:
        """Leave the club, or decline its pending invitation."""

        def rule(club: Club, me: Membership) -> Membership:
            if me.role is ClubRole.INVITED:
                return domain.decline(club, me)
            return domain.leave(club, me)

        self._change(club_id, user_id, rule)
        return self.view(user_id, club_id)

    def remove(self, user_id: str, club_id: str, target_id: str) -> dict[str, Any]:
        self._change(
            club_id,
            target_id,
            lambda club, target: domain.remove(
                club, self.repo.membership(club_id, user_id), target
            ),
        )
        return self.view(user_id, club_id)

    def set_role(self, user_id: str, club_id: str, target_id: str, role: str) -> dict[str, Any]:
        self._change(
            club_id,
            target_id,
            lambda club, target: domain.set_role(
                club, self.repo.membership(club_id, user_id), target, ClubRole(role)
            ),
        )
        return self.view(user_id, club_id)

    def follow(self, user_id: str, club_id: str, following: bool) -> dict[str, Any]:
        def rule(club: Club, me: Membership) -> Membership:
            if following and club.status is not ClubStatus.OPEN:
                raise domain.ClubClosedError()
            return replace(me, following=following)

        self._change(club_id, user_id, rule)
        return self.view(user_id, club_id)

    def _change(self, club_id: str, user_id: str, rule: Rule) -> Membership:
        """Read, ask the rule, save conditioned on what was read; a race reads again (the
        loser then gets the rule's own answer on the new state)."""
        for attempt in range(ATTEMPTS):
            club = self.repo.get(club_id)
            before = self.repo.membership(club_id, user_id)
            after = rule(club, before)
            if after == before:
                return after
            try:
                self.repo.change(club, before, after)
                return after
            except ClubChangedError:
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    # --- rooms ------------------------------------------------------------------------------

    def start_room(
        self, who: ConnectionRecord, club_id: str, title: str, kind: str
    ) -> dict[str, Any]:
        """A club room: its admins moderate it (they enter as moderators, as an event's hosts
        do), and a members-only room admits the club's members."""
        club = self.repo.get(club_id)
        room_kind = domain.room_kind(club, self.repo.membership(club_id, who.user_id), kind)
        admins = self.admin_ids(club_id)
        view = self.rooms.create(who, title, room_kind, hosts=admins, club_id=club_id)
        live = {s.room_id for s in self.rooms.repo.summaries(club.live_room_ids)}
        self.repo.add_live_room(club_id, view["room_id"], club.live_room_ids - live)
        return view

    def admin_ids(self, club_id: str) -> set[str]:
        return self.repo.admin_ids(club_id)

    def is_member(self, club_id: str, user_id: str) -> bool:
        return self.repo.membership(club_id, user_id).is_member

    # --- reading ----------------------------------------------------------------------------

    def mine(self, user_id: str) -> dict[str, Any]:
        """The clubs the member belongs to, is invited to, or follows (the first 100)."""
        places = self.repo.of_user(user_id)
        clubs = self.repo.many(p.club_id for p in places)
        items = [
            {**self._public(clubs[p.club_id]), "me": _place(p)}
            for p in places
            if p.club_id in clubs
        ]
        items.sort(key=lambda c: (c["status"] != "open", c["name"].lower(), c["club_id"]))
        return {"items": items}

    def view(self, user_id: str, club_id: str) -> dict[str, Any]:
        club = self.repo.get(club_id)
        me = self.repo.membership(club_id, user_id)
        live = self.rooms.repo.summaries(club.live_room_ids)
        return {
            **self._public(club),
            "me": _place(me),
            "live_rooms": [
                {
                    "room_id": r.room_id,
                    "title": r.title,
                    "kind": r.kind.value,
                    "listener_count": r.listener_count,
                }
                for r in sorted(live, key=lambda r: r.created_at)
            ],
        }

    def members(self, user_id: str, club_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """Admins, then members (and, for admins, pending invitations), with their names."""
        self.repo.get(club_id)
        viewer_is_admin = self.repo.membership(club_id, user_id).is_admin
        shown, next_cursor = self.repo.roster(club_id, limit, cursor, invitations=viewer_is_admin)
        profiles = self.people.profiles(u for _, u in shown)
        return {
            "items": [
                {
                    "user_id": uid,
                    "username": p.username,
                    "name": p.name,
                    "photo_url": p.photo_url,
                    "role": role.value,
                }
                for role, uid in shown
                if (p := profiles.get(uid)) is not None
            ],
            "cursor": next_cursor,
        }

    def places_of(self, user_id: str) -> list[Membership]:
        """The hallway's view of the member's clubs (one Query page)."""
        return self.repo.of_user(user_id)

    def _public(self, club: Club) -> dict[str, Any]:
        return {
            "club_id": club.club_id,
            "name": club.name,
            "description": club.description,
            "status": club.status.value,
            "created_at": club.created_at.isoformat(),
            "members_start_rooms": club.members_start_rooms,
            "admin_count": club.admin_count,
            "member_count": club.member_count,
            "follower_count": club.follower_count,
        }

    # --- account deletion -------------------------------------------------------------------

    def erase(self, user_id: str) -> None:
        """Every place of the member goes: follows, invitations, memberships. A club they were
        the last admin of passes to its longest-standing member, or closes if it has none."""
        for place in self.repo.all_of_user(user_id):
            if place.is_admin:
                self._hand_over(place)
            self._change(
                place.club_id,
                user_id,
                lambda club, me: (
                    Membership(me.club_id, me.user_id)
                    if not me.is_admin or club.admin_count > 1 or club.status is ClubStatus.CLOSED
                    else domain.leave(club, me)
                ),
            )

    def _hand_over(self, place: Membership) -> None:
        club = self.repo.get(place.club_id)
        if club.status is not ClubStatus.OPEN or club.admin_count > 1:
            return
        heir = self.repo.senior_member(club.club_id)
        if heir is None:
            self._close(club)
            return
        self._change(
            club.club_id,
            heir,
            lambda club, target: (
                replace(target, role=ClubRole.ADMIN) if target.role is ClubRole.MEMBER else target
            ),
        )
        logger.info("club handed over", extra={"club_id": club.club_id})


def _place(m: Membership) -> dict[str, Any]:
    return {"role": m.role.value if m.role else None, "following": m.following}
