"""A member's account as a whole: deleting it (confirmed by a fresh code) and exporting
everything Salon holds about them.

Erasure is one list of steps (`Account.erasure_steps`), run in order; each removes one kind of
personal data and is safe to run again, so a deletion that failed halfway is finished by
asking again. A new kind of personal data gets its step here, and its table a check in
tests/integration/test_account_lifecycle.py (the scan of every table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from chalicelib.adapters.connections import Connections
from chalicelib.adapters.dynamo.connections import ConnectionRecord, ConnectionRepository
from chalicelib.adapters.dynamo.identity import BLOCKS, FOLLOWS
from chalicelib.adapters.dynamo.money import Entry, MoneyRepository, Tip
from chalicelib.adapters.dynamo.paging import Page
from chalicelib.adapters.dynamo.program import ProgramRepository
from chalicelib.adapters.dynamo.safety import SafetyRepository
from chalicelib.adapters.stripe_gateway import StripeGateway
from chalicelib.config import Settings
from chalicelib.domain.identity import Profile
from chalicelib.domain.moderation import Report
from chalicelib.services.identity import Identity

logger = logging.getLogger("salon.account")

PAGE = 100
ErasureStep = Callable[[Profile, datetime], None]


@dataclass
class Account:
    identity: Identity
    connections: ConnectionRepository
    poster: Connections
    money: MoneyRepository
    program: ProgramRepository
    safety: SafetyRepository
    stripe: StripeGateway
    settings: Settings
    clock: Callable[[], datetime]
    # Removes a member's push devices, their SNS endpoints and push settings
    # (Notifications.forget): the device tokens live only in SNS.
    forget_push: Callable[[str], None]
    # Removes the member's RSVPs and takes them out of the events they host (Events.forget):
    # one they host alone is cancelled, a co-hosted one goes on without them.
    forget_events: Callable[[str], None]
    # Deletes the member's photo object from the photos bucket (Photos.erase).
    erase_photo: Callable[[str], None]
    # Takes a socket out of its room by the leave rules (Rooms.leave): moderation is handed
    # over, or the room ends.
    leave_room: Callable[[ConnectionRecord], object]
    # Takes the member out of every club (Clubs.erase): follows, invitations, memberships; a
    # club they were the last admin of passes to its longest-standing member, or closes.
    erase_clubs: Callable[[str], None]

    # --- deletion ---------------------------------------------------------------------------

    def request_deletion_code(self, user_id: str) -> dict[str, Any]:
        return self.identity.send_confirmation_code(user_id)

    def delete(self, user_id: str, code: str) -> None:
        """Erase the member, once their fresh code checks out."""
        self.identity.confirm_code(user_id, code)
        profile = self.identity.repo.profile(user_id)
        now = self.clock()
        for name, step in self.erasure_steps():
            step(profile, now)
            logger.info("erasure step done", extra={"user_id": user_id, "step": name})
        logger.info("account deleted", extra={"user_id": user_id})

    def erasure_steps(self) -> list[tuple[str, ErasureStep]]:
        """What deleting an account removes, in order: first what lets them act (sessions,
        sockets, rooms), then what others see, then the records that name them, the profile
        last (a deletion that stops halfway can be asked for again). The ledger, tips,
        enrollments and payouts stay, keyed by the user id alone: money records must be kept,
        and once the profile is gone that random id names nobody."""
        return [
            ("sessions", self._end_sessions),
            ("sockets", self._close_sockets),
            ("clubs", lambda profile, now: self.erase_clubs(profile.user_id)),
            ("follows", self._drop_follows),
            ("blocks", self._drop_blocks),
            ("invitations", self._forget_invitations),
            ("events", lambda profile, now: self.forget_events(profile.user_id)),
            ("push_devices", lambda profile, now: self.forget_push(profile.user_id)),
            ("payments", self._close_payments),
            ("creator_program", self._drop_application),
            ("sign_in_code", self._drop_code),
            ("photo", lambda profile, now: self.erase_photo(profile.user_id)),
            ("username", self._quarantine_username),
            ("phone", self._drop_phone),
            ("profile", self._drop_profile),
        ]

    def _end_sessions(self, profile: Profile, now: datetime) -> None:
        for session_id in self.identity.repo.sessions_of(profile.user_id):
            self.identity.repo.delete_session(session_id)

    def _close_sockets(self, profile: Profile, now: datetime) -> None:
        """Leave every room now, by the leave rules (moderation handed over, or the room ends),
        while the profile still exists; then close every socket."""
        for connection_id in self.connections.for_user(profile.user_id):
            record = self.connections.get(connection_id, now)
            if record is not None and record.room_id:
                self.leave_room(record)
            self.poster.close(connection_id)

    def _drop_follows(self, profile: Profile, now: datetime) -> None:
        repo = self.identity.repo
        for other in _all(lambda c: repo.outgoing(profile.user_id, FOLLOWS, PAGE, c)):
            repo.unfollow(profile.user_id, other)
        for other in _all(lambda c: repo.incoming(profile.user_id, FOLLOWS, PAGE, c)):
            repo.unfollow(other, profile.user_id)

    def _drop_blocks(self, profile: Profile, now: datetime) -> None:
        repo = self.identity.repo
        for other in _all(lambda c: repo.outgoing(profile.user_id, BLOCKS, PAGE, c)):
            repo.unblock(profile.user_id, other)
        for other in _all(lambda c: repo.incoming(profile.user_id, BLOCKS, PAGE, c)):
            repo.remove_block_of(other, profile.user_id)

    def _forget_invitations(self, profile: Profile, now: datetime) -> None:
        for phone in self.identity.repo.invited_numbers(profile.user_id):
            self.identity.repo.forget_inviter(phone, profile.user_id)

    def _close_payments(self, profile: Profile, now: datetime) -> None:
        """The Stripe customer (saved cards) goes; a creator's connected account is deleted
        (kept while Stripe still holds a balance for it) and takes no more tips or stipends."""
        customer = self.money.customer(profile.user_id)
        if customer is not None:
            self.stripe.delete_customer(customer[0])
            self.money.delete_customer(profile.user_id)
        self.money.remove_from_beta(profile.user_id)
        account = self.money.creator(profile.user_id)
        if account is not None:
            self.money.close_account(profile.user_id)
            if not self.stripe.close_account(account.stripe_account_id):
                logger.warning(
                    "connected account kept until its balance is paid out",
                    extra={"user_id": profile.user_id},
                )

    def _drop_application(self, profile: Profile, now: datetime) -> None:
        self.program.delete_application(profile.user_id)

    def _drop_code(self, profile: Profile, now: datetime) -> None:
        self.identity.repo.delete_code(self.identity.code_ref(profile.phone))

    def _quarantine_username(self, profile: Profile, now: datetime) -> None:
        until = now + timedelta(days=self.settings.username_quarantine_days)
        self.identity.repo.quarantine_username(profile.username, profile.user_id, until)

    def _drop_phone(self, profile: Profile, now: datetime) -> None:
        self.identity.repo.delete_phone(profile.phone, profile.user_id)

    def _drop_profile(self, profile: Profile, now: datetime) -> None:
        self.identity.repo.delete_member(profile.user_id)

    # --- export -----------------------------------------------------------------------------

    def export(self, user_id: str) -> dict[str, Any]:
        """Everything Salon holds about the member (GDPR Articles 15 and 20), as one document."""
        repo = self.identity.repo
        me = self.identity.me(user_id)
        tips_sent = _pages(lambda c: self.money.tips_sent(user_id, PAGE, c), Tip.to_dict)
        received = _pages(lambda c: self.money.earnings(user_id, PAGE, c), Entry.to_dict)
        reports = _pages(lambda c: self.safety.reports_by(user_id, PAGE, c), Report.for_reporter)
        return {
            "exported_at": self.clock().isoformat(),
            "profile": me,
            "following": list(_all(lambda c: repo.outgoing(user_id, FOLLOWS, PAGE, c))),
            "followers": list(_all(lambda c: repo.incoming(user_id, FOLLOWS, PAGE, c))),
            "blocks": list(_all(lambda c: repo.outgoing(user_id, BLOCKS, PAGE, c))),
            "invitations": repo.invited_numbers(user_id),
            "tips_sent": tips_sent,
            "tips_received": received,
            "creator_program": {
                "application": self.program.application(user_id),
                "stipends": [p.to_dict() for p in self.program.payouts_of(user_id)],
            },
            "reports_made": reports,
        }


T = TypeVar("T")


def _pages(
    page: Callable[[str | None], tuple[list[T], str | None]], convert: Callable[[T], Any]
) -> list[Any]:
    """Every item of a paged read, converted."""
    found: list[Any] = []
    cursor: str | None = None
    while True:
        items, cursor = page(cursor)
        found.extend(convert(item) for item in items)
        if cursor is None:
            return found


def _all(page: Callable[[str | None], Page]) -> Iterator[str]:
    cursor: str | None = None
    while True:
        got = page(cursor)
        yield from got.items
        if got.cursor is None:
            return
        cursor = got.cursor
