"""Every Send Money response, success or refusal, is what docs/openapi.yaml promises.

Drives onboarding, quotes, tips (the first confirmed with a card, the next on the saved card, one
the bank wants authenticated), tip status, tips sent, earnings, feedback, Stripe's webhooks, the
operators' beta and feedback functions and the creator program against the Stripe emulator, and
checks each request sent and each body received against the contract, including that every error
code is one the operation documents for its status.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest
import stripe
from chalice.test import Client

from chalicelib.domain.errors import UnavailableError
from tests.support import contract
from tests.support.contract_api import NO_BODY, ContractApi
from tests.support.crowd import Crowd, Person
from tests.support.stripe_local import (
    Delivery,
    WebhookInbox,
    emulator_post,
)

# --- the API, checked against the contract ------------------------------------------------------


class Api(ContractApi):
    """Requests made as a person of the crowd, operator calls and Stripe's deliveries."""

    def call(
        self,
        method: str,
        path: str,
        payload: Any = NO_BODY,
        *,
        person: Person | None = None,
        **kw: Any,
    ) -> tuple[int, Any]:
        auth = {"Authorization": f"Bearer {person.token}"} if person is not None else None
        return super().call(method, path, payload, auth=auth, **kw)

    def admin(self, name: str, event: dict[str, Any], *, valid: bool = True) -> dict[str, Any]:
        if valid:
            contract.validate_admin_event(name, event)
        answer: dict[str, Any] = self.client.lambda_.invoke(name, event).payload
        contract.validate_admin_answer(name, answer)
        return answer

    def deliver(
        self, deliveries: list[Delivery], *, signature: str | None = None
    ) -> list[tuple[int, Any]]:
        """Hand Stripe's deliveries to the webhook routes, as Stripe would."""
        answers = []
        for d in deliveries:
            contract.validate_request("POST", d.route, json.loads(d.body))
            headers = {"Content-Type": "application/json"}
            sent = d.signature if signature is None else signature
            if sent:
                headers["Stripe-Signature"] = sent
            response = self.client.http.post(d.route, body=d.body, headers=headers)
            contract.validate_response("POST", d.route, response.status_code, response.json_body)
            answers.append((response.status_code, response.json_body))
        return answers


@pytest.fixture
def crowd(paying_crowd: Crowd) -> Crowd:
    return paying_crowd


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client)


def quote_path(creator: Person | str, cents: Any) -> str:
    creator_id = creator if isinstance(creator, str) else creator.user_id
    return f"/tips/quote?creator_id={creator_id}&amount_cents={cents}"


def tip_body(creator: Person | str, cents: Any, key: str = "") -> dict[str, Any]:
    creator_id = creator if isinstance(creator, str) else creator.user_id
    return {
        "creator_id": creator_id,
        "amount_cents": cents,
        "idempotency_key": key or uuid.uuid4().hex,
    }


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


def settle(api: Api, inbox: WebhookInbox, event_type: str, count: int = 1) -> set[str]:
    """Wait for Stripe's events and deliver everything so far; the outcomes."""
    inbox.wait_for(event_type, count=count)
    answers = api.deliver(inbox.take())
    assert {status for status, _ in answers} == {200}, answers
    return {body["outcome"] for _, body in answers}


def onboarded_creator(api: Api, crowd: Crowd, emulator: str, inbox: WebhookInbox) -> Person:
    creator = crowd.person("creator")
    path = "/creator/send-money"
    assert api.ok(200, "GET", "/creator/account", person=creator) == {
        "onboarded": False,
        "ready": False,
        "send_money": False,
    }
    for enabled in (True, False):
        api.refused(409, "no_payout_account", "PUT", path, {"enabled": enabled}, person=creator)
    started = api.ok(200, "POST", "/creator/onboarding", person=creator)
    assert started["account"]["ready"] is False
    api.refused(409, "payouts_not_ready", "PUT", path, {"enabled": True}, person=creator)
    account_id = crowd.svc.payments.repo.creator(creator.user_id).stripe_account_id
    emulator_post(emulator, f"/_test/accounts/{account_id}/complete_onboarding")
    assert "applied" in settle(api, inbox, "account.updated")
    account = api.ok(200, "GET", "/creator/account", person=creator)
    assert (account["ready"], account["send_money"]) == (True, False)
    again = api.ok(200, "POST", "/creator/onboarding", person=creator)
    assert again["account"]["ready"] is True
    assert api.ok(200, "PUT", path, {"enabled": True}, person=creator)["send_money"] is True
    return creator


