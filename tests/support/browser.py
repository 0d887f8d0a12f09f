"""What the browser tests share: members made through the REST API (one phone-number range for
every module on the shared stack), their sessions as the client keeps them, and the room steps."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.support.http import HttpClient, member_of_their_own

TIMEOUT_MS = 15_000
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",  # without it: no ICE candidate on a loopback-only host
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-background-networking",
]


def only_loopback() -> bool:
    """Whether loopback is this network namespace's one interface (where browsers may run)."""
    return {name for _, name in socket.if_nameindex()} == {"lo"}


def chromium_path() -> str | None:
    """Debian's Chromium (the project's setup installs it), never Playwright's download."""
    return next((c for c in CHROMIUM_CANDIDATES if os.access(c, os.X_OK)), None)


@contextlib.contextmanager
def headless_chromium(scratch: Path) -> Iterator[Any]:
    """Chromium under Playwright, headless, its scratch folders in `scratch`, closed at the end."""
    from playwright.sync_api import sync_playwright

    os.environ["TMPDIR"] = str(scratch)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


_numbers = itertools.count(7100)
# Whatever sticks out past the viewport's right edge (what makes a phone scroll sideways).
OVERFLOW = """() => {
  const width = window.innerWidth;
  const out = [];
  const whole = document.documentElement.scrollWidth;
  if (whole > width) out.push('document ' + whole);
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 0.5) {
      out.push(`${el.tagName}#${el.id}.${el.className} ${Math.round(box.right)}`);
    }
  }
  return out;
}"""


@dataclass
class Member:
    user_id: str
    username: str
    name: str
    session: dict[str, Any]

    @property
    def token(self) -> str:
        return str(self.session["access_token"])


def session_of(answer: dict[str, Any]) -> dict[str, Any]:
    keys = ("access_token", "refresh_token", "user")
    return {k: answer[k] for k in keys}


def new_member(api: HttpClient, founder: Member, username: str, name: str) -> Member:
    phone = f"+1415555{next(_numbers):04d}"
    assert api.post("/invites", {"phone": phone}, founder.token).status == 201
    answer = api.sign_in(phone)
    joined = api.post(
        "/auth/sign-up",
        {"sign_up_token": answer["sign_up_token"], "name": name, "username": username},
    )
    assert joined.status == 201, joined.body
    return Member(joined.body["user"]["user_id"], username, name, session_of(joined.body))


def member_by_operator(api: HttpClient, username: str) -> Member:
    """A member the operators' founder function made (no invitation spent), signed in."""
    answer = member_of_their_own(api, f"+1415555{next(_numbers):04d}", username)
    user = answer["user"]
    return Member(user["user_id"], username, user["name"], session_of(answer))


def start_room(page: Page, title: str) -> str:
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_role("button", name="Start room").click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    room_id: str = page.evaluate("salonDebug.room().id")
    return room_id


def join(page: Page, title: str) -> None:
    page.get_by_role("link", name="Hallway").click()
    page.get_by_role("button", name=f"Join {title}").click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()


def no_overflow(page: Page) -> None:
    assert page.evaluate(OVERFLOW) == [], "something sticks out past the right edge"
