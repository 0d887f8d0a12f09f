"""Deleting an account (confirmed by a fresh code) and exporting what Salon holds."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import stripe
from chalice.test import Client

from chalicelib.adapters.dynamo.models import ALL_MODELS
from local.outbox import latest_code
from tests.support import photos
from tests.support.account import ask_code, delete_me, phone_of
from tests.support.crowd import Crowd, Person
from tests.support.fakes import ManualTimers, RecordingConnections
from tests.support.flows import post, verify
from tests.support.push import device as push_device
from tests.support.push import endpoints_for
from tests.support.reconcile import assert_reconciled
from tests.support.send_money import (
    beta_sender,
    call,
    confirm_with_card,
    creator_with_send_money,
    deliver,
    tip,
)
from tests.support.stripe_local import WebhookInbox


def every_item() -> list[tuple[str, str]]:
    """Every item of every DynamoDB table there is (not only the ones Salon's models name),
    as (table, its JSON)."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    tables = dynamodb.list_tables()["TableNames"]
    assert len(tables) >= len(ALL_MODELS)
    found = []
    for table in tables:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            found.extend((table, json.dumps(item, default=str)) for item in page["Items"])
    return found


def tables_holding(text: str, prefix: str) -> set[str]:
    """The tables (without the stage's prefix) where some item holds `text`."""
    return {table.removeprefix(prefix) for table, item in every_item() if text in item}


def schedule(client: Client, host: Person, title: str, *cohosts: Person) -> str:
    starts_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    payload = {"title": title, "starts_at": starts_at, "cohost_ids": [c.user_id for c in cohosts]}
    answer = call(client, "post", "/events", host, payload)
    assert answer.status_code == 201, answer.json_body
    return str(answer.json_body["event_id"])


def rsvp(client: Client, person: Person, event_id: str) -> None:
    assert call(client, "put", f"/events/{event_id}/rsvp", person).status_code == 200


def event(client: Client, viewer: Person, event_id: str) -> dict[str, Any]:
    answer = call(client, "get", f"/events/{event_id}", viewer)
    assert answer.status_code == 200, answer.json_body
    return dict(answer.json_body)


# Where a deleted member's random id stays, naming nobody once the profile is gone: the money
# records (kept by law), the report filed against them, the room they ran (ended), and the
# event they hosted alone (cancelled). Anything else holding the id fails the deletion test.
KEEPS_THE_PSEUDONYM = {"events", "ledger", "reports", "rooms", "tips"}


def test_deleting_needs_a_fresh_code_sent_to_the_members_phone(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    crowd = Crowd(client, svc, sockets)
    ada = crowd.person("ada")
    missing = delete_me(client, ada, None)
    assert (missing.status_code, missing.json_body["error"]["code"]) == (400, "invalid_request")
    never_asked = delete_me(client, ada, "123456")
    # The sign-in code was spent signing in: a stolen token alone has no code to give.
    assert (never_asked.status_code, never_asked.json_body["error"]["code"]) == (
        410,
        "code_expired",
    )
    ask_code(client, ada)
    code = latest_code(phone_of(svc, ada))
    wrong = "000000" if code != "000000" else "111111"
    refused = delete_me(client, ada, wrong)
    assert (refused.status_code, refused.json_body["error"]["code"]) == (401, "wrong_code")
    assert call(client, "get", "/me", ada).status_code == 200  # nothing happened
    assert delete_me(client, ada, code).status_code == 204
    gone = call(client, "get", "/me", ada)
    assert (gone.status_code, gone.json_body["error"]["code"]) == (401, "session_revoked")
    assert ada.connection_id in sockets.closed


def test_deletion_leaves_no_phone_name_or_token_in_any_table_and_tips_still_reconcile(
    paying_crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
    sockets: RecordingConnections,
    applications: dict[str, str],
) -> None:
    crowd, svc = paying_crowd, paying_crowd.svc
    svc.settings = dataclasses.replace(
        svc.settings,
        push_apns_application_arn=applications["apns"],
        push_fcm_application_arn=applications["fcm"],
    )
    svc.__dict__["notifications_queue"] = ManualTimers()
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    fan = beta_sender(crowd, client, "zebulonquix")
    friend = crowd.person("friend")
    # A life on Salon: follows both ways, a block each way, an invitation, a report, a room.
    crowd.follow(fan, friend)
    crowd.follow(friend, fan)
    crowd.follow(fan, creator)
    enemy = crowd.person("enemy")
    assert call(client, "put", f"/users/{enemy.user_id}/block", fan).status_code == 200
    assert call(client, "put", f"/users/{fan.user_id}/block", enemy).status_code == 200
    svc.identity.repo.grant_invites(fan.user_id, 1)
    assert call(client, "post", "/invites", fan, {"phone": "+14155557777"}).status_code == 201
    report = {"target_kind": "member", "target_id": enemy.user_id, "reason": "spam"}
    assert call(client, "post", "/reports", fan, report).status_code == 201
    device_token = push_device(crowd, fan)
    photo = photos.upload(fan, client)
    assert photos.use(client, fan, photo).status_code == 200
    assert photo in photos.keys()
    assert endpoints_for(device_token)
    room = fan.ok("create_room", title="Fan club", kind="social")["room_id"]
    friend.ok("join_room", room_id=room)
    # Events: the fan RSVPs to the friend's; hosts one alone (the friend RSVPs); hands one to
    # a co-host by leaving; co-hosts the friend's.
    friends_talk = schedule(client, friend, "Friend's talk")
    rsvp(client, fan, friends_talk)
    fan_hour = schedule(client, fan, "Fan hour")
    rsvp(client, friend, fan_hour)
    handed_over = schedule(client, fan, "Fan and friend", friend)
    cohosted = schedule(client, friend, "Friend and fan", fan)
    # Money: the fan tips the creator.
    first = tip(client, fan, creator, 700)
    assert first.status_code == 201, first.json_body
    confirm_with_card(sdk, first.json_body, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    deliver(client, inbox.take())
    assert_reconciled(svc)

    phone = phone_of(svc, fan)
    name = "Zebulonquix"
    again = verify(client, phone)  # a second device: its tokens must go too
    tokens = [fan.token, again["access_token"], again["refresh_token"], device_token]
    assert any(phone in item for _, item in every_item())
    assert any(name in item for _, item in every_item())
    prefix = svc.settings.table_prefix
    assert {"event_rsvps", "event_hosts"} <= tables_holding(fan.user_id, prefix)

    ask_code(client, fan)
    assert delete_me(client, fan, latest_code(phone)).status_code == 204
    # The gateway tells Salon each closed socket is gone (they had left their room already).
    fan.disconnect()

    leftovers = [
        (table, item)
        for table, item in every_item()
        if phone in item or name in item or any(t in item for t in tokens)
    ]
    assert leftovers == []
    kept = tables_holding(fan.user_id, prefix)
    assert kept <= KEEPS_THE_PSEUDONYM, kept - KEEPS_THE_PSEUDONYM
    # The RSVP left its count; the event they hosted alone is cancelled (its RSVP'd member
    # sees it so); the others go on without them, handed to the co-host.
    assert event(client, friend, friends_talk)["rsvp_count"] == 0
    alone = event(client, friend, fan_hour)
    assert (alone["status"], alone["rsvp"], alone["hosts"]) == ("cancelled", True, [])
    for event_id in (handed_over, cohosted):
        kept_on = event(client, friend, event_id)
        assert (kept_on["status"], kept_on["host_id"]) == ("scheduled", friend.user_id)
        assert [h["user_id"] for h in kept_on["hosts"]] == [friend.user_id]
    assert endpoints_for(device_token) == []  # nor in SNS: its endpoint was deleted
    assert photo not in photos.keys()  # and the photo left the bucket
    assert_reconciled(svc)
    # The ledger still has the tip, under the id that now names nobody.
    earned = call(client, "get", "/me/earnings", creator).json_body
    assert [e["amount_cents"] for e in earned["items"]] == [700]
    # Others' counts and lists no longer hold the deleted member.
    assert (
        call(client, "get", f"/users/{friend.user_id}", creator).json_body["followers_count"] == 0
    )
    lost = call(client, "get", f"/users/{fan.user_id}", friend)
    assert (lost.status_code, lost.json_body["error"]["code"]) == (404, "member_not_found")
    # The room they moderated alone ended when they were gone.
    assert friend.events("room_ended")


def test_a_deleted_members_username_is_held_for_the_quarantine_then_released(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    crowd = Crowd(client, svc, sockets)
    ada = crowd.person("ada")
    ask_code(client, ada)
    assert delete_me(client, ada, latest_code(phone_of(svc, ada))).status_code == 204
    taken = client.lambda_.invoke(
        "admin_create_founder",
        {"phone": "+14155558888", "name": "New Ada", "username": "ada", "invites": 0},
    ).payload
    assert taken["error"]["code"] == "username_taken"
    # When the quarantine has passed, the name is free for someone else.
    from chalicelib.adapters.dynamo.models import UsernameModel

    row = UsernameModel.get("ada")
    row.update(actions=[UsernameModel.quarantined_until.set(row.claimed_at)])
    invited = crowd.person("bob")
    svc.identity.repo.grant_invites(invited.user_id, 1)
    call(client, "post", "/invites", invited, {"phone": "+14155558889"})
    answer = verify(client, "+14155558889")
    joined = post(
        client,
        "/auth/sign-up",
        {"sign_up_token": answer["sign_up_token"], "name": "Ada Two", "username": "ada"},
    )
    assert joined.status_code == 201, joined.json_body


def test_the_export_holds_profile_follows_blocks_invitations_tips_and_reports(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    crowd = Crowd(client, svc, sockets)
    ada, bob, cy = crowd.person("ada"), crowd.person("bob"), crowd.person("cyd")
    crowd.follow(ada, bob)
    crowd.follow(cy, ada)
    call(client, "put", f"/users/{cy.user_id}/block", ada)
    svc.identity.repo.grant_invites(ada.user_id, 1)
    call(client, "post", "/invites", ada, {"phone": "+14155556666"})
    call(
        client,
        "post",
        "/reports",
        ada,
        {
            "target_kind": "member",
            "target_id": bob.user_id,
            "reason": "harassment",
            "note": "shouting",
        },
    )
    export = call(client, "get", "/me/export", ada)
    assert export.status_code == 200, export.json_body
    body = export.json_body
    assert body["profile"]["username"] == "ada"
    assert body["profile"]["phone"] == phone_of(svc, ada)
    assert body["following"] == [bob.user_id]
    assert body["followers"] == []  # cy's follow ended with the block
    assert body["blocks"] == [cy.user_id]
    assert body["invitations"] == ["+14155556666"]
    assert body["tips_sent"] == [] and body["tips_received"] == []
    assert body["creator_program"] == {"application": None, "stipends": []}
    assert [(r["target_id"], r["note"]) for r in body["reports_made"]] == [
        (bob.user_id, "shouting")
    ]
    assert "reporter_id" not in json.dumps(body)


def test_a_creator_who_deletes_their_account_has_the_connected_account_deleted_and_tips_reconcile(
    paying_crowd: Crowd,
    client: Client,
    emulator: str,
    inbox: WebhookInbox,
    sdk: stripe.StripeClient,
) -> None:
    crowd, svc = paying_crowd, paying_crowd.svc
    creator = creator_with_send_money(crowd, client, emulator, inbox)
    fan = beta_sender(crowd, client)
    paid = tip(client, fan, creator, 900)
    confirm_with_card(sdk, paid.json_body, "4242424242424242")
    inbox.wait_for("payment_intent.succeeded")
    deliver(client, inbox.take())
    account_id = svc.payments.repo.creator(creator.user_id).stripe_account_id

    ask_code(client, creator)
    assert delete_me(client, creator, latest_code(phone_of(svc, creator))).status_code == 204
    with pytest.raises(stripe.InvalidRequestError):
        svc.stripe._stripe().v1.accounts.retrieve(account_id)  # deleted at Stripe
    kept = svc.payments.repo.creator(creator.user_id)
    assert kept is not None and kept.send_money is False  # the ledger still names the account
    assert kept.payouts_enabled is False  # a stipend run skips it
    assert svc.payments.repo.balance(creator.user_id) == 900
    assert_reconciled(svc)
    refused = tip(client, fan, creator, 500)
    assert refused.status_code == 404, refused.json_body
