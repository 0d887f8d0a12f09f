"""A live room of three people in real browsers, for the audio tests and the media bench.

Each person has their own Chromium context on the reference web client (`web/`) served by the
local stack, with Chromium's fake microphone. What a page hears and sends is read from its
RTCPeerConnection.getStats() through `salonDebug`; what the SFU itself holds, from Janus's admin
API. `tests/browser/test_audio.py` asserts on it; `bench/media_timing.py` times it.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from local.janus import JanusConfig
from tests.support.browser import TIMEOUT_MS
from tests.support.stack import JANUS_SECRETS

FOUNDER = "+14155550100"
LISTENER = "+14155557001"
TIPPER = "+14155557002"
ROOM_TITLE = "Late night jazz"


@dataclass
class Person:
    page: Page
    username: str
    user_id: str = ""
    errors: list[str] = field(default_factory=list)


def wait_until(check: Callable[[], Any], timeout: float = 15.0, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


NOTHING = {
    "inbound_bytes": 0,
    "outbound_bytes": 0,
    "state": None,
    "remote": None,
    "local": None,
    "handle": None,
}
JANUS_RTP_PORTS = JanusConfig().rtp_ports  # where Janus's media ports are


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        result: dict[str, Any] = json.load(reply)
    return result


def audio(person: Person, peer: Person) -> dict[str, Any]:
    """What person's page reports (getStats, through salonDebug): what it hears from `peer`
    through the SFU, or, for `peer` itself, what it sends."""
    if peer is person:
        return person.page.evaluate("salonDebug.sending()") or NOTHING
    stats: dict[str, Any] = person.page.evaluate("salonDebug.audio()")
    return stats.get(peer.user_id) or NOTHING


def grows(person: Person, peer: Person, key: str, timeout: float = 15.0) -> bool:
    """The byte count keeps going up: two rises in a row, half a second apart."""
    deadline = time.monotonic() + timeout
    rises, last = 0, audio(person, peer)[key]
    while time.monotonic() < deadline and rises < 2:
        time.sleep(0.5)
        now = audio(person, peer)[key]
        rises = rises + 1 if now > last else 0
        last = now
    return rises >= 2


def settles(person: Person, peer: Person, key: str, timeout: float = 10.0) -> bool:
    """The byte count stops: unchanged over a whole second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = audio(person, peer)[key]
        time.sleep(1.0)
        if audio(person, peer)[key] == before:
            return True
    return False


def code_from_outbox(page: Page) -> None:
    page.get_by_role("button", name="Get the code from the local SMS outbox").click()
    expect(page.get_by_label("Code")).to_have_value(re.compile(r"^\d{6}$"))


def sign_in(person: Person, url: str, phone: str, name: str | None = None) -> None:
    page = person.page
    page.goto(url)
    page.get_by_label("Phone number").fill(phone)
    page.get_by_role("button", name="Text me a code").click()
    code_from_outbox(page)
    page.get_by_role("button", name="Sign in").click()
    if name is not None:  # an invited number: pick a name and a username
        page.get_by_label("Your name").fill(name)
        page.get_by_label("Username").fill(person.username)
        page.get_by_role("button", name="Join Salon").click()
    expect(page.get_by_role("heading", name="Hallway")).to_be_visible()
    person.user_id = page.evaluate("salonDebug.me()")


def invite(founder: Person, phone: str) -> None:
    page = founder.page
    page.get_by_role("link", name="Invite").click()
    page.get_by_label("Their phone number").fill(phone)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_text(re.compile(r"^Invited \+"))).to_be_visible()


def join_from_hallway(person: Person, artifacts: Path | None = None) -> None:
    page = person.page
    page.get_by_role("link", name="Hallway").click()
    join = page.get_by_role("button", name=f"Join {ROOM_TITLE}")
    expect(join).to_be_visible(timeout=TIMEOUT_MS)  # the hallway refreshes every few seconds
    if artifacts is not None:
        page.screenshot(path=artifacts / "hallway.png", full_page=True)
    join.click()
    expect(page.get_by_role("heading", name=ROOM_TITLE)).to_be_visible()


def stage_card(page: Page, person: Person) -> Any:
    return page.locator(f'#room-stage li[data-username="{person.username}"]')


def audience_card(page: Page, person: Person) -> Any:
    page.get_by_role("button", name="Refresh the audience").click()
    return page.locator(f'#room-audience li[data-username="{person.username}"]')


def in_the_room(person: Person) -> None:
    page = person.page
    # Wait for the page to settle (after a reload it resumes the room it was in).
    expect(
        page.locator("#room-controls")
        .or_(page.get_by_role("link", name="Back to the room"))
        .or_(page.get_by_role("button", name=f"Join {ROOM_TITLE}"))
        .first
    ).to_be_visible()
    back = person.page.get_by_role("link", name="Back to the room")
    if back.is_visible():
        back.click()
    elif not person.page.locator("#room-controls").is_visible():
        join_from_hallway(person)
    expect(person.page.get_by_role("heading", name=ROOM_TITLE)).to_be_visible()


@contextlib.contextmanager
def three_people(browser: Any, artifacts: Path | None = None) -> Iterator[dict[str, Person]]:
    """The founder, a listener and a tipper, each a page of their own browser context; each
    page's last state saved as a screenshot in `artifacts` at the end."""
    contexts, people = [], {}
    for username in ("founder", "listener", "tipper"):
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        person = Person(context.new_page(), username)
        person.page.on("pageerror", lambda error, p=person: p.errors.append(str(error)))
        person.page.on("dialog", lambda dialog: dialog.accept())  # "Remove …?", "End the room?"
        people[username] = person
    try:
        yield people
    finally:
        for name, person in people.items():
            if artifacts is not None:
                with contextlib.suppress(Exception):  # a crashed page has nothing to show
                    person.page.screenshot(path=artifacts / f"last-{name}.png", full_page=True)
        for context in contexts:
            context.close()


