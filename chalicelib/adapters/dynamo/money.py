"""Payout accounts, customers, the beta list, tips and the ledger in DynamoDB.

A ledger entry is keyed by the Stripe object it records and written with `attribute_not_exists`
in the same transaction as the creator's running total: retried or repeated webhooks can
neither write it twice nor count it twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo.models import (
    BetaUserModel,
    CreatorAccountModel,
    CustomerModel,
    FeedbackModel,
    LedgerEntryModel,
    StripeEventModel,
    TipModel,
)
from chalicelib.adapters.dynamo.paging import newest_first
from chalicelib.adapters.dynamo.tx import Transaction, condition_failed, transaction
from chalicelib.adapters.stripe_gateway import AccountState
from chalicelib.domain.errors import UnavailableError
from chalicelib.domain.money import EntryKind, IdempotencyKeyReusedError, TipStatus

EVENT_MEMORY = timedelta(days=30)  # longer than Stripe's three days of retries
REFUND_ATTEMPTS = 20


class _AlsoRefused(Exception):
    """A condition of the writes that go with an entry failed (not the entry's own)."""

    def __init__(self, error: TransactWriteError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class CreatorAccount:
    user_id: str
    stripe_account_id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements_due: int
    send_money: bool
    earnings_cents: int

    @property
    def ready(self) -> bool:
        return self.charges_enabled and self.payouts_enabled and self.requirements_due == 0


@dataclass(frozen=True)
class Tip:
    tip_id: str
    sender_id: str
    creator_id: str
    amount_cents: int
    fee_cents: int
    total_cents: int
    currency: str
    status: TipStatus
    payment_intent_id: str | None
    created_at: datetime
    failure_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tip_id": self.tip_id,
            "sender_id": self.sender_id,
            "creator_id": self.creator_id,
            "amount_cents": self.amount_cents,
            "fee_cents": self.fee_cents,
            "total_cents": self.total_cents,
            "currency": self.currency,
            "status": self.status.value,
            "payment_intent_id": self.payment_intent_id,
            "failure_message": self.failure_message,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Entry:
    entry_id: str
    kind: EntryKind
    creator_id: str
    amount_cents: int
    currency: str
    created_at: datetime
    sender_id: str | None = None
    tip_id: str | None = None
    payment_intent_id: str | None = None
    charge_id: str | None = None
    refund_id: str | None = None
    dispute_id: str | None = None
    transfer_id: str | None = None
    stripe_amount_cents: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "kind": self.kind.value,
            "amount_cents": self.amount_cents,
            "currency": self.currency,
            "created_at": self.created_at.isoformat(),
            "sender_id": self.sender_id,
            "tip_id": self.tip_id,
            "stripe": {
                k: v
                for k, v in (
                    ("payment_intent", self.payment_intent_id),
                    ("charge", self.charge_id),
                    ("refund", self.refund_id),
                    ("dispute", self.dispute_id),
                    ("transfer", self.transfer_id),
                )
                if v
            },
        }


def _account(row: CreatorAccountModel) -> CreatorAccount:
    return CreatorAccount(
        row.user_id,
        row.stripe_account_id,
        bool(row.charges_enabled),
        bool(row.payouts_enabled),
        bool(row.details_submitted),
        int(row.requirements_due or 0),
        bool(row.send_money),
        int(row.earnings_cents or 0),
    )


def _tip(row: TipModel) -> Tip:
    return Tip(
        row.tip_id,
        row.sender_id,
        row.creator_id,
        int(row.amount_cents),
        int(row.fee_cents),
        int(row.total_cents),
        row.currency,
        TipStatus(row.status),
        row.payment_intent_id,
        row.created_at,
        row.failure_message,
    )


def _entry(row: LedgerEntryModel) -> Entry:
    return Entry(
        row.entry_id,
        EntryKind(row.kind),
        row.creator_id,
        int(row.amount_cents),
        row.currency,
        row.created_at,
        row.sender_id,
        row.tip_id,
        row.payment_intent_id,
        row.charge_id,
        row.refund_id,
        row.dispute_id,
        row.transfer_id,
        None if row.stripe_amount_cents is None else int(row.stripe_amount_cents),
    )


class MoneyRepository:
    # --- creators -----------------------------------------------------------------------------

    def creator(self, user_id: str) -> CreatorAccount | None:
        try:
            return _account(CreatorAccountModel.get(user_id, consistent_read=True))
        except CreatorAccountModel.DoesNotExist:
            return None

    def creator_by_stripe_account(self, account_id: str) -> str | None:
        for row in CreatorAccountModel.by_stripe_account.query(account_id, limit=1):
            return str(row.user_id)
        return None

    def save_account(self, user_id: str, state: AccountState, at: datetime) -> CreatorAccount:
        """Record what Stripe says of the account; Send Money switches off if it is no longer
        ready (a creator who cannot be paid must not be tipped)."""
        row = CreatorAccountModel(user_id)
        actions: list[Action] = [
            CreatorAccountModel.stripe_account_id.set(state.account_id),
            CreatorAccountModel.charges_enabled.set(state.charges_enabled),
            CreatorAccountModel.payouts_enabled.set(state.payouts_enabled),
            CreatorAccountModel.details_submitted.set(state.details_submitted),
            CreatorAccountModel.requirements_due.set(state.requirements_due),
            CreatorAccountModel.updated_at.set(at),
        ]
        if not state.ready:
            actions.append(CreatorAccountModel.send_money.set(False))
        row.update(actions=actions)
        return _account(row)

    def set_send_money(self, user_id: str, enabled: bool) -> None:
        CreatorAccountModel(user_id).update(
            actions=[CreatorAccountModel.send_money.set(enabled)],
            condition=CreatorAccountModel.user_id.exists(),
        )

    # --- senders ------------------------------------------------------------------------------

    def customer(self, user_id: str) -> tuple[str, str | None] | None:
        try:
            row = CustomerModel.get(user_id, consistent_read=True)
        except CustomerModel.DoesNotExist:
            return None
        return row.stripe_customer_id, row.payment_method_id

    def save_customer(self, user_id: str, customer_id: str) -> None:
        try:
            CustomerModel(user_id, stripe_customer_id=customer_id).save(
                condition=CustomerModel.user_id.does_not_exist()
            )
        except PutError as error:
            if not condition_failed(error):
                raise

    def forget_card(self, user_id: str) -> None:
        """A declined card is not charged again: the next tip asks for a card."""
        CustomerModel(user_id).update(actions=[CustomerModel.payment_method_id.remove()])

    def save_card(self, user_id: str, payment_method_id: str) -> None:
        CustomerModel(user_id).update(
            actions=[CustomerModel.payment_method_id.set(payment_method_id)],
            condition=CustomerModel.user_id.exists(),
        )

    # --- beta -------------------------------------------------------------------------------

    def in_beta(self, user_id: str) -> bool:
        try:
            BetaUserModel.get(user_id)
        except BetaUserModel.DoesNotExist:
            return False
        return True

    def add_to_beta(self, user_id: str, at: datetime) -> None:
        BetaUserModel(user_id, added_at=at).save()

    def remove_from_beta(self, user_id: str) -> None:
        BetaUserModel(user_id).delete()

    def beta_users(self) -> list[str]:
        return sorted(row.user_id for row in BetaUserModel.scan())

    def add_feedback(self, feedback_id: str, user_id: str, text: str, at: datetime) -> None:
        FeedbackModel(feedback_id, user_id=user_id, text=text, created_at=at).save()

    def feedback(self, limit: int) -> list[dict[str, Any]]:
        rows = sorted(FeedbackModel.scan(), key=lambda r: r.created_at, reverse=True)[:limit]
        return [
            {
                "feedback_id": r.feedback_id,
                "user_id": r.user_id,
                "text": r.text,
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]

    # --- tips -------------------------------------------------------------------------------

    def create_tip(self, tip: Tip) -> Tip:
        """The tip, created now or by an earlier submit with the same key."""
        row = TipModel(
            tip.tip_id,
            sender_id=tip.sender_id,
            creator_id=tip.creator_id,
            amount_cents=tip.amount_cents,
            fee_cents=tip.fee_cents,
            total_cents=tip.total_cents,
            currency=tip.currency,
            status=tip.status.value,
            created_at=tip.created_at,
        )
        try:
            row.save(condition=TipModel.tip_id.does_not_exist())
        except PutError as error:
            if not condition_failed(error):
                raise
            existing = self.tip(tip.tip_id)
            assert existing is not None
            if (existing.creator_id, existing.amount_cents) != (tip.creator_id, tip.amount_cents):
                raise IdempotencyKeyReusedError(field="idempotency_key") from error
            return existing
        return tip

    def tip(self, tip_id: str) -> Tip | None:
        try:
            return _tip(TipModel.get(tip_id, consistent_read=True))
        except TipModel.DoesNotExist:
            return None

    def tip_for_payment_intent(self, payment_intent_id: str) -> Tip | None:
        for row in TipModel.by_payment_intent.query(payment_intent_id, limit=1):
            return self.tip(row.tip_id)
        return None

    def update_tip(
        self,
        tip_id: str,
        status: TipStatus,
        payment_intent_id: str | None = None,
        failure_message: str | None = None,
    ) -> None:
        actions: list[Action] = [TipModel.status.set(status.value)]
        if payment_intent_id:
            actions.append(TipModel.payment_intent_id.set(payment_intent_id))
        actions.append(
            TipModel.failure_message.set(failure_message)
            if failure_message
            else TipModel.failure_message.remove()
        )
        TipModel(tip_id).update(actions=actions)

    def tips_sent(
        self, sender_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Tip], str | None]:
        return newest_first(TipModel.by_sender, sender_id, limit, cursor, _tip)

    # --- the ledger ---------------------------------------------------------------------------

    def record(self, entry: Entry, also: Callable[[Transaction], None] | None = None) -> bool:
        """Write the entry and move the creator's total by its amount, once, in one
        transaction (with `also`'s writes, if given). False if it was already recorded."""
        try:
            return self._write(entry, also)
        except _AlsoRefused as refused:
            raise refused.error from None

    def _write(self, entry: Entry, also: Callable[[Transaction], None] | None) -> bool:
        tx = transaction()
        try:
            with tx:
                tx.save(
                    LedgerEntryModel(
                        entry.entry_id,
                        kind=entry.kind.value,
                        creator_id=entry.creator_id,
                        sender_id=entry.sender_id,
                        amount_cents=entry.amount_cents,
                        currency=entry.currency,
                        tip_id=entry.tip_id,
                        payment_intent_id=entry.payment_intent_id,
                        charge_id=entry.charge_id,
                        refund_id=entry.refund_id,
                        dispute_id=entry.dispute_id,
                        transfer_id=entry.transfer_id,
                        stripe_amount_cents=entry.stripe_amount_cents,
                        created_at=entry.created_at,
                    ),
                    condition=LedgerEntryModel.entry_id.does_not_exist(),
                )
                tx.update(
                    CreatorAccountModel(entry.creator_id),
                    actions=[CreatorAccountModel.earnings_cents.add(entry.amount_cents)],
                )
                if also is not None:
                    also(tx)
        except TransactWriteError as error:
            failed = tx.failed(error)
            if failed[0]:
                return False
            if any(failed[2:]):
                raise _AlsoRefused(error) from error
            raise
        return True

    def record_refund(
        self, entry: Entry, refund_cents: int, taken_back: Callable[[int], int]
    ) -> bool:
        """Record one refund of a tip, once, by its refund id. Its amount is
        `-taken_back(refunded_before)`, where refunded_before is what the tip's refunds recorded
        so far add up to; that total moves in the same transaction, on the condition that it is
        still what was read, so two refunds recorded at once are cut one after the other.
        False if this refund was recorded already."""
        assert entry.tip_id is not None
        for _ in range(REFUND_ATTEMPTS):
            before = self._refunded(entry.tip_id)
            cut = dataclasses.replace(entry, amount_cents=-taken_back(before))
            unchanged = (
                TipModel.refunded_cents.does_not_exist()
                if before == 0
                else TipModel.refunded_cents == before
            )

            def advance(tx: Transaction, before: int = before, unchanged: Any = unchanged) -> None:
                tx.update(
                    TipModel(entry.tip_id),
                    actions=[TipModel.refunded_cents.set(before + refund_cents)],
                    condition=unchanged,
                )

            try:
                return self._write(cut, advance)
            except _AlsoRefused:
                continue  # another refund of this tip was recorded in between: cut again
        raise UnavailableError("The tip's refunds are changing too fast; Stripe will retry.")

    def _refunded(self, tip_id: str) -> int:
        row = TipModel.get(tip_id, consistent_read=True)
        return int(row.refunded_cents or 0)

    def entry(self, entry_id: str) -> Entry | None:
        try:
            return _entry(LedgerEntryModel.get(entry_id, consistent_read=True))
        except LedgerEntryModel.DoesNotExist:
            return None

    def entries_between(self, start: datetime, end: datetime) -> list[Entry]:
        """Every entry recorded in [start, end), for reconciling (an operator's scan)."""
        rows = LedgerEntryModel.scan(
            filter_condition=LedgerEntryModel.created_at.between(start, end)
        )
        return [_entry(row) for row in rows if row.created_at < end]

    def entries_for_tip(self, tip_id: str, creator_id: str) -> list[Entry]:
        return [
            _entry(row)
            for row in LedgerEntryModel.by_creator.query(
                creator_id, filter_condition=LedgerEntryModel.tip_id == tip_id
            )
        ]

    def earnings(
        self, creator_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Entry], str | None]:
        return newest_first(LedgerEntryModel.by_creator, creator_id, limit, cursor, _entry)

    def balance(self, creator_id: str) -> int:
        """Derived from the entries themselves (the running total is a cache of this)."""
        return sum(int(row.amount_cents) for row in LedgerEntryModel.by_creator.query(creator_id))

    # --- webhook deliveries -------------------------------------------------------------------

    def seen(self, event_id: str) -> bool:
        try:
            StripeEventModel.get(event_id, consistent_read=True)
        except StripeEventModel.DoesNotExist:
            return False
        return True

    def mark_seen(self, event_id: str, event_type: str, at: datetime) -> None:
        StripeEventModel(event_id, type=event_type, processed_at=at, ttl=at + EVENT_MEMORY).save()

    # --- erasure (services/account.py) ----------------------------------------------------

    def delete_customer(self, user_id: str) -> None:
        CustomerModel(user_id).delete()

    def close_account(self, user_id: str) -> None:
        """A deleted creator's account takes no tips and gets no payouts (a stipend run skips
        it: `payouts_not_enabled`); the row stays, for the ledger's reconciliation."""
        CreatorAccountModel(user_id).update(
            actions=[
                CreatorAccountModel.send_money.set(False),
                CreatorAccountModel.charges_enabled.set(False),
                CreatorAccountModel.payouts_enabled.set(False),
            ],
            condition=CreatorAccountModel.user_id.exists(),
        )
