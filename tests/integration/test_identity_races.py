"""Identity under double taps, retries, races and crowds: usernames, self-targets, refreshes,
double-submitted codes and sign-in limits."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.adapters.dynamo.models import (
    PhoneModel,
    RateLimitModel,
    SessionModel,
    SignInCodeModel,
    UsernameModel,
)
from chalicelib.config import Settings
from chalicelib.domain.errors import SalonError
from local.outbox import latest_code
from tests.support import contract
from tests.support.flows import FOUNDER_PHONE, admin, founder, join, post, verify

ALICE = "+14155550101"
BOB = "+14155550102"


def outcome(call: Callable[[], Any]) -> str:
    """'ok' or the error code: what a concurrent caller of a use case gets back."""
    try:
        call()
    except SalonError as error:
        return error.code
    return "ok"


def reservations() -> dict[str, str]:
    """Every username held by a number that is not a member yet, and by which number."""
    return {row.username: row.phone for row in UsernameModel.scan() if row.user_id is None}


def interleave(obj: Any, name: str, meanwhile: Callable[[], None]) -> None:
    """Run `meanwhile` right after the first call of `obj.name` has read, before its caller
    writes: the interleaving that threads hit only sometimes, every time."""
    original = getattr(obj, name)
    done = threading.Event()

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if not done.is_set():
            done.set()
            meanwhile()
        return result

    setattr(obj, name, wrapped)


def error_code(response: Any) -> str:
    return str(response.json_body["error"]["code"])


# --- username reservations -------------------------------------------------------------------


def test_ten_concurrent_reservations_by_one_number_leave_it_holding_one_username(
    client: Client, svc: Any
) -> None:
    founder(client)
    token = verify(client, ALICE)["sign_up_token"]

    def reserve(i: int) -> str:
        return outcome(lambda: svc.identity.reserve_username(token, f"alice{i}"))

    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(reserve, range(10)))
    assert outcomes == ["ok"] * 10
    held = reservations()
    assert list(held.values()) == [ALICE]
    assert PhoneModel.get(ALICE).reserved_username in held


def test_a_double_tapped_reservation_of_one_name_answers_ok_twice_and_holds_it_once(
    client: Client, svc: Any
) -> None:
    founder(client)
    token = verify(client, ALICE)["sign_up_token"]
    with ThreadPoolExecutor(10) as pool:
        outcomes = list(
            pool.map(
                lambda _: outcome(lambda: svc.identity.reserve_username(token, "alice")), [0] * 10
            )
        )
    assert outcomes == ["ok"] * 10
    assert reservations() == {"alice": ALICE}


def test_a_reservation_that_read_before_another_one_wrote_replaces_it(
    client: Client, svc: Any
) -> None:
    founder(client)
    token = verify(client, ALICE)["sign_up_token"]
    repo = svc.identity.repo
    interleave(repo, "phone", lambda: svc.identity.reserve_username(token, "second"))
    svc.identity.reserve_username(token, "first")
    assert reservations() == {"first": ALICE}
    assert PhoneModel.get(ALICE).reserved_username == "first"


def test_a_reservation_racing_an_invitation_is_refused_cleanly(client: Client, svc: Any) -> None:
    inviter = founder(client)
    token = verify(client, ALICE)["sign_up_token"]
    interleave(svc.identity.repo, "phone", lambda: svc.identity.invite(inviter.user_id, ALICE))
    assert outcome(lambda: svc.identity.reserve_username(token, "alice")) == "invalid_request"
    assert reservations() == {}


def test_names_a_number_held_do_not_survive_its_sign_up(client: Client, svc: Any) -> None:
    inviter = founder(client)
    token = verify(client, ALICE)["sign_up_token"]
    svc.identity.reserve_username(token, "kept")
    # What the double taps left behind before reservations were conditioned on the number:
    # names that point at the number while the number points at another.
    now = datetime.now(UTC)
    for stray in ("stray1", "stray2"):
        UsernameModel(stray, phone=ALICE, claimed_at=now).save()
    post(client, "/invites", {"phone": ALICE}, inviter.auth)
    again = verify(client, ALICE)
    joined = post(
        client,
        "/auth/sign-up",
        {"sign_up_token": again["sign_up_token"], "name": "Alice", "username": "alice"},
    )
    assert joined.status_code == 201
    # Every name but the one it signed up with is free for others again.
    for phone, name in ((BOB, "stray1"), ("+14155550103", "stray2"), ("+14155550104", "kept")):
        assert join(client, inviter, phone, name).username == name


# --- one's own id ------------------------------------------------------------------------------


def _member_routes() -> list[tuple[str, str]]:
    return sorted(
        (method, path)
        for path, entry in app_module.app.routes.items()
        if "{user_id}" in path
        for method in entry
    )


@pytest.mark.parametrize(("method", "path"), _member_routes())
def test_every_route_about_a_member_answers_for_your_own_id_without_a_server_error(
    client: Client, method: str, path: str
) -> None:
    me = founder(client)
    response = client.http.request(method, path.replace("{user_id}", me.user_id), headers=me.auth)
    assert response.status_code < 500, response.body
    contract.validate_response(method, path, response.status_code, response.json_body)
    # Relations between members (follow, block) refuse one's own id; in a club, acting on
    # oneself has a meaning of its own (an admin steps down) and its rules answer for it.
    if method in ("PUT", "DELETE") and path.startswith("/users/"):
        assert (response.status_code, error_code(response)) == (400, "cannot_target_yourself")


# --- refreshes -----------------------------------------------------------------------------------


def test_parallel_refreshes_of_one_token_all_get_the_same_new_token_and_the_session_lives(
    client: Client, svc: Any
) -> None:
    me = founder(client)
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: _try(lambda: svc.identity.refresh(me.refresh_token)), range(8))
        )
    assert all(isinstance(a, dict) for a in answers), answers
    assert len({a["refresh_token"] for a in answers}) == 1
    onward = post(client, "/auth/refresh", {"refresh_token": answers[0]["refresh_token"]})
    assert onward.status_code == 200
    assert client.http.get("/me", headers=me.auth).status_code == 200


def _try(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except SalonError as error:
        return error.code


def test_a_refresh_that_read_before_another_rotated_gets_the_same_new_token(
    client: Client, svc: Any
) -> None:
    me = founder(client)
    winner: list[dict[str, Any]] = []
    interleave(
        svc.identity.repo, "session", lambda: winner.append(svc.identity.refresh(me.refresh_token))
    )
    loser = svc.identity.refresh(me.refresh_token)
    assert loser["refresh_token"] == winner[0]["refresh_token"]
    assert SessionModel.get(me.refresh_token.split(".")[0]).revoked is False


def test_a_refresh_token_reused_after_the_grace_window_revokes_the_session(
    client: Client, svc: Any
) -> None:
    me = founder(client)
    assert post(client, "/auth/refresh", {"refresh_token": me.refresh_token}).status_code == 200
    later = datetime.now(UTC) + timedelta(seconds=svc.settings.retry_grace_s + 1)
    svc.identity.clock = lambda: later
    replay = post(client, "/auth/refresh", {"refresh_token": me.refresh_token})
    assert (replay.status_code, error_code(replay)) == (401, "session_revoked")


def test_the_token_before_the_last_one_is_reuse_even_within_the_grace_window(
    client: Client,
) -> None:
    me = founder(client)
    first = post(client, "/auth/refresh", {"refresh_token": me.refresh_token}).json_body
    second = post(client, "/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    replay = post(client, "/auth/refresh", {"refresh_token": me.refresh_token})
    assert (replay.status_code, error_code(replay)) == (401, "session_revoked")
    after = post(client, "/auth/refresh", {"refresh_token": second.json_body["refresh_token"]})
    assert error_code(after) == "session_revoked"


# --- double-submitted codes ------------------------------------------------------------------


def test_a_right_code_submitted_five_times_at_once_signs_in_once_with_the_same_tokens(
    client: Client, svc: Any
) -> None:
    admin(
        client,
        "admin_create_founder",
        {"phone": FOUNDER_PHONE, "name": "Founder", "username": "founder", "invites": 1},
    )
    post(client, "/auth/sign-in", {"phone": FOUNDER_PHONE})
    code = latest_code(FOUNDER_PHONE)
    with ThreadPoolExecutor(5) as pool:
        answers = list(
            pool.map(
                lambda _: _try(lambda: svc.identity.verify_code(FOUNDER_PHONE, code)), range(5)
            )
        )
    assert all(isinstance(a, dict) for a in answers), answers
    assert len({a["refresh_token"] for a in answers}) == 1
    assert len(list(SessionModel.scan())) == 1


def test_a_right_code_submitted_again_after_its_answer_was_lost_gets_the_same_answer(
    client: Client,
) -> None:
    founder(client)
    post(client, "/auth/sign-in", {"phone": ALICE})
    code = latest_code(ALICE)
    first = post(client, "/auth/verify", {"phone": ALICE, "code": code})
    again = post(client, "/auth/verify", {"phone": ALICE, "code": code})
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json_body["status"] == first.json_body["status"] == "waitlisted"


def test_a_used_code_is_expired_after_the_grace_window_and_for_any_other_code(
    client: Client, svc: Any
) -> None:
    founder(client)
    post(client, "/auth/sign-in", {"phone": ALICE})
    code = latest_code(ALICE)
    assert post(client, "/auth/verify", {"phone": ALICE, "code": code}).status_code == 200
    wrong = "000000" if code != "000000" else "111111"
    other = post(client, "/auth/verify", {"phone": ALICE, "code": wrong})
    assert (other.status_code, error_code(other)) == (410, "code_expired")
    later = datetime.now(UTC) + timedelta(seconds=svc.settings.retry_grace_s + 1)
    svc.identity.clock = lambda: later
    late = post(client, "/auth/verify", {"phone": ALICE, "code": code})
    assert (late.status_code, error_code(late)) == (410, "code_expired")


# --- sign-in limits --------------------------------------------------------------------------


def test_a_venue_of_two_hundred_behind_one_address_all_get_their_codes(svc: Any) -> None:
    phones = [f"+1415555{n:04d}" for n in range(300, 500)]
    outcomes = [outcome(lambda p=p: svc.identity.start_sign_in(p, "203.0.113.7")) for p in phones]
    assert outcomes == ["ok"] * len(phones)


def test_the_per_address_limit_still_stops_one_address(svc: Any) -> None:
    svc.identity.settings = dataclasses.replace(svc.settings, sign_in_starts_per_ip_per_hour=3)
    phones = [f"+1415555{n:04d}" for n in range(300, 304)]
    outcomes = [outcome(lambda p=p: svc.identity.start_sign_in(p, "203.0.113.7")) for p in phones]
    assert outcomes == ["ok", "ok", "ok", "rate_limited"]


def test_ipv6_addresses_in_one_64_share_a_limit(svc: Any) -> None:
    svc.identity.settings = dataclasses.replace(svc.settings, sign_in_starts_per_ip_per_hour=3)
    addresses = ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9", "2001:db8:1:2::4"]
    phones = [f"+1415555{n:04d}" for n in range(300, 304)]
    outcomes = [
        outcome(lambda p=p, a=a: svc.identity.start_sign_in(p, a))
        for p, a in zip(phones, addresses, strict=True)
    ]
    assert outcomes == ["ok", "ok", "ok", "rate_limited"]
    other_network = outcome(lambda: svc.identity.start_sign_in(ALICE, "2001:db8:1:3::1"))
    assert other_network == "ok"


def test_no_sign_in_row_carries_a_phone_number_or_an_address_in_plain(
    client: Client, svc: Any
) -> None:
    founder(client)
    svc.identity.start_sign_in(ALICE, "203.0.113.7")
    keys = [row.key for row in RateLimitModel.scan()] + [
        row.phone for row in SignInCodeModel.scan()
    ]
    assert keys
    for key in keys:
        for plain in ("4155550101", "4155550100", "203.0.113.7", "127.0.0.1"):
            assert plain not in key


def test_the_documented_limits_and_retry_grace_are_the_ones_the_code_uses() -> None:
    paths = contract.openapi()["paths"]

    def said(path: str) -> str:
        return " ".join(paths[path]["post"]["description"].split())

    per_phone = Settings.sign_in_starts_per_phone_per_hour
    per_address = Settings.sign_in_starts_per_ip_per_hour
    assert f"{per_phone} codes per number and {per_address} per source address" in said(
        "/auth/sign-in"
    )
    for path in ("/auth/verify", "/auth/refresh"):
        assert f"within {Settings.retry_grace_s} seconds" in said(path)
