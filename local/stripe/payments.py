"""PaymentIntent and Refund subclasses adding destination charges, saved cards and events."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from localstripe.errors import UserError
from localstripe.resources import (
    Charge,
    PaymentIntent,
    PaymentMethod,
    Refund,
    store,
    try_convert_to_bool,
)

from .connect import (
    Dispute,
    Transfer,
    _check_params,
    _metadata,
    _positive_int,
    check_destination,
    transfer_for_destination_charge,
)
from .errors import CARD_ERROR, ApiError, invalid, no_such
from .state import current_account
from .webhooks import emit

# Stripe's test PaymentMethod ids that localstripe does not know (it knows pm_card_visa and two
# decline ones). Each use creates a fresh PaymentMethod, as on Stripe.
TEST_PAYMENT_METHODS = {
    "pm_card_mastercard": "5555555555554444",
    "pm_card_authenticationRequired": "4000002760003184",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_threeDSecure2Required": "4000000000003220",
    "pm_card_createDispute": "4000000000000259",
}

# This card asks for authentication unless it was set up for off-session use (Stripe's test
# cards page); the other authentication cards always ask.
AUTHENTICATION_UNLESS_SET_UP = "4000002500003155"
DISPUTED_CARD = "4000000000000259"

# Smallest chargeable amounts, in the currency's minor unit (Stripe's "minimum charge amounts").
MINIMUM_AMOUNTS = {
    "usd": 50,
    "eur": 50,
    "gbp": 30,
    "cad": 50,
    "aud": 50,
    "chf": 50,
    "nzd": 50,
    "sgd": 50,
    "hkd": 400,
    "jpy": 50,
    "dkk": 250,
    "nok": 300,
    "sek": 300,
    "pln": 200,
    "mxn": 1000,
}

_NEW_PI_PARAMS = {
    "transfer_data",
    "on_behalf_of",
    "application_fee_amount",
    "setup_future_usage",
    "transfer_group",
    "description",
    "receipt_email",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "automatic_payment_methods",
    "confirmation_method",
    "return_url",
    "payment_method_options",
}

# Fields of Stripe's fixture payment_intent that localstripe never sets.
_PI_DEFAULTS: dict[str, Any] = {
    "amount_details": {"tip": {}},
    "application": None,
    "canceled_at": None,
    "cancellation_reason": None,
    "customer_account": None,
    "excluded_payment_method_types": None,
    "managed_payments": None,
    "payment_method_configuration_details": None,
    "processing": None,
    "review": None,
    "shipping": None,
    "source": None,
}

_CHARGE_DEFAULTS: dict[str, Any] = {
    "application": None,
    "application_fee": None,
    "calculated_statement_descriptor": "SALON LOCAL",
    "customer_account": None,
    "failure_balance_transaction": None,
    "fraud_details": {},
    "receipt_url": None,
    "review": None,
    "shipping": None,
    "source": None,
    "source_transfer": None,
    "statement_descriptor_suffix": None,
}


def resolve_payment_method(value: Any, param: str = "payment_method") -> str:
    """Turn Stripe's test ids (pm_card_...) into a stored PaymentMethod's id; 404 if unknown."""
    if not isinstance(value, str) or not value:
        raise invalid(param)
    number = TEST_PAYMENT_METHODS.get(value)
    if number is not None:
        card = {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"}
        return str(PaymentMethod(type="card", card=card).id)
    try:
        return str(PaymentMethod._api_retrieve(value).id)
    except UserError:
        raise no_such("PaymentMethod", value, param) from None


def _off_session(value: Any) -> bool | None:
    if value is None:
        return None
    if value in ("one_off", "recurring"):
        return True
    value = try_convert_to_bool(value)
    if not isinstance(value, bool):
        raise invalid("off_session")
    return value


def _card_number(payment_method_id: str | None) -> str | None:
    if not payment_method_id:
        return None
    pm = PaymentMethod._api_retrieve(payment_method_id)
    return getattr(pm, "_card_number", None)


class ConnectPaymentIntent(PaymentIntent):  # type: ignore[misc]
    """localstripe's PaymentIntent plus Connect, saved-card and off-session behaviour.

    Instances are stored under the same "payment_intent:" keys, so localstripe's own routes
    (retrieve, update, cancel, capture, _authenticate) find them and call the overrides below.
    """

    # Attributes localstripe sets (its classes are untyped), declared for the type checker.
    payment_method: str | None
    latest_charge: Any
    next_action: dict[str, Any] | None
    transfer_group: str | None
    transfer_data: dict[str, Any] | None

    def __init__(self, **params: Any) -> None:
        mine = {k: params.pop(k) for k in list(params) if k in _NEW_PI_PARAMS}
        amount, currency = params.get("amount"), params.get("currency")
        if "payment_method" in params and params["payment_method"] is not None:
            params["payment_method"] = resolve_payment_method(params["payment_method"])
        fields = self._validated(mine, amount, currency)
        payment_method_types = params.get("payment_method_types") or ["card"]
        payment_method_options = mine.get("payment_method_options") or {}

        # localstripe validates its own parameters and stores the object: nothing may raise after.
        super().__init__(**params)

        for name, value in _PI_DEFAULTS.items():
            setattr(self, name, copy.deepcopy(value))
        for name, value in fields.items():
            setattr(self, name, value)
        self.payment_method_types = payment_method_types
        self.payment_method_options = payment_method_options
        self._off_session = False
        self._decline: dict[str, Any] | None = None
        self._transfer: Transfer | None = None

    @staticmethod
    def _validated(params: dict[str, Any], amount: Any, currency: Any) -> dict[str, Any]:
        """Check the parameters localstripe does not know; return the fields to store."""
        fields: dict[str, Any] = {
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "confirmation_method": params.get("confirmation_method") or "automatic",
            "description": params.get("description"),
            "on_behalf_of": None,
            "receipt_email": params.get("receipt_email"),
            "setup_future_usage": None,
            "statement_descriptor": params.get("statement_descriptor"),
            "statement_descriptor_suffix": params.get("statement_descriptor_suffix"),
            "transfer_data": None,
            "transfer_group": params.get("transfer_group"),
        }
        amount_int = _positive_int(amount, "amount") if amount is not None else None
        if amount_int is not None and isinstance(currency, str):
            minimum = MINIMUM_AMOUNTS.get(currency.lower(), 50)
            if amount_int < minimum:
                raise ApiError(
                    400,
                    f"Amount must be at least {minimum} {currency.lower()} "
                    "in the currency's smallest unit.",
                    code="amount_too_small",
                    param="amount",
                )
        if fields["confirmation_method"] not in ("automatic", "manual"):
            raise invalid("confirmation_method")
        for name in ("statement_descriptor", "statement_descriptor_suffix"):
            if fields[name] is not None and len(str(fields[name])) > 22:
                raise invalid(name, f"{name} must be at most 22 characters.")
        usage = params.get("setup_future_usage")
        if usage not in (None, "", "off_session", "on_session"):
            raise invalid("setup_future_usage")
        fields["setup_future_usage"] = usage or None
        apm = params.get("automatic_payment_methods")
        if apm is not None:
            if not isinstance(apm, dict):
                raise invalid("automatic_payment_methods")
            fields["automatic_payment_methods"] = {
                "allow_redirects": apm.get("allow_redirects", "always"),
                "enabled": try_convert_to_bool(apm.get("enabled")) is True,
            }

        transfer_data = params.get("transfer_data")
        if transfer_data is not None:
            if not isinstance(transfer_data, dict) or set(transfer_data) - {
                "destination",
                "amount",
            }:
                raise invalid("transfer_data")
            check_destination(transfer_data.get("destination"), "transfer_data[destination]")
            kept: dict[str, Any] = {"destination": transfer_data["destination"]}
            if transfer_data.get("amount") is not None:
                kept["amount"] = _positive_int(transfer_data["amount"], "transfer_data[amount]")
                if amount_int is not None and kept["amount"] > amount_int:
                    raise invalid(
                        "transfer_data[amount]", "transfer_data[amount] cannot exceed the amount."
                    )
            fields["transfer_data"] = kept

        on_behalf_of = params.get("on_behalf_of")
        if on_behalf_of:
            if store.get("account:" + str(on_behalf_of)) is None:
                raise no_such("account", str(on_behalf_of), "on_behalf_of")
            fields["on_behalf_of"] = on_behalf_of

        fee = params.get("application_fee_amount")
        if fee is not None and fee != "":
            fee_int = _positive_int(fee, "application_fee_amount", zero_ok=True)
            if transfer_data is None and current_account() is None:
                raise ApiError(
                    400,
                    "Can only apply an application_fee_amount when the "
                    "PaymentIntent is attempting a direct payment (using an "
                    "OAuth key or Stripe-Account header) or destination "
                    "payment (using `transfer_data[destination]`).",
                    param="application_fee_amount",
                )
            if fields["transfer_data"] and "amount" in fields["transfer_data"]:
                raise ApiError(
                    400,
                    "You may only specify one of these parameters: "
                    "application_fee_amount, transfer_data[amount].",
                    code="parameters_exclusive",
                    param="application_fee_amount",
                )
            if amount_int is not None and fee_int > amount_int:
                raise invalid(
                    "application_fee_amount", "application_fee_amount cannot exceed the amount."
                )
            fields["application_fee_amount"] = fee_int
        return fields

    # Export ----------------------------------------------------------------------------------

    @property
    def amount_received(self) -> int:
        return self.amount if self.status == "succeeded" else 0

    @property
    def amount_capturable(self) -> int:
        return self.amount if self.status == "requires_capture" else 0

    @property
    def last_payment_error(self) -> dict[str, Any] | None:
        if self._decline is not None:
            return self._decline
        error: dict[str, Any] | None = PaymentIntent.last_payment_error.fget(self)
        return error

    def _export(self, expand: list[str] | None = None) -> dict[str, Any]:
        obj: dict[str, Any] = super()._export(expand=expand)
        # localstripe embeds the whole charge; Stripe gives its id unless asked to expand it.
        expanded = any(p == "latest_charge" or p.startswith("latest_charge.") for p in expand or [])
        if isinstance(obj.get("latest_charge"), dict) and not expanded:
            obj["latest_charge"] = obj["latest_charge"]["id"]
        obj.pop("charges", None)  # removed from the API in 2022-11-15
        return obj

    # Creation and confirmation ---------------------------------------------------------------

    @classmethod
    def _api_create(
        cls,
        confirm: Any = None,
        off_session: Any = None,
        **params: Any,
    ) -> ConnectPaymentIntent:
        confirm = try_convert_to_bool(confirm)
        if confirm is not None and not isinstance(confirm, bool):
            raise invalid("confirm")
        off = _off_session(off_session)
        if off is not None and confirm is not True:
            raise ApiError(
                400,
                "You can only pass in `off_session` when `confirm` is set to true.",
                param="off_session",
            )
        obj = cls(**params)
        emit("payment_intent.created", obj)
        if confirm:
            obj._confirm_now(bool(off))
        return obj

    @classmethod
    def _api_cancel_ext(cls, id: str, **params: Any) -> PaymentIntent:
        """POST /v1/payment_intents/{id}/cancel: also records why and sends the event."""
        _check_params(params, {"cancellation_reason"})
        reason = params.get("cancellation_reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer", "abandoned"):
            raise invalid("cancellation_reason")
        obj = PaymentIntent._api_cancel(id)
        if isinstance(obj, ConnectPaymentIntent):
            obj.canceled_at = int(time.time())
            obj.cancellation_reason = reason
        emit("payment_intent.canceled", obj)
        return obj

    @classmethod
    def _api_confirm_ext(cls, id: str, **params: Any) -> PaymentIntent:
        """POST /v1/payment_intents/{id}/confirm with the parameters Salon sends.

        `client_secret` comes with Stripe.js's confirmation from a browser (publishable key)."""
        secret = params.pop("client_secret", None)
        _check_params(
            params,
            {
                "payment_method",
                "off_session",
                "setup_future_usage",
                "return_url",
                "payment_method_types",
                "mandate_data",
                "payment_method_options",
                "receipt_email",
            },
        )
        obj = cls._api_retrieve(id)
        if secret is not None and secret != obj.client_secret:
            raise ApiError(
                400,
                "The client_secret provided does not match the client_secret associated with "
                "the PaymentIntent.",
                param="client_secret",
            )
        if not isinstance(obj, ConnectPaymentIntent):  # made by a localstripe invoice
            return PaymentIntent._api_confirm(id)
        off = _off_session(params.get("off_session"))
        if params.get("payment_method"):
            pm_id = resolve_payment_method(params["payment_method"])
            if obj.latest_charge is not None and obj.latest_charge.status == "failed":
                obj.latest_charge = None  # a new attempt after a decline
            obj.payment_method = pm_id
            obj.next_action = None
            obj._decline = None
        if "setup_future_usage" in params:
            fields = cls._validated(
                {"setup_future_usage": params["setup_future_usage"]}, None, None
            )
            obj.setup_future_usage = fields["setup_future_usage"]
        if params.get("receipt_email"):
            obj.receipt_email = params["receipt_email"]
        if obj.status != "requires_confirmation":
            raise ApiError(
                400,
                f"This PaymentIntent's status is {obj.status}, so it cannot be confirmed."
                if obj.payment_method
                else "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
            )
        obj._confirm_now(bool(off))
        return obj

    def _confirm_now(self, off_session: bool) -> None:
        if not self.payment_method:
            raise ApiError(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
            )
        self._off_session = off_session
        self._confirm(on_failure_now=self._report_failure)

    def _confirm(self, on_failure_now: Callable[[], None]) -> None:
        if self.transfer_data:  # the destination may have been restricted since creation
            check_destination(self.transfer_data["destination"], "transfer_data[destination]")
        self._decline = None
        pm = PaymentMethod._api_retrieve(self.payment_method)
        exempt = (
            self._off_session
            and getattr(pm, "_card_number", None) == AUTHENTICATION_UNLESS_SET_UP
            and getattr(pm, "_salon_set_up_off_session", False)
        )
        try:
            if pm._requires_authentication() and not exempt:
                if self._off_session:
                    self._fail_authentication_off_session(pm)
                super()._confirm(on_failure_now)  # on-session: requires_action + next_action
                emit("payment_intent.requires_action", self)
            else:
                # What localstripe's _confirm does when no authentication is needed.
                self._authentication_failed = False
                self._create_charge(on_failure_now=on_failure_now)
        finally:
            self._decorate_charge()

    def _fail_authentication_off_session(self, pm: PaymentMethod) -> None:
        """Off-session, nobody can authenticate: Stripe declines with authentication_required.

        The PaymentIntent goes back to requires_payment_method, its payment method moves to
        last_payment_error, and the API answers 402 card_error with the PaymentIntent inside.
        """
        message = "Your card was declined. This transaction requires authentication."
        self._decline = {
            "code": "authentication_required",
            "decline_code": "authentication_required",
            "doc_url": "https://stripe.com/docs/error-codes/authentication-required",
            "message": message,
            "payment_method": pm._export(),
            "type": CARD_ERROR,
        }
        self.payment_method = None
        self.next_action = None
        emit("payment_intent.payment_failed", self)
        raise ApiError(
            402,
            message,
            type=CARD_ERROR,
            code="authentication_required",
            decline_code="authentication_required",
            payment_intent=self._export(),
            payment_method=pm._export(),
        )

    def _report_failure(self) -> None:
        self._decorate_charge()
        if self.latest_charge is not None:
            emit("charge.failed", self.latest_charge)
        try:
            super()._report_failure()  # emits payment_intent.payment_failed and raises 402
        except UserError as exc:
            exc.body["error"].setdefault("decline_code", "generic_decline")
            exc.body["error"]["payment_intent"] = self._export()
            raise

    # Success ---------------------------------------------------------------------------------

    def _on_success(self) -> None:
        charge = self.latest_charge
        self._decorate_charge()
        charge.amount_captured = charge.amount if charge.captured else 0
        if self.setup_future_usage:
            self._save_payment_method()
        if self.transfer_data and self._transfer is None:
            amount = self.transfer_data.get("amount") or self.amount
            if self.transfer_group is None:
                self.transfer_group = "group_" + self.id
            self._transfer = transfer_for_destination_charge(
                charge, amount, self.transfer_data["destination"], self.transfer_group
            )
            charge.transfer = self._transfer.id
            charge.transfer_group = self.transfer_group
        emit("charge.succeeded", charge)
        super()._on_success()  # payment_intent.succeeded (and localstripe's invoice logic)
        if self._transfer is not None:
            emit("transfer.created", self._transfer)
        if _card_number(charge.payment_method) == DISPUTED_CARD:
            Dispute._open(charge.id)

    def _save_payment_method(self) -> None:
        """setup_future_usage: attach the card to the customer and remember how it was set up."""
        pm = PaymentMethod._api_retrieve(self.payment_method)
        if not isinstance(pm, PaymentMethod):  # legacy card_/src_ objects: nothing to do
            return
        if self.customer and pm.customer is None:
            pm.customer = self.customer
            emit("payment_method.attached", pm)
        if self.setup_future_usage == "off_session":
            pm._salon_set_up_off_session = True

    def _decorate_charge(self) -> None:
        """Give the charge the Connect and card fields Stripe's charge object has."""
        charge = self.latest_charge
        if charge is None or hasattr(charge, "transfer_data"):
            return
        for name, value in _CHARGE_DEFAULTS.items():
            setattr(charge, name, copy.deepcopy(value))
        td = self.transfer_data
        charge.transfer_data = (
            {"amount": td.get("amount"), "destination": td["destination"]} if td else None
        )
        charge.transfer = None
        charge.transfer_group = self.transfer_group
        charge.on_behalf_of = self.on_behalf_of
        charge.application_fee_amount = self.application_fee_amount
        charge.disputed = False
        charge.amount_captured = charge.amount if charge.captured and charge.paid else 0
        charge.description = charge.description or self.description
        charge.receipt_email = self.receipt_email
        charge.statement_descriptor = charge.statement_descriptor or self.statement_descriptor
        if not charge.metadata:
            charge.metadata = dict(self.metadata)
        pm = PaymentMethod._api_retrieve(charge.payment_method)
        card = dict(getattr(pm, "card", None) or {})
        charge.billing_details = getattr(pm, "billing_details", None) or {}
        charge.payment_method_details = {"type": "card", "card": card}
        failed = charge.status == "failed"
        charge.outcome = {
            "network_status": "declined_by_network" if failed else "approved_by_network",
            "reason": "generic_decline" if failed else None,
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline."
            if failed
            else "Payment complete.",
            "type": "issuer_declined" if failed else "authorized",
        }


