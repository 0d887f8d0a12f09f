"""Money rules: tips, their fees and limits, and the ledger's kinds of entry. Integer cents."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Any

from chalicelib.domain.errors import ConflictError, ForbiddenError, SalonError, ValidationError
from chalicelib.domain.errors import Kind as ErrorKind

CURRENCY = "usd"


class TipStatus(Enum):
    NEEDS_CARD = "requires_payment_method"  # the first tip: the client confirms with a card
    NEEDS_AUTHENTICATION = "requires_action"  # the bank wants 3-D Secure
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class EntryKind(Enum):
    TIP = "tip"  # + a tip's amount, to the creator
    REFUND = "refund"  # - what a refund takes back
    DISPUTE = "dispute"  # - what a dispute takes back
    DISPUTE_WON = "dispute_won"  # + what a won dispute gives back (funds reinstated)
    STIPEND = "stipend"  # + a creator program payment
    STIPEND_REVERSAL = "stipend_reversal"  # - a reversed stipend transfer


# --- errors ---------------------------------------------------------------------------------


class NotAvailableYetError(ForbiddenError):
    code = "not_available_yet"
    default_message = "Send Money is in beta and not available to you yet."


class SendMoneyOffError(ForbiddenError):
    code = "send_money_off"
    default_message = "This creator does not accept tips."


class SelfTipError(ValidationError):
    code = "cannot_tip_yourself"
    default_message = "You cannot send money to yourself."


class AmountBelowMinimumError(ValidationError):
    code = "amount_below_minimum"
    default_message = "That amount is below the minimum tip."


class AmountAboveMaximumError(ValidationError):
    code = "amount_above_maximum"
    default_message = "That amount is above the maximum tip."


class PayoutsNotReadyError(ConflictError):
    code = "payouts_not_ready"
    default_message = (
        "Finish setting up payouts first: Stripe has not enabled charges and payouts yet."
    )


class NoPayoutAccountError(ConflictError):
    code = "no_payout_account"
    default_message = "Set up payouts first."


class IdempotencyKeyReusedError(ConflictError):
    code = "idempotency_key_reused"
    default_message = "That idempotency key was used for a different tip."


class PaymentDeclinedError(SalonError):
    code = "payment_declined"
    kind = ErrorKind.CONFLICT
    default_message = "The card was declined."


class InvalidSignatureError(ValidationError):
    code = "invalid_signature"
    default_message = "The webhook signature is missing, wrong or too old."


class InvalidEventError(ValidationError):
    code = "invalid_event"
    default_message = (
        "The body is signed but is not a Stripe event: it needs an 'id', a 'type' and a"
        " 'data.object'."
    )


def check_event(event: Any) -> dict[str, Any]:
    """A verified body is an event only if it has the shape every handler relies on."""
    if not isinstance(event, dict):
        raise InvalidEventError()
    data = event.get("data")
    if not (
        isinstance(event.get("id"), str)
        and event["id"]
        and isinstance(event.get("type"), str)
        and event["type"]
        and isinstance(data, dict)
        and isinstance(data.get("object"), dict)
        and isinstance(data["object"].get("id"), str)
    ):
        raise InvalidEventError()
    return event


# --- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TipPolicy:
    min_cents: int = 100
    max_cents: int = 100_000
    # Stripe's standard US card price: 2.9 % + 30¢.
    fee_basis_points: int = 290
    fee_fixed_cents: int = 30
    sender_pays_fee: bool = True


@dataclass(frozen=True)
class Quote:
    amount_cents: int  # what the creator receives, always the whole tip
    fee_cents: int  # the processing fee
    total_cents: int  # what the sender's card is charged
    currency: str
    fee_paid_by: str  # "sender" or "platform"

    def to_dict(self) -> dict[str, object]:
        return {
            "amount_cents": self.amount_cents,
            "fee_cents": self.fee_cents,
            "total_cents": self.total_cents,
            "currency": self.currency,
            "fee_paid_by": self.fee_paid_by,
        }


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def usd(cents: int) -> str:
    """An amount as people read it in a dollar interface: 150 -> "$1.50"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def quote(amount_cents: int, policy: TipPolicy) -> Quote:
    """The charge for a tip. When the sender pays the fee the charge is grossed up, so that what
    is left after Stripe's fee covers the tip; either way the creator receives the tip amount."""
    if amount_cents < policy.min_cents:
        raise AmountBelowMinimumError(
            f"Tips start at {usd(policy.min_cents)}.", field="amount_cents"
        )
    if amount_cents > policy.max_cents:
        raise AmountAboveMaximumError(
            f"Tips are at most {usd(policy.max_cents)}.", field="amount_cents"
        )
    bp, fixed = policy.fee_basis_points, policy.fee_fixed_cents
    if policy.sender_pays_fee:
        total = _ceil_div((amount_cents + fixed) * 10_000, 10_000 - bp)
        return Quote(amount_cents, total - amount_cents, total, CURRENCY, "sender")
    fee = _ceil_div(amount_cents * bp, 10_000) + fixed
    return Quote(amount_cents, fee, amount_cents, CURRENCY, "platform")


def tip_id(sender_id: str, idempotency_key: str) -> str:
    """The same sender and key name the same tip: a double submit charges once."""
    return hashlib.sha256(f"tip:{sender_id}:{idempotency_key}".encode()).hexdigest()[:32]


def share(part_cents: int, whole_cents: int, of_cents: int) -> int:
    """`of_cents` scaled by part/whole, rounded half up: what a partial refund takes back."""
    if whole_cents <= 0:
        return 0
    return (2 * part_cents * of_cents + whole_cents) // (2 * whole_cents)


def refund_share(
    refunded_before_cents: int, refund_cents: int, charge_cents: int, of_cents: int
) -> int:
    """What one refund takes back of `of_cents`, cut on the running total of the charge's
    refunds: however a charge is refunded in parts, in whatever order they are recorded, the
    parts add up to exactly share(total refunded) - a full refund takes back all of it."""
    after = refunded_before_cents + refund_cents
    return share(after, charge_cents, of_cents) - share(
        refunded_before_cents, charge_cents, of_cents
    )


# Disputes that are inquiries (`warning_*`) move no money; every other dispute withdrew its
# amount when it opened, and gives it back if the platform wins.
INQUIRY_STATUSES = frozenset({"warning_needs_response", "warning_under_review", "warning_closed"})


def dispute_withdrew(status: str) -> bool:
    return status not in INQUIRY_STATUSES


def dispute_reinstated(status: str) -> bool:
    return status == "won"
