"""The web client's clubs, in Chromium: a member founds a club and invites a friend by
username, the friend accepts, the founder starts a members-only club room and the friend joins
it from the club's page; a follower follows the club from its page."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.http import HttpClient, member_of_their_own

TIMEOUT_MS = 15_000
# The browser tests share one stack: test_events_client counts from 7600, test_safety from
# 7800.
_numbers = itertools.count(8400)


@pytest.fixture(scope="module")
def api(stack: dict[str, Any]) -> HttpClient:
    return HttpClient(stack["rest"], validate=False)


def member(api: HttpClient, username: str) -> dict[str, Any]:
    answer = member_of_their_own(api, f"+1415555{next(_numbers):04d}", username)
    return {k: answer[k] for k in ("access_token", "refresh_token", "user")}


@pytest.fixture(params=[1280, 390], ids=["wide", "phone"])
def open_page(request: Any, browser: Any, stack: dict[str, Any], artifacts: Path) -> Iterator[Any]:
    contexts: list[Any] = []
    pages: list[Page] = []

    def open_(session: dict[str, Any], hash_: str) -> Page:
        context = browser.new_context(viewport={"width": request.param, "height": 860})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        context.add_init_script(
            f"sessionStorage.setItem('salon.session', {json.dumps(json.dumps(session))})"
        )
        page = context.new_page()
        page.goto(stack["web"] + hash_)
        pages.append(page)
        return page

    yield open_
    for index, page in enumerate(pages):
        with contextlib.suppress(Exception):
            page.screenshot(path=artifacts / f"clubs-{request.param}-{index}.png", full_page=True)
    for context in contexts:
        context.close()


def test_a_club_is_founded_a_friend_invited_and_they_meet_in_its_members_room(
    api: HttpClient, open_page: Any
) -> None:
    n = next(_numbers)
    founder = member(api, f"web_founder{n}")
    friend = member(api, f"web_friend{n}")
    fan = member(api, f"web_clubfan{n}")

    founding = open_page(founder, "#clubs")
    founding.get_by_label("Club name", exact=True).fill("Night owls")
    founding.get_by_role("button", name="Found club").click()
    expect(founding.get_by_role("heading", name="Night owls", exact=True)).to_be_visible()
    club_id = founding.evaluate("location.hash.split('/')[1]")
    founding.get_by_label("Their username", exact=True).fill(friend["user"]["username"])
    founding.get_by_role("button", name="Invite to club").click()
    members = founding.get_by_role("list", name="Club members")
    expect(members.locator("li", has_text="invited")).to_be_visible()

    joining = open_page(friend, "#clubs")
    clubs = joining.get_by_role("list", name="Your clubs")
    expect(clubs.get_by_text("You are invited")).to_be_visible()
    clubs.get_by_role("link", name="Night owls").click()
    joining.get_by_role("button", name="Accept invitation").click()
    expect(joining.get_by_role("button", name="Leave club")).to_be_visible()

    founding.reload()
    founding.get_by_label("Room title", exact=True).fill("Owls only")
    founding.get_by_role("button", name="Start club room").click()
    expect(founding.get_by_role("button", name="End room")).to_be_visible()
    room_id = founding.evaluate("salonDebug.room().id")

    joining.reload()
    joining.get_by_role("list", name="Club rooms").get_by_role(
        "button", name="Join Owls only"
    ).click()
    joining.wait_for_function("window.salonDebug.room() !== null")
    assert joining.evaluate("salonDebug.room().id") == room_id
    assert joining.evaluate("salonDebug.room().viewer.role") == "listener"

    # Anyone follows from the club's page; the members room is not offered to a follower.
    following = open_page(fan, f"#club/{club_id}")
    following.get_by_role("button", name="Follow club").click()
    expect(following.get_by_role("button", name="Unfollow club")).to_be_visible()
    state = api.get(f"/clubs/{club_id}", fan["access_token"]).body
    assert state["me"] == {"role": None, "following": True}
