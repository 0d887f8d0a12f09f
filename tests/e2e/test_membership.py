"""A newcomer joins Salon through the local stack, exactly as the mobile app would drive it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.support.http import HttpClient

FOUNDER = "+14155550100"
NEWCOMER = "+14155550150"
RACERS = [f"+141555501{n:02d}" for n in range(60, 62)]


def test_an_invited_newcomer_signs_up_follows_the_founder_and_sees_who_invited_them(
    api: HttpClient,
) -> None:
    founder = api.sign_in(FOUNDER)
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


def test_racing_sign_ups_over_real_http_hold_a_username_once(api: HttpClient) -> None:
    founder = api.sign_in(FOUNDER)
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