def beta_member(api: Api, crowd: Crowd, name: str) -> Person:
    person = crowd.person(name)
    added = api.admin("admin_beta_add", {"user_id": person.user_id})
    assert added["result"] == {"user_id": person.user_id, "beta": True}
    return person


# --- the whole flow -----------------------------------------------------------------------------


def test_onboarding_quotes_two_tips_earnings_and_feedback_match_the_contract(
    api: Api, crowd: Crowd, emulator: str, inbox: WebhookInbox, sdk: stripe.StripeClient
) -> None:
    creator = onboarded_creator(api, crowd, emulator, inbox)
    fan = beta_member(api, crowd, "fan")
    other = crowd.person("other")

    assert api.ok(200, "GET", f"/users/{creator.user_id}", person=fan)["send_money"] is True
    assert api.ok(200, "GET", "/users/by-username/creator", person=fan)["send_money"] is True
    assert api.ok(200, "GET", f"/users/{fan.user_id}", person=creator)["send_money"] is False

    quote = api.ok(200, "GET", quote_path(creator, 500), person=fan)
    assert quote == {
        "amount_cents": 500,
        "fee_cents": 46,
        "total_cents": 546,
        "currency": "usd",
        "fee_paid_by": "sender",
    }

    # The first tip asks for the card; the app confirms it with Stripe.js.
    first = api.ok(201, "POST", "/tips", tip_body(creator, 500), person=fan)
    assert (first["next_step"], first["tip"]["status"]) == (
        "confirm_with_card",
        "requires_payment_method",
    )
    assert first["client_secret"] and first["tip"]["total_cents"] == 546
    tip_id = first["tip"]["tip_id"]
    assert api.ok(200, "GET", f"/tips/{tip_id}", person=creator)["tip_id"] == tip_id
    api.refused(404, "tip_not_found", "GET", f"/tips/{tip_id}", person=other)
    api.refused(404, "tip_not_found", "GET", f"/tips/{'0' * 32}", person=fan)
    api.refused(404, "not_found", "GET", "/tips/a%20b", person=fan)
    # Nothing is credited on the client's word: only when Stripe says the payment succeeded.
    assert api.ok(200, "GET", "/me/earnings", person=creator)["total_cents"] == 0
    confirm_with_card(sdk, first, "4242424242424242")
    assert "applied" in settle(api, inbox, "payment_intent.succeeded")
    assert api.ok(200, "GET", f"/tips/{tip_id}", person=fan)["status"] == "succeeded"

    # The second tip charges the saved card: no card, no client secret.
    second = api.ok(201, "POST", "/tips", tip_body(creator, 1000), person=fan)
    assert second["next_step"] in ("done", "wait") and second["client_secret"] is None
    inbox.wait_for("payment_intent.succeeded")
    stream = inbox.take()
    outcomes = {body["outcome"] for _, body in api.deliver(stream)}
    assert "applied" in outcomes
    assert {body["outcome"] for _, body in api.deliver(stream)} == {"duplicate"}

    earnings = api.ok(200, "GET", "/me/earnings", person=creator)
    assert earnings["total_cents"] == 1500 and earnings["currency"] == "usd"
    assert sorted((e["kind"], e["amount_cents"]) for e in earnings["items"]) == [
        ("tip", 500),
        ("tip", 1000),
    ]
    page = api.ok(200, "GET", "/me/earnings?limit=1", person=creator)
    assert len(page["items"]) == 1 and page["cursor"]
    rest = api.ok(200, "GET", f"/me/earnings?limit=1&cursor={page['cursor']}", person=creator)
    assert rest["items"] and rest["items"][0]["entry_id"] != page["items"][0]["entry_id"]
    assert api.ok(200, "GET", "/me/earnings", person=fan) == {
        "total_cents": 0,
        "currency": "usd",
        "items": [],
        "cursor": None,
    }

    sent = api.ok(200, "GET", "/me/tips", person=fan)
    assert [t["status"] for t in sent["items"]] == ["succeeded", "succeeded"]
    assert api.ok(200, "GET", "/me/tips?limit=1", person=fan)["cursor"]
    assert api.ok(200, "GET", "/me/tips", person=creator)["items"] == []
    for query in ("limit=0", "limit=x", "cursor=%25%25", "colour=red"):
        api.refused(400, "invalid_request", "GET", f"/me/tips?{query}", person=fan)
        api.refused(400, "invalid_request", "GET", f"/me/earnings?{query}", person=creator)

    made = api.ok(201, "POST", "/feedback", {"text": "Tipping felt natural."}, person=fan)
    assert made["feedback_id"]
    api.refused(403, "not_available_yet", "POST", "/feedback", {"text": "Hi"}, person=other)
    api.refused(400, "invalid_request", "POST", "/feedback", {"text": ""}, person=fan, valid=False)
    api.refused(
        400, "invalid_request", "POST", "/feedback", {"text": "x" * 2001}, person=fan, valid=False
    )
    feedback = api.admin("admin_feedback_list", {"limit": 10})["result"]["items"]
    assert [(f["user_id"], f["text"]) for f in feedback] == [(fan.user_id, "Tipping felt natural.")]
    assert api.admin("admin_feedback_list", {})["ok"]
    assert api.admin("admin_feedback_list", {"limit": 0}, valid=False)["error"]["code"] == (
        "invalid_request"
    )

    assert api.admin("admin_beta_list", {})["result"] == {"user_ids": [fan.user_id]}
    refused = api.admin("admin_beta_list", {"user_id": fan.user_id}, valid=False)
    assert refused["error"]["code"] == "invalid_request"
    removed = api.admin("admin_beta_remove", {"user_id": fan.user_id})
    assert removed["result"] == {"user_id": fan.user_id, "beta": False}
    assert api.admin("admin_beta_list", {})["result"] == {"user_ids": []}
    missing = api.admin("admin_beta_add", {"user_id": "nobody"})
    assert missing["error"]["code"] == "member_not_found"
    api.refused(403, "not_available_yet", "GET", quote_path(creator, 500), person=fan)


