"""The local Stripe emulator (local.stripe), driven only through the real stripe SDK."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import stripe

from local.stripe import Settings, reset, serve_in_thread
from local.stripe.state import DEFAULT_API_VERSION, STATE

PLATFORM_SECRET = "whsec_local_platform"
CONNECT_SECRET = "whsec_local_connect"
FLAKY_SECRET = "whsec_local_flaky"
SECRETS = {"/platform": PLATFORM_SECRET, "/connect": CONNECT_SECRET, "/flaky": FLAKY_SECRET}
FLAKY_FAILURES = 2  # /flaky answers 500 to the first two attempts of every event
WAIT_S = 5.0

FIXTURES = Path(
    os.environ.get(
        "SALON_STRIPE_FIXTURES",
        Path(__file__).resolve().parents[3] / "shared" / "data" / "stripe" / "fixtures.json",
    )
)


# Webhook receiver ------------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """A loopback HTTP server that accepts only events whose Stripe signature verifies."""

    url: str = ""
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def accept(self, path: str, body: bytes, signature: str | None) -> int:
        secret = SECRETS.get(path)
        if secret is None:
            return 404
        try:
            stripe.Webhook.construct_event(body, signature, secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            with self.changed:
                self.rejected.append(f"{path}: {exc}")
            return 400
        event = json.loads(body)
        with self.changed:
            key = (path, event["id"])
            self.attempts[key] = self.attempts.get(key, 0) + 1
            self.received.append((path, event))
            self.changed.notify_all()
            if path == "/flaky" and self.attempts[key] <= FLAKY_FAILURES:
                return 500
        return 200

    def wait_for(
        self, path: str, match: Callable[[dict[str, Any]], bool], count: int = 1
    ) -> list[dict[str, Any]]:
        """The first `count` verified events at `path` that satisfy `match`."""
        deadline = time.monotonic() + WAIT_S
        with self.changed:
            while True:
                assert not self.rejected, self.rejected
                found = [e for p, e in self.received if p == path and match(e)]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(p, e["type"]) for p, e in self.received[-15:]]
                    raise AssertionError(f"no matching event at {path}; last seen: {seen}")
                self.changed.wait(left)

    def event(self, path: str, type: str, object_id: str) -> dict[str, Any]:
        found = self.wait_for(
            path, lambda e: e["type"] == type and e["data"]["object"].get("id") == object_id
        )
        return found[0]


def _handler_for(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.accept(self.path, body, self.headers.get("Stripe-Signature"))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# Fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    settings = Settings(
        webhook_initial_delay=0.0, webhook_retry_delays=(0.05, 0.1, 0.2), webhook_timeout=2.0
    )
    port, stop = serve_in_thread("127.0.0.1", 0, settings)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop()
        reset()
        STATE.settings = Settings()


@pytest.fixture(scope="module")
def receiver(emulator: str) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(receiver))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    post(
        emulator,
        "/_config/webhooks/platform",
        url=receiver.url + "/platform",
        secret=PLATFORM_SECRET,
    )
    post(
        emulator,
        "/_config/webhooks/connect",
        url=receiver.url + "/connect",
        secret=CONNECT_SECRET,
        connect="true",
    )
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def sdk(emulator: str, receiver: WebhookReceiver) -> stripe.StripeClient:
    """Configured exactly as the app must configure it, with the emulator as API base."""
    return stripe.StripeClient("sk_test_salon_local", base_addresses={"api": emulator})


# Helpers ---------------------------------------------------------------------------------------


def call(method: str, url: str, /, **params: Any) -> tuple[int, dict[str, str], bytes]:
    """Plain HTTP (form-encoded, lists as name[]) for the /_config and /_test routes."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        values = value if isinstance(value, list) else [value]
        suffix = "[]" if isinstance(value, list) else ""
        pairs.extend((name + suffix, str(v)) for v in values)
    parts = urllib.parse.urlsplit(url)
    connection = HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    try:
        connection.request(
            method,
            parts.path + (f"?{parts.query}" if parts.query else ""),
            body=urllib.parse.urlencode(pairs) if pairs else None,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def post(base: str, path: str, /, **params: Any) -> Any:
    status, _, body = call("POST", base + path, **params)
    assert status < 300, body
    return json.loads(body) if body else None


def get(base: str, path: str) -> Any:
    status, _, body = call("GET", base + path)
    assert status == 200, body
    return json.loads(body)


def delete(base: str, path: str) -> None:
    status, _, body = call("DELETE", base + path)
    assert status < 300, body


def deliveries(
    base: str, event_id: str, count: int, endpoint: str | None = None
) -> list[dict[str, Any]]:
    """The emulator's log of delivery attempts of one event, once it has `count` of them."""
    deadline = time.monotonic() + WAIT_S
    while True:
        rows = [
            row
            for row in get(base, f"/_test/webhook_deliveries?event={event_id}")["data"]
            if endpoint is None or row["endpoint"] == endpoint
        ]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def assert_event_shape(event: dict[str, Any], type: str, account: str | None = None) -> None:
    assert event["id"].startswith("evt_")
    assert event["object"] == "event"
    assert event["type"] == type
    assert isinstance(event["created"], int)
    assert event["livemode"] is False
    assert event["api_version"] == DEFAULT_API_VERSION
    assert isinstance(event["data"]["object"], dict)
    if account is None:
        assert "account" not in event
    else:
        assert event["account"] == account


def new_account(sdk: stripe.StripeClient, email: str = "creator@example.com") -> stripe.Account:
    return sdk.v1.accounts.create(
        params={
            "type": "express",
            "country": "US",
            "email": email,
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
            "metadata": {"creator_id": "c-1"},
        }
    )


def onboarded_account(sdk: stripe.StripeClient, emulator: str) -> str:
    account = new_account(sdk)
    post(emulator, f"/_test/accounts/{account.id}/complete_onboarding")
    return account.id


def card(sdk: stripe.StripeClient, number: str) -> str:
    pm = sdk.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    return pm.id


def tip(sdk: stripe.StripeClient, **params: Any) -> stripe.PaymentIntent:
    return sdk.v1.payment_intents.create(
        params={"amount": 1500, "currency": "usd", "confirm": True, **params}
    )


def key() -> str:
    return "tip-" + uuid.uuid4().hex


# Accounts and onboarding -----------------------------------------------------------------------


def test_new_express_account_starts_disabled_with_requirements_due(
    sdk: stripe.StripeClient,
) -> None:
    account = new_account(sdk)

    assert account.id.startswith("acct_")
    assert account.type == "express"
    assert account.email == "creator@example.com"
    assert (account.charges_enabled, account.payouts_enabled) == (False, False)
    assert account.details_submitted is False
    assert account.requirements.currently_due
    assert account.capabilities.to_dict() == {"card_payments": "inactive", "transfers": "inactive"}
    assert account.metadata.to_dict() == {"creator_id": "c-1"}
    assert sdk.v1.accounts.retrieve(account.id).id == account.id
    assert account.id in [a.id for a in sdk.v1.accounts.list(params={"limit": 100}).data]
    updated = sdk.v1.accounts.update(account.id, params={"metadata": {"tier": "gold"}})
    assert updated.metadata.to_dict() == {"creator_id": "c-1", "tier": "gold"}


def test_complete_onboarding_sends_signed_account_updated_to_the_connect_endpoint_only(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver
) -> None:
    account = new_account(sdk)

    post(emulator, f"/_test/accounts/{account.id}/complete_onboarding")

    event = receiver.event("/connect", "account.updated", account.id)
    assert_event_shape(event, "account.updated", account=account.id)
    enabled = event["data"]["object"]
    assert (enabled["charges_enabled"], enabled["payouts_enabled"]) == (True, True)
    assert enabled["requirements"]["currently_due"] == []
    assert event["data"]["previous_attributes"]["charges_enabled"] is False
    assert event["pending_webhooks"] == 1
    assert {d["endpoint"] for d in deliveries(emulator, event["id"], 1)} == {"connect"}
    assert sdk.v1.accounts.retrieve(account.id).charges_enabled is True


def test_account_link_opens_the_emulators_onboarding_page_which_returns_to_return_url(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    account = new_account(sdk)
    link = sdk.v1.account_links.create(
        params={
            "account": account.id,
            "refresh_url": "http://127.0.0.1:9/refresh",
            "return_url": "http://127.0.0.1:9/return",
            "type": "account_onboarding",
        }
    )
    assert link.url.startswith(emulator + "/_test/account_links/")
    assert link.expires_at > link.created
    status, _, page = call("GET", link.url)
    assert status == 200 and b"Finish onboarding" in page

    status, headers, _ = call("POST", link.url, action="complete")

    assert status == 303
    assert headers["Location"] == "http://127.0.0.1:9/return"
    assert sdk.v1.accounts.retrieve(account.id).payouts_enabled is True


def test_submitted_but_unverified_onboarding_enables_nothing(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver
) -> None:
    account = new_account(sdk)

    post(emulator, f"/_test/accounts/{account.id}/submit_details")

    event = receiver.event("/connect", "account.updated", account.id)
    submitted = event["data"]["object"]
    assert submitted["details_submitted"] is True
    assert (submitted["charges_enabled"], submitted["payouts_enabled"]) == (False, False)
    assert submitted["requirements"]["pending_verification"]


# Payments --------------------------------------------------------------------------------------


def test_destination_charge_saving_the_card_transfers_the_whole_amount(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver
) -> None:
    creator = onboarded_account(sdk, emulator)
    fan = sdk.v1.customers.create(params={"email": "fan@example.com"})

    intent = tip(
        sdk,
        customer=fan.id,
        payment_method=card(sdk, "4242424242424242"),
        setup_future_usage="off_session",
        transfer_data={"destination": creator},
        metadata={"tip_id": "t-1"},
    )

    assert intent.status == "succeeded"
    assert intent.transfer_data.to_dict() == {"destination": creator}
    assert intent.setup_future_usage == "off_session"
    assert isinstance(intent.latest_charge, str)
    saved = sdk.v1.payment_methods.list(params={"customer": fan.id, "type": "card"}).data
    assert [pm.id for pm in saved] == [intent.payment_method]
    (transfer,) = sdk.v1.transfers.list(params={"destination": creator}).data
    assert (transfer.amount, transfer.currency) == (1500, "usd")
    assert transfer.source_transaction == intent.latest_charge
    charge = sdk.v1.charges.retrieve(intent.latest_charge)
    assert charge.transfer == transfer.id
    assert charge.metadata.to_dict() == {"tip_id": "t-1"}
    created = receiver.event("/platform", "transfer.created", transfer.id)
    assert_event_shape(created, "transfer.created")
    succeeded = receiver.event("/platform", "payment_intent.succeeded", intent.id)
    assert succeeded["data"]["object"]["transfer_data"] == {"destination": creator}


def test_transfer_data_amount_limits_what_the_creator_receives(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    creator = onboarded_account(sdk, emulator)

    intent = tip(
        sdk,
        payment_method="pm_card_visa",
        transfer_data={"destination": creator, "amount": 1200},
        on_behalf_of=creator,
    )

    assert intent.transfer_data.to_dict() == {"destination": creator, "amount": 1200}
    assert intent.on_behalf_of == creator
    (transfer,) = sdk.v1.transfers.list(params={"destination": creator}).data
    assert transfer.amount == 1200


def test_saved_card_is_charged_again_off_session(sdk: stripe.StripeClient, emulator: str) -> None:
    creator = onboarded_account(sdk, emulator)
    fan = sdk.v1.customers.create(params={"email": "monthly@example.com"})
    first = tip(
        sdk,
        customer=fan.id,
        payment_method="pm_card_visa",
        setup_future_usage="off_session",
        transfer_data={"destination": creator},
    )

    again = sdk.v1.payment_intents.create(
        params={
            "amount": 900,
            "currency": "usd",
            "customer": fan.id,
            "payment_method": first.payment_method,
            "off_session": True,
            "confirm": True,
            "transfer_data": {"destination": creator},
        },
        options={"idempotency_key": key()},
    )

    assert again.status == "succeeded"
    assert again.payment_method == first.payment_method
    amounts = sorted(t.amount for t in sdk.v1.transfers.list(params={"destination": creator}))
    assert amounts == [900, 1500]


@pytest.mark.parametrize("number", ["4000002500003155", "4000002760003184"])
def test_card_demanding_authentication_requires_action_on_session(
    sdk: stripe.StripeClient, emulator: str, number: str
) -> None:
    creator = onboarded_account(sdk, emulator)

    intent = tip(sdk, payment_method=card(sdk, number), transfer_data={"destination": creator})

    assert intent.status == "requires_action"
    assert intent.next_action.type == "use_stripe_sdk"
    assert intent.latest_charge is None
    assert sdk.v1.transfers.list(params={"destination": creator}).data == []


@pytest.mark.parametrize("number", ["4000002500003155", "4000002760003184"])
def test_card_demanding_authentication_is_declined_off_session(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver, number: str
) -> None:
    fan = sdk.v1.customers.create(params={"email": "away@example.com"})
    pm = card(sdk, number)
    sdk.v1.payment_methods.attach(pm, params={"customer": fan.id})

    with pytest.raises(stripe.CardError) as declined:
        tip(sdk, customer=fan.id, payment_method=pm, off_session=True)

    error = declined.value
    assert error.http_status == 402
    assert error.code == "authentication_required"
    assert error.error is not None and error.error.payment_intent is not None
    intent = sdk.v1.payment_intents.retrieve(error.error.payment_intent.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "authentication_required"
    assert intent.last_payment_error.payment_method.id == pm
    receiver.event("/platform", "payment_intent.payment_failed", intent.id)


def test_card_authenticated_once_and_saved_off_session_is_not_challenged_again(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    creator = onboarded_account(sdk, emulator)
    fan = sdk.v1.customers.create(params={"email": "sca@example.com"})
    first = tip(
        sdk,
        customer=fan.id,
        payment_method=card(sdk, "4000002500003155"),
        setup_future_usage="off_session",
        transfer_data={"destination": creator},
    )
    assert first.status == "requires_action"

    post(emulator, f"/_test/payment_intents/{first.id}/authenticate", outcome="success")

    assert sdk.v1.payment_intents.retrieve(first.id).status == "succeeded"
    later = tip(sdk, customer=fan.id, payment_method=first.payment_method, off_session=True)
    assert later.status == "succeeded"


def test_declined_card_answers_card_error_with_the_payment_intent(
    sdk: stripe.StripeClient,
) -> None:
    with pytest.raises(stripe.CardError) as declined:
        tip(sdk, payment_method="pm_card_chargeCustomerFail")

    assert declined.value.code == "card_declined"
    assert declined.value.error is not None
    assert declined.value.error.payment_intent.status == "requires_payment_method"


# Idempotency -----------------------------------------------------------------------------------


def test_same_idempotency_key_replays_the_first_answer_without_doing_the_work_again(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    creator = onboarded_account(sdk, emulator)
    params = {
        "amount": 2000,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "confirm": True,
        "transfer_data": {"destination": creator},
    }
    same = key()

    first = sdk.v1.payment_intents.create(params=params, options={"idempotency_key": same})
    second = sdk.v1.payment_intents.create(params=params, options={"idempotency_key": same})

    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(sdk.v1.transfers.list(params={"destination": creator}).data) == 1
    succeeded = sdk.v1.events.list(params={"type": "payment_intent.succeeded", "limit": 100})
    assert [e.data.object.id for e in succeeded.data].count(first.id) == 1


def test_idempotency_key_reused_with_other_parameters_is_refused(
    sdk: stripe.StripeClient,
) -> None:
    same = key()
    sdk.v1.customers.create(params={"email": "a@example.com"}, options={"idempotency_key": same})

    with pytest.raises(stripe.IdempotencyError) as refused:
        sdk.v1.customers.create(
            params={"email": "b@example.com"}, options={"idempotency_key": same}
        )
    assert refused.value.http_status == 400
    with pytest.raises(stripe.IdempotencyError):
        sdk.v1.accounts.create(params={"type": "express"}, options={"idempotency_key": same})


def test_pruned_idempotency_key_creates_a_new_object(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    same = key()
    first = sdk.v1.customers.create(
        params={"email": "p@example.com"}, options={"idempotency_key": same}
    )

    delete(emulator, "/_test/idempotency_keys")

    again = sdk.v1.customers.create(
        params={"email": "p@example.com"}, options={"idempotency_key": same}
    )
    assert again.id != first.id


# Refunds, disputes, transfers ------------------------------------------------------------------


def test_refund_emits_charge_refunded_and_refund_created(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver
) -> None:
    creator = onboarded_account(sdk, emulator)
    intent = tip(sdk, payment_method="pm_card_visa", transfer_data={"destination": creator})

    refund = sdk.v1.refunds.create(
        params={"payment_intent": intent.id, "reason": "requested_by_customer"}
    )

    assert (refund.amount, refund.status, refund.charge) == (
        1500,
        "succeeded",
        intent.latest_charge,
    )
    refunded = receiver.event("/platform", "charge.refunded", intent.latest_charge)
    assert_event_shape(refunded, "charge.refunded")
    assert refunded["data"]["object"]["amount_refunded"] == 1500
    assert refunded["data"]["object"]["refunded"] is True
    receiver.event("/platform", "refund.created", refund.id)
    with pytest.raises(stripe.InvalidRequestError) as again:
        sdk.v1.refunds.create(params={"charge": intent.latest_charge})
    assert again.value.code == "charge_already_refunded"


def test_refund_with_reverse_transfer_takes_the_share_back_from_the_creator(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    creator = onboarded_account(sdk, emulator)
    intent = tip(sdk, payment_method="pm_card_visa", transfer_data={"destination": creator})

    refund = sdk.v1.refunds.create(
        params={"charge": intent.latest_charge, "amount": 500, "reverse_transfer": True}
    )

    (transfer,) = sdk.v1.transfers.list(params={"destination": creator}).data
    assert transfer.amount_reversed == 500
    assert refund.transfer_reversal == transfer.reversals.data[0].id


def test_a_refund_without_amount_after_a_partial_refund_refunds_only_the_remainder(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    creator = onboarded_account(sdk, emulator)
    intent = tip(sdk, payment_method="pm_card_visa", transfer_data={"destination": creator})

    sdk.v1.refunds.create(params={"charge": intent.latest_charge, "amount": 400})
    rest = sdk.v1.refunds.create(params={"charge": intent.latest_charge})

    assert rest.amount == 1100
    charge = sdk.v1.charges.retrieve(intent.latest_charge)
    assert (charge.amount_refunded, charge.refunded) == (1500, True)
    listed = sdk.v1.refunds.list(params={"charge": intent.latest_charge}).data
    assert sorted(r.amount for r in listed) == [400, 1100]


def test_partial_refunds_with_reverse_transfer_reverse_the_whole_transfer_in_the_end(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    creator = onboarded_account(sdk, emulator)
    intent = tip(
        sdk,
        payment_method="pm_card_visa",
        transfer_data={"destination": creator, "amount": 1000},
    )
    for amount in (2, 2, 2, 1494):  # each alone would round down to 1 of 1000
        sdk.v1.refunds.create(
            params={"charge": intent.latest_charge, "amount": amount, "reverse_transfer": True}
        )

    (transfer,) = sdk.v1.transfers.list(params={"destination": creator}).data
    assert transfer.amount_reversed == 1000


def test_lists_filter_on_created_as_stripe_does(sdk: stripe.StripeClient, emulator: str) -> None:
    creator = onboarded_account(sdk, emulator)
    intent = tip(sdk, payment_method="pm_card_visa", transfer_data={"destination": creator})
    refund = sdk.v1.refunds.create(params={"charge": intent.latest_charge, "amount": 100})
    dispute = post(emulator, f"/_test/charges/{intent.latest_charge}/dispute")
    now = int(time.time())
    for resource, scope, wanted in (
        ("transfers", {"destination": creator}, None),
        ("refunds", {"charge": intent.latest_charge}, refund.id),
        ("disputes", {"charge": intent.latest_charge}, dispute["id"]),
    ):
        listing = getattr(sdk.v1, resource)

        def ids(
            created: dict[str, int], scope: dict[str, Any] = scope, listing: Any = listing
        ) -> list[str]:
            return [o.id for o in listing.list(params={"created": created, **scope}).data]

        found = ids({"gte": now - 60})
        assert len(found) == 1 and (wanted is None or found == [wanted]), resource
        assert ids({"gte": now + 60}) == [], resource
        assert ids({"lt": now - 60}) == [], resource
        with pytest.raises(stripe.InvalidRequestError):
            ids({"after": now})


def test_dispute_route_emits_charge_dispute_created(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver
) -> None:
    creator = onboarded_account(sdk, emulator)
    intent = tip(sdk, payment_method="pm_card_visa", transfer_data={"destination": creator})

    dispute = post(emulator, f"/_test/charges/{intent.latest_charge}/dispute", reason="fraudulent")

    created = receiver.event("/platform", "charge.dispute.created", dispute["id"])
    assert_event_shape(created, "charge.dispute.created")
    assert created["data"]["object"]["charge"] == intent.latest_charge
    assert created["data"]["object"]["payment_intent"] == intent.id
    assert sdk.v1.charges.retrieve(intent.latest_charge).disputed is True
    closed = sdk.v1.disputes.close(dispute["id"])
    assert closed.status == "lost"
    receiver.event("/platform", "charge.dispute.closed", dispute["id"])


def test_transfer_and_its_reversal_emit_transfer_created_and_transfer_reversed(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver
) -> None:
    creator = onboarded_account(sdk, emulator)

    transfer = sdk.v1.transfers.create(
        params={
            "amount": 4000,
            "currency": "usd",
            "destination": creator,
            "transfer_group": "payout-2026-01",
            "description": "monthly tips",
            "metadata": {"period": "2026-01"},
        },
        options={"idempotency_key": key()},
    )
    reversal = sdk.v1.transfers.reversals.create(transfer.id, params={"amount": 1000})

    assert transfer.id.startswith("tr_") and reversal.id.startswith("trr_")
    assert (reversal.amount, reversal.transfer) == (1000, transfer.id)
    after = sdk.v1.transfers.retrieve(transfer.id)
    assert (after.amount_reversed, after.reversed) == (1000, False)
    assert [r.id for r in sdk.v1.transfers.reversals.list(transfer.id).data] == [reversal.id]
    assert_event_shape(
        receiver.event("/platform", "transfer.created", transfer.id), "transfer.created"
    )
    reversed_ = receiver.event("/platform", "transfer.reversed", transfer.id)
    assert reversed_["data"]["object"]["amount_reversed"] == 1000


def test_account_that_cannot_receive_transfers_is_refused_with_stripes_error_code(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver
) -> None:
    creator = onboarded_account(sdk, emulator)

    post(emulator, f"/_test/accounts/{creator}/restrict")

    restricted = receiver.wait_for(
        "/connect",
        lambda e: (
            e["account"] == creator
            and e["data"]["object"]["payouts_enabled"] is False
            and "charges_enabled" in e["data"].get("previous_attributes", {})
        ),
    )[0]
    assert restricted["data"]["object"]["requirements"]["currently_due"]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sdk.v1.transfers.create(params={"amount": 100, "currency": "usd", "destination": creator})
    assert refused.value.http_status == 400
    assert refused.value.code == "insufficient_capabilities_for_transfer"
    with pytest.raises(stripe.InvalidRequestError) as charge_refused:
        tip(sdk, payment_method="pm_card_visa", transfer_data={"destination": creator})
    assert charge_refused.value.code == "insufficient_capabilities_for_transfer"


def test_forced_transfer_failure_answers_the_requested_code_once(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    creator = onboarded_account(sdk, emulator)
    params = {"amount": 100, "currency": "usd", "destination": creator}

    post(emulator, "/_test/transfers/fail", count=1, code="balance_insufficient")

    with pytest.raises(stripe.InvalidRequestError) as refused:
        sdk.v1.transfers.create(params=params)
    assert refused.value.code == "balance_insufficient"
    assert sdk.v1.transfers.create(params=params).amount == 100


# Connected-account requests, webhooks, rate limits ---------------------------------------------


def test_request_made_for_a_connected_account_sends_a_connect_event(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver
) -> None:
    creator = onboarded_account(sdk, emulator)

    customer = sdk.v1.customers.create(
        params={"email": "direct@example.com"}, options={"stripe_account": creator}
    )

    event = receiver.event("/connect", "customer.created", customer.id)
    assert_event_shape(event, "customer.created", account=creator)


def test_unknown_connected_account_is_refused(sdk: stripe.StripeClient) -> None:
    with pytest.raises(stripe.PermissionError) as refused:
        sdk.v1.customers.create(params={}, options={"stripe_account": "acct_doesnotexist"})
    assert refused.value.error is not None
    assert refused.value.error.code == "account_invalid"


def test_failing_webhook_endpoint_is_retried_until_it_answers_2xx(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver
) -> None:
    post(
        emulator,
        "/_config/webhooks/flaky",
        url=receiver.url + "/flaky",
        secret=FLAKY_SECRET,
        events=["customer.created"],
    )
    try:
        customer = sdk.v1.customers.create(params={"email": "retry@example.com"})

        attempts = receiver.wait_for(
            "/flaky", lambda e: e["data"]["object"]["id"] == customer.id, FLAKY_FAILURES + 1
        )
    finally:
        delete(emulator, "/_config/webhooks/flaky")

    assert len({a["id"] for a in attempts}) == 1  # the same event, delivered again
    log = deliveries(emulator, attempts[0]["id"], FLAKY_FAILURES + 1, endpoint="flaky")
    assert [d["status"] for d in log] == [500, 500, 200]


def test_unreachable_webhook_endpoint_is_retried_then_given_up(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    post(
        emulator,
        "/_config/webhooks/dead",
        url=f"http://127.0.0.1:{closed_port}/hook",
        secret="whsec_dead",
        events=["customer.deleted"],
    )
    try:
        customer = sdk.v1.customers.create(params={"email": "gone@example.com"})
        sdk.v1.customers.delete(customer.id)
        (event,) = sdk.v1.events.list(params={"type": "customer.deleted", "limit": 100}).data[-1:]
        log = deliveries(emulator, event.id, 4, endpoint="dead")
    finally:
        delete(emulator, "/_config/webhooks/dead")

    assert [d["attempt"] for d in log] == [1, 2, 3, 4]
    assert all(d["status"] is None and d["error"] for d in log)


def test_rate_limit_switch_makes_the_sdk_raise_rate_limit_error(
    sdk: stripe.StripeClient, emulator: str
) -> None:
    post(emulator, "/_test/rate_limit", count=1)

    with pytest.raises(stripe.RateLimitError) as limited:
        sdk.v1.accounts.list()

    assert limited.value.http_status == 429
    assert limited.value.error is not None
    assert limited.value.error.code == "rate_limit"
    assert sdk.v1.accounts.list().object == "list"


def test_emulator_refuses_to_listen_beyond_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        serve_in_thread("192.0.2.10", 0)


# Shapes ----------------------------------------------------------------------------------------


def test_objects_carry_every_field_of_stripes_own_example_objects(
    sdk: stripe.StripeClient, emulator: str, receiver: WebhookReceiver
) -> None:
    if not FIXTURES.exists():
        pytest.skip(f"no Stripe fixtures at {FIXTURES} (set SALON_STRIPE_FIXTURES)")
    fixtures = json.loads(FIXTURES.read_text())
    creator = onboarded_account(sdk, emulator)
    link = sdk.v1.account_links.create(
        params={
            "account": creator,
            "refresh_url": "http://127.0.0.1:9/r",
            "return_url": "http://127.0.0.1:9/d",
            "type": "account_onboarding",
        }
    )
    intent = tip(sdk, payment_method="pm_card_visa", transfer_data={"destination": creator})
    (transfer,) = sdk.v1.transfers.list(params={"destination": creator}).data
    reversal = sdk.v1.transfers.reversals.create(transfer.id, params={"amount": 100})
    dispute = post(emulator, f"/_test/charges/{intent.latest_charge}/dispute")
    refund = sdk.v1.refunds.create(params={"charge": intent.latest_charge, "amount": 100})
    event = receiver.event("/connect", "account.updated", creator)
    shapes: dict[str, dict[str, Any]] = {
        "account": sdk.v1.accounts.retrieve(creator).to_dict(),
        "account_link": link.to_dict(),
        "payment_intent": intent.to_dict(),
        "charge": sdk.v1.charges.retrieve(intent.latest_charge).to_dict(),
        "transfer": transfer.to_dict(),
        "transfer_reversal": reversal.to_dict(),
        "dispute": dispute,
        "refund": refund.to_dict(),
        "event": event,
    }
    missing = {
        name: sorted(set(fixtures[name]) - set(shape))
        for name, shape in shapes.items()
        if set(fixtures[name]) - set(shape)
    }
    assert missing == {}
