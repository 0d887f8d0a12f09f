"""The web client's events and notifications, in Chromium: a host schedules a room, a follower
asks to be notified, the host starts it, and the follower's notification (this browser's push
outbox on the local stack) has a Join button that takes them into the room."""

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
_numbers = itertools.count(7600)


@pytest.fixture(scope="module")
def api(stack: dict[str, Any]) -> HttpClient:
    return HttpClient(stack["rest"], validate=False)


def member(api: HttpClient, username: str) -> dict[str, Any]:
    answer = member_of_their_own(api, f"+1415555{next(_numbers):04d}", username)
    return {k: answer[k] for k in ("access_token", "refresh_token", "user")}


@pytest.fixture
def open_page(browser: Any, stack: dict[str, Any], artifacts: Path) -> Iterator[Any]:
    contexts: list[Any] = []
    pages: list[Page] = []

    def open_(session: dict[str, Any], hash_: str) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 860})
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
            page.screenshot(path=artifacts / f"events-{index}.png", full_page=True)
    for context in contexts:
        context.close()


def test_a_follower_is_notified_when_the_event_starts_and_joins_from_it(
    api: HttpClient, open_page: Any
) -> None:
    host, fan = member(api, "web_host"), member(api, "web_fan")
    followed = api.put(f"/users/{host['user']['user_id']}/follow", token=fan["access_token"])
    assert followed.status == 200

    hosting = open_page(host, "#events")
    hosting.get_by_label("Title", exact=True).fill("Listening party")
    hosting.get_by_role("button", name="Schedule").click()
    mine = hosting.get_by_role("list", name="Your events")
    expect(mine.get_by_role("heading", name="Listening party")).to_be_visible()

    fan_page = open_page(fan, "#events")
    theirs = fan_page.get_by_role("list", name="Events of people you follow")
    theirs.get_by_role("button", name="Notify me").click()
    expect(theirs.get_by_role("button", name="Going ✓ (undo)")).to_be_visible()

    mine.get_by_role("button", name="Start now").click()
    expect(hosting.get_by_role("button", name="End room")).to_be_visible()
    room_id = hosting.evaluate("salonDebug.room().id")

    notice = fan_page.locator("#toasts .toast", has_text="Starting now: Listening party")
    expect(notice).to_be_visible()
    notice.get_by_role("button", name="Join").click()
    fan_page.wait_for_function("window.salonDebug.room() !== null")
    expect(fan_page.get_by_role("heading", name="Listening party")).to_be_visible()
    assert fan_page.evaluate("salonDebug.room().id") == room_id
    assert fan_page.evaluate("salonDebug.room().viewer.role") == "listener"


def test_notification_settings_are_saved(api: HttpClient, open_page: Any) -> None:
    someone = member(api, "web_quiet")
    page = open_page(someone, "#notifications")
    page.get_by_label("I receive a tip").uncheck()
    page.get_by_label("From", exact=True).fill("22:00")
    page.get_by_label("To", exact=True).fill("07:00")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    settings = api.get("/me/notification-settings", someone["access_token"]).body
    assert settings["receive"]["tip"] is False
    assert settings["quiet_hours"] == {"from": "22:00", "to": "07:00"}