def test_a_bank_asking_for_authentication_matches_the_contract(
    api: Api, crowd: Crowd, emulator: str, inbox: WebhookInbox, sdk: stripe.StripeClient
) -> None:
    creator = onboarded_creator(api, crowd, emulator, inbox)
    fan = beta_member(api, crowd, "fan")
    first = api.ok(201, "POST", "/tips", tip_body(creator, 500), person=fan)
    confirm_with_card(sdk, first, "4000002760003184")  # always asks for 3-D Secure
    intent_id = first["tip"]["payment_intent_id"]
    emulator_post(emulator, f"/_test/payment_intents/{intent_id}/authenticate", outcome="success")
    settle(api, inbox, "payment_intent.succeeded")
    second = api.ok(201, "POST", "/tips", tip_body(creator, 700), person=fan)
    assert (second["next_step"], second["tip"]["status"]) == ("authenticate", "requires_action")
    assert second["client_secret"] and second["message"]
    status = api.ok(200, "GET", f"/tips/{second['tip']['tip_id']}", person=fan)
    assert status["status"] == "requires_action"


# --- refusals -----------------------------------------------------------------------------------


def test_every_tip_refusal_matches_the_contract(
    api: Api,
    client: Client,
    crowd: Crowd,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
) -> None:
    creator = onboarded_creator(api, crowd, emulator, inbox)
    fan = beta_member(api, crowd, "fan")
    outsider = crowd.person("outsider")
    quiet = crowd.person("quiet")  # no payout account, no Send Money

    def both(status: int, code: str, who: Person, target: Person | str, cents: Any) -> None:
        api.refused(status, code, "GET", quote_path(target, cents), person=who)
        api.refused(status, code, "POST", "/tips", tip_body(target, cents), person=who)

    both(403, "not_available_yet", outsider, creator, 500)
    both(403, "send_money_off", fan, quiet, 500)
    both(404, "member_not_found", fan, "nobody", 500)
    both(400, "amount_below_minimum", fan, creator, 99)
    both(400, "amount_above_maximum", fan, creator, 100_001)
    api.admin("admin_beta_add", {"user_id": creator.user_id})
    both(400, "cannot_tip_yourself", creator, creator, 500)

    for query in (
        f"creator_id={creator.user_id}",
        "amount_cents=500",
        f"creator_id={creator.user_id}&amount_cents=abc",
        f"creator_id={creator.user_id}&amount_cents=0",
        f"creator_id={creator.user_id}&amount_cents=500&tip=1",
        "creator_id=a%20b&amount_cents=500",
    ):
        api.refused(400, "invalid_request", "GET", f"/tips/quote?{query}", person=fan)
    for bad in (
        {"creator_id": creator.user_id, "amount_cents": 500},
        tip_body(creator, "500"),
        tip_body(creator, 5.5),
        tip_body(creator, True),
        tip_body(creator, 500, key="short"),
        {**tip_body(creator, 500), "currency": "usd"},
    ):
        api.refused(400, "invalid_request", "POST", "/tips", bad, person=fan, valid=False)

    # A double submit charges once; the same key for another tip is refused.
    a = api.ok(201, "POST", "/tips", tip_body(creator, 700, key="double-submit-key"), person=fan)
    b = api.ok(201, "POST", "/tips", tip_body(creator, 700, key="double-submit-key"), person=fan)
    assert a["tip"]["tip_id"] == b["tip"]["tip_id"]
    assert a["tip"]["payment_intent_id"] == b["tip"]["payment_intent_id"]
    error = api.refused(
        409,
        "idempotency_key_reused",
        "POST",
        "/tips",
        tip_body(creator, 900, key="double-submit-key"),
        person=fan,
    )
    assert error["field"] == "idempotency_key"

    # A saved card the bank declines.
    confirm_with_card(sdk, a, "4242424242424242")
    settle(api, inbox, "payment_intent.succeeded")
    declining = sdk.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    crowd.svc.payments.repo.save_card(fan.user_id, declining.id)
    api.refused(409, "payment_declined", "POST", "/tips", tip_body(creator, 800), person=fan)

    # Creators switching Send Money off.
    switched = api.ok(200, "PUT", "/creator/send-money", {"enabled": False}, person=creator)
    assert switched["send_money"] is False
    both(403, "send_money_off", fan, creator, 500)
    assert api.ok(200, "GET", f"/users/{creator.user_id}", person=fan)["send_money"] is False
    for bad in ({"enabled": "yes"}, {}, {"enabled": True, "extra": 1}):
        api.refused(
            400, "invalid_request", "PUT", "/creator/send-money", bad, person=creator, valid=False
        )

    # Signed out, suspended.
    for method, path, payload in (
        ("POST", "/creator/onboarding", NO_BODY),
        ("GET", "/creator/account", NO_BODY),
        ("PUT", "/creator/send-money", {"enabled": True}),
        ("GET", quote_path(creator, 500), NO_BODY),
        ("POST", "/tips", tip_body(creator, 500)),
        ("GET", f"/tips/{a['tip']['tip_id']}", NO_BODY),
        ("GET", "/me/tips", NO_BODY),
        ("GET", "/me/earnings", NO_BODY),
        ("POST", "/feedback", {"text": "Hi"}),
    ):
        api.refused(401, "not_authenticated", method, path, payload)
    answer = client.lambda_.invoke("admin_suspend", {"user_id": fan.user_id}).payload
    assert answer["ok"], answer
    api.refused(403, "account_suspended", "POST", "/tips", tip_body(creator, 500), person=fan)
    api.refused(403, "account_suspended", "GET", "/me/tips", person=fan)


