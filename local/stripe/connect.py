"""Connect resources missing from localstripe: accounts, links, transfers, reversals, disputes."""

from __future__ import annotations

import copy
import time
from typing import Any

from localstripe.resources import (
    Charge,
    DeletedObject,
    List,
    StripeObject,
    random_id,
    store,
    try_convert_to_bool,
    try_convert_to_int,
)

from .errors import ApiError, invalid, missing, no_such, unknown_parameters
from .state import STATE, AccountLink, current_request
from .webhooks import emit

# Fields a new Express account must still provide (shape of Stripe's fixture account).
ONBOARDING_REQUIREMENTS = [
    "business_profile.mcc",
    "business_profile.url",
    "business_type",
    "external_account",
    "individual.dob.day",
    "individual.first_name",
    "individual.last_name",
    "tos_acceptance.date",
    "tos_acceptance.ip",
]

_CURRENCY_BY_COUNTRY = {
    "US": "usd",
    "GB": "gbp",
    "CA": "cad",
    "AU": "aud",
    "NZ": "nzd",
    "CH": "chf",
    "JP": "jpy",
    "SE": "sek",
    "NO": "nok",
    "DK": "dkk",
    "PL": "pln",
    "SG": "sgd",
    "HK": "hkd",
    "MX": "mxn",
}

_CAPABILITY_STATUSES = ("active", "inactive", "pending")

# Stripe's message when the destination of a transfer lacks the transfers capability.
_NO_TRANSFERS_MESSAGE = (
    "Your destination account needs to have at least one of the following capabilities "
    "enabled: transfers, crypto_transfers, legacy_payments"
)

_TRANSFER_FAILURE_MESSAGES = {
    "balance_insufficient": (
        "You have insufficient available funds in your Stripe account. Try adding funds "
        "directly to your available balance by creating Charges using the 4000000000000077 "
        "Visa test card."
    ),
    "insufficient_capabilities_for_transfer": _NO_TRANSFERS_MESSAGE,
    "account_invalid": "The destination account cannot currently receive transfers.",
}


def _now() -> int:
    return int(time.time())


def _requirements(currently_due: list[str], disabled_reason: str | None) -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(currently_due),
        "disabled_reason": disabled_reason,
        "errors": [],
        "eventually_due": list(currently_due),
        "past_due": list(currently_due) if disabled_reason == "requirements.past_due" else [],
        "pending_verification": [],
    }


def _business_profile(given: dict[str, Any] | None) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "annual_revenue": None,
        "estimated_worker_count": None,
        "mcc": None,
        "minority_owned_business_designation": None,
        "name": None,
        "product_description": None,
        "support_address": None,
        "support_email": None,
        "support_phone": None,
        "support_url": None,
        "url": None,
    }
    profile.update(given or {})
    return profile


def _settings(country: str, currency: str) -> dict[str, Any]:
    return {
        "bacs_debit_payments": {"display_name": None, "service_user_number": None},
        "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
        "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
        "card_payments": {
            "decline_on": {"avs_failure": False, "cvc_failure": False},
            "statement_descriptor_prefix": None,
            "statement_descriptor_prefix_kana": None,
            "statement_descriptor_prefix_kanji": None,
        },
        "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
        "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
        "payments": {
            "statement_descriptor": None,
            "statement_descriptor_kana": None,
            "statement_descriptor_kanji": None,
        },
        "payouts": {
            "debit_negative_balances": True,
            "schedule": {"delay_days": 2, "interval": "daily"},
            "statement_descriptor": None,
        },
        "sepa_debit_payments": {},
    }


def _check_params(given: dict[str, Any], allowed: set[str]) -> None:
    unknown = {k: v for k, v in given.items() if k not in allowed}
    if unknown:
        raise unknown_parameters(unknown)


def _metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(param, "Invalid object")
    return {str(k): str(v) for k, v in value.items()}


def _merge_metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe's rule: keys in the update are set, keys set to "" are removed, others kept."""
    if update == "":
        return {}
    merged = dict(current)
    for key, value in _metadata(update).items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _positive_int(value: Any, param: str, *, zero_ok: bool = False) -> int:
    number = try_convert_to_int(value)
    if not isinstance(number, int) or isinstance(number, bool) or number < (0 if zero_ok else 1):
        raise invalid(param, f"Invalid {'non-negative' if zero_ok else 'positive'} integer")
    return number


