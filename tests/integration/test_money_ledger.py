"""The ledger under hostile deliveries: bodies that are not events, concurrent refunds and
reversals, disputes won, successes that outrun the tip's index, overlapping payout runs."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import pytest
from chalice.test import Client

from tests.support.stripe_local import PLATFORM_SECRET


def signed(body: bytes, secret: str = PLATFORM_SECRET) -> str:
    stamp = int(time.time())
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    return f"t={stamp},v1={mac.hexdigest()}"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"an event"',
        b"42",
        b"null",
        b"{}",
        b"not json at all",
        b'{"id": "evt_1", "type": "payment_intent.succeeded"}',
        b'{"id": "evt_1", "type": "charge.refunded", "data": {}}',
        b'{"id": "evt_1", "type": "charge.refunded", "data": {"object": []}}',
        b'{"id": "evt_1", "type": "charge.refunded", "data": {"object": {"amount": 5}}}',
        b'{"id": 7, "type": "charge.refunded", "data": {"object": {"id": "ch_1"}}}',
        b'{"type": "charge.refunded", "data": {"object": {"id": "ch_1"}}}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
@pytest.mark.parametrize("route", ["/webhooks/stripe", "/webhooks/stripe-connect"])
def test_a_signed_body_that_is_not_an_event_is_a_400_invalid_event(
    client: Client, pay: Any, route: str, body: bytes
) -> None:
    from tests.support.stripe_local import CONNECT_SECRET

    secret = CONNECT_SECRET if route.endswith("connect") else PLATFORM_SECRET
    response = client.http.post(
        route,
        body=body,
        headers={"Content-Type": "application/json", "Stripe-Signature": signed(body, secret)},
    )
    assert response.status_code == 400, response.body
    error = response.json_body["error"]
    assert error["code"] == "invalid_event"
    assert "event" in error["message"]
