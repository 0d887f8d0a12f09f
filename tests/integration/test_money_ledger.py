"""The ledger under hostile deliveries: bodies that are not events, concurrent refunds and
reversals, disputes won, successes that outrun the tip's index, overlapping payout runs."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import stripe
from chalice.test import Client

from chalicelib.adapters.dynamo import tx as tx_module
from chalicelib.adapters.dynamo.models import TipModel
from chalicelib.adapters.dynamo.money import MoneyRepository
from chalicelib.services.program import Pacer
from tests.support.crowd import Crowd, Person
from tests.support.reconcile import assert_reconciled, differences
from tests.support.send_money import (
    beta_sender,
    call,
    confirm_with_card,
    creator_with_send_money,
    deliver,
    tip,
)
from tests.support.stripe_local import PLATFORM_SECRET, Delivery, WebhookInbox, emulator_post


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


# --- helpers ----------------------------------------------------------------------------------


def platform(emulator: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_salon", base_addresses={"api": emulator})


def events_of(deliveries: list[Delivery], *types: str) -> list[dict[str, Any]]:
    return [json.loads(d.body) for d in deliveries if d.event_type in types]


class CommitGate:
    """Holds the first `parties` ledger transactions until all of them are about to commit:
    whatever each read before its write, the others read it too (the interleaving of two
    Lambdas handling two events at the same moment). Later commits pass straight through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=20)
        self.waiting = parties
        self.lock = threading.Lock()
        original = tx_module.Transaction.__exit__

        def gated(tx: Any, *exc: Any) -> None:
            with self.lock:
                wait, self.waiting = self.waiting > 0, self.waiting - 1
            if wait and exc[0] is None:
                self.barrier.wait()
            original(tx, *exc)

        monkeypatch.setattr(tx_module.Transaction, "__exit__", gated)