def _reverse_chronological(li: List) -> List:
    li._list.reverse()  # the store keeps insertion order; Stripe lists newest first
    return li


def _filtered(li: List, created: Any = None, **wanted: Any) -> List:
    """Keep the objects whose fields equal every filter given (None: no filter) and whose
    `created` passes Stripe's range filter (`created[gte]`, `[gt]`, `[lte]`, `[lt]`, or an
    exact time), newest first."""
    filters = {field: value for field, value in wanted.items() if value is not None}
    li._list = [
        o
        for o in li._list
        if all(getattr(o, f) == v for f, v in filters.items()) and _created_in(o, created)
    ]
    return _reverse_chronological(li)


_RANGE = {
    "gte": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "lte": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


def _created_in(obj: Any, created: Any) -> bool:
    if created is None:
        return True
    if not isinstance(created, dict):
        return bool(obj.created == _positive_int(created, "created"))
    if not created or set(created) - set(_RANGE):
        raise invalid("created")
    return all(
        _RANGE[op](obj.created, _positive_int(value, f"created[{op}]"))
        for op, value in created.items()
    )


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Stripe's data.previous_attributes: old values of the top-level fields that changed."""
    return {k: v for k, v in before.items() if after.get(k) != v}


class Account(StripeObject):  # type: ignore[misc]
    """A connected account (`/v1/accounts`), by default an Express account to onboard."""

    object = "account"
    _id_prefix = "acct_"

    _CREATE_PARAMS = {
        "type",
        "country",
        "email",
        "capabilities",
        "metadata",
        "business_type",
        "business_profile",
        "default_currency",
        "controller",
        "settings",
        "tos_acceptance",
        "individual",
        "company",
        "external_account",
    }
    _UPDATE_PARAMS = {
        "email",
        "metadata",
        "business_type",
        "business_profile",
        "default_currency",
        "capabilities",
        "settings",
        "tos_acceptance",
        "individual",
        "company",
    }

    def __init__(self, **params: Any) -> None:
        _check_params(params, self._CREATE_PARAMS)
        account_type = params.get("type") or "standard"
        if account_type not in ("express", "standard", "custom", "none"):
            raise invalid("type")
        country = str(params.get("country") or "US").upper()
        if len(country) != 2:
            raise invalid("country")
        email = params.get("email")
        if email is not None and not isinstance(email, str):
            raise invalid("email")
        currency = params.get("default_currency") or _CURRENCY_BY_COUNTRY.get(country, "eur")
        capabilities = self._requested_capabilities(params.get("capabilities"))
        metadata = _metadata(params.get("metadata"))
        profile = params.get("business_profile")
        if profile is not None and not isinstance(profile, dict):
            raise invalid("business_profile")

        # All exceptions must be raised before this point (the base class stores the object).
        super().__init__()

        self.type = account_type
        self.country = country
        self.email = email
        self.default_currency = currency
        self.business_type = params.get("business_type")
        self.business_profile = _business_profile(profile)
        self.capabilities = {name: "inactive" for name in capabilities}
        self.charges_enabled = False
        self.payouts_enabled = False
        self.details_submitted = False
        self.requirements = _requirements(ONBOARDING_REQUIREMENTS, "requirements.past_due")
        self.future_requirements = _requirements([], None)
        self.controller = params.get("controller") or (
            {"type": "application", "is_controller": True}
            if account_type != "standard"
            else {"type": "account"}
        )
        self.metadata = metadata
        self.settings = _settings(country, currency)
        self.tos_acceptance: dict[str, Any] = {"date": None, "ip": None, "user_agent": None}
        self._external_accounts: list[dict[str, Any]] = []

    @staticmethod
    def _requested_capabilities(value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, dict):
            raise invalid("capabilities")
        names = []
        for name, spec in value.items():
            if not isinstance(spec, dict) or set(spec) - {"requested"}:
                raise invalid(f"capabilities[{name}]")
            if try_convert_to_bool(spec.get("requested")) is True:
                names.append(name)
        return names

    @property
    def external_accounts(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": copy.deepcopy(self._external_accounts),
            "has_more": False,
            "total_count": len(self._external_accounts),
            "url": f"/v1/accounts/{self.id}/external_accounts",
        }

    @classmethod
    def _api_retrieve(cls, id: str) -> Account:
        obj: Account | None = store.get("account:" + id)
        if obj is None:
            raise no_such("account", id)
        return obj

    @classmethod
    def _api_update(cls, id: str, **params: Any) -> Account:
        _check_params(params, cls._UPDATE_PARAMS)
        obj = cls._api_retrieve(id)
        before = obj._export()
        if "metadata" in params:
            obj.metadata = _merge_metadata(obj.metadata, params["metadata"])
        if "email" in params:
            obj.email = params["email"] or None
        if "business_type" in params:
            obj.business_type = params["business_type"] or None
        if "default_currency" in params:
            obj.default_currency = params["default_currency"]
        if "business_profile" in params:
            if not isinstance(params["business_profile"], dict):
                raise invalid("business_profile")
            obj.business_profile.update(params["business_profile"])
        if "capabilities" in params:
            for name in cls._requested_capabilities(params["capabilities"]):
                obj.capabilities.setdefault(name, "active" if obj.charges_enabled else "inactive")
        obj._changed(before)
        return obj

    @classmethod
    def _api_delete(cls, id: str) -> DeletedObject:
        cls._api_retrieve(id)
        return super()._api_delete(id)

    @classmethod
    def _api_list_all(
        cls, url: str, limit: Any = None, starting_after: Any = None, **params: Any
    ) -> List:
        _check_params(params, {"created"})
        li = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        return _reverse_chronological(li)

    # State changes driven by the /_test routes ------------------------------------------------

    def _changed(self, before: dict[str, Any]) -> None:
        """Send account.updated to the Connect endpoint if anything visible changed."""
        after = self._export()
        previous = _diff(before, after)
        if previous:
            emit("account.updated", self, account=self.id, previous_attributes=previous)

    def _complete_onboarding(self) -> None:
        before = self._export()
        self.details_submitted = True
        self.charges_enabled = True
        self.payouts_enabled = True
        if not self.capabilities:
            self.capabilities = {"card_payments": "inactive", "transfers": "inactive"}
        self.capabilities = {name: "active" for name in self.capabilities}
        self.requirements = _requirements([], None)
        self.future_requirements = _requirements([], None)
        self.tos_acceptance = {"date": _now(), "ip": "127.0.0.1", "user_agent": "local.stripe"}
        if self.business_type is None:
            self.business_type = "individual"
        if not self._external_accounts:
            self._external_accounts.append(
                {
                    "id": "ba_" + random_id(24),
                    "object": "bank_account",
                    "account": self.id,
                    "account_holder_name": None,
                    "account_holder_type": None,
                    "bank_name": "STRIPE TEST BANK",
                    "country": self.country,
                    "currency": self.default_currency,
                    "default_for_currency": True,
                    "fingerprint": random_id(16),
                    "last4": "6789",
                    "metadata": {},
                    "routing_number": "110000000",
                    "status": "new",
                }
            )
        self._changed(before)

    def _submit_details(self) -> None:
        """The user finished the form but Stripe is still verifying: nothing is enabled yet."""
        before = self._export()
        self.details_submitted = True
        pending = [r for r in ONBOARDING_REQUIREMENTS if r.startswith("individual.")]
        self.requirements = _requirements([], None)
        self.requirements["pending_verification"] = pending
        self.requirements["disabled_reason"] = "requirements.pending_verification"
        self.capabilities = {name: "pending" for name in self.capabilities}
        self._changed(before)

    def _restrict(self, due: list[str]) -> None:
        """Stripe needs more information: charges, payouts and transfers stop."""
        before = self._export()
        self.charges_enabled = False
        self.payouts_enabled = False
        self.capabilities = {name: "inactive" for name in self.capabilities}
        self.requirements = _requirements(due, "requirements.past_due")
        self._changed(before)

    def _can_receive_transfers(self) -> bool:
        return self.capabilities.get("transfers") == "active"


def platform_account() -> dict[str, Any]:
    """GET /v1/account: the platform itself (a fixed, fully enabled account)."""
    return {
        "id": "acct_salonplatform0",
        "object": "account",
        "business_profile": _business_profile({"name": "Salon (local)"}),
        "business_type": "company",
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
        "country": "US",
        "created": 1_700_000_000,
        "default_currency": "usd",
        "details_submitted": True,
        "email": None,
        "payouts_enabled": True,
        "requirements": _requirements([], None),
        "settings": _settings("US", "usd"),
        "type": "standard",
        "metadata": {},
    }


def check_destination(destination: Any, param: str) -> Account:
    """The account a transfer or destination charge pays into, if it can receive funds."""
    if not isinstance(destination, str) or not destination:
        raise missing(param)
    account: Account | None = store.get("account:" + destination)
    if account is None:
        raise ApiError(
            400, f"No such destination: '{destination}'", code="resource_missing", param=param
        )
    if not account._can_receive_transfers():
        raise ApiError(
            400, _NO_TRANSFERS_MESSAGE, code="insufficient_capabilities_for_transfer", param=param
        )
    return account


def create_account_link(**params: Any) -> AccountLink:
    """POST /v1/account_links: a one-time onboarding url served by this emulator."""
    _check_params(
        params, {"account", "refresh_url", "return_url", "type", "collect", "collection_options"}
    )
    for name in ("account", "type"):
        if not params.get(name):
            raise missing(name)
    if params["type"] not in ("account_onboarding", "account_update"):
        raise invalid("type")
    for name in ("refresh_url", "return_url"):
        value = params.get(name)
        if not value:
            raise missing(name)
        if not str(value).startswith(("http://", "https://")):
            raise invalid(name, "Not a valid URL")
    Account._api_retrieve(params["account"])
    info = current_request.get()
    base_url = info.base_url if info else ""
    token = random_id(24)
    created = _now()
    link = AccountLink(
        token=token,
        account=params["account"],
        refresh_url=params["refresh_url"],
        return_url=params["return_url"],
        type=params["type"],
        created=created,
        expires_at=created + STATE.settings.account_link_ttl,
        url=f"{base_url}/_test/account_links/{token}",
    )
    STATE.account_links[token] = link
    return link


class TransferReversal(StripeObject):  # type: ignore[misc]
    """A (partial) reversal of a transfer: money taken back from the connected account."""

    object = "transfer_reversal"
    _id_prefix = "trr_"

    def __init__(
        self,
        transfer: Transfer,
        amount: int,
        metadata: dict[str, str],
        source_refund: str | None = None,
    ) -> None:
        super().__init__()
        self.amount = amount
        self.balance_transaction = "txn_" + random_id(24)
        self.currency = transfer.currency
        self.destination_payment_refund = "pyr_" + random_id(24)
        self.metadata = metadata
        self.source_refund = source_refund
        self.transfer = transfer.id

    @classmethod
    def _api_retrieve(cls, id: str) -> TransferReversal:
        obj: TransferReversal | None = store.get("transfer_reversal:" + id)
        if obj is None:
            raise no_such("transfer reversal", id)
        return obj


class Transfer(StripeObject):  # type: ignore[misc]
    """Money moved from the platform balance to a connected account (`/v1/transfers`)."""

    object = "transfer"
    _id_prefix = "tr_"

    _CREATE_PARAMS = {
        "amount",
        "currency",
        "destination",
        "description",
        "metadata",
        "transfer_group",
        "source_transaction",
        "source_type",
    }

    def __init__(
        self,
        amount: int,
        currency: str,
        destination: str,
        *,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        transfer_group: str | None = None,
        source_transaction: str | None = None,
    ) -> None:
        super().__init__()
        self.amount = amount
        self.currency = currency
        self.destination = destination
        self.description = description
        self.metadata = metadata or {}
        self.transfer_group = transfer_group
        self.source_transaction = source_transaction
        self.source_type = "card"
        self.balance_transaction = "txn_" + random_id(24)
        self.destination_payment = "py_" + random_id(24)

    @property
    def _reversal_objects(self) -> list[TransferReversal]:
        return [
            v
            for k, v in store.items()
            if k.startswith("transfer_reversal:") and v.transfer == self.id
        ]

    @property
    def reversals(self) -> List:
        li = List(f"/v1/transfers/{self.id}/reversals")
        li._list = list(reversed(self._reversal_objects))
        return li

    @property
    def amount_reversed(self) -> int:
        return sum(r.amount for r in self._reversal_objects)

    @property
    def reversed(self) -> bool:
        return self.amount_reversed >= self.amount

    @classmethod
    def _api_create(cls, **params: Any) -> Transfer:
        _check_params(params, cls._CREATE_PARAMS)
        if "amount" not in params:
            raise missing("amount")
        amount = _positive_int(params["amount"], "amount")
        currency = params.get("currency")
        if not currency:
            raise missing("currency")
        check_destination(params.get("destination"), "destination")
        source = params.get("source_transaction")
        if source is not None:
            charge = store.get("charge:" + str(source))
            if charge is None:
                raise no_such("charge", str(source), "source_transaction")
            if amount > charge.amount:
                raise invalid("amount", "Transfer amount exceeds the source transaction amount.")
        if STATE.transfer_failures:
            code = STATE.transfer_failures.pop(0)
            message = _TRANSFER_FAILURE_MESSAGES.get(code, f"Transfer failed ({code}).")
            raise ApiError(400, message, code=code)
        obj = cls(
            amount,
            str(currency).lower(),
            params["destination"],
            description=params.get("description"),
            metadata=_metadata(params.get("metadata")),
            transfer_group=params.get("transfer_group"),
            source_transaction=source,
        )
        emit("transfer.created", obj)
        return obj

    @classmethod
    def _api_retrieve(cls, id: str) -> Transfer:
        obj: Transfer | None = store.get("transfer:" + id)
        if obj is None:
            raise no_such("transfer", id)
        return obj

    @classmethod
    def _api_update(cls, id: str, **params: Any) -> Transfer:
        _check_params(params, {"description", "metadata"})
        obj = cls._api_retrieve(id)
        if "description" in params:
            obj.description = params["description"] or None
        if "metadata" in params:
            obj.metadata = _merge_metadata(obj.metadata, params["metadata"])
        emit("transfer.updated", obj)
        return obj

    @classmethod
    def _api_delete(cls, id: str) -> DeletedObject:
        raise ApiError(405, "Transfers cannot be deleted.")

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        limit: Any = None,
        starting_after: Any = None,
        destination: Any = None,
        transfer_group: Any = None,
        **params: Any,
    ) -> List:
        _check_params(params, {"created"})
        li = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        return _filtered(
            li,
            params.get("created"),
            destination=destination,
            transfer_group=transfer_group,
        )

    def _reverse(
        self, amount: int | None, metadata: dict[str, str], source_refund: str | None = None
    ) -> TransferReversal:
        left = self.amount - self.amount_reversed
        if left <= 0:
            raise ApiError(
                400,
                f"Transfer {self.id} has already been fully reversed.",
                code="transfer_already_reversed",
            )
        amount = left if amount is None else amount
        if amount > left:
            raise invalid(
                "amount",
                f"Amount ({amount}) is greater than the amount left to "
                f"reverse on this transfer ({left}).",
            )
        reversal = TransferReversal(self, amount, metadata, source_refund)
        emit("transfer.reversed", self)
        return reversal

    @classmethod
    def _api_create_reversal(cls, id: str, **params: Any) -> TransferReversal:
        _check_params(params, {"amount", "description", "metadata", "refund_application_fee"})
        obj = cls._api_retrieve(id)
        amount = _positive_int(params["amount"], "amount") if "amount" in params else None
        return obj._reverse(amount, _metadata(params.get("metadata")))

    @classmethod
    def _api_list_reversals(
        cls, id: str, limit: Any = None, starting_after: Any = None, **params: Any
    ) -> List:
        _check_params(params, set())
        obj = cls._api_retrieve(id)
        li = List(f"/v1/transfers/{id}/reversals", limit=limit, starting_after=starting_after)
        li._list = list(reversed(obj._reversal_objects))
        return li

    @classmethod
    def _api_retrieve_reversal(cls, transfer: str, id: str, **params: Any) -> TransferReversal:
        _check_params(params, set())
        reversal = TransferReversal._api_retrieve(id)
        if reversal.transfer != transfer:
            raise no_such("transfer reversal", id)
        return reversal

    @classmethod
    def _api_update_reversal(cls, transfer: str, id: str, **params: Any) -> TransferReversal:
        _check_params(params, {"metadata"})
        reversal = cls._api_retrieve_reversal(transfer, id)
        if "metadata" in params:
            reversal.metadata = _merge_metadata(reversal.metadata, params["metadata"])
        return reversal