def open_live_room(stack: dict[str, Any], people: dict[str, Person]) -> dict[str, Person]:
    """The founder sets up payouts, invites two friends and opens a room; the friends join
    Salon (not the room yet)."""
    url = stack["web"]
    founder, listener, tipper = people["founder"], people["listener"], people["tipper"]
    sign_in(founder, url, FOUNDER)

    # Payouts through the Stripe emulator's onboarding page, then the Send Money switch.
    page = founder.page
    page.get_by_role("link", name="Earnings").click()
    page.get_by_role("button", name="Set up payouts").click()
    page.get_by_role("button", name="Finish onboarding").click()
    switch = page.get_by_role("switch", name="Send Money")
    expect(switch).to_be_visible()
    switch.check()
    expect(page.get_by_text("Send Money is on")).to_be_visible()

    invite(founder, LISTENER)
    invite(founder, TIPPER)
    sign_in(listener, url, LISTENER, name="Lee Listener")
    sign_in(tipper, url, TIPPER, name="Tia Tipper")

    page.get_by_role("link", name="Hallway").click()
    page.get_by_label("Title", exact=True).fill(ROOM_TITLE)
    page.get_by_role("button", name="Start room").click()
    expect(page.get_by_role("heading", name=ROOM_TITLE)).to_be_visible()
    return people


def in_sfu_range(port: int) -> bool:
    low, high = JANUS_RTP_PORTS
    return low <= port <= high


def on_stage_and_live(founder: Person, speaker: Person) -> None:
    """The founder invites `speaker` from the audience; they accept and unmute."""
    in_the_room(speaker)
    audience_card(founder.page, speaker).get_by_role("button", name="Invite to speak").click()
    speaker.page.get_by_role("button", name="Accept").click()
    speaker.page.locator("#room-controls").get_by_role("button", name="Unmute").click()
    expect(speaker.page.get_by_text("You are live.")).to_be_visible()


def last_rise(listeners: Sequence[Person], peer: Person, seconds: float) -> float | None:
    """Sample what each of `listeners` hears from `peer` every 50 ms for `seconds`: when it
    last grew on any of them (monotonic time), or None if it never did."""
    deadline = time.monotonic() + seconds
    last = {p.username: audio(p, peer)["inbound_bytes"] for p in listeners}
    rose_at = None
    while time.monotonic() < deadline:
        time.sleep(0.05)
        for person in listeners:
            now = audio(person, peer)["inbound_bytes"]
            if now > last[person.username]:
                rose_at = time.monotonic()
            last[person.username] = now
    return rose_at


def heard_afresh(listener: Person, speaker: Person, before: Any, timeout: float = 15.0) -> Any:
    """When (monotonic time) `listener` hears `speaker` through a subscription other than
    `before` (its handle then, or None), sampled every 50 ms; False if not within `timeout`."""
    return wait_until(
        lambda: (
            (now := audio(listener, speaker))["handle"] not in (None, before)
            and now["inbound_bytes"] > 0
            and time.monotonic()
        ),
        timeout=timeout,
        every=0.05,
    )


def janus_participants(stack: dict[str, Any], room_id: str) -> set[str]:
    """Who Janus itself has in the room (its admin API, with the secret the stack was given)."""
    reply = post_json(
        stack["janus_admin"],
        {
            "janus": "message_plugin",
            "transaction": "test",
            "admin_secret": JANUS_SECRETS["SALON_JANUS_ADMIN_SECRET"],
            "plugin": "janus.plugin.videoroom",
            "request": {"request": "listparticipants", "room": room_id},
        },
    )
    return {p["id"] for p in reply["response"].get("participants", [])}


def in_the_audience(founder: Person, member: Person) -> None:
    """`member` is in the room as a listener: moved back from the stage if they were on it."""
    in_the_room(member)
    if not member.page.get_by_role("button", name="Raise hand").is_visible():
        stage_card(founder.page, member).get_by_role("button", name="Move to audience").click()
    expect(member.page.get_by_role("button", name="Raise hand")).to_be_visible()


def room_of(person: Person) -> str:
    value: str = person.page.evaluate("salonDebug.room().id")
    return value


# What a page does about one speaker's audio, in order: 'live' for each media_live the room
# sends it, 'subscribe' for each media_subscribe it asks Salon for (window.mediaLog).
WATCH_MEDIA = """userId => {
  window.mediaLog = [];
  const media = salonDebug.media, realtime = salonDebug.realtime;
  const onLive = media.onLive.bind(media);
  media.onLive = (id) => {
    if (id === userId) window.mediaLog.push('live');
    return onLive(id);
  };
  const send = realtime.send.bind(realtime);
  realtime.send = (type, body) => {
    const asked = type === 'media_subscribe' && body && body.user_id === userId;
    if (asked) window.mediaLog.push('subscribe');
    return send(type, body);
  };
}"""


def watch_media(person: Person, speaker: Person) -> None:
    person.page.evaluate(WATCH_MEDIA, speaker.user_id)


def media_log(person: Person) -> list[str]:
    log: list[str] = person.page.evaluate("window.mediaLog")
    return log