def at_once(work: list[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(len(work)) as pool:
        return [f.result() for f in [pool.submit(w) for w in work]]


def paid_tip(
    crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
    cents: int = 500,
) -> tuple[Person, dict[str, Any]]:
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    sender = beta_sender(crowd, client)
    answer = tip(client, sender, creator, cents).json_body
    confirm_with_card(sdk, answer, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    assert set(deliver(client, inbox.take())) == {200}
    return creator, answer


def earnings(client: Client, creator: Person) -> dict[str, Any]:
    body: dict[str, Any] = call(client, "get", "/me/earnings", creator).json_body
    return body


# --- refunds ----------------------------------------------------------------------------------


def test_two_refunds_recorded_at_the_same_moment_take_back_the_whole_tip_exactly(
    paying_crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creator, answer = paid_tip(paying_crowd, client, emulator, inbox, sdk)
    intent = answer["tip"]["payment_intent_id"]
    stripe_ = platform(emulator)
    stripe_.v1.refunds.create(params={"payment_intent": intent, "amount": 273})
    stripe_.v1.refunds.create(params={"payment_intent": intent})  # the rest, 273
    inbox.wait_for("charge.refunded", count=2)
    refunded = events_of(inbox.take(), "charge.refunded")
    assert len(refunded) == 2
    CommitGate(monkeypatch, 2)
    handle = paying_crowd.svc.payments.handle_event
    at_once([lambda e=e: handle(e) for e in refunded])
    at_once([lambda e=e: handle({**e, "id": e["id"] + "_again"}) for e in refunded])
    assert earnings(client, creator)["total_cents"] == 0
    assert paying_crowd.svc.payments.repo.balance(creator.user_id) == 0
    refunds = [e for e in earnings(client, creator)["items"] if e["kind"] == "refund"]
    assert len(refunds) == 2 and all(e["stripe"]["refund"] for e in refunds)
    assert_reconciled(paying_crowd.svc)


def test_two_stipend_reversals_delivered_at_once_and_twice_take_back_what_they_reversed(
    svc: Any, emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from local.stripe import reset
    from tests.support.program import MONTH, creators, forever, transfers_to

    reset()
    svc.settings = dataclasses.replace(
        svc.settings, stripe_secret_key="sk_test_salon", stripe_api_base=emulator
    )
    program = svc.program
    program.pacer = Pacer(1000.0)
    (creator,) = creators(program, emulator, 1)
    program.run(MONTH, None, forever)
    (transfer,) = transfers_to(emulator, creator)
    stripe_ = platform(emulator)
    stripe_.v1.transfers.reversals.create(transfer.id, params={"amount": 100_000})
    first = stripe_.v1.transfers.retrieve(transfer.id).to_dict()
    stripe_.v1.transfers.reversals.create(transfer.id, params={"amount": 50_000})
    second = stripe_.v1.transfers.retrieve(transfer.id).to_dict()
    CommitGate(monkeypatch, 2)
    at_once([lambda: program.transfer_reversed(first), lambda: program.transfer_reversed(second)])
    at_once([lambda: program.transfer_reversed(second), lambda: program.transfer_reversed(first)])
    assert program.money.creator(creator).earnings_cents == 500_000 - 150_000
    assert program.money.balance(creator) == 350_000
    assert_reconciled(svc)


# --- disputes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["won", "lost"])
@pytest.mark.parametrize("order", ["as_sent", "closed_first", "shuffled_twice"])
def test_a_dispute_takes_the_tip_back_and_a_won_one_gives_it_back_in_any_order(
    paying_crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
    outcome: str,
    order: str,
) -> None:
    creator, answer = paid_tip(paying_crowd, client, emulator, inbox, sdk, cents=2000)
    charge = (
        platform(emulator)
        .v1.payment_intents.retrieve(answer["tip"]["payment_intent_id"])
        .latest_charge
    )
    dispute = emulator_post(emulator, f"/_test/charges/{charge}/dispute")
    emulator_post(emulator, f"/_test/disputes/{dispute['id']}/close?status={outcome}")
    inbox.wait_for("charge.dispute.closed")
    if outcome == "won":
        inbox.wait_for("charge.dispute.funds_reinstated")
    stream = [d for d in inbox.take() if d.event_type.startswith("charge.dispute.")]
    if order == "closed_first":
        stream = sorted(stream, key=lambda d: d.event_type != "charge.dispute.closed")
    if order == "shuffled_twice":
        stream = stream + stream
        random.Random(11).shuffle(stream)
    assert set(deliver(client, stream)) == {200}
    expected = 2000 if outcome == "won" else 0
    assert earnings(client, creator)["total_cents"] == expected
    assert paying_crowd.svc.payments.repo.balance(creator.user_id) == expected
    kinds = sorted(e["kind"] for e in earnings(client, creator)["items"])
    assert kinds == (["dispute", "dispute_won", "tip"] if outcome == "won" else ["dispute", "tip"])
    assert_reconciled(paying_crowd.svc)


# --- a success that outruns the tip row -----------------------------------------------------------


def test_a_success_that_arrives_before_the_tip_knows_its_payment_is_still_credited(
    paying_crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creator = creator_with_send_money(paying_crowd, client, emulator, inbox)
    sender = beta_sender(paying_crowd, client)
    answer = tip(client, sender, creator, 500).json_body
    confirm_with_card(sdk, answer, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    # The tip row has not learnt its PaymentIntent yet, and the index lags behind it anyway.
    TipModel(answer["tip"]["tip_id"]).update(actions=[TipModel.payment_intent_id.remove()])
    monkeypatch.setattr(MoneyRepository, "tip_for_payment_intent", lambda self, pi: None)
    assert set(deliver(client, inbox.take())) == {200}
    assert earnings(client, creator)["total_cents"] == 500
    assert paying_crowd.svc.payments.repo.tip(answer["tip"]["tip_id"]).status.value == "succeeded"


def test_a_success_for_a_tip_not_readable_yet_is_refused_so_stripe_retries_it(
    paying_crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
) -> None:
    creator = creator_with_send_money(paying_crowd, client, emulator, inbox)
    sender = beta_sender(paying_crowd, client)
    answer = tip(client, sender, creator, 500).json_body
    confirm_with_card(sdk, answer, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    stream = inbox.take()
    row = TipModel.get(answer["tip"]["tip_id"])
    row.delete()  # not readable: as if the write had not landed yet
    first = [
        client.http.post(
            d.route,
            body=d.body,
            headers={"Content-Type": "application/json", "Stripe-Signature": d.signature},
        )
        for d in stream
        if d.event_type == "payment_intent.succeeded"
    ]
    assert [r.status_code for r in first] == [503]
    assert first[0].json_body["error"]["code"] == "unavailable"
    row.save()
    assert set(deliver(client, stream)) == {200}  # Stripe's retry
    assert earnings(client, creator)["total_cents"] == 500


# --- reconciliation ---------------------------------------------------------------------------


def test_reconciliation_reports_each_planted_difference_with_its_account(
    paying_crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
) -> None:
    from chalicelib.adapters.dynamo.models import LedgerEntryModel

    creator, answer = paid_tip(paying_crowd, client, emulator, inbox, sdk, cents=2000)
    svc = paying_crowd.svc
    account = svc.payments.repo.creator(creator.user_id).stripe_account_id
    intent = answer["tip"]["payment_intent_id"]
    stripe_ = platform(emulator)
    stripe_.v1.refunds.create(params={"payment_intent": intent, "amount": 300})
    inbox.wait_for("charge.refunded")
    assert set(deliver(client, inbox.take())) == {200}
    assert_reconciled(svc)

    # Stripe refunds again and Salon never hears of it; Salon's tip entry is off by a cent;
    # Salon holds a refund Stripe has no trace of.
    missed = stripe_.v1.refunds.create(params={"payment_intent": intent, "amount": 100})
    inbox.take()
    tip_entry = LedgerEntryModel.get(f"{intent}#tip")
    tip_entry.update(actions=[LedgerEntryModel.amount_cents.set(1999)])
    refund_entry = next(e for e in LedgerEntryModel.scan() if e.kind == "refund")
    ghost = LedgerEntryModel(
        "re_ghost#refund",
        **{
            k: getattr(refund_entry, k)
            for k in ("kind", "creator_id", "sender_id", "amount_cents", "currency", "tip_id")
        },
        payment_intent_id=intent,
        charge_id=refund_entry.charge_id,
        refund_id="re_ghost",
        stripe_amount_cents=50,
        created_at=refund_entry.created_at,
    )
    ghost.save()
    found = {(d["kind"], d["stripe_id"], d["problem"]): d for d in differences(svc)}
    assert set(found) == {
        ("refund", missed.id, "missing_in_salon"),
        ("transfer", found_transfer(stripe_, account), "amount_differs"),
        ("refund", "re_ghost", "missing_in_stripe"),
    }
    assert {d["account"] for d in found.values()} == {account}
    transfer_difference = found[("transfer", found_transfer(stripe_, account), "amount_differs")]
    assert (transfer_difference["salon_cents"], transfer_difference["stripe_cents"]) == (1999, 2000)


def found_transfer(stripe_: stripe.StripeClient, account: str) -> str:
    (transfer,) = stripe_.v1.transfers.list(params={"destination": account}).data
    return str(transfer.id)


def test_the_operator_function_reconciles_a_period_and_refuses_a_bad_one(
    paying_crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
) -> None:
    paid_tip(paying_crowd, client, emulator, inbox, sdk)
    from datetime import UTC, datetime, timedelta

    today = datetime.now(UTC).date()
    answer = client.lambda_.invoke(
        "admin_reconcile",
        {"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()},
    ).payload
    assert answer["ok"], answer
    assert answer["result"]["differences"] == []
    assert answer["result"]["checked"] == {"transfer": 1}
    for bad in (
        {"from": "yesterday", "to": "2026-12-02"},
        {"from": "2026-12-02", "to": "2026-12-01"},
    ):
        refused = client.lambda_.invoke("admin_reconcile", bad).payload
        assert (refused["ok"], refused["error"]["code"]) == (False, "invalid_request")
