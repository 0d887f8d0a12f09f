"""Invite-only membership, sign-in by phone, sessions, profiles and follows, through the API."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.domain.errors import SalonError
from chalicelib.domain.identity import PhoneStatus
from local.outbox import latest_code, messages
from tests.support.events import ws_event
from tests.support.flows import FOUNDER_PHONE, admin, founder, join, post, verify

ALICE = "+14155550101"
BOB = "+14155550102"
CAROL = "+14155550103"


def error_code(response: Any) -> str:
    return str(response.json_body["error"]["code"])


def test_the_founder_signs_in_with_the_code_sent_by_sms(client: Client) -> None:
    me = founder(client)
    profile = client.http.get("/me", headers=me.auth)
    assert profile.status_code == 200
    assert profile.json_body["username"] == "founder"
    assert profile.json_body["invites_left"] == 5
    assert "is your Salon code" in messages(FOUNDER_PHONE)[0]


def test_an_invited_number_joins_and_its_profile_shows_who_invited_it(client: Client) -> None:
    inviter = founder(client)
    alice = join(client, inviter, ALICE, "alice")
    seen = client.http.get(f"/users/{alice.user_id}", headers=inviter.auth).json_body
    assert seen["invited_by"]["username"] == "founder"
    assert client.http.get("/me", headers=inviter.auth).json_body["invites_left"] == 4
    assert client.http.get("/me", headers=alice.auth).json_body["invites_left"] == 2


def test_an_uninvited_number_lands_on_the_waitlist_and_cannot_sign_up(client: Client) -> None:
    founder(client)
    answer = verify(client, ALICE)
    assert answer["status"] == "waitlisted"
    refused = post(
        client,
        "/auth/sign-up",
        {"sign_up_token": answer["sign_up_token"], "name": "Alice", "username": "alice"},
    )
    assert refused.status_code == 403
    assert error_code(refused) == "not_invited"


def test_a_waitlisted_number_reserves_a_username_and_keeps_it_when_invited(
    client: Client,
) -> None:
    inviter = founder(client)
    answer = verify(client, ALICE)
    reserved = client.http.put(
        "/waitlist/username",
        body=json.dumps({"sign_up_token": answer["sign_up_token"], "username": "Alice"}),
        headers={"Content-Type": "application/json"},
    )
    assert reserved.json_body == {"status": "waitlisted", "reserved_username": "alice"}
    assert post(client, "/invites", {"phone": ALICE}, inviter.auth).status_code == 201
    again = verify(client, ALICE)
    assert (again["status"], again["reserved_username"]) == ("invited", "alice")


def test_a_reserved_username_is_not_available_to_others(client: Client) -> None:
    inviter = founder(client)
    waiting = verify(client, ALICE)
    client.http.put(
        "/waitlist/username",
        body=json.dumps({"sign_up_token": waiting["sign_up_token"], "username": "alice"}),
        headers={"Content-Type": "application/json"},
    )
    post(client, "/invites", {"phone": BOB}, inviter.auth)
    bob = verify(client, BOB)
    taken = post(
        client,
        "/auth/sign-up",
        {"sign_up_token": bob["sign_up_token"], "name": "Bob", "username": "alice"},
    )
    assert (taken.status_code, error_code(taken)) == (409, "username_taken")


def test_an_operator_admits_a_waitlisted_number(client: Client) -> None:
    founder(client)
    verify(client, ALICE)
    assert admin(client, "admin_admit", {"phone": ALICE})["ok"]
    assert verify(client, ALICE)["status"] == "invited"


def outcome(call: Any) -> str:
    """'ok' or the error code: what a concurrent caller of a use case gets back."""
    try:
        call()
    except SalonError as error:
        return error.code
    return "ok"


# The concurrency tests call the use case from threads: Chalice's test client shares one
# current_request between threads (its local server keeps one per thread; see tests/e2e).
def test_twenty_concurrent_redemptions_of_one_invitation_make_one_member(
    client: Client, svc: Any
) -> None:
    inviter = founder(client)
    post(client, "/invites", {"phone": ALICE}, inviter.auth)
    token = verify(client, ALICE)["sign_up_token"]

    def redeem(i: int) -> str:
        return outcome(lambda: svc.identity.sign_up(token, "Alice", f"alice{i}"))

    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(redeem, range(20)))
    assert outcomes.count("ok") == 1
    assert set(outcomes) == {"ok", "already_member"}
    assert svc.identity.repo.phone(ALICE).status is PhoneStatus.MEMBER
    held = [n for n in range(20) if _username_holder(svc, f"alice{n}") is not None]
    assert len(held) == 1


def _username_holder(svc: Any, username: str) -> str | None:
    try:
        return str(svc.identity.repo.user_id_for_username(username))
    except SalonError:
        return None


def test_two_people_racing_for_one_username_get_it_once(client: Client, svc: Any) -> None:
    inviter = founder(client)
    tokens = []
    for phone in (ALICE, BOB):
        post(client, "/invites", {"phone": phone}, inviter.auth)
        tokens.append(verify(client, phone)["sign_up_token"])

    def claim(token: str) -> str:
        return outcome(lambda: svc.identity.sign_up(token, "Sam", "sam"))

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(claim, tokens))
    assert outcomes == ["ok", "username_taken"]


def test_an_inviter_with_no_invites_left_is_refused_and_never_goes_below_zero(
    client: Client,
) -> None:
    inviter = founder(client, invites=1)
    assert post(client, "/invites", {"phone": ALICE}, inviter.auth).status_code == 201
    refused = post(client, "/invites", {"phone": BOB}, inviter.auth)
    assert (refused.status_code, error_code(refused)) == (403, "no_invites_left")
    assert client.http.get("/me", headers=inviter.auth).json_body["invites_left"] == 0


def test_inviting_a_member_or_an_invited_number_is_refused_without_spending(
    client: Client,
) -> None:
    inviter = founder(client)
    post(client, "/invites", {"phone": ALICE}, inviter.auth)
    again = post(client, "/invites", {"phone": ALICE}, inviter.auth)
    member = post(client, "/invites", {"phone": FOUNDER_PHONE}, inviter.auth)
    assert error_code(again) == "already_invited"
    assert error_code(member) == "already_member"
    assert client.http.get("/me", headers=inviter.auth).json_body["invites_left"] == 4


def test_five_wrong_codes_lock_the_code(client: Client) -> None:
    founder(client)
    post(client, "/auth/sign-in", {"phone": ALICE})
    right = latest_code(ALICE)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        response = post(client, "/auth/verify", {"phone": ALICE, "code": wrong})
        assert error_code(response) == "wrong_code"
    locked = post(client, "/auth/verify", {"phone": ALICE, "code": right})
    assert (locked.status_code, error_code(locked)) == (429, "code_locked")


def test_a_code_works_once_beyond_the_retry_grace(client: Client, svc: Any) -> None:
    founder(client)
    post(client, "/auth/sign-in", {"phone": ALICE})
    code = latest_code(ALICE)
    assert post(client, "/auth/verify", {"phone": ALICE, "code": code}).status_code == 200
    later = datetime.now(UTC) + timedelta(seconds=svc.settings.retry_grace_s + 1)
    svc.identity.clock = lambda: later
    reused = post(client, "/auth/verify", {"phone": ALICE, "code": code})
    assert (reused.status_code, error_code(reused)) == (410, "code_expired")


def test_an_expired_code_is_refused(client: Client, svc: Any) -> None:
    founder(client)
    post(client, "/auth/sign-in", {"phone": ALICE})
    code = latest_code(ALICE)
    svc.identity.clock = lambda: datetime.now(UTC) + timedelta(minutes=11)
    expired = post(client, "/auth/verify", {"phone": ALICE, "code": code})
    assert error_code(expired) == "code_expired"


def test_sign_in_starts_are_rate_limited_per_phone_number(client: Client, svc: Any) -> None:
    limit = svc.settings.sign_in_starts_per_phone_per_hour
    statuses = [post(client, "/auth/sign-in", {"phone": ALICE}).status_code for _ in range(limit)]
    assert statuses == [202] * limit
    refused = post(client, "/auth/sign-in", {"phone": ALICE})
    assert (refused.status_code, error_code(refused)) == (429, "rate_limited")


def test_sign_in_starts_are_rate_limited_per_source_address(client: Client, svc: Any) -> None:
    limit = 12  # the real limit is in the hundreds; the rule is the same at any size
    svc.identity.settings = dataclasses.replace(svc.settings, sign_in_starts_per_ip_per_hour=limit)
    phones = [f"+1415555{n:04d}" for n in range(200, 200 + limit + 1)]
    statuses = [post(client, "/auth/sign-in", {"phone": p}).status_code for p in phones]
    assert statuses[:limit] == [202] * limit
    assert statuses[limit] == 429


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(
    client: Client, svc: Any
) -> None:
    me = founder(client)
    rotated = post(client, "/auth/refresh", {"refresh_token": me.refresh_token})
    assert rotated.status_code == 200
    assert rotated.json_body["refresh_token"] != me.refresh_token
    later = datetime.now(UTC) + timedelta(seconds=svc.settings.retry_grace_s + 1)
    svc.identity.clock = lambda: later
    replay = post(client, "/auth/refresh", {"refresh_token": me.refresh_token})
    assert (replay.status_code, error_code(replay)) == (401, "session_revoked")
    new_access = {"Authorization": f"Bearer {rotated.json_body['access_token']}"}
    assert client.http.get("/me", headers=new_access).status_code == 401


def test_a_signed_out_token_is_refused_everywhere(client: Client) -> None:
    me = founder(client)
    assert post(client, "/auth/sign-out", {}, me.auth).status_code == 204
    assert client.http.get("/me", headers=me.auth).status_code == 401
    assert post(client, "/invites", {"phone": ALICE}, me.auth).status_code == 401
    refresh = post(client, "/auth/refresh", {"refresh_token": me.refresh_token})
    assert refresh.status_code == 401
    ws = client.lambda_.invoke(
        "ws_connect", ws_event("$connect", "c1=", query={"token": me.access_token})
    )
    assert ws.payload["statusCode"] == 401


def test_an_expired_access_token_is_refused_everywhere(client: Client, svc: Any) -> None:
    me = founder(client)
    svc.identity.clock = lambda: datetime.now(UTC) + timedelta(hours=1)
    assert client.http.get("/me", headers=me.auth).status_code == 401
    ws = client.lambda_.invoke(
        "ws_connect", ws_event("$connect", "c1=", query={"token": me.access_token})
    )
    assert ws.payload["statusCode"] == 401


def test_a_suspended_member_is_refused_until_reinstated(client: Client) -> None:
    inviter = founder(client)
    alice = join(client, inviter, ALICE, "alice")
    assert admin(client, "admin_suspend", {"user_id": alice.user_id})["ok"]
    refused = client.http.get("/me", headers=alice.auth)
    assert (refused.status_code, error_code(refused)) == (403, "account_suspended")
    assert post(client, "/auth/refresh", {"refresh_token": alice.refresh_token}).status_code == 403
    assert admin(client, "admin_reinstate", {"user_id": alice.user_id})["ok"]
    assert client.http.get("/me", headers=alice.auth).status_code == 200


def test_suspending_a_member_closes_their_sockets(client: Client, sockets: Any) -> None:
    inviter = founder(client)
    alice = join(client, inviter, ALICE, "alice")
    client.lambda_.invoke(
        "ws_connect", ws_event("$connect", "alice1=", query={"token": alice.access_token})
    )
    admin(client, "admin_suspend", {"user_id": alice.user_id})
    assert sockets.closed == ["alice1="]


def test_members_edit_only_their_own_profile(client: Client) -> None:
    inviter = founder(client)
    alice = join(client, inviter, ALICE, "alice")
    edited = client.http.patch(
        "/me",
        body=json.dumps({"bio": "Hosts jazz rooms", "name": "Alice A."}),
        headers={"Content-Type": "application/json", **alice.auth},
    )
    assert edited.json_body["bio"] == "Hosts jazz rooms"
    assert client.http.get("/me", headers=inviter.auth).json_body["bio"] == ""
    elsewhere = client.http.patch(
        f"/users/{inviter.user_id}",
        body=json.dumps({"bio": "hacked"}),
        headers={"Content-Type": "application/json", **alice.auth},
    )
    assert elsewhere.status_code in (403, 405)
    assert client.http.get("/me", headers=inviter.auth).json_body["bio"] == ""


def test_following_counts_on_both_profiles_and_lists_page_through(client: Client) -> None:
    inviter = founder(client, invites=10)
    people = [join(client, inviter, f"+141555502{n:02d}", f"fan{n}") for n in range(5)]
    for person in people:
        assert (
            client.http.put(f"/users/{inviter.user_id}/follow", headers=person.auth).status_code
            == 200
        )
    # Following twice changes nothing.
    client.http.put(f"/users/{inviter.user_id}/follow", headers=people[0].auth)
    profile = client.http.get(f"/users/{inviter.user_id}", headers=people[0].auth).json_body
    assert profile["followers_count"] == 5
    assert profile["you_follow"] is True
    first = client.http.get(f"/users/{inviter.user_id}/followers?limit=3", headers=inviter.auth)
    assert len(first.json_body["items"]) == 3
    cursor = first.json_body["cursor"]
    rest = client.http.get(
        f"/users/{inviter.user_id}/followers?limit=3&cursor={cursor}", headers=inviter.auth
    ).json_body
    names = {p["username"] for p in first.json_body["items"] + rest["items"]}
    assert names == {f"fan{n}" for n in range(5)}
    following = client.http.get(f"/users/{people[0].user_id}/following", headers=inviter.auth)
    assert [p["username"] for p in following.json_body["items"]] == ["founder"]


def test_unfollow_decrements_and_is_idempotent(client: Client) -> None:
    inviter = founder(client)
    alice = join(client, inviter, ALICE, "alice")
    client.http.put(f"/users/{inviter.user_id}/follow", headers=alice.auth)
    client.http.delete(f"/users/{inviter.user_id}/follow", headers=alice.auth)
    client.http.delete(f"/users/{inviter.user_id}/follow", headers=alice.auth)
    profile = client.http.get(f"/users/{inviter.user_id}", headers=alice.auth).json_body
    assert (profile["followers_count"], profile["you_follow"]) == (0, False)
    assert client.http.get("/me", headers=alice.auth).json_body["following_count"] == 0


def test_a_blocked_member_cannot_follow_and_loses_their_follow(client: Client) -> None:
    inviter = founder(client)
    alice = join(client, inviter, ALICE, "alice")
    client.http.put(f"/users/{inviter.user_id}/follow", headers=alice.auth)
    assert client.http.put(f"/users/{alice.user_id}/block", headers=inviter.auth).status_code == 200
    refused = client.http.put(f"/users/{inviter.user_id}/follow", headers=alice.auth)
    assert (refused.status_code, error_code(refused)) == (403, "blocked")
    assert client.http.get("/me", headers=inviter.auth).json_body["followers_count"] == 0
    blocks = client.http.get("/me/blocks", headers=inviter.auth).json_body["items"]
    assert [b["username"] for b in blocks] == ["alice"]
    client.http.delete(f"/users/{alice.user_id}/block", headers=inviter.auth)
    assert (
        client.http.put(f"/users/{inviter.user_id}/follow", headers=alice.auth).status_code == 200
    )


def test_a_profile_is_found_by_username_in_any_case(client: Client) -> None:
    inviter = founder(client)
    found = client.http.get("/users/by-username/FOUNDER", headers=inviter.auth)
    assert found.json_body["user_id"] == inviter.user_id
    missing = client.http.get("/users/by-username/nobody", headers=inviter.auth)
    assert (missing.status_code, error_code(missing)) == (404, "member_not_found")


def test_self_follow_and_self_block_are_refused(client: Client) -> None:
    me = founder(client)
    for path in (f"/users/{me.user_id}/follow", f"/users/{me.user_id}/block"):
        response = client.http.put(path, headers=me.auth)
        assert (response.status_code, error_code(response)) == (400, "cannot_target_yourself")


@pytest.mark.parametrize(
    ("path", "payload", "code"),
    [
        ("/auth/sign-in", "{not json", "invalid_request"),
        ("/auth/sign-in", "[]", "invalid_request"),
        ("/auth/sign-in", "", "invalid_request"),
        ("/auth/sign-in", {}, "invalid_request"),
        ("/auth/sign-in", {"phone": 14155550101}, "invalid_request"),
        ("/auth/sign-in", {"phone": "not a phone"}, "invalid_phone"),
        ("/auth/sign-in", {"phone": "+1555"}, "invalid_phone"),
        ("/auth/sign-in", {"phone": "4155550101"}, "invalid_phone"),
        ("/auth/sign-in", {"phone": "+1" * 40}, "invalid_request"),
        ("/auth/sign-in", {"phone": ALICE, "extra": 1}, "invalid_request"),
        ("/auth/verify", {"phone": ALICE, "code": "12345"}, "invalid_request"),
        ("/auth/verify", {"phone": ALICE, "code": 123456}, "invalid_request"),
        ("/auth/verify", {"phone": ALICE}, "invalid_request"),
        (
            "/auth/sign-up",
            {"sign_up_token": "x", "name": "A", "username": "al"},
            "not_authenticated",
        ),
        (
            "/auth/sign-up",
            {"sign_up_token": "x", "name": "", "username": "alice"},
            "invalid_request",
        ),
        (
            "/auth/sign-up",
            {"sign_up_token": "x", "name": "A" * 51, "username": "a"},
            "invalid_request",
        ),
        ("/auth/refresh", {"refresh_token": "garbage"}, "not_authenticated"),
        ("/auth/refresh", {"refresh_token": ["x"]}, "invalid_request"),
    ],
)
def test_malformed_requests_get_a_4xx_with_a_stable_code(
    client: Client, path: str, payload: Any, code: str
) -> None:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    response = client.http.post(path, body=raw, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500
    assert error_code(response) == code
    assert response.json_body["error"]["message"]


def test_a_bad_username_at_sign_up_gets_invalid_username(client: Client) -> None:
    inviter = founder(client)
    post(client, "/invites", {"phone": ALICE}, inviter.auth)
    token = verify(client, ALICE)["sign_up_token"]
    bad = post(client, "/auth/sign-up", {"sign_up_token": token, "name": "A", "username": "a b"})
    assert (bad.status_code, error_code(bad)) == (400, "invalid_username")


def test_member_routes_without_a_token_are_refused_with_401(client: Client) -> None:
    for path in ("/me", "/me/blocks", "/users/abc", "/users/abc/followers"):
        response = client.http.get(path)
        assert (response.status_code, error_code(response)) == (401, "not_authenticated")


def test_bad_paging_and_ids_are_4xx(client: Client) -> None:
    me = founder(client)
    for path, status in [
        (f"/users/{me.user_id}/followers?limit=0", 400),
        (f"/users/{me.user_id}/followers?limit=abc", 400),
        (f"/users/{me.user_id}/followers?cursor=%%%", 400),
        ("/users/" + "x" * 300, 404),
        ("/users/no-such-member", 404),
    ]:
        assert client.http.get(path, headers=me.auth).status_code == status, path


@pytest.mark.parametrize(
    ("name", "event", "code"),
    [
        ("admin_create_founder", {"phone": ALICE}, "invalid_request"),
        ("admin_grant_invites", {"user_id": "nobody", "count": 2}, "member_not_found"),
        ("admin_grant_invites", {"user_id": "x", "count": "2"}, "invalid_request"),
        ("admin_admit", {"phone": "nope"}, "invalid_phone"),
        ("admin_suspend", {}, "invalid_request"),
    ],
)
def test_admin_functions_answer_refusals_as_results(
    client: Client, name: str, event: dict[str, Any], code: str
) -> None:
    result = admin(client, name, event)
    assert result["ok"] is False
    assert result["error"]["code"] == code


def test_the_founder_account_is_created_once(client: Client) -> None:
    founder(client)
    again = admin(
        client,
        "admin_create_founder",
        {"phone": FOUNDER_PHONE, "name": "F", "username": "founder2", "invites": 1},
    )
    assert again["error"]["code"] == "already_member"


def test_operators_grant_invites(client: Client) -> None:
    me = founder(client, invites=0)
    granted = admin(client, "admin_grant_invites", {"user_id": me.user_id, "count": 3})
    assert granted == {"ok": True, "result": {"user_id": me.user_id, "invites_left": 3}}
