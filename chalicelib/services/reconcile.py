"""Reconciliation: every difference between Salon's ledger and Stripe for a period.

Both directions are checked. Each Stripe object created in the period that moves a creator's
money (a tip's destination transfer, a stipend transfer and its reversals, a refund of a tip,
a dispute of a tip) must have its ledger entry, found by the key the ledger gives that object,
with the same amount; and each ledger entry recorded in the period must name a Stripe object
that exists with that amount (fetched one by one when it was created before the period).
Stripe calls go through the payout run's pacer: a month of objects stays under rate limits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamo.money import Entry, MoneyRepository
from chalicelib.adapters.stripe_gateway import StripeGateway
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.money import EntryKind, dispute_reinstated, dispute_withdrew
from chalicelib.services.program import Pacer

# Salon records an object after Stripe made it (a webhook; retried for up to three days):
# entries of the period's objects are searched from a day before it until now.
RECORDING_SLACK = timedelta(days=1)
MISSING_IN_SALON, MISSING_IN_STRIPE, AMOUNT_DIFFERS = (
    "missing_in_salon",
    "missing_in_stripe",
    "amount_differs",
)


def parse_period(start: str, end: str) -> tuple[datetime, datetime]:
    def at(value: str, name: str) -> datetime:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise ValidationError(
                f"'{name}' must be an ISO 8601 date or UTC time.", field=name
            ) from error
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    first, last = at(start, "from"), at(end, "to")
    if last <= first:
        raise ValidationError("'to' must be after 'from'.", field="to")
    return first, last


@dataclass
class Reconciliation:
    money: MoneyRepository
    stripe: StripeGateway
    pacer: Pacer
    clock: Callable[[], datetime]

    def run(self, start: datetime, end: datetime) -> dict[str, Any]:
        window = {"created": {"gte": int(start.timestamp()), "lt": int(end.timestamp())}}
        entries = self.money.entries_between(
            start - RECORDING_SLACK, self.clock() + RECORDING_SLACK
        )
        check = _Check({e.entry_id: e for e in entries}, self._account_of)

        tips_by_charge = {
            e.charge_id: e for e in entries if e.kind is EntryKind.TIP and e.charge_id
        }
        for transfer in self._list("transfers", window):
            self._transfer(check, transfer, tips_by_charge)
        for refund in self._list("refunds", window):
            self._refund(check, refund)
        for dispute in self._list("disputes", window):
            self._dispute(check, dispute)

        # The other way: what Salon recorded in the period must be in Stripe.
        for entry in entries:
            if start <= entry.created_at < end and entry.entry_id not in check.matched:
                self._stripe_side_of(check, entry)
        by_account = Counter(d["account"] or "unknown" for d in check.differences)
        return {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "checked": dict(check.checked),
            "differences": check.differences,
            "differences_by_account": dict(by_account),
            "stripe_calls": self.pacer.calls,
        }

    # --- Stripe objects to ledger entries ------------------------------------------------------

    def _transfer(self, check: _Check, transfer: dict[str, Any], tips: dict[str, Entry]) -> None:
        meta = transfer.get("metadata") or {}
        account = str(transfer.get("destination") or "")
        if meta.get("kind") == "stipend":
            key = f"stipend#{meta.get('salon_user_id')}#{meta.get('month')}"
            check.expect("transfer", key, transfer, int(transfer["amount"]), account)
            for reversal in self._reversals(str(transfer["id"])):
                self._reversal(check, reversal, account)
            return
        charge = transfer.get("source_transaction")
        if not charge:
            return  # not a tip's and not a stipend: not Salon's
        tip = tips.get(str(charge))
        key = tip.entry_id if tip else f"charge:{charge}#tip"
        check.expect("transfer", key, transfer, int(transfer["amount"]), account)

    def _reversal(self, check: _Check, reversal: dict[str, Any], account: str) -> None:
        if reversal.get("source_refund"):
            return  # a refund's reversal: the refund's entry records it
        key = f"{reversal['id']}#reversal"
        check.expect("reversal", key, reversal, int(reversal["amount"]), account)

    def _refund(self, check: _Check, refund: dict[str, Any]) -> None:
        tip = check.tip_of(refund.get("payment_intent"))
        if tip is None or refund.get("status") != "succeeded":
            return  # a refund of something Salon did not sell, or not (yet) money back
        key = f"{refund['id']}#refund"
        check.expect("refund", key, refund, int(refund["amount"]), check.account(tip))

    def _dispute(self, check: _Check, dispute: dict[str, Any]) -> None:
        tip = check.tip_of(dispute.get("payment_intent"))
        status = str(dispute.get("status") or "")
        if tip is None or not dispute_withdrew(status):
            return
        cents, account = int(dispute["amount"]), check.account(tip)
        check.expect("dispute", f"{dispute['id']}#dispute", dispute, cents, account)
        if dispute_reinstated(status):
            check.expect("dispute_won", f"{dispute['id']}#reinstated", dispute, cents, account)

    # --- ledger entries to Stripe objects ------------------------------------------------------

    def _stripe_side_of(self, check: _Check, entry: Entry) -> None:
        """An entry of the period whose object the period's lists did not show."""
        found: dict[str, Any] | None = None
        stripe_cents: int | None = None
        if entry.kind is EntryKind.TIP and entry.charge_id:
            charge = self._get("charges", entry.charge_id)
            transfer_id = (charge or {}).get("transfer")
            found = self._get("transfers", str(transfer_id)) if transfer_id else None
            stripe_cents = int(found["amount"]) if found else None
        elif entry.kind is EntryKind.STIPEND and entry.transfer_id:
            found = self._get("transfers", entry.transfer_id)
            stripe_cents = int(found["amount"]) if found else None
        elif entry.kind is EntryKind.STIPEND_REVERSAL and entry.transfer_id:
            reversal_id = entry.entry_id.split("#", 1)[0]
            found = next(
                (r for r in self._reversals(entry.transfer_id) if r["id"] == reversal_id), None
            )
            stripe_cents = int(found["amount"]) if found else None
        elif entry.kind is EntryKind.REFUND and entry.refund_id:
            found = self._get("refunds", entry.refund_id)
            if found is not None and found.get("status") != "succeeded":
                found = None
            stripe_cents = int(found["amount"]) if found else None
        elif entry.kind in (EntryKind.DISPUTE, EntryKind.DISPUTE_WON) and entry.dispute_id:
            found = self._get("disputes", entry.dispute_id)
            status = str((found or {}).get("status") or "")
            wanted = dispute_reinstated if entry.kind is EntryKind.DISPUTE_WON else dispute_withdrew
            if found is not None and not wanted(status):
                found = None
            stripe_cents = int(found["amount"]) if found else None
        check.settle(entry, found, stripe_cents)

    # --- Stripe, paced -------------------------------------------------------------------------

    def _list(self, resource: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.pacer.call(lambda: self.stripe.listed(resource, params))
        return found

    def _reversals(self, transfer_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.pacer.call(lambda: self.stripe.reversals_of(transfer_id))
        return found

    def _get(self, resource: str, object_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.pacer.call(
            lambda: self.stripe.retrieve(resource, object_id)
        )
        return found

    def _account_of(self, creator_id: str) -> str | None:
        account = self.money.creator(creator_id)
        return account.stripe_account_id if account else None


@dataclass
class _Check:
    entries: dict[str, Entry]
    account_of: Callable[[str], str | None]

    def __post_init__(self) -> None:
        self.matched: set[str] = set()
        self.differences: list[dict[str, Any]] = []
        self.checked: Counter[str] = Counter()
        self._accounts: dict[str, str | None] = {}
        self._tips = {
            e.payment_intent_id: e
            for e in self.entries.values()
            if e.kind is EntryKind.TIP and e.payment_intent_id
        }

    def tip_of(self, payment_intent: Any) -> Entry | None:
        return self._tips.get(str(payment_intent)) if payment_intent else None

    def account(self, entry: Entry) -> str | None:
        if entry.creator_id not in self._accounts:
            self._accounts[entry.creator_id] = self.account_of(entry.creator_id)
        return self._accounts[entry.creator_id]

    def expect(
        self, kind: str, key: str, obj: dict[str, Any], stripe_cents: int, account: str | None
    ) -> None:
        """A Stripe object of the period: its entry must exist with the same amount."""
        self.checked[kind] += 1
        entry = self.entries.get(key)
        self.matched.add(key)
        if entry is None:
            self._differ(kind, account, obj["id"], MISSING_IN_SALON, None, stripe_cents)
            return
        salon = _stripe_amount(entry)
        if salon != stripe_cents:
            self._differ(kind, account, obj["id"], AMOUNT_DIFFERS, salon, stripe_cents, entry)
        elif not _share_is_right(entry, salon):
            self._differ(kind, account, obj["id"], AMOUNT_DIFFERS, salon, stripe_cents, entry)

    def settle(self, entry: Entry, found: dict[str, Any] | None, stripe_cents: int | None) -> None:
        """An entry of the period its lists did not show, looked up in Stripe by id."""
        kind = _KINDS[entry.kind]
        self.checked[kind] += 1
        stripe_id = found["id"] if found else _stripe_id(entry)
        if found is None:
            salon = _stripe_amount(entry)
            self._differ(
                kind, self.account(entry), stripe_id, MISSING_IN_STRIPE, salon, None, entry
            )
        elif stripe_cents != _stripe_amount(entry):
            self._differ(
                kind,
                self.account(entry),
                stripe_id,
                AMOUNT_DIFFERS,
                _stripe_amount(entry),
                stripe_cents,
                entry,
            )

    def _differ(
        self,
        kind: str,
        account: str | None,
        stripe_id: Any,
        problem: str,
        salon_cents: int | None,
        stripe_cents: int | None,
        entry: Entry | None = None,
    ) -> None:
        self.differences.append(
            {
                "account": account if account or entry is None else self.account(entry),
                "kind": kind,
                "stripe_id": str(stripe_id),
                "entry_id": entry.entry_id if entry else None,
                "problem": problem,
                "salon_cents": salon_cents,
                "stripe_cents": stripe_cents,
            }
        )


_KINDS = {
    EntryKind.TIP: "transfer",
    EntryKind.STIPEND: "transfer",
    EntryKind.STIPEND_REVERSAL: "reversal",
    EntryKind.REFUND: "refund",
    EntryKind.DISPUTE: "dispute",
    EntryKind.DISPUTE_WON: "dispute_won",
}


def _stripe_amount(entry: Entry) -> int:
    """The Stripe object's amount as the entry recorded it (positive cents)."""
    if entry.stripe_amount_cents is not None:
        return entry.stripe_amount_cents
    return abs(entry.amount_cents)


def _share_is_right(entry: Entry, stripe_cents: int) -> bool:
    """A dispute's entry moves the tip's share of the disputed charge cents; others move the
    Stripe amount itself (refunds are cut on their running total: checked by their sum)."""
    if entry.kind in (EntryKind.TIP, EntryKind.STIPEND):
        return entry.amount_cents == stripe_cents
    if entry.kind is EntryKind.STIPEND_REVERSAL:
        return entry.amount_cents == -stripe_cents
    return True


def _stripe_id(entry: Entry) -> str:
    return (
        entry.refund_id
        or entry.dispute_id
        or (entry.entry_id.split("#", 1)[0] if entry.kind is EntryKind.STIPEND_REVERSAL else None)
        or entry.transfer_id
        or entry.charge_id
        or entry.entry_id
    )
