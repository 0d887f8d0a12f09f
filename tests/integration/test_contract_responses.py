"""Every response the identity flows produce, success or refusal, is what docs/ promises.

Each test drives one family of routes through the Chalice test client and checks every body it
gets back against docs/openapi.yaml (or, for the WebSocket, docs/asyncapi.yaml), including that
each error code is one the operation documents for that status.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

from local.outbox import latest_code
from tests.support import contract
from tests.support.contract_api import NO_BODY, ContractApi
from tests.support.crowd import Crowd
from tests.support.events import ws_event
from tests.support.fakes import RecordingConnections
from tests.support.flows import (
    FOUNDER_PHONE,
    Member,
    admin,
    as_member,
    founder,
    join,
    post,
    verify,
)

ALICE = "+14155550101"
BOB = "+14155550102"
CAROL = "+14155550103"
DAVE = "+14155550104"


class Api(ContractApi):
    """Requests made as a signed-in member."""

    def call(
        self,
        method: str,
        path: str,
        payload: Any = NO_BODY,
        *,
        member: Member | None = None,
        **kw: Any,
    ) -> tuple[int, Any]:
        return super().call(method, path, payload, auth=member.auth if member else None, **kw)


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client)


def suspend(client: Client, member: Member) -> None:
    event = {"user_id": member.user_id}
    contract.validate_admin_event("admin_suspend", event)
    answer = admin(client, "admin_suspend", event)
    contract.validate_admin_answer("admin_suspend", answer)
    assert answer["ok"], answer


def sms_fails(monkeypatch: pytest.MonkeyPatch, svc: Any) -> None:
    def publish(phone: str, text: str) -> None:
        raise ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "Publish")

    monkeypatch.setattr(svc.sms, "_publish", publish)


# --- sign-in ------------------------------------------------------------------------------------


def test_health_and_phone_sign_in(api: Api, client: Client, svc: Any) -> None:
    health = api.ok(200, "GET", "/health")
    assert health["status"] == "ok"

    me = founder(client)
    started = api.ok(202, "POST", "/auth/sign-in", {"phone": "+1 415 555 0100"})
    assert started["phone"] == FOUNDER_PHONE
    signed_in = api.ok(
        200, "POST", "/auth/verify", {"phone": FOUNDER_PHONE, "code": latest_code(FOUNDER_PHONE)}
    )
    assert (signed_in["status"], signed_in["user"]["user_id"]) == ("member", me.user_id)

    api.ok(202, "POST", "/auth/sign-in", {"phone": ALICE})
    waitlisted = api.ok(200, "POST", "/auth/verify", {"phone": ALICE, "code": latest_code(ALICE)})
    assert (waitlisted["status"], waitlisted["invited_by"]) == ("waitlisted", None)

    api.ok(201, "POST", "/invites", {"phone": BOB}, member=me)
    api.ok(202, "POST", "/auth/sign-in", {"phone": BOB})
    invited = api.ok(200, "POST", "/auth/verify", {"phone": BOB, "code": latest_code(BOB)})
    assert (invited["status"], invited["invited_by"]["username"]) == ("invited", "founder")

    for bad in ({}, {"phone": 14155550101}, {"phone": ALICE, "extra": 1}, {"phone": "+1" * 40}):
        api.refused(400, "invalid_request", "POST", "/auth/sign-in", bad, valid=False)
    api.refused(400, "invalid_request", "POST", "/auth/sign-in", raw="{not json")
    api.refused(400, "invalid_phone", "POST", "/auth/sign-in", {"phone": "4155550101"})
    api.refused(400, "invalid_phone", "POST", "/auth/verify", {"phone": "+1555", "code": "123456"})
    api.refused(
        400, "invalid_request", "POST", "/auth/verify", {"phone": ALICE, "code": "12"}, valid=False
    )
    api.refused(410, "code_expired", "POST", "/auth/verify", {"phone": CAROL, "code": "123456"})

    api.ok(202, "POST", "/auth/sign-in", {"phone": CAROL})
    right = latest_code(CAROL)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(svc.settings.sign_in_max_attempts):
        api.refused(401, "wrong_code", "POST", "/auth/verify", {"phone": CAROL, "code": wrong})
    api.refused(429, "code_locked", "POST", "/auth/verify", {"phone": CAROL, "code": right})

    for _ in range(svc.settings.sign_in_starts_per_phone_per_hour - 1):
        api.ok(202, "POST", "/auth/sign-in", {"phone": CAROL})
    api.refused(429, "rate_limited", "POST", "/auth/sign-in", {"phone": CAROL})


def test_sign_in_when_sms_fails_and_for_a_suspended_member(
    api: Api, client: Client, svc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inviter = founder(client)
    alice = join(client, inviter, ALICE, "alice")
    suspend(client, alice)
    api.ok(202, "POST", "/auth/sign-in", {"phone": ALICE})
    api.refused(
        403,
        "account_suspended",
        "POST",
        "/auth/verify",
        {"phone": ALICE, "code": latest_code(ALICE)},
    )
    sms_fails(monkeypatch, svc)
    api.refused(503, "unavailable", "POST", "/auth/sign-in", {"phone": BOB})


def test_sign_up_and_the_waitlist(api: Api, client: Client) -> None:
    inviter = founder(client)
    waiting = verify(client, ALICE)
    token = waiting["sign_up_token"]
    reserved = api.ok(
        200, "PUT", "/waitlist/username", {"sign_up_token": token, "username": "Alice"}
    )
    assert reserved == {"status": "waitlisted", "reserved_username": "alice"}
    api.refused(
        400,
        "invalid_username",
        "PUT",
        "/waitlist/username",
        {"sign_up_token": token, "username": "a b"},
    )
    api.refused(
        401,
        "not_authenticated",
        "PUT",
        "/waitlist/username",
        {"sign_up_token": "x", "username": "al"},
    )
    api.refused(
        403,
        "not_invited",
        "POST",
        "/auth/sign-up",
        {"sign_up_token": token, "name": "Alice", "username": "alice"},
    )

    api.ok(201, "POST", "/invites", {"phone": BOB}, member=inviter)
    bob_token = verify(client, BOB)["sign_up_token"]
    api.refused(
        409,
        "username_taken",
        "PUT",
        "/waitlist/username",
        {"sign_up_token": token, "username": "founder"},
    )
    api.refused(
        400,
        "invalid_request",
        "PUT",
        "/waitlist/username",
        {"sign_up_token": bob_token, "username": "bobby"},
    )
    api.refused(
        409,
        "username_taken",
        "POST",
        "/auth/sign-up",
        {"sign_up_token": bob_token, "name": "Bob", "username": "ALICE"},
    )
    api.refused(
        400,
        "invalid_username",
        "POST",
        "/auth/sign-up",
        {"sign_up_token": bob_token, "name": "Bob", "username": "b"},
    )
    api.refused(
        400,
        "invalid_request",
        "POST",
        "/auth/sign-up",
        {"sign_up_token": bob_token, "name": "", "username": "bob"},
        valid=False,
    )
    api.refused(
        401,
        "not_authenticated",
        "POST",
        "/auth/sign-up",
        {"sign_up_token": "forged", "name": "Bob", "username": "bob"},
    )
    joined = api.ok(
        201, "POST", "/auth/sign-up", {"sign_up_token": bob_token, "name": "Bob", "username": "Bob"}
    )
    assert (joined["status"], joined["user"]["username"]) == ("member", "bob")
    api.refused(
        409,
        "already_member",
        "POST",
        "/auth/sign-up",
        {"sign_up_token": bob_token, "name": "Bob", "username": "bob2"},
    )


def test_sessions_refresh_and_sign_out(api: Api, client: Client, svc: Any) -> None:
    inviter = founder(client)
    alice = join(client, inviter, ALICE, "alice")
    tokens = api.ok(200, "POST", "/auth/refresh", {"refresh_token": alice.refresh_token})
    retried = api.ok(200, "POST", "/auth/refresh", {"refresh_token": alice.refresh_token})
    assert retried["refresh_token"] == tokens["refresh_token"]
    now, later = (
        svc.identity.clock,
        datetime.now(UTC) + timedelta(seconds=svc.settings.retry_grace_s + 1),
    )
    svc.identity.clock = lambda: later
    api.refused(
        401, "session_revoked", "POST", "/auth/refresh", {"refresh_token": alice.refresh_token}
    )
    svc.identity.clock = now
    api.refused(401, "not_authenticated", "POST", "/auth/refresh", {"refresh_token": "garbage"})
    api.refused(
        400, "invalid_request", "POST", "/auth/refresh", {"refresh_token": ["x"]}, valid=False
    )
    api.refused(401, "session_revoked", "POST", "/auth/sign-out", member=alice)

    bob = join(client, inviter, BOB, "bob")
    suspend(client, bob)
    api.refused(
        403, "account_suspended", "POST", "/auth/refresh", {"refresh_token": bob.refresh_token}
    )
    api.refused(403, "account_suspended", "POST", "/auth/sign-out", member=bob)

    # Reusing the refresh token revoked the rotated tokens too: sign in afresh.
    revoked = Member(alice.user_id, "alice", ALICE, tokens["access_token"], tokens["refresh_token"])
    api.refused(401, "session_revoked", "GET", "/me", member=revoked)
    signed_in = as_member(verify(client, ALICE), ALICE)
    api.ok(204, "POST", "/auth/sign-out", member=signed_in)
    api.refused(401, "session_revoked", "POST", "/auth/sign-out", member=signed_in)
    api.refused(401, "not_authenticated", "POST", "/auth/sign-out")


# --- the member's own account -------------------------------------------------------------------


def test_me_blocks_and_invitations(
    api: Api, client: Client, svc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inviter = founder(client, invites=2)
    alice = join(client, inviter, ALICE, "alice")
    mine = api.ok(200, "GET", "/me", member=alice)
    assert mine["invited_by"]["username"] == "founder"
    assert api.ok(200, "GET", "/me", member=inviter)["invited_by"] is None
    edited = api.ok(
        200,
        "PATCH",
        "/me",
        {"bio": "Hosts jazz rooms", "photo_url": "https://x.example/a.png"},
        member=alice,
    )
    assert edited["bio"] == "Hosts jazz rooms"
    api.ok(200, "PATCH", "/me", {"name": None, "photo_url": ""}, member=alice)
    api.refused(
        400, "invalid_request", "PATCH", "/me", {"bio": "x" * 301}, member=alice, valid=False
    )
    api.refused(
        400, "invalid_request", "PATCH", "/me", {"user_id": "me"}, member=alice, valid=False
    )
    api.refused(400, "invalid_request", "PATCH", "/me", member=alice)
    api.refused(401, "not_authenticated", "GET", "/me")
    api.refused(401, "not_authenticated", "PATCH", "/me", {"bio": "x"})

    api.ok(200, "PUT", f"/users/{inviter.user_id}/block", member=alice)
    blocks = api.ok(200, "GET", "/me/blocks?limit=1", member=alice)
    assert ([b["username"] for b in blocks["items"]], blocks["cursor"]) != ([], None)
    assert api.ok(200, "GET", "/me/blocks", member=inviter) == {"items": [], "cursor": None}
    for query in ("limit=0", "limit=abc", "cursor=%25%25%25", "colour=red"):
        api.refused(400, "invalid_request", "GET", f"/me/blocks?{query}", member=alice)

    invited = api.ok(201, "POST", "/invites", {"phone": BOB}, member=inviter)
    assert invited["invites_left"] == 0
    api.refused(409, "already_invited", "POST", "/invites", {"phone": BOB}, member=alice)
    api.refused(409, "already_member", "POST", "/invites", {"phone": FOUNDER_PHONE}, member=alice)
    api.refused(403, "no_invites_left", "POST", "/invites", {"phone": CAROL}, member=inviter)
    api.refused(400, "invalid_phone", "POST", "/invites", {"phone": "123"}, member=alice)
    api.refused(400, "invalid_request", "POST", "/invites", {}, member=alice, valid=False)
    api.refused(401, "not_authenticated", "POST", "/invites", {"phone": CAROL})
    sms_fails(monkeypatch, svc)
    api.refused(503, "unavailable", "POST", "/invites", {"phone": CAROL}, member=alice)

    suspend(client, alice)
    for method, path in (("GET", "/me"), ("GET", "/me/blocks")):
        api.refused(403, "account_suspended", method, path, member=alice)
    api.refused(403, "account_suspended", "PATCH", "/me", {"bio": ""}, member=alice)
    api.refused(403, "account_suspended", "POST", "/invites", {"phone": DAVE}, member=alice)


def test_a_bug_is_an_internal_error_in_the_documented_shape(
    api: Api, client: Client, svc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = founder(client)

    def broken(user_id: str) -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(svc.identity, "me", broken)
    api.refused(500, "internal_error", "GET", "/me", member=me)


# --- other members ------------------------------------------------------------------------------


def test_profiles_follows_blocks_and_lists(api: Api, client: Client) -> None:
    inviter = founder(client, invites=5)
    alice = join(client, inviter, ALICE, "alice")
    bob = join(client, inviter, BOB, "bob")

    seen = api.ok(200, "GET", f"/users/{alice.user_id}", member=bob)
    assert (seen["invited_by"]["username"], seen["you_follow"]) == ("founder", False)
    assert api.ok(200, "GET", "/users/by-username/ALICE", member=bob)["user_id"] == alice.user_id
    api.refused(400, "invalid_username", "GET", "/users/by-username/a", member=bob)
    api.refused(404, "member_not_found", "GET", "/users/by-username/nobody", member=bob)
    api.refused(404, "not_found", "GET", "/users/" + "x" * 300, member=bob)
    api.refused(404, "member_not_found", "GET", "/users/no-such-member", member=bob)
    api.refused(401, "not_authenticated", "GET", f"/users/{alice.user_id}")

    follow = f"/users/{alice.user_id}/follow"
    assert api.ok(200, "PUT", follow, member=bob) == {"user_id": alice.user_id, "you_follow": True}
    api.ok(200, "PUT", f"/users/{inviter.user_id}/follow", member=bob)
    api.ok(200, "PUT", f"/users/{inviter.user_id}/follow", member=alice)
    api.refused(400, "cannot_target_yourself", "PUT", f"/users/{bob.user_id}/follow", member=bob)
    api.refused(404, "member_not_found", "PUT", "/users/nobody/follow", member=bob)
    api.refused(404, "not_found", "PUT", "/users/a%20b/follow", member=bob)
    api.ok(200, "DELETE", follow, member=bob)
    assert api.ok(200, "DELETE", follow, member=bob)["you_follow"] is False
    api.refused(404, "not_found", "DELETE", "/users/a%20b/follow", member=bob)

    block = f"/users/{bob.user_id}/block"
    assert api.ok(200, "PUT", block, member=alice) == {"user_id": bob.user_id, "blocked": True}
    api.refused(403, "blocked", "PUT", f"/users/{alice.user_id}/follow", member=bob)
    api.refused(400, "cannot_target_yourself", "PUT", f"/users/{bob.user_id}/block", member=bob)
    api.refused(404, "member_not_found", "PUT", "/users/nobody/block", member=bob)
    api.refused(404, "not_found", "PUT", "/users/a%20b/block", member=bob)
    assert api.ok(200, "DELETE", block, member=alice)["blocked"] is False
    api.refused(404, "not_found", "DELETE", "/users/a%20b/block", member=bob)

    followers = f"/users/{inviter.user_id}/followers"
    first = api.ok(200, "GET", f"{followers}?limit=1", member=alice)
    assert first["cursor"] is not None
    rest = api.ok(200, "GET", f"{followers}?limit=1&cursor={first['cursor']}", member=alice)
    assert {p["username"] for p in first["items"] + rest["items"]} == {"alice", "bob"}
    following = api.ok(200, "GET", f"/users/{bob.user_id}/following", member=alice)
    assert [p["username"] for p in following["items"]] == ["founder"]
    for path in (followers, f"/users/{bob.user_id}/following"):
        api.refused(400, "invalid_request", "GET", f"{path}?limit=101", member=alice)
        api.refused(401, "not_authenticated", "GET", path)
    for suffix in ("followers", "following"):
        api.refused(404, "member_not_found", "GET", f"/users/nobody/{suffix}", member=alice)
        api.refused(404, "not_found", "GET", f"/users/{'x' * 65}/{suffix}", member=alice)

    suspend(client, bob)
    api.refused(404, "member_not_found", "PUT", f"/users/{bob.user_id}/follow", member=alice)
    for method, path in (
        ("GET", f"/users/{alice.user_id}"),
        ("GET", "/users/by-username/alice"),
        ("PUT", follow),
        ("DELETE", follow),
        ("PUT", f"/users/{alice.user_id}/block"),
        ("DELETE", f"/users/{alice.user_id}/block"),
        ("GET", followers),
        ("GET", f"{followers[: -len('followers')]}following"),
    ):
        api.refused(403, "account_suspended", method, path, member=bob)


def test_the_hallway(api: Api, client: Client, svc: Any, sockets: RecordingConnections) -> None:
    crowd = Crowd(client, svc, sockets)
    viewer = crowd.person("viewer")
    member = Member(viewer.user_id, "viewer", "", viewer.token, "")
    assert api.ok(200, "GET", "/rooms", member=member) == {"items": [], "cursor": None}
    for i, kind in enumerate(("open", "social", "open")):
        host = crowd.person(f"host{i}")
        host.ok("create_room", title=f"Room {i}", kind=kind)
        crowd.follow(viewer, host)
    first = api.ok(200, "GET", "/rooms?limit=1", member=member)
    assert first["items"][0]["followed_on_stage"] == 1
    rest = api.ok(200, "GET", f"/rooms?limit=5&cursor={first['cursor']}", member=member)
    assert (len(rest["items"]), rest["cursor"]) == (1, None)  # the social room is not open to us
    for query in ("limit=0", "limit=x", "cursor=nope", "sort=new"):
        api.refused(400, "invalid_request", "GET", f"/rooms?{query}", member=member)
    api.refused(401, "not_authenticated", "GET", "/rooms")
    suspend(client, member)
    api.refused(403, "account_suspended", "GET", "/rooms", member=member)


# --- operators' functions -----------------------------------------------------------------------


def answer(client: Client, name: str, event: dict[str, Any]) -> dict[str, Any]:
    result = admin(client, name, event)
    contract.validate_admin_answer(name, result)
    return result


def test_operator_functions_answer_as_documented(client: Client) -> None:
    made = answer(
        client,
        "admin_create_founder",
        {"phone": FOUNDER_PHONE, "name": "Founder", "username": "Founder", "invites": 1},
    )
    user_id = made["result"]["user_id"]
    again = {"phone": FOUNDER_PHONE, "name": "F", "username": "founder2", "invites": 1}
    assert answer(client, "admin_create_founder", again)["error"]["code"] == "already_member"
    taken = {"phone": ALICE, "name": "F", "username": "founder", "invites": 1}
    assert answer(client, "admin_create_founder", taken)["error"]["code"] == "username_taken"
    bad_name = {"phone": ALICE, "name": "F", "username": "a b", "invites": 1}
    assert answer(client, "admin_create_founder", bad_name)["error"]["code"] == "invalid_username"
    assert answer(client, "admin_create_founder", {"phone": ALICE})["ok"] is False

    granted = answer(client, "admin_grant_invites", {"user_id": user_id, "count": 2})
    assert granted["result"]["invites_left"] == 3
    missing = answer(client, "admin_grant_invites", {"user_id": "nobody", "count": 2})
    assert missing["error"]["code"] == "member_not_found"

    assert answer(client, "admin_admit", {"phone": BOB})["result"]["status"] == "invited"
    assert answer(client, "admin_admit", {"phone": "nope"})["error"]["code"] == "invalid_phone"

    for name, status in (("admin_suspend", "suspended"), ("admin_reinstate", "active")):
        assert answer(client, name, {"user_id": user_id})["result"]["status"] == status
        assert answer(client, name, {"user_id": "nobody"})["error"]["code"] == "member_not_found"
        assert answer(client, name, {})["error"]["code"] == "invalid_request"


def test_admitting_a_known_number_is_refused_with_its_documented_code(client: Client) -> None:
    founder(client)
    assert answer(client, "admin_admit", {"phone": BOB})["ok"]
    assert answer(client, "admin_admit", {"phone": BOB})["error"]["code"] == "already_invited"
    member = answer(client, "admin_admit", {"phone": FOUNDER_PHONE})
    assert member["error"]["code"] == "already_member"


# --- the WebSocket API --------------------------------------------------------------------------


def connect(client: Client, connection_id: str, token: str | None) -> dict[str, Any]:
    query = {"token": token} if token is not None else None
    response: dict[str, Any] = client.lambda_.invoke(
        "ws_connect", ws_event("$connect", connection_id, query=query)
    ).payload
    if response["statusCode"] != 200:
        contract.validate_handshake_refusal(response["statusCode"], json.loads(response["body"]))
    return response


def send(client: Client, sockets: RecordingConnections, connection_id: str, raw: str) -> Any:
    client.lambda_.invoke("ws_message", ws_event("$default", connection_id, body=raw))
    reply = sockets.last(connection_id)
    contract.validate_server_message(reply)
    return reply


def test_websocket_handshakes_and_messages(
    client: Client, svc: Any, sockets: RecordingConnections
) -> None:
    inviter = founder(client)
    alice = join(client, inviter, ALICE, "alice")
    assert connect(client, "c1=", alice.access_token)["statusCode"] == 200

    ping = {"action": "ping", "ref": "r-1"}
    contract.validate_client_message(ping)
    pong = send(client, sockets, "c1=", json.dumps(ping))
    assert (pong["type"], pong["ref"]) == ("pong", "r-1")
    contract.validate_client_message({"action": "ping"})
    assert send(client, sockets, "c1=", '{"action": "ping"}')["type"] == "pong"

    for raw, code in (
        ("{not json", "invalid_request"),
        ("[1, 2]", "invalid_request"),
        ('{"ref": "r-2"}', "invalid_request"),
        ('{"action": "ping", "colour": "red"}', "invalid_request"),
        (json.dumps({"action": "ping", "ref": "x" * 65}), "invalid_request"),
        ('{"action": "fly", "ref": "r-3"}', "unknown_action"),
        (json.dumps({"action": "ping", "pad": "x" * svc.settings.max_ws_message_bytes}), None),
    ):
        reply = send(client, sockets, "c1=", raw)
        assert reply["code"] == (code or "payload_too_large"), reply
    assert send(client, sockets, "ghost=", '{"action": "ping"}')["code"] == "not_connected"

    assert connect(client, "c2=", None)["statusCode"] == 401
    assert connect(client, "c3=", "forged")["statusCode"] == 401
    expired = svc.tokens.issue(alice.user_id, "s", datetime.now(UTC) - timedelta(hours=1))[0]
    assert connect(client, "c4=", expired)["statusCode"] == 401
    post(client, "/auth/sign-out", {}, inviter.auth)
    assert connect(client, "c5=", inviter.access_token)["statusCode"] == 401
    suspend(client, alice)
    assert connect(client, "c6=", alice.access_token)["statusCode"] == 403
