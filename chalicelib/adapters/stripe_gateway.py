"""Stripe, through the official SDK: connected accounts, customers, payments, webhooks.

Every write carries an idempotency key derived from what it pays for. Stripe's errors become
domain errors here, by their type and code, never by their message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Any

from chalicelib.domain.errors import RateLimitedError, UnavailableError
from chalicelib.domain.money import (
    InvalidEventError,
    InvalidSignatureError,
    PaymentDeclinedError,
    check_event,
)

WEBHOOK_TOLERANCE_S = 300


class TransferRefusedError(Exception):
    """Stripe refused a transfer for a reason that retrying now will not change."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class AccountState:
    account_id: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements_due: int

    @property
    def ready(self) -> bool:
        return self.charges_enabled and self.payouts_enabled and self.requirements_due == 0


@dataclass(frozen=True)
class Payment:
    """A PaymentIntent as the client needs to finish it."""

    payment_intent_id: str
    status: str
    client_secret: str | None
    payment_method_id: str | None
    error_message: str | None = None


def _account_state(account: Any) -> AccountState:
    requirements = getattr(account, "requirements", None)
    due = list(getattr(requirements, "currently_due", None) or []) if requirements else []
    return AccountState(
        account_id=str(account.id),
        charges_enabled=bool(getattr(account, "charges_enabled", False)),
        payouts_enabled=bool(getattr(account, "payouts_enabled", False)),
        details_submitted=bool(getattr(account, "details_submitted", False)),
        requirements_due=len(due),
    )


def _payment(intent: Any, error_message: str | None = None) -> Payment:
    method = getattr(intent, "payment_method", None)
    method_id = method if isinstance(method, str) or method is None else str(method.id)
    return Payment(
        payment_intent_id=str(intent.id),
        status=str(intent.status),
        client_secret=getattr(intent, "client_secret", None),
        payment_method_id=method_id,
        error_message=error_message,
    )