class ConnectRefund(Refund):  # type: ignore[misc]
    """localstripe's Refund plus reason, reverse_transfer, checks and refund/charge events."""

    payment_intent: str | None

    def __init__(self, **params: Any) -> None:
        _check_params(
            params,
            {
                "charge",
                "payment_intent",
                "amount",
                "metadata",
                "reason",
                "reverse_transfer",
                "refund_application_fee",
                "instructions_email",
            },
        )
        reason = params.pop("reason", None)
        if reason not in (None, "", "duplicate", "fraudulent", "requested_by_customer"):
            raise invalid("reason")
        reverse_transfer = try_convert_to_bool(params.pop("reverse_transfer", False))
        if not isinstance(reverse_transfer, bool):
            raise invalid("reverse_transfer")
        params.pop("refund_application_fee", None)
        params.pop("instructions_email", None)
        charge = self._charge_of(params.get("charge"), params.get("payment_intent"))
        left = charge.amount - charge.amount_refunded
        if left <= 0:
            raise ApiError(
                400,
                f"Charge {charge.id} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = params.get("amount")
        if amount is not None:
            amount = _positive_int(amount, "amount")
            if amount > left:
                raise ApiError(
                    400,
                    f"Refund amount ({amount}) is greater than unrefunded "
                    f"amount on charge ({left})",
                    code="amount_too_large",
                    param="amount",
                )
        else:
            # Stripe refunds what is left of the charge, not the whole charge again.
            amount = left
        params["amount"] = amount
        params["metadata"] = _metadata(params.get("metadata"))

        super().__init__(**params)

        self.reason = reason or None
        self.payment_intent = self.payment_intent or charge.payment_intent
        self.payment_method = charge.payment_method
        self.customer = charge.customer
        self.customer_account = None
        self.destination_details = {"card": {"type": "refund"}, "type": "card"}
        self.receipt_number = None
        self.source_transfer_reversal = None
        self.transfer_reversal = None
        self._reverse_transfer = reverse_transfer

    @staticmethod
    def _charge_of(charge_id: Any, payment_intent_id: Any) -> Charge:
        if payment_intent_id is not None:
            pi = store.get("payment_intent:" + str(payment_intent_id))
            if pi is None:
                raise no_such("payment_intent", str(payment_intent_id), "payment_intent")
            if pi.latest_charge is None or pi.status not in ("succeeded", "requires_capture"):
                raise ApiError(
                    400,
                    f"This PaymentIntent ({pi.id}) does not have a successful charge to refund.",
                    code="charge_not_refundable",
                )
            return pi.latest_charge
        if charge_id is None:
            raise ApiError(
                400,
                "One of the following params should be provided for this "
                "request: payment_intent or charge.",
                code="parameter_missing",
            )
        charge = store.get("charge:" + str(charge_id))
        if charge is None:
            raise no_such("charge", str(charge_id), "charge")
        return charge

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        charge: Any = None,
        payment_intent: Any = None,
        limit: Any = None,
        starting_after: Any = None,
        **params: Any,
    ) -> Any:
        """localstripe's list (newest first) plus Stripe's `created` range filter."""
        from .connect import _created_in

        _check_params(params, {"created"})
        li = super()._api_list_all(
            url,
            charge=charge,
            payment_intent=payment_intent,
            limit=limit,
            starting_after=starting_after,
        )
        created = params.get("created")
        li._list = [r for r in li._list if _created_in(r, created)]
        return li

    @classmethod
    def _api_create(cls, **params: Any) -> ConnectRefund:
        charge = ConnectRefund._charge_of(params.get("charge"), params.get("payment_intent"))
        before = charge.amount_refunded
        refund = cls(**params)
        transfer_id = getattr(charge, "transfer", None)
        if refund._reverse_transfer and transfer_id:
            transfer = Transfer._api_retrieve(transfer_id)

            # In proportion, rounded on the running total: refunding the whole charge in
            # parts reverses the whole transfer, never a cent more or less.
            def part(refunded: int) -> int:
                return (2 * transfer.amount * refunded + charge.amount) // (2 * charge.amount)

            share = min(
                transfer.amount - transfer.amount_reversed,
                part(before + refund.amount) - part(before),
            )
            if share > 0:
                refund.transfer_reversal = transfer._reverse(share, {}, source_refund=refund.id).id
        emit("refund.created", refund)
        emit("charge.refunded", charge)
        return refund
