"""Send Money flows the integration tests share: onboarding a creator, a beta sender, a tip,
the card step and webhook deliveries, through the REST API and the Stripe emulator."""

from __future__ import annotations

import json
import uuid
from typing import Any

import stripe
from chalice.test import Client

from tests.support.crowd import Crowd, Person
from tests.support.stripe_local import Delivery, WebhookInbox, emulator_post


def auth(person: Person) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}", "Content-Type": "application/json"}


def call(client: Client, method: str, path: str, person: Person, payload: Any = None) -> Any:
    body = json.dumps(payload) if payload is not None else None
    return getattr(client.http, method)(path, headers=auth(person), body=body)


def deliver(client: Client, deliveries: list[Delivery], tamper: bool = False) -> list[int]:
    statuses = []
    for d in deliveries:
        signature = d.signature.replace("v1=", "v1=0") if tamper else d.signature
        response = client.http.post(
            d.route,
            body=d.body,
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
        )
        statuses.append(response.status_code)
    return statuses


def creator_with_send_money(
    crowd: Crowd, client: Client, emulator: str, inbox: WebhookInbox
) -> Person:
    creator = crowd.person("creator")
    started = call(client, "post", "/creator/onboarding", creator)
    assert started.status_code == 200, started.json_body
    assert started.json_body["url"]
    # Back from the link but not finished: Salon asks Stripe, and it is not ready.
    refused = call(client, "put", "/creator/send-money", creator, {"enabled": True})
    assert (refused.status_code, refused.json_body["error"]["code"]) == (409, "payouts_not_ready")
    account_id = crowd.svc.payments.repo.creator(creator.user_id).stripe_account_id
    emulator_post(emulator, f"/_test/accounts/{account_id}/complete_onboarding")
    inbox.wait_for("account.updated")
    assert deliver(client, inbox.take()) == [200]
    assert call(client, "get", "/creator/account", creator).json_body["ready"] is True
    switched = call(client, "put", "/creator/send-money", creator, {"enabled": True})
    assert switched.json_body["send_money"] is True
    return creator


def beta_sender(crowd: Crowd, client: Client, name: str = "fan") -> Person:
    sender = crowd.person(name)
    assert client.lambda_.invoke("admin_beta_add", {"user_id": sender.user_id}).payload["ok"]
    return sender


def tip(client: Client, sender: Person, creator: Person, cents: int, key: str = "") -> Any:
    return call(
        client,
        "post",
        "/tips",
        sender,
        {
            "creator_id": creator.user_id,
            "amount_cents": cents,
            "idempotency_key": key or uuid.uuid4().hex,
        },
    )


def confirm_with_card(sdk: stripe.StripeClient, answer: dict[str, Any], number: str) -> Any:
    method = sdk.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    return sdk.v1.payment_intents.confirm(
        answer["tip"]["payment_intent_id"], params={"payment_method": method.id}
    )
