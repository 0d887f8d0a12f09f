"""Send Money end to end against the Stripe emulator: onboarding, tips, webhooks, the ledger."""

from __future__ import annotations

import dataclasses
import json
import random
import time
import uuid
from typing import Any

import pytest
import stripe
from chalice.test import Client

from chalicelib.services import container
from tests.support.crowd import Crowd
from tests.support.fakes import RecordingConnections
from tests.support.reconcile import assert_reconciled
from tests.support.send_money import (
    beta_sender,
    call,
    confirm_with_card,
    creator_with_send_money,
    deliver,
    tip,
)
from tests.support.stripe_local import (
    CONNECT_SECRET,
    PLATFORM_SECRET,
    Delivery,
    WebhookInbox,
    emulator_post,
)


@pytest.fixture
def crowd(paying_crowd: Crowd) -> Crowd:
    return paying_crowd


def test_a_beta_user_tips_twice_entering_the_card_once_and_the_creator_is_credited(
    crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
    sockets: RecordingConnections,
) -> None:
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    sender = beta_sender(crowd, client)
    profile = call(client, "get", f"/users/{creator.user_id}", sender).json_body
    assert profile["send_money"] is True

    quote = call(
        client, "get", f"/tips/quote?creator_id={creator.user_id}&amount_cents=500", sender
    ).json_body
    assert quote == {
        "amount_cents": 500,
        "fee_cents": 46,
        "total_cents": 546,
        "currency": "usd",
        "fee_paid_by": "sender",
    }

    first = tip(client, sender, creator, 500)
    assert first.status_code == 201, first.json_body
    assert first.json_body["next_step"] == "confirm_with_card"
    assert first.json_body["client_secret"]
    confirm_with_card(sdk, first.json_body, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    deliver(client, inbox.take())

    second = tip(client, sender, creator, 1000)
    assert second.json_body["next_step"] in ("done", "wait"), second.json_body
    assert second.json_body["client_secret"] is None  # no card asked for
    inbox.wait_for("payment_intent.succeeded")
    deliver(client, inbox.take())

    earnings = call(client, "get", "/me/earnings", creator).json_body
    assert earnings["total_cents"] == 1500
    assert sorted(e["amount_cents"] for e in earnings["items"]) == [500, 1000]
    assert all(e["stripe"]["payment_intent"] for e in earnings["items"])
    assert crowd.svc.payments.repo.balance(creator.user_id) == 1500
    notices = creator.events("tip_received")
    assert [n["amount_cents"] for n in notices] == [500, 1000]
    assert notices[0]["from"]["username"] == "fan"
    # And a push to the creator's devices, from the sender (so a block between them holds).
    pushes = [m for _, m in crowd.svc.notifications_queue.pending if m["kind"] == "push"]
    assert [(m["to"], m["from"], m["push"]["kind"]) for m in pushes] == [
        (creator.user_id, sender.user_id, "tip")
    ] * 2
    assert pushes[0]["push"]["body"] == "Fan sent you $5.00"
    sent = call(client, "get", "/me/tips", sender).json_body["items"]
    assert [t["status"] for t in sent] == ["succeeded", "succeeded"]


def test_a_double_submit_charges_once(
    crowd: Crowd, client: Client, emulator: str, inbox: WebhookInbox
) -> None:
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    sender = beta_sender(crowd, client)
    a = tip(client, sender, creator, 700, key="double-submit-key")
    b = tip(client, sender, creator, 700, key="double-submit-key")
    assert a.json_body["tip"]["payment_intent_id"] == b.json_body["tip"]["payment_intent_id"]
    other = tip(client, sender, creator, 900, key="double-submit-key")
    assert other.json_body["error"]["code"] == "idempotency_key_reused"


def test_a_bank_asking_for_authentication_is_told_to_the_sender(
    crowd: Crowd, client: Client, emulator: str, inbox: WebhookInbox, sdk: stripe.StripeClient
) -> None:
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    sender = beta_sender(crowd, client)
    first = tip(client, sender, creator, 500).json_body
    confirm_with_card(sdk, first, "4000002760003184")  # always asks for 3-D Secure
    intent_id = first["tip"]["payment_intent_id"]
    emulator_post(emulator, f"/_test/payment_intents/{intent_id}/authenticate", outcome="success")
    inbox.wait_for("payment_intent.succeeded")
    deliver(client, inbox.take())
    second = tip(client, sender, creator, 500).json_body
    assert second["next_step"] == "authenticate"
    assert second["client_secret"]


def test_refunds_and_disputes_reverse_credits(
    crowd: Crowd, client: Client, emulator: str, inbox: WebhookInbox, sdk: stripe.StripeClient
) -> None:
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    sender = beta_sender(crowd, client)
    first = tip(client, sender, creator, 500).json_body
    confirm_with_card(sdk, first, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    deliver(client, inbox.take())  # the card is saved when Stripe confirms the first payment
    second = tip(client, sender, creator, 2000).json_body
    inbox.wait_for("payment_intent.succeeded")
    deliver(client, inbox.take())
    platform = stripe.StripeClient("sk_test_salon", base_addresses={"api": emulator})
    platform.v1.refunds.create(params={"payment_intent": first["tip"]["payment_intent_id"]})
    inbox.wait_for("charge.refunded")
    charge = platform.v1.payment_intents.retrieve(second["tip"]["payment_intent_id"]).latest_charge
    emulator_post(emulator, f"/_test/charges/{charge}/dispute")
    inbox.wait_for("charge.dispute.created")
    deliver(client, inbox.take())
    earnings = call(client, "get", "/me/earnings", creator).json_body
    kinds = sorted((e["kind"], e["amount_cents"]) for e in earnings["items"])
    assert kinds == [("dispute", -2000), ("refund", -500), ("tip", 500), ("tip", 2000)]
    assert earnings["total_cents"] == 0
    assert_reconciled(crowd.svc)


def test_a_shuffled_duplicated_stream_with_forgeries_ends_exactly_right(
    crowd: Crowd, client: Client, emulator: str, inbox: WebhookInbox, sdk: stripe.StripeClient
) -> None:
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    sender = beta_sender(crowd, client)
    first = tip(client, sender, creator, 500).json_body
    confirm_with_card(sdk, first, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    # The card is saved when the first payment's event is processed: deliver that one now
    # (the shuffled stream below delivers it again, twice).
    first_events = list(inbox.deliveries)
    deliver(client, first_events)
    for cents in (700, 1100, 1300):
        tip(client, sender, creator, cents)
    inbox.wait_for("payment_intent.succeeded", count=4)
    platform = stripe.StripeClient("sk_test_salon", base_addresses={"api": emulator})
    platform.v1.refunds.create(
        params={"payment_intent": first["tip"]["payment_intent_id"], "amount": 273}
    )
    inbox.wait_for("charge.refunded")
    time.sleep(0.2)  # let any trailing event arrive
    stream = inbox.take()
    doubled = stream + stream
    random.Random(7).shuffle(doubled)
    # Some forged (signature changed), some stale (signed 10 minutes ago).
    forged = deliver(client, stream[:3], tamper=True)
    assert set(forged) == {400}
    stale = [dataclasses.replace(d, signature=_resign_old(d)) for d in stream[:3]]
    assert set(deliver(client, stale)) == {400}
    statuses = deliver(client, doubled)
    assert set(statuses) == {200}
    total = 500 + 700 + 1100 + 1300 - 250  # 273 of 546 refunded takes back half of 500
    assert call(client, "get", "/me/earnings", creator).json_body["total_cents"] == total
    assert crowd.svc.payments.repo.balance(creator.user_id) == total
    assert_reconciled(crowd.svc)


def _resign_old(delivery: Delivery) -> str:
    import hashlib
    import hmac

    secret = CONNECT_SECRET if delivery.route.endswith("connect") else PLATFORM_SECRET
    stamp = int(time.time()) - 600
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + delivery.body, hashlib.sha256)
    return f"t={stamp},v1={mac.hexdigest()}"


@pytest.mark.parametrize(
    ("setup", "payload", "code"),
    [
        ("no_beta", {"amount_cents": 500}, "not_available_yet"),
        ("send_money_off", {"amount_cents": 500}, "send_money_off"),
        ("self", {"amount_cents": 500}, "cannot_tip_yourself"),
        ("ok", {"amount_cents": 99}, "amount_below_minimum"),
        ("ok", {"amount_cents": 100_001}, "amount_above_maximum"),
        ("ok", {"amount_cents": 5.5}, "invalid_request"),
        ("ok", {"amount_cents": "500"}, "invalid_request"),
        ("ok", {"amount_cents": True}, "invalid_request"),
        ("ok", {"amount_cents": -5}, "invalid_request"),
        ("unknown_creator", {"amount_cents": 500}, "member_not_found"),
    ],
)
def test_every_refusal_has_its_code(
    crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    setup: str,
    payload: dict[str, Any],
    code: str,
) -> None:
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    sender = crowd.person("fan") if setup == "no_beta" else beta_sender(crowd, client)
    target = creator.user_id
    if setup == "send_money_off":
        call(client, "put", "/creator/send-money", creator, {"enabled": False})
    if setup == "self":
        client.lambda_.invoke("admin_beta_add", {"user_id": creator.user_id})
        sender = creator
    if setup == "unknown_creator":
        target = "nobody"
    response = call(
        client,
        "post",
        "/tips",
        sender,
        {
            "creator_id": target,
            "idempotency_key": uuid.uuid4().hex,
            **payload,
        },
    )
    assert 400 <= response.status_code < 500
    assert response.json_body["error"]["code"] == code


def test_webhooks_with_bad_signatures_are_refused(client: Client, pay: Any) -> None:
    body = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"})
    for headers in ({}, {"Stripe-Signature": "t=1,v1=abc"}):
        response = client.http.post(
            "/webhooks/stripe", body=body, headers={"Content-Type": "application/json", **headers}
        )
        assert (response.status_code, response.json_body["error"]["code"]) == (
            400,
            "invalid_signature",
        )


def test_beta_users_send_feedback_and_operators_read_it(
    crowd: Crowd, client: Client, pay: Any
) -> None:
    sender = beta_sender(crowd, client)
    outsider = crowd.person("outsider")
    assert call(client, "post", "/feedback", sender, {"text": "Love it"}).status_code == 201
    refused = call(client, "post", "/feedback", outsider, {"text": "Let me in"})
    assert refused.json_body["error"]["code"] == "not_available_yet"
    read = client.lambda_.invoke("admin_feedback_list", {}).payload
    assert [f["text"] for f in read["result"]["items"]] == ["Love it"]
    listed = client.lambda_.invoke("admin_beta_list", {}).payload["result"]["user_ids"]
    assert listed == [sender.user_id]


def test_container_uses_the_emulator(pay: Any) -> None:
    assert container.Services  # the fixture replaced settings on a fresh container
    assert pay.settings.stripe_api_base.startswith("http://127.0.0.1:")


def test_a_late_resubmit_answers_with_the_same_tip_and_charges_nothing_new(
    crowd: Crowd, client: Client, emulator: str, inbox: WebhookInbox, sdk: stripe.StripeClient
) -> None:
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    sender = beta_sender(crowd, client)
    first = tip(client, sender, creator, 500, key="the-first-tip-key").json_body
    confirm_with_card(sdk, first, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    deliver(client, inbox.take())  # the card is saved now
    again = tip(client, sender, creator, 500, key="the-first-tip-key")
    assert again.status_code == 201, again.json_body
    assert again.json_body["tip"]["payment_intent_id"] == first["tip"]["payment_intent_id"]
    assert again.json_body["tip"]["status"] == "succeeded"
    assert call(client, "get", "/me/earnings", creator).json_body["total_cents"] == 500


def test_a_declined_saved_card_fails_the_tip_and_the_next_tip_asks_for_a_card(
    crowd: Crowd, client: Client, emulator: str, inbox: WebhookInbox, sdk: stripe.StripeClient
) -> None:
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    sender = beta_sender(crowd, client)
    first = tip(client, sender, creator, 500).json_body
    confirm_with_card(sdk, first, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    deliver(client, inbox.take())
    # The saved card now declines every charge (Stripe's 4000000000000341).
    platform = stripe.StripeClient("sk_test_salon", base_addresses={"api": emulator})
    customer_id, _ = crowd.svc.payments.repo.customer(sender.user_id)
    failing = platform.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    platform.v1.payment_methods.attach(failing.id, params={"customer": customer_id})
    crowd.svc.payments.repo.save_card(sender.user_id, failing.id)
    declined = tip(client, sender, creator, 700)
    assert (declined.status_code, declined.json_body["error"]["code"]) == (409, "payment_declined")
    sent = call(client, "get", "/me/tips", sender).json_body["items"]
    assert sent[0]["status"] == "failed" and sent[0]["payment_intent_id"]
    retry = tip(client, sender, creator, 700).json_body
    assert retry["next_step"] == "confirm_with_card"


def test_a_suspended_creator_cannot_be_tipped(
    crowd: Crowd, client: Client, emulator: str, inbox: WebhookInbox
) -> None:
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    sender = beta_sender(crowd, client)
    client.lambda_.invoke("admin_suspend", {"user_id": creator.user_id})
    refused = tip(client, sender, creator, 500)
    assert refused.json_body["error"]["code"] == "send_money_off"