def test_stripe_being_busy_or_down_matches_the_contract(
    api: Api, crowd: Crowd, emulator: str, inbox: WebhookInbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    creator = crowd.person("creator")
    emulator_post(emulator, "/_test/rate_limit?count=1")
    api.refused(429, "rate_limited", "POST", "/creator/onboarding", person=creator)
    api.ok(200, "POST", "/creator/onboarding", person=creator)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise UnavailableError("Stripe did not answer; try again shortly.")

    monkeypatch.setattr(crowd.svc.stripe, "account", down)
    api.refused(503, "unavailable", "GET", "/creator/account", person=creator)
    api.refused(503, "unavailable", "PUT", "/creator/send-money", {"enabled": True}, person=creator)


# --- webhooks -----------------------------------------------------------------------------------


def test_webhooks_answer_as_documented_and_fail_so_that_stripe_retries(
    api: Api,
    crowd: Crowd,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    creator = onboarded_creator(api, crowd, emulator, inbox)
    fan = beta_member(api, crowd, "fan")
    first = api.ok(201, "POST", "/tips", tip_body(creator, 500), person=fan)
    confirm_with_card(sdk, first, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    stream = inbox.take()

    for signature in ("", "t=1,v1=abc", stream[0].signature.replace("v1=", "v1=0")):
        for status, body in api.deliver(stream[:1], signature=signature):
            assert (status, body["error"]["code"]) == (400, "invalid_signature")
    connect = dataclasses.replace(stream[0], route="/webhooks/stripe-connect")
    [(status, body)] = api.deliver([connect])  # signed with the platform's secret
    assert (status, body["error"]["code"]) == (400, "invalid_signature")

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("DynamoDB hiccup")

    with monkeypatch.context() as patched:
        patched.setattr(crowd.svc.payments.repo, "record", broken)
        failed = api.deliver(stream)
    succeeded = [
        answer
        for d, answer in zip(stream, failed, strict=True)
        if d.event_type == "payment_intent.succeeded"
    ]
    assert succeeded and all(status == 500 for status, _ in succeeded)
    assert api.ok(200, "GET", "/me/earnings", person=creator)["total_cents"] == 0
    # Stripe retries: now the event applies, once.
    outcomes = [body["outcome"] for _, body in api.deliver(stream)]
    assert "applied" in outcomes and set(outcomes) <= {"applied", "duplicate", "ignored"}
    assert api.ok(200, "GET", "/me/earnings", person=creator)["total_cents"] == 500


# --- the creator program ------------------------------------------------------------------------


def test_the_creator_program_matches_the_contract(api: Api, crowd: Crowd) -> None:
    member = crowd.person("maker")
    path = "/creator-program/applications"
    nothing = api.ok(200, "GET", "/creator-program/me", person=member)
    assert nothing == {"application": None, "enrollment": None, "stipends": []}
    pitch = {"pitch": "Weekly jazz rooms", "links": ["https://example.com/jazz"]}
    applied = api.ok(201, "POST", path, pitch, person=member)
    assert applied["application"]["status"] == "pending"
    api.refused(409, "already_applied", "POST", path, {"pitch": "Again"}, person=member)
    for bad in (
        {"pitch": "x", "links": ["http://example.com"]},
        {"pitch": "x", "links": ["a"] * 6},
    ):
        api.refused(400, "invalid_request", "POST", path, bad, person=member)
    api.refused(400, "invalid_request", "POST", path, {"pitch": ""}, person=member, valid=False)
    api.refused(401, "not_authenticated", "GET", "/creator-program/me")

    listed = api.admin("admin_program_applications", {"status": "pending"})["result"]["items"]
    assert [a["user_id"] for a in listed] == [member.user_id]
    enrolled = api.admin(
        "admin_program_approve",
        {"user_id": member.user_id, "monthly_cents": 50_000, "start_month": "2026-11"},
    )["result"]
    assert enrolled["enrollment"]["last_month"] == "2027-01"
    decided = api.admin("admin_program_reject", {"user_id": member.user_id})
    assert decided["error"]["code"] == "application_decided"
    unknown = api.admin("admin_program_approve", {"user_id": "nobody"})
    assert unknown["error"]["code"] == "application_not_found"
    api.refused(409, "already_enrolled", "POST", path, {"pitch": "More"}, person=member)

    dry = api.admin("admin_run_payouts", {"month": "2026-11", "dry_run": True})["result"]
    assert dry["would_skip"] == {"no_payout_account": 1}
    run = api.admin("admin_run_payouts", {"month": "2026-11"})["result"]
    assert (run["status"], run["skipped"], run["reasons"]) == ("done", 1, {"no_payout_account": 1})
    stipends = api.ok(200, "GET", "/creator-program/me", person=member)["stipends"]
    assert [(s["month"], s["status"]) for s in stipends] == [("2026-11", "skipped")]
    ended = api.admin("admin_program_end", {"user_id": member.user_id, "last_month": "2026-12"})
    assert ended["result"]["enrollment"]["ended_early"] is True
    missing = api.admin("admin_program_end", {"user_id": "nobody"})
    assert missing["error"]["code"] == "not_enrolled"
    bad_month = api.admin("admin_run_payouts", {"month": "2026-13"}, valid=False)
    assert bad_month["error"]["code"] == "invalid_request"
