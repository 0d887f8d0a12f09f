"""Send Money on the local stack: Stripe emulator, signed webhooks, the ledger, live notices."""

from __future__ import annotations

import itertools
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import stripe

from tests.support.http import HttpClient, open_link, wait_until
from tests.support.wsclient import WsClient

FOUNDER = "+14155550100"
_numbers = itertools.count(6000)


def admin(api: HttpClient, name: str, event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = api.post(f"/_local/admin/{name}", event).body
    assert answer["ok"], answer
    return answer["result"]


def member(api: HttpClient, founder: dict[str, Any], name: str) -> dict[str, Any]:
    phone = f"+1415555{next(_numbers):04d}"
    assert api.post("/invites", {"phone": phone}, founder["access_token"]).status == 201
    answer = api.sign_in(phone)
    joined = api.post(
        "/auth/sign-up",
        {"sign_up_token": answer["sign_up_token"], "name": name.title(), "username": name},
    )
    assert joined.status == 201, joined.body
    return {"token": joined.body["access_token"], "user_id": joined.body["user"]["user_id"]}


def test_a_creator_is_tipped_twice_then_refunded_and_disputed(
    stack: dict[str, Any], api: HttpClient
) -> None:
    founder = api.sign_in(FOUNDER)
    admin(api, "admin_grant_invites", {"user_id": founder["user"]["user_id"], "count": 5})
    creator, fan = member(api, founder, "tippee"), member(api, founder, "tipper")
    admin(api, "admin_beta_add", {"user_id": fan["user_id"]})

    # Onboarding: returning from the link is not enough; Stripe's account.updated is.
    link = api.post("/creator/onboarding", token=creator["token"]).body["url"]
    open_link(link, "complete")
    assert wait_until(lambda: api.get("/creator/account", creator["token"]).body["ready"])
    assert api.put("/creator/send-money", {"enabled": True}, creator["token"]).status == 200
    assert api.get(f"/users/{creator['user_id']}", fan["token"]).body["send_money"] is True

    live = WsClient(stack["websocket"], creator["token"], "creator")
    card_stand_in = stripe.StripeClient("sk_test_client", base_addresses={"api": stack["stripe"]})
    try:
        first = api.post(
            "/tips",
            {
                "creator_id": creator["user_id"],
                "amount_cents": 500,
                "idempotency_key": uuid.uuid4().hex,
            },
            fan["token"],
        ).body
        assert first["next_step"] == "confirm_with_card"
        method = card_stand_in.v1.payment_methods.create(
            params={
                "type": "card",
                "card": {
                    "number": "4242424242424242",
                    "exp_month": 12,
                    "exp_year": 2034,
                    "cvc": "123",
                },
            }
        )
        card_stand_in.v1.payment_intents.confirm(
            first["tip"]["payment_intent_id"], params={"payment_method": method.id}
        )
        assert live.event("tip_received", amount_cents=500)["from"]["username"] == "tipper"

        second = api.post(
            "/tips",
            {
                "creator_id": creator["user_id"],
                "amount_cents": 1200,
                "idempotency_key": uuid.uuid4().hex,
            },
            fan["token"],
        ).body
        assert second["client_secret"] is None  # the saved card, not asked again
        live.event("tip_received", amount_cents=1200)
    finally:
        live.close()

    earnings = api.get("/me/earnings", creator["token"]).body
    assert earnings["total_cents"] == 1700
    assert [e["kind"] for e in earnings["items"]] == ["tip", "tip"]

    platform = stripe.StripeClient(
        "sk_test_salon_local_stack", base_addresses={"api": stack["stripe"]}
    )
    platform.v1.refunds.create(params={"payment_intent": first["tip"]["payment_intent_id"]})
    charge = platform.v1.payment_intents.retrieve(second["tip"]["payment_intent_id"]).latest_charge
    request = urllib.request.Request(
        f"{stack['stripe']}/_test/charges/{charge}/dispute", data=b"", method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()

    def reversed_both() -> Any:
        body = api.get("/me/earnings", creator["token"]).body
        return body if len(body["items"]) == 4 else None

    earnings = wait_until(reversed_both)
    assert earnings, "the refund and the dispute were not recorded"
    assert earnings["total_cents"] == 0
    assert sorted(e["amount_cents"] for e in earnings["items"]) == [-1200, -500, 500, 1200]
    sent = api.get("/me/tips", fan["token"]).body["items"]
    assert [t["amount_cents"] for t in sent] == [1200, 500]