def transfer_for_destination_charge(
    charge: Charge, amount: int, destination: str, transfer_group: str
) -> Transfer:
    """The transfer Stripe makes by itself when a destination charge succeeds (no event yet)."""
    return Transfer(
        amount,
        charge.currency,
        destination,
        transfer_group=transfer_group,
        source_transaction=charge.id,
    )


_EVIDENCE_FIELDS = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)

_DISPUTE_REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)


class Dispute(StripeObject):  # type: ignore[misc]
    """A chargeback on a charge; created only by the /_test/charges/{id}/dispute route."""

    object = "dispute"
    _id_prefix = "dp_"

    def __init__(self, charge: Charge, amount: int, reason: str) -> None:
        super().__init__()
        pm_details = getattr(charge, "payment_method_details", None) or {}
        card = pm_details.get("card") or {}
        self.amount = amount
        self.balance_transactions: list[Any] = []
        self.charge = charge.id
        self.currency = charge.currency
        self.enhanced_eligibility_types: list[str] = []
        self.evidence: dict[str, Any] = {name: None for name in _EVIDENCE_FIELDS}
        self.evidence["enhanced_evidence"] = {}
        self.evidence_details: dict[str, Any] = {
            "due_by": _now() + 7 * 24 * 3600,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        }
        self.is_charge_refundable = False
        self.metadata: dict[str, str] = {}
        self.payment_intent = charge.payment_intent
        self.payment_method_details = {
            "card": {
                "brand": card.get("brand", "visa"),
                "case_type": "chargeback",
                "network": card.get("brand", "visa"),
                "network_reason_code": "10.4" if reason == "fraudulent" else "13.1",
            },
            "type": "card",
        }
        self.reason = reason
        self.status = "needs_response"

    @classmethod
    def _open(cls, charge_id: str, amount: Any = None, reason: Any = None) -> Dispute:
        charge = store.get("charge:" + charge_id)
        if charge is None:
            raise no_such("charge", charge_id)
        if charge.status != "succeeded":
            raise ApiError(400, f"Charge {charge_id} has not succeeded; it cannot be disputed.")
        if getattr(charge, "disputed", False):
            raise ApiError(400, f"Charge {charge_id} is already disputed.")
        reason = reason or "fraudulent"
        if reason not in _DISPUTE_REASONS:
            raise invalid("reason")
        amount = charge.amount if amount is None else _positive_int(amount, "amount")
        dispute = cls(charge, amount, reason)
        charge.disputed = True
        emit("charge.dispute.created", dispute)
        emit("charge.dispute.funds_withdrawn", dispute)
        return dispute

    @classmethod
    def _api_create(cls, **params: Any) -> Dispute:
        raise ApiError(
            405,
            "Disputes are opened by card holders, not through the API. "
            "Use POST /_test/charges/{id}/dispute.",
        )

    @classmethod
    def _api_retrieve(cls, id: str) -> Dispute:
        obj: Dispute | None = store.get("dispute:" + id)
        if obj is None:
            raise no_such("dispute", id)
        return obj

    @classmethod
    def _api_update(cls, id: str, **params: Any) -> Dispute:
        _check_params(params, {"evidence", "metadata", "submit"})
        obj = cls._api_retrieve(id)
        if obj.status in ("won", "lost"):
            raise ApiError(400, f"Dispute {id} is already closed.")
        if "evidence" in params:
            evidence = params["evidence"]
            if not isinstance(evidence, dict) or set(evidence) - set(_EVIDENCE_FIELDS):
                raise invalid("evidence")
            obj.evidence.update(evidence)
            obj.evidence_details["has_evidence"] = True
        if "metadata" in params:
            obj.metadata = _merge_metadata(obj.metadata, params["metadata"])
        if try_convert_to_bool(params.get("submit", True)) is True and "evidence" in params:
            obj.status = "under_review"
            obj.evidence_details["submission_count"] += 1
        emit("charge.dispute.updated", obj)
        return obj

    @classmethod
    def _api_delete(cls, id: str) -> DeletedObject:
        raise ApiError(405, "Disputes cannot be deleted.")

    @classmethod
    def _api_list_all(
        cls,
        url: str,
        limit: Any = None,
        starting_after: Any = None,
        charge: Any = None,
        payment_intent: Any = None,
        **params: Any,
    ) -> List:
        _check_params(params, {"created"})
        li = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        return _filtered(li, params.get("created"), charge=charge, payment_intent=payment_intent)

    @classmethod
    def _api_close(cls, id: str, **params: Any) -> Dispute:
        """POST /v1/disputes/{id}/close: the platform accepts the dispute (it is lost)."""
        _check_params(params, set())
        return cls._api_retrieve(id)._close("lost")

    def _close(self, status: str) -> Dispute:
        if status not in ("won", "lost"):
            raise invalid("status", "status must be won or lost")
        if self.status in ("won", "lost"):
            raise ApiError(400, f"Dispute {self.id} is already closed.")
        self.status = status
        emit("charge.dispute.closed", self)
        if status == "won":
            emit("charge.dispute.funds_reinstated", self)
        return self
