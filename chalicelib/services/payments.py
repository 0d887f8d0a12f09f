"""Send Money and payouts: creator onboarding, tips, Stripe webhooks, the ledger.

Stripe is the source of truth for money; Salon's ledger records each movement once, keyed by
the Stripe object, when Stripe says it happened (a webhook), never when a client says so.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.adapters.connections import Connections
from chalicelib.adapters.dynamo.connections import ConnectionRepository
from chalicelib.adapters.dynamo.identity import IdentityRepository
from chalicelib.adapters.dynamo.money import Entry, MoneyRepository, Tip
from chalicelib.adapters.stripe_gateway import Payment, StripeGateway
from chalicelib.config import Settings
from chalicelib.domain import notifications as push
from chalicelib.domain.errors import NotFoundError, UnavailableError
from chalicelib.domain.identity import MemberStatus
from chalicelib.domain.money import (
    CURRENCY,
    EntryKind,
    NoPayoutAccountError,
    NotAvailableYetError,
    PaymentDeclinedError,
    PayoutsNotReadyError,
    SelfTipError,
    SendMoneyOffError,
    TipPolicy,
    TipStatus,
    dispute_reinstated,
    dispute_withdrew,
    quote,
    refund_share,
    share,
    tip_id,
)
from chalicelib.services.notifications import Notifier

logger = logging.getLogger("salon.payments")

STATUS_OF_INTENT = {
    "requires_payment_method": TipStatus.NEEDS_CARD,
    "requires_confirmation": TipStatus.NEEDS_CARD,
    "requires_action": TipStatus.NEEDS_AUTHENTICATION,
    "processing": TipStatus.PROCESSING,
    "succeeded": TipStatus.SUCCEEDED,
    "canceled": TipStatus.FAILED,
}


class TipNotFoundError(NotFoundError):
    code = "tip_not_found"
    default_message = "There is no such tip."


class TipNotRecordedYetError(UnavailableError):
    """Stripe's event is about a tip Salon made but cannot read yet: answered 503, not marked
    seen, so Stripe delivers it again."""

    default_message = "That tip is not recorded yet; deliver the event again later."


@dataclass
class Payments:
    repo: MoneyRepository
    people: IdentityRepository
    stripe: StripeGateway
    connections: ConnectionRepository
    poster: Connections
    settings: Settings
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    on_stage_notice: Callable[[str, dict[str, Any]], None] | None = None
    # Stripe transfers belong to the creator program: its service handles their events.
    on_transfer: Callable[[str, dict[str, Any]], None] | None = None
    notifier: Notifier | None = None

    @property
    def policy(self) -> TipPolicy:
        s = self.settings
        return TipPolicy(
            s.tip_min_cents,
            s.tip_max_cents,
            s.card_fee_basis_points,
            s.card_fee_fixed_cents,
            s.sender_pays_fee,
        )

    # --- creators ---------------------------------------------------------------------------

    def start_onboarding(self, user_id: str) -> dict[str, Any]:
        """A Stripe Express account (made once) and a fresh onboarding link for it."""
        account = self.repo.creator(user_id)
        if account is None:
            state = self.stripe.create_account(user_id)
            account = self.repo.save_account(user_id, state, self.clock())
        base = self.settings.app_url.rstrip("/")
        url = self.stripe.onboarding_link(
            account.stripe_account_id,
            refresh_url=f"{base}/creator/onboarding/refresh",
            return_url=f"{base}/creator/onboarding/return",
        )
        return {"url": url, "account": self._account_view(account)}

    def payout_account(self, user_id: str) -> dict[str, Any]:
        """Stripe's word on the account, fetched now: returning from onboarding proves nothing."""
        account = self.repo.creator(user_id)
        if account is None:
            return {"onboarded": False, "ready": False, "send_money": False}
        state = self.stripe.account(account.stripe_account_id)
        return self._account_view(self.repo.save_account(user_id, state, self.clock()))

    def set_send_money(self, user_id: str, enabled: bool) -> dict[str, Any]:
        account = self.repo.creator(user_id)
        if account is None:
            raise NoPayoutAccountError()
        if enabled:
            state = self.stripe.account(account.stripe_account_id)
            account = self.repo.save_account(user_id, state, self.clock())
            if not account.ready:
                raise PayoutsNotReadyError()
        self.repo.set_send_money(user_id, enabled)
        return self.payout_account_cached(user_id)

    def payout_account_cached(self, user_id: str) -> dict[str, Any]:
        account = self.repo.creator(user_id)
        if account is None:
            return {"onboarded": False, "ready": False, "send_money": False}
        return self._account_view(account)

    def send_money_enabled(self, user_id: str) -> bool:
        account = self.repo.creator(user_id)
        return bool(account and account.send_money and account.ready)

    @staticmethod
    def _account_view(account: Any) -> dict[str, Any]:
        return {
            "onboarded": account.details_submitted,
            "ready": account.ready,
            "charges_enabled": account.charges_enabled,
            "payouts_enabled": account.payouts_enabled,
            "requirements_due": account.requirements_due,
            "send_money": account.send_money and account.ready,
        }

    def account_updated(self, stripe_account_id: str) -> None:
        user_id = self.repo.creator_by_stripe_account(stripe_account_id)
        if user_id is None:
            logger.warning("account.updated for an unknown account")
            return
        # Re-fetch: events arrive out of order, the account as it is now does not.
        self.repo.save_account(user_id, self.stripe.account(stripe_account_id), self.clock())

    # --- beta -----------------------------------------------------------------------------

    def beta_add(self, user_id: str) -> dict[str, Any]:
        self.people.profile(user_id)
        self.repo.add_to_beta(user_id, self.clock())
        return {"user_id": user_id, "beta": True}

    def beta_remove(self, user_id: str) -> dict[str, Any]:
        self.repo.remove_from_beta(user_id)
        return {"user_id": user_id, "beta": False}

    def beta_list(self) -> dict[str, Any]:
        return {"user_ids": self.repo.beta_users()}

    def feedback_list(self, limit: int) -> dict[str, Any]:
        return {"items": self.repo.feedback(limit)}

    def feedback(self, user_id: str, text: str) -> dict[str, Any]:
        if not self.repo.in_beta(user_id):
            raise NotAvailableYetError()
        feedback_id = self.new_id()
        self.repo.add_feedback(feedback_id, user_id, text, self.clock())
        return {"feedback_id": feedback_id}

    # --- tips -----------------------------------------------------------------------------

    def quote(self, sender_id: str, creator_id: str, amount_cents: int) -> dict[str, Any]:
        self._may_tip(sender_id, creator_id)
        return quote(amount_cents, self.policy).to_dict()

    def _may_tip(self, sender_id: str, creator_id: str) -> None:
        if not self.repo.in_beta(sender_id):
            raise NotAvailableYetError()
        if sender_id == creator_id:
            raise SelfTipError(field="creator_id")
        creator = self.people.profile(creator_id)  # member_not_found for nobody
        if creator.status is MemberStatus.SUSPENDED or not self.send_money_enabled(creator_id):
            raise SendMoneyOffError()

    def send(
        self, sender_id: str, creator_id: str, amount_cents: int, idempotency_key: str
    ) -> dict[str, Any]:
        """Charge a tip. The first tip asks the client for a card (confirmed with the returned
        client secret) and saves it; later tips charge the saved card directly. Submitting the
        same key again answers with the same tip and payment, never a second charge."""
        self._may_tip(sender_id, creator_id)
        priced = quote(amount_cents, self.policy)
        creator = self.repo.creator(creator_id)
        assert creator is not None
        tip = self.repo.create_tip(
            Tip(
                tip_id(sender_id, idempotency_key),
                sender_id,
                creator_id,
                priced.amount_cents,
                priced.fee_cents,
                priced.total_cents,
                priced.currency,
                TipStatus.PROCESSING,
                None,
                self.clock(),
            )
        )
        if tip.payment_intent_id:
            # A resubmit: the payment exists; say where it stands now.
            return self._answer(tip, self.stripe.payment_intent(tip.payment_intent_id))
        customer_id, card = self._customer(sender_id)
        params: dict[str, Any] = {
            "amount": tip.total_cents,
            "currency": tip.currency,
            "customer": customer_id,
            "transfer_data": {
                "destination": creator.stripe_account_id,
                # Exactly the tip: the rest of a grossed-up charge pays Stripe's fee.
                "amount": tip.amount_cents,
            },
            "metadata": {"tip_id": tip.tip_id, "sender_id": sender_id, "creator_id": creator_id},
            "description": "Salon tip",
        }
        if card:
            params.update({"payment_method": card, "off_session": True, "confirm": True})
        else:
            params.update({"setup_future_usage": "off_session", "payment_method_types": ["card"]})
        try:
            payment = self.stripe.charge(params, idempotency_key=f"tip-{tip.tip_id}-{card}")
        except PaymentDeclinedError as declined:
            self.repo.update_tip(
                tip.tip_id,
                TipStatus.FAILED,
                declined.details.get("payment_intent_id"),  # type: ignore[arg-type]
                failure_message=declined.message,
            )
            self.repo.forget_card(sender_id)
            raise
        return self._answer(tip, payment)

    def _answer(self, tip: Tip, payment: Payment) -> dict[str, Any]:
        status = STATUS_OF_INTENT.get(payment.status, TipStatus.PROCESSING)
        if status is TipStatus.NEEDS_CARD and tip.status is TipStatus.FAILED:
            status = TipStatus.FAILED
        self.repo.update_tip(tip.tip_id, status, payment.payment_intent_id)
        return {
            "tip": {
                **tip.to_dict(),
                "status": status.value,
                "payment_intent_id": payment.payment_intent_id,
            },
            "client_secret": payment.client_secret
            if status in (TipStatus.NEEDS_CARD, TipStatus.NEEDS_AUTHENTICATION)
            else None,
            "next_step": _next_step(status),
            "message": payment.error_message,
        }

    def _customer(self, user_id: str) -> tuple[str, str | None]:
        known = self.repo.customer(user_id)
        if known is not None:
            return known
        customer_id = self.stripe.create_customer(user_id)
        self.repo.save_customer(user_id, customer_id)
        return customer_id, None

    def tip_status(self, user_id: str, tip_id_: str) -> dict[str, Any]:
        tip = self.repo.tip(tip_id_)
        if tip is None or user_id not in (tip.sender_id, tip.creator_id):
            raise TipNotFoundError()
        return tip.to_dict()

    def sent(self, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        tips, next_cursor = self.repo.tips_sent(user_id, limit, cursor)
        return {"items": [t.to_dict() for t in tips], "cursor": next_cursor}

    def earnings(self, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        entries, next_cursor = self.repo.earnings(user_id, limit, cursor)
        account = self.repo.creator(user_id)
        return {
            "total_cents": account.earnings_cents if account else 0,
            "currency": CURRENCY,
            "items": [e.to_dict() for e in entries],
            "cursor": next_cursor,
        }

    # --- webhooks -------------------------------------------------------------------------

    def handle_event(self, event: dict[str, Any]) -> str:
        """Apply one verified Stripe event, once. Returns what was done, for the log.

        Every handler re-reads from Stripe what it records, and records each Stripe object
        (refund, dispute, reversal) under its own id: any order and any repetition of the
        events ends with the same ledger. A handler that cannot apply its event yet raises,
        so the event is not marked seen and Stripe delivers it again."""
        event_id, kind = str(event["id"]), str(event["type"])
        if self.repo.seen(event_id):
            return "duplicate"
        handler = {
            "payment_intent.succeeded": self._payment_succeeded,
            "payment_intent.payment_failed": self._payment_failed,
            "charge.refunded": self._charge_refunded,
            "charge.refund.updated": self._refund_event,
            "refund.created": self._refund_event,
            "refund.updated": self._refund_event,
            "charge.dispute.created": self._dispute_event,
            "charge.dispute.updated": self._dispute_event,
            "charge.dispute.closed": self._dispute_event,
            "charge.dispute.funds_withdrawn": self._dispute_event,
            "charge.dispute.funds_reinstated": self._dispute_event,
            "account.updated": self._account_event,
            "transfer.created": self._transfer_event,
            "transfer.reversed": self._transfer_event,
        }.get(kind)
        if handler is None:
            outcome = "ignored"
        else:
            handler(event["data"]["object"], event)
            outcome = "applied"
        # Marked only after the effects: a crash in between redoes them, and each is idempotent.
        self.repo.mark_seen(event_id, kind, self.clock())
        return outcome

    def _transfer_event(self, transfer: dict[str, Any], event: dict[str, Any]) -> None:
        if self.on_transfer is not None:
            self.on_transfer(str(event["type"]), transfer)

    def _account_event(self, account: dict[str, Any], event: dict[str, Any]) -> None:
        self.account_updated(str(event.get("account") or account.get("id")))

    def _tip_of(
        self, payment_intent_id: str | None, metadata: Any = None, *, must_exist: bool = False
    ) -> Tip | None:
        """The tip a payment is for: by the `tip_id` Salon put in the PaymentIntent's metadata
        (a consistent read by key), else through the index on the PaymentIntent id, else by
        asking Stripe for the PaymentIntent's metadata. The index lags (DynamoDB's GSIs are
        eventually consistent), and the tip row learns its PaymentIntent id only after Stripe
        answered: an event may outrun both."""
        wanted = _tip_id_in(metadata)
        if wanted is None and payment_intent_id:
            tip = self.repo.tip_for_payment_intent(payment_intent_id)
            if tip is not None:
                return tip
            wanted = _tip_id_in(
                self.stripe.payment_intent_object(payment_intent_id).get("metadata")
            )
        tip = self.repo.tip(wanted) if wanted else None
        if tip is None and wanted and must_exist:
            # Salon made this payment (its metadata says so) but the tip is not readable yet.
            raise TipNotRecordedYetError()
        if tip is None:
            logger.warning("event for a payment Salon did not make")
        return tip

    def _payment_succeeded(self, intent: dict[str, Any], event: dict[str, Any]) -> None:
        tip = self._tip_of(intent.get("id"), intent.get("metadata"), must_exist=True)
        if tip is None:
            return
        credited = self.repo.record(
            Entry(
                entry_id=f"{intent['id']}#tip",
                kind=EntryKind.TIP,
                creator_id=tip.creator_id,
                sender_id=tip.sender_id,
                amount_cents=tip.amount_cents,
                currency=tip.currency,
                created_at=self.clock(),
                tip_id=tip.tip_id,
                payment_intent_id=str(intent["id"]),
                charge_id=_id(intent.get("latest_charge")),
            )
        )
        self.repo.update_tip(tip.tip_id, TipStatus.SUCCEEDED, str(intent["id"]))
        method = _id(intent.get("payment_method"))
        if method and intent.get("setup_future_usage"):
            self.repo.save_card(tip.sender_id, method)
        if credited:
            self._notify_tip(tip)

    def _payment_failed(self, intent: dict[str, Any], event: dict[str, Any]) -> None:
        tip = self._tip_of(intent.get("id"), intent.get("metadata"), must_exist=True)
        if tip is None:
            return
        error = intent.get("last_payment_error") or {}
        message = str(error.get("message") or "The payment failed.")
        self.repo.update_tip(tip.tip_id, TipStatus.FAILED, failure_message=message)
        self._tell(
            tip.sender_id,
            {
                "type": "tip_failed",
                "tip_id": tip.tip_id,
                "message": message,
                "code": error.get("code"),
            },
        )

    def _charge_refunded(self, charge: dict[str, Any], event: dict[str, Any]) -> None:
        self._record_refunds(str(charge["id"]), _id(charge.get("payment_intent")), charge)

    def _refund_event(self, refund: dict[str, Any], event: dict[str, Any]) -> None:
        charge_id = _id(refund.get("charge"))
        if charge_id:
            self._record_refunds(charge_id, _id(refund.get("payment_intent")), None)

    def _record_refunds(
        self, charge_id: str, payment_intent_id: str | None, charge: dict[str, Any] | None
    ) -> None:
        """Record every succeeded refund of the charge that Stripe has now, each once, by its
        id. The event's snapshot is not trusted for the list: it may be older than another
        event's, and since 2022-11-15 it carries no refunds at all."""
        tip = self._tip_of(payment_intent_id, (charge or {}).get("metadata"))
        if tip is None:
            return
        whole = int((charge or {}).get("amount") or tip.total_cents)
        for refund in self.stripe.refunds_of(charge_id):
            if refund.get("status") != "succeeded":
                continue  # pending refunds may still fail; their update event comes later
            cents = int(refund["amount"])
            self.repo.record_refund(
                Entry(
                    entry_id=f"{refund['id']}#refund",
                    kind=EntryKind.REFUND,
                    creator_id=tip.creator_id,
                    sender_id=tip.sender_id,
                    amount_cents=0,  # cut by record_refund, on the tip's refunds so far
                    currency=tip.currency,
                    created_at=self.clock(),
                    tip_id=tip.tip_id,
                    payment_intent_id=tip.payment_intent_id or payment_intent_id,
                    charge_id=charge_id,
                    refund_id=str(refund["id"]),
                    stripe_amount_cents=cents,
                ),
                cents,
                functools.partial(_taken_back, cents, whole, tip.amount_cents),
            )

    def _dispute_event(self, dispute: dict[str, Any], event: dict[str, Any]) -> None:
        """Any event of a dispute: re-read it from Stripe and record what it has done so far,
        the withdrawal and, if won, the reinstatement, each once. A `closed` that arrives
        before `created` therefore ends the same."""
        dispute = self.stripe.dispute(str(dispute["id"]))
        tip = self._tip_of(_id(dispute.get("payment_intent")))
        if tip is None:
            return
        status = str(dispute.get("status") or "")
        disputed = int(dispute.get("amount") or tip.total_cents)
        amount = share(disputed, tip.total_cents, tip.amount_cents)
        moves = []
        if dispute_withdrew(status):
            moves.append(("dispute", EntryKind.DISPUTE, -amount))
            if dispute_reinstated(status):
                moves.append(("reinstated", EntryKind.DISPUTE_WON, amount))
        for suffix, kind, cents in moves:
            self.repo.record(
                Entry(
                    entry_id=f"{dispute['id']}#{suffix}",
                    kind=kind,
                    creator_id=tip.creator_id,
                    sender_id=tip.sender_id,
                    amount_cents=cents,
                    currency=tip.currency,
                    created_at=self.clock(),
                    tip_id=tip.tip_id,
                    payment_intent_id=tip.payment_intent_id,
                    charge_id=_id(dispute.get("charge")),
                    dispute_id=str(dispute["id"]),
                    stripe_amount_cents=disputed,
                )
            )

    # --- live notices ---------------------------------------------------------------------

    def _notify_tip(self, tip: Tip) -> None:
        sender = self.people.profiles([tip.sender_id]).get(tip.sender_id)
        notice = {
            "type": "tip_received",
            "tip_id": tip.tip_id,
            "amount_cents": tip.amount_cents,
            "currency": tip.currency,
            "from": {
                "user_id": tip.sender_id,
                "username": sender.username if sender else None,
                "name": sender.name if sender else None,
            },
        }
        self._tell(tip.creator_id, notice)
        self._tell(
            tip.sender_id,
            {"type": "tip_sent", "tip_id": tip.tip_id, "amount_cents": tip.amount_cents},
        )
        if self.on_stage_notice is not None:
            self.on_stage_notice(tip.creator_id, {**notice, "type": "tip_announced"})
        if self.notifier is not None:
            name = sender.name if sender else "Someone"
            self.notifier.send(
                tip.creator_id,
                push.tip_received(name, tip.amount_cents, tip.currency),
                from_id=tip.sender_id,
            )

    def _tell(self, user_id: str, message: dict[str, Any]) -> None:
        for connection_id in self.connections.for_user(user_id):
            if not self.poster.post(connection_id, message):
                self.connections.remove(connection_id)


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None


def _taken_back(refund_cents: int, charge_cents: int, tip_cents: int, before: int) -> int:
    return refund_share(before, refund_cents, charge_cents, tip_cents)


def _tip_id_in(metadata: Any) -> str | None:
    value = metadata.get("tip_id") if isinstance(metadata, dict) else None
    return str(value) if isinstance(value, str) and value else None


def _next_step(status: TipStatus) -> str:
    return {
        TipStatus.NEEDS_CARD: "confirm_with_card",
        TipStatus.NEEDS_AUTHENTICATION: "authenticate",
        TipStatus.PROCESSING: "wait",
        TipStatus.SUCCEEDED: "done",
        TipStatus.FAILED: "retry",
    }[status]