class StripeGateway:
    def __init__(self, api_key: Callable[[], str], api_base: str = "") -> None:
        self._api_key = api_key
        self._api_base = api_base
        self._client: Any = None
        self._lock = Lock()

    def _stripe(self) -> Any:
        # The SDK is imported on first use: only payment Lambdas pay for it.
        with self._lock:
            if self._client is None:
                import stripe

                options: dict[str, Any] = {"max_network_retries": 2}
                if self._api_base:
                    options["base_addresses"] = {"api": self._api_base}
                self._client = stripe.StripeClient(self._api_key(), **options)
            return self._client

    def _call(self, fn: Callable[[], Any]) -> Any:
        import stripe

        try:
            return fn()
        except stripe.RateLimitError as exc:
            raise RateLimitedError("Payments are busy; try again in a moment.") from exc
        except (stripe.APIConnectionError, stripe.APIError) as exc:
            raise UnavailableError("Stripe did not answer; try again shortly.") from exc

    # --- Connect ----------------------------------------------------------------------------

    def create_account(self, user_id: str) -> AccountState:
        account = self._call(
            lambda: self._stripe().v1.accounts.create(
                params={
                    "type": "express",
                    "capabilities": {
                        "card_payments": {"requested": True},
                        "transfers": {"requested": True},
                    },
                    "metadata": {"salon_user_id": user_id},
                },
                options={"idempotency_key": f"account-{user_id}"},
            )
        )
        return _account_state(account)

    def account(self, account_id: str) -> AccountState:
        return _account_state(self._call(lambda: self._stripe().v1.accounts.retrieve(account_id)))

    def onboarding_link(self, account_id: str, refresh_url: str, return_url: str) -> str:
        link = self._call(
            lambda: self._stripe().v1.account_links.create(
                params={
                    "account": account_id,
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                    "type": "account_onboarding",
                }
            )
        )
        return str(link.url)

    def close_account(self, account_id: str) -> bool:
        """Delete a connected account Salon manages (Express), as Stripe documents for a
        platform that closes one. Stripe refuses while a live balance is not zero: False then,
        and the account stays until it is paid out (docs/runbook.md)."""
        import stripe

        try:
            self._call(lambda: self._stripe().v1.accounts.delete(account_id))
        except stripe.InvalidRequestError:
            return False
        return True

    def delete_customer(self, customer_id: str) -> None:
        """Delete a sender's customer and, with it, their saved cards."""
        import stripe

        try:
            self._call(lambda: self._stripe().v1.customers.delete(customer_id))
        except stripe.InvalidRequestError as exc:
            if getattr(exc, "http_status", None) != 404:
                raise

    # --- payments ---------------------------------------------------------------------------

    def create_customer(self, user_id: str) -> str:
        customer = self._call(
            lambda: self._stripe().v1.customers.create(
                params={"metadata": {"salon_user_id": user_id}},
                options={"idempotency_key": f"customer-{user_id}"},
            )
        )
        return str(customer.id)

    def charge(self, params: dict[str, Any], idempotency_key: str) -> Payment:
        """Create (and, for a saved card, confirm) a PaymentIntent.

        Off-session, a bank that wants authentication fails the request (`authentication_
        required`); the intent then waits for the sender to confirm it on-session.
        """
        import stripe

        try:
            intent = self._call(
                lambda: self._stripe().v1.payment_intents.create(
                    params=params, options={"idempotency_key": idempotency_key}
                )
            )
        except stripe.CardError as exc:
            intent = getattr(exc.error, "payment_intent", None) if exc.error else None
            if exc.code == "authentication_required" and intent is not None:
                return Payment(
                    payment_intent_id=str(intent.id),
                    status="requires_action",
                    client_secret=getattr(intent, "client_secret", None),
                    payment_method_id=params.get("payment_method"),
                    error_message="Your bank asks you to confirm this payment.",
                )
            # The intent exists at Stripe (declined): name it, so the tip can point at it.
            raise PaymentDeclinedError(
                exc.user_message or None,
                payment_intent_id=str(intent.id) if intent is not None else None,
            ) from exc
        return _payment(intent)

    def payment_intent(self, payment_intent_id: str) -> Payment:
        return _payment(
            self._call(lambda: self._stripe().v1.payment_intents.retrieve(payment_intent_id))
        )

    def transfer(self, params: dict[str, Any], idempotency_key: str) -> str:
        """Send money to a connected account. A destination that cannot receive it is a
        TransferRefusedError naming Stripe's code."""
        import stripe

        try:
            transfer = self._call(
                lambda: self._stripe().v1.transfers.create(
                    params=params, options={"idempotency_key": idempotency_key}
                )
            )
        except stripe.IdempotencyError as exc:
            # The same key is in flight in another run: that run will finish it.
            raise UnavailableError("This transfer is being made by another run.") from exc
        except (stripe.InvalidRequestError, stripe.PermissionError) as exc:
            raise TransferRefusedError(str(exc.code or "transfer_refused")) from exc
        return str(transfer.id)

    def find_transfer(self, transfer_group: str) -> str | None:
        """A transfer already made for this group: what a crashed run may have left."""
        found = self._call(
            lambda: self._stripe().v1.transfers.list(
                params={"transfer_group": transfer_group, "limit": 1}
            )
        )
        return str(found.data[0].id) if found.data else None

    # --- reading back what happened -----------------------------------------------------------

    def refunds_of(self, charge_id: str) -> list[dict[str, Any]]:
        """Every refund of a charge, as Stripe has them now."""
        return self._all(
            lambda: self._stripe().v1.refunds.list(params={"charge": charge_id, "limit": 100})
        )

    def reversals_of(self, transfer_id: str) -> list[dict[str, Any]]:
        """Every reversal of a transfer, as Stripe has them now."""
        return self._all(
            lambda: self._stripe().v1.transfers.reversals.list(transfer_id, params={"limit": 100})
        )

    def dispute(self, dispute_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call(
            lambda: self._stripe().v1.disputes.retrieve(dispute_id)
        ).to_dict()
        return found

    def payment_intent_object(self, payment_intent_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call(
            lambda: self._stripe().v1.payment_intents.retrieve(payment_intent_id)
        ).to_dict()
        return found

    def listed(self, resource: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Every object of a list endpoint (`transfers`, `refunds`, `disputes`) matching
        `params` (e.g. `created[gte]`), all pages."""
        return self._all(
            lambda: getattr(self._stripe().v1, resource).list(params={"limit": 100, **params})
        )

    def retrieve(self, resource: str, object_id: str) -> dict[str, Any] | None:
        """One object, or None if Stripe has no such object."""
        import stripe

        try:
            found: dict[str, Any] = self._call(
                lambda: getattr(self._stripe().v1, resource).retrieve(object_id)
            ).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise
        return found

    def _all(self, first_page: Callable[[], Any]) -> list[dict[str, Any]]:
        page = self._call(first_page)
        return [item.to_dict() for item in self._call(lambda: list(page.auto_paging_iter()))]

    # --- webhooks ---------------------------------------------------------------------------

    def verify(self, raw_body: bytes | str, signature: str | None, secret: str) -> dict[str, Any]:
        """The event, if Stripe signed this body with `secret` within the tolerance and it is
        an event (a signed `[]`, string or object without `data.object` is not)."""
        import stripe

        # The header is ASCII (`t=…,v1=<hex>`); the SDK's constant-time compare raises TypeError
        # on anything else, so refuse it here as the bad signature it is.
        if signature is not None and not signature.isascii():
            raise InvalidSignatureError()
        try:
            stripe.WebhookSignature.verify_header(
                raw_body,
                signature,
                secret,
                WEBHOOK_TOLERANCE_S,
            )
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise InvalidSignatureError() from exc
        try:
            parsed = json.loads(raw_body)
        except (ValueError, RecursionError) as exc:
            raise InvalidEventError() from exc
        return check_event(parsed)
