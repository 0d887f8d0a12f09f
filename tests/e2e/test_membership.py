"""A newcomer joins Salon through the local stack, exactly as the mobile app would drive it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support.http import HttpClient

FOUNDER = "+14155550100"
NEWCOMER = "+14155550150"
RACERS = [f"+141555501{n:02d}" for n in range(60, 62)]


@pytest.fixture(scope="module")
def founder(api: HttpClient) -> dict[str, Any]:
    """One sign-in for the module: the e2e tests share a stack, and a number has 5 codes an
    hour."""
    return api.sign_in(FOUNDER)


def test_an_invited_newcomer_signs_up_follows_the_founder_and_sees_who_invited_them(
    api: HttpClient, founder: dict[str, Any]
) -> None:
    assert founder["status"] == "member"
    invited = api.post("/invites", {"phone": NEWCOMER}, founder["access_token"])
    assert invited.status == 201

    verified = api.sign_in(NEWCOMER)
    assert verified["status"] == "invited"
    assert verified["invited_by"]["username"] == "founder"
    joined = api.post(
        "/auth/sign-up",
        {"sign_up_token": verified["sign_up_token"], "name": "New Comer", "username": "newcomer"},
    )
    assert joined.status == 201, joined.body
    token = joined.body["access_token"]

    founder_id = founder["user"]["user_id"]
    assert api.put(f"/users/{founder_id}/follow", token=token).status == 200
    me = api.get("/me", token=token).body
    assert me["invited_by"]["username"] == "founder"
    assert me["following_count"] == 1
    assert api.get(f"/users/{founder_id}", token=token).body["you_follow"] is True


def test_racing_sign_ups_over_real_http_hold_a_username_once(
    api: HttpClient, founder: dict[str, Any]
) -> None:
    tokens = []
    for phone in RACERS:
        api.post("/invites", {"phone": phone}, founder["access_token"])
        tokens.append(api.sign_in(phone)["sign_up_token"])

    def sign_up(token: str) -> int:
        payload = {"sign_up_token": token, "name": "Racer", "username": "racer"}
        return api.post("/auth/sign-up", payload).status

    with ThreadPoolExecutor(len(tokens)) as pool:
        assert sorted(pool.map(sign_up, tokens)) == [201, 409]


def test_an_uninvited_number_is_waitlisted(api: HttpClient) -> None:
    answer = api.sign_in("+14155550170")
    assert answer["status"] == "waitlisted"
    refused = api.post(
        "/auth/sign-up", {"sign_up_token": answer["sign_up_token"], "name": "X", "username": "x_y"}
    )
    assert (refused.status, refused.body["error"]["code"]) == (403, "not_invited")


def test_malformed_requests_get_4xx_over_real_http(api: HttpClient) -> None:
    bad_json = api.request("POST", "/auth/sign-in", raw=b"{nope")
    assert (bad_json.status, bad_json.body["error"]["code"]) == (400, "invalid_request")
    bad_phone = api.post("/auth/sign-in", {"phone": "12"})
    assert (bad_phone.status, bad_phone.body["error"]["code"]) == (400, "invalid_phone")


def test_double_taps_and_retries_over_real_http_get_one_answer(
    api: HttpClient, founder: dict[str, Any]
) -> None:
    member, waiting = "+14155550180", "+14155550182"
    api.post("/invites", {"phone": member}, founder["access_token"])
    invited = api.sign_in(member)
    payload = {"sign_up_token": invited["sign_up_token"], "name": "Tap", "username": "double_tap"}
    assert api.post("/auth/sign-up", payload).status == 201

    # A right code sent five times at once: one session, the same tokens for each.
    assert api.post("/auth/sign-in", {"phone": member}).status == 202
    code = api.get(f"/_local/sms/{member.lstrip('+')}").body["latest_code"]
    with ThreadPoolExecutor(5) as pool:
        verified = list(
            pool.map(lambda _: api.post("/auth/verify", {"phone": member, "code": code}), range(5))
        )
    assert [v.status for v in verified] == [200] * 5, [v.body for v in verified]
    refresh_tokens = {v.body["refresh_token"] for v in verified}
    assert len(refresh_tokens) == 1

    # Eight parallel refreshes of that token: the same next token, and the session lives.
    (token,) = refresh_tokens
    with ThreadPoolExecutor(8) as pool:
        refreshed = list(
            pool.map(lambda _: api.post("/auth/refresh", {"refresh_token": token}), range(8))
        )
    assert [r.status for r in refreshed] == [200] * 8, [r.body for r in refreshed]
    assert len({r.body["refresh_token"] for r in refreshed}) == 1
    assert api.get("/me", token=refreshed[0].body["access_token"]).status == 200

    # Ten reservations by one waitlisted number at once: it holds one name.
    sign_up_token = api.sign_in(waiting)["sign_up_token"]
    with ThreadPoolExecutor(10) as pool:
        reserved = list(
            pool.map(
                lambda n: api.put(
                    "/waitlist/username", {"sign_up_token": sign_up_token, "username": f"tap{n}"}
                ),
                range(10),
            )
        )
    assert [r.status for r in reserved] == [200] * 10, [r.body for r in reserved]
    held = api.sign_in(waiting)["reserved_username"]
    # Another waitlisted number finds every name free but the one that number holds.
    other = api.sign_in("+14155550181")["sign_up_token"]
    taken = [
        f"tap{n}"
        for n in range(10)
        if api.put("/waitlist/username", {"sign_up_token": other, "username": f"tap{n}"}).status
        == 409
    ]
    assert taken == [held]


def test_your_own_id_is_a_clear_refusal_over_real_http(
    api: HttpClient, founder: dict[str, Any]
) -> None:
    own = founder["user"]["user_id"]
    for method in ("PUT", "DELETE"):
        for edge in ("follow", "block"):
            answer = api.request(method, f"/users/{own}/{edge}", token=founder["access_token"])
            assert (answer.status, answer.body["error"]["code"]) == (400, "cannot_target_yourself")
