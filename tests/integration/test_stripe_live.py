"""The Stripe gateway against real Stripe test mode. Runs only with STRIPE_TEST_SECRET_KEY set
(a `sk_test_...` key of an account with Connect enabled); skipped otherwise, as on CI here,
which has no network beyond package registries."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid

import pytest

from chalicelib.adapters.stripe_gateway import StripeGateway
from chalicelib.domain.money import InvalidSignatureError

KEY = os.environ.get("STRIPE_TEST_SECRET_KEY", "")
pytestmark = [
    pytest.mark.stripe_live,
    pytest.mark.skipif(not KEY.startswith("sk_test_"), reason="needs STRIPE_TEST_SECRET_KEY"),
]


@pytest.fixture
def gateway() -> StripeGateway:
    return StripeGateway(lambda: KEY)


def test_a_new_express_account_is_not_ready_until_onboarding_is_finished(
    gateway: StripeGateway,
) -> None:
    user_id = f"live-test-{uuid.uuid4().hex[:12]}"
    account = gateway.create_account(user_id)
    assert account.account_id.startswith("acct_")
    assert not gateway.account(account.account_id).ready
    url = gateway.onboarding_link(
        account.account_id, "https://salon.example/refresh", "https://salon.example/return"
    )
    assert url.startswith("https://")
    # The same user asks again: the idempotency key returns the same account.
    assert gateway.create_account(user_id).account_id == account.account_id


def test_a_saved_test_card_is_charged_once_per_idempotency_key(gateway: StripeGateway) -> None:
    customer = gateway.create_customer(f"live-test-{uuid.uuid4().hex[:12]}")
    params = {
        "amount": 546,
        "currency": "usd",
        "customer": customer,
        "payment_method": "pm_card_visa",
        "confirm": True,
        "off_session": True,
    }
    key = f"tip-live-{uuid.uuid4().hex}"
    first = gateway.charge(params, idempotency_key=key)
    again = gateway.charge(params, idempotency_key=key)
    assert first.status == "succeeded"
    assert again.payment_intent_id == first.payment_intent_id


def test_signatures_are_verified_as_stripe_signs_them(gateway: StripeGateway) -> None:
    secret = "whsec_live_test"
    body = json.dumps({"id": "evt_live", "object": "event", "type": "ping", "data": {}})
    stamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
    event = gateway.verify(body.encode(), f"t={stamp},v1={mac}", secret)
    assert event["id"] == "evt_live"
    with pytest.raises(InvalidSignatureError):
        gateway.verify(body.encode(), f"t={stamp},v1={'0' * 64}", secret)
