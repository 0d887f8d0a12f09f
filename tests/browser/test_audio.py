"""Proof in real browsers that Salon's signaling makes audio flow, and that tips reach creators.

Three people, each in their own browser context, use the reference web client (`web/`) served
by the local stack, with Chromium's fake microphone:

1. a moderator (the founder) and a listener: the listener raises a hand, the moderator invites
   them, they accept and both unmute; each page's RTCPeerConnection.getStats() then shows
   inbound audio bytes growing from the other. When the moderator moves the listener back to
   the audience, the listener's outbound audio stops (and they still hear the moderator).
2. a third person tips the creator (the moderator) with a card through the Stripe emulator, and
   the creator's page shows the notice.

Screenshots of the hallway, the live room and the earnings page go to test-artifacts/browser/.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from local.janus import JanusConfig
from tests.support.stack import JANUS_SECRETS

FOUNDER = "+14155550100"
LISTENER = "+14155557001"
TIPPER = "+14155557002"
ROOM_TITLE = "Late night jazz"
TIMEOUT_MS = 15_000


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


@pytest.fixture(scope="module")
def people(browser: Any, stack: dict[str, Any], artifacts: Path) -> Iterator[dict[str, Person]]:
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
            with contextlib.suppress(Exception):  # a crashed page has nothing to show
                person.page.screenshot(path=artifacts / f"last-{name}.png", full_page=True)
        for context in contexts:
            context.close()


@pytest.fixture(scope="module")
def live_room(stack: dict[str, Any], people: dict[str, Person]) -> dict[str, Person]:
    """The founder set up payouts, invited two friends and opened a room; the friends joined
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


def test_a_listener_invited_to_speak_is_heard_and_stops_sending_when_moved_back(
    live_room: dict[str, Person], artifacts: Path
) -> None:
    founder, listener = live_room["founder"], live_room["listener"]
    join_from_hallway(listener, artifacts)

    # The listener raises a hand; the moderator sees it and invites them; they accept.
    listener.page.get_by_role("button", name="Raise hand").click()
    hand = founder.page.locator(f'#room-hands li[data-username="{listener.username}"]')
    hand.get_by_role("button", name="Invite to speak").click()
    listener.page.get_by_role("button", name="Accept").click()
    expect(stage_card(founder.page, listener)).to_be_visible()
    expect(stage_card(listener.page, listener)).to_be_visible()

    # Everyone comes on stage muted: both unmute (the fake microphone starts).
    for person in (founder, listener):
        person.page.locator("#room-controls").get_by_role("button", name="Unmute").click()
        expect(person.page.get_by_text("You are live.")).to_be_visible()

    assert grows(founder, listener, "inbound_bytes"), audio(founder, listener)
    assert grows(listener, founder, "inbound_bytes"), audio(listener, founder)
    founder.page.screenshot(path=artifacts / "room.png", full_page=True)

    # Both hear each other through the SFU, not browser to browser: the far end of each
    # page's connection is a port of Janus's media range, never one of the other page's own.
    for person, peer in ((founder, listener), (listener, founder)):
        heard, sent_by_peer = audio(person, peer), audio(peer, peer)
        assert heard["remote"] and in_sfu_range(heard["remote"]["port"]), heard
        assert heard["remote"]["port"] != (sent_by_peer["local"] or {}).get("port"), heard
        assert in_sfu_range(sent_by_peer["remote"]["port"]), sent_by_peer

    # Back to the audience: the listener stops sending; they still hear the stage.
    stage_card(founder.page, listener).get_by_role("button", name="Move to audience").click()
    expect(listener.page.get_by_role("button", name="Raise hand")).to_be_visible()
    assert wait_until(lambda: audio(listener, listener) == NOTHING), audio(listener, listener)
    assert wait_until(lambda: listener.user_id not in founder.page.evaluate("salonDebug.audio()"))
    assert grows(listener, founder, "inbound_bytes"), audio(listener, founder)
    assert not founder.errors and not listener.errors, founder.errors + listener.errors


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


def last_rise(person: Person, peer: Person, seconds: float) -> float | None:
    """Sample what `person` hears from `peer` every 50 ms for `seconds`: when it last grew
    (monotonic time), or None if it never did."""
    deadline = time.monotonic() + seconds
    last, rose_at = audio(person, peer)["inbound_bytes"], None
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = audio(person, peer)["inbound_bytes"]
        if now > last:
            rose_at = time.monotonic()
        last = now
    return rose_at


def test_a_demoted_speaker_whose_client_ignores_it_is_cut_off_at_the_sfu_within_a_second(
    live_room: dict[str, Person],
) -> None:
    founder, listener, tipper = live_room["founder"], live_room["listener"], live_room["tipper"]
    in_the_room(tipper)
    on_stage_and_live(founder, listener)
    for page in (founder, tipper):
        assert grows(page, listener, "inbound_bytes"), audio(page, listener)

    # A modified client: the speaker's page ignores every demotion and keeps sending, and the
    # others keep their connections from it open (only the SFU can stop the audio now).
    listener.page.evaluate("salonDebug.media.stopPublishing = () => {}")
    for person in (founder, tipper):
        person.page.evaluate("salonDebug.media.unsubscribe = () => {}")

    for demotion in ("Mute", "Move to audience"):
        if demotion == "Move to audience":  # unmuted again first, to be demoted the other way
            listener.page.evaluate("salonDebug.media.publisher = null")
            listener.page.locator("#room-controls").get_by_role("button", name="Unmute").click()
            expect(listener.page.get_by_text("You are live.")).to_be_visible()
            for page in (founder, tipper):
                assert wait_until(lambda p=page: grows(p, listener, "inbound_bytes")), demotion
        stage_card(founder.page, listener).get_by_role("button", name=demotion, exact=True).click()
        clicked = time.monotonic()
        for person in (founder, tipper):
            rose_at = last_rise(person, listener, 2.5)
            assert rose_at is None or rose_at - clicked <= 1.0, (demotion, rose_at - clicked)
        # The page did keep trying: its connection to the SFU was never closed by itself.
        assert listener.page.evaluate("salonDebug.media.publisher !== null"), demotion
    errors = founder.errors + listener.errors + tipper.errors
    assert not errors, errors


def test_a_listener_cannot_publish_even_with_a_modified_client(
    live_room: dict[str, Person], stack: dict[str, Any]
) -> None:
    founder, tipper = live_room["founder"], live_room["tipper"]
    in_the_room(tipper)
    # The tipper is a listener: its page asks to publish anyway, with a real offer.
    refused = tipper.page.evaluate(
        """async () => {
          const pc = new RTCPeerConnection();
          pc.addTransceiver(await salonDebug.media.microphone(), {direction: 'sendonly'});
          await pc.setLocalDescription(await pc.createOffer());
          try {
            await realtime.send('media_publish', {sdp: pc.localDescription.sdp});
            return 'published';
          } catch (error) {
            return error.code;
          } finally {
            pc.close();
          }
        }"""
    )
    assert refused == "not_allowed_to_publish"
    # Nothing of theirs reached the SFU: Janus has no such participant in the room.
    room_id = founder.page.evaluate("salonDebug.room().id")
    participants = janus_participants(stack, room_id)
    assert tipper.user_id not in participants, participants
    asked = founder.page.evaluate(
        "id => realtime.send('media_subscribe', {user_id: id}).then(() => 'ok', e => e.code)",
        tipper.user_id,
    )
    assert asked == "not_publishing"


def janus_participants(stack: dict[str, Any], room_id: str) -> set[str]:
    """Who Janus itself has in the room (its admin API, with the secret the test gave)."""
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


def test_a_speaker_who_reloads_is_heard_again_within_three_seconds(
    live_room: dict[str, Person],
) -> None:
    founder, listener = live_room["founder"], live_room["listener"]
    in_the_room(founder)
    listener.page.reload()  # a fresh page, rid of the earlier test's modifications
    in_the_room(listener)
    if listener.page.get_by_role("button", name="Raise hand").is_visible():
        on_stage_and_live(founder, listener)
    founder.page.reload()
    in_the_room(founder)
    assert grows(founder, listener, "inbound_bytes"), audio(founder, listener)
    # Watch the founder's card of the speaker: it must say they are reconnecting meanwhile.
    founder.page.evaluate(
        """username => {
          window.sawReconnecting = false;
          new MutationObserver(() => {
            const card = document.querySelector(`#room-stage li[data-username="${username}"]`);
            if (card && /connecting/.test(card.textContent)) window.sawReconnecting = true;
          }).observe(document.body, {subtree: true, childList: true, characterData: true});
        }""",
        listener.username,
    )
    before = audio(founder, listener)["handle"]
    started = time.monotonic()
    listener.page.reload()
    # Heard again: a new subscription (the old one went with the old page) brings audio.
    heard_at = wait_until(
        lambda: (
            (now := audio(founder, listener))["handle"] not in (None, before)
            and now["inbound_bytes"] > 0
            and time.monotonic()
        ),
        timeout=10,
        every=0.05,
    )
    assert heard_at, audio(founder, listener)
    print(f"reload: heard again after {heard_at - started:.2f} s")
    assert heard_at - started <= 3.0, heard_at - started
    assert grows(founder, listener, "inbound_bytes"), audio(founder, listener)
    assert founder.page.evaluate("window.sawReconnecting")
    # Back to the audience, as the next tests expect.
    stage_card(founder.page, listener).get_by_role("button", name="Move to audience").click()
    expect(listener.page.get_by_role("button", name="Raise hand")).to_be_visible()


def test_a_third_page_tips_the_creator_who_sees_the_notice(
    live_room: dict[str, Person], artifacts: Path
) -> None:
    founder, tipper = live_room["founder"], live_room["tipper"]
    in_the_room(tipper)
    page = tipper.page
    stage_card(page, founder).get_by_role("button", name="Send money").click()

    # Send Money is in beta: on the local stack the client offers to join it.
    dialog = page.locator("#money-dialog")
    expect(dialog.get_by_text("Send Money is in beta")).to_be_visible()
    dialog.get_by_role("button", name="Join the Send Money beta (local stack)").click()
    expect(dialog.get_by_text("You pay $5.46")).to_be_visible()
    dialog.get_by_role("button", name="Send", exact=True).click()
    # The first tip asks for a card (a Stripe test card is filled in), confirmed with Stripe.
    dialog.get_by_role("button", name="Pay $5.46").click()
    expect(dialog.get_by_text("Sent!")).to_be_visible()

    notice = founder.page.locator("#toasts").get_by_text("Tia Tipper sent you $5.00")
    expect(notice).to_be_visible()
    expect(founder.page.locator("#room-notices").get_by_text("sent you $5.00")).to_be_visible()

    founder.page.get_by_role("link", name="Earnings").click()
    expect(founder.page.locator("#earnings-total")).to_have_text("$5.00")
    expect(founder.page.get_by_role("link", name="Back to the room")).to_be_visible()
    founder.page.screenshot(path=artifacts / "earnings.png", full_page=True)
    assert not founder.errors and not tipper.errors, founder.errors + tipper.errors


def test_moderator_controls_mute_promote_remove_and_end(live_room: dict[str, Person]) -> None:
    founder, listener, tipper = live_room["founder"], live_room["listener"], live_room["tipper"]
    for person in (founder, listener, tipper):
        in_the_room(person)

    # Invited from the audience (no hand raised), the listener comes up muted, then is promoted.
    audience_card(founder.page, listener).get_by_role("button", name="Invite to speak").click()
    listener.page.get_by_role("button", name="Accept").click()
    expect(stage_card(founder.page, listener)).to_contain_text("Muted")
    stage_card(founder.page, listener).get_by_role("button", name="Make moderator").click()
    expect(listener.page.get_by_role("button", name="End room")).to_be_visible()

    # The new moderator mutes the founder (only the founder may unmute), and removes the tipper.
    controls = founder.page.locator("#room-controls")
    if controls.get_by_role("button", name="Unmute").is_visible():
        controls.get_by_role("button", name="Unmute").click()
    expect(founder.page.get_by_text("You are live.")).to_be_visible()
    stage_card(listener.page, founder).get_by_role("button", name="Mute").click()
    expect(founder.page.get_by_text("You are muted.")).to_be_visible()
    expect(founder.page.locator("#toasts").get_by_text("Lee Listener muted you.")).to_be_visible()
    audience_card(listener.page, tipper).get_by_role("button", name="Remove").click()
    expect(tipper.page.get_by_text("A moderator removed you from the room.")).to_be_visible()
    # The hallway no longer offers the room to them, and Salon refuses them if they ask anyway.
    expect(tipper.page.get_by_role("heading", name="Hallway")).to_be_visible()
    expect(tipper.page.locator("#view .loading")).to_be_hidden()
    expect(tipper.page.get_by_role("button", name=f"Join {ROOM_TITLE}")).to_have_count(0)
    room_id = founder.page.evaluate("salonDebug.room().id")
    asked = tipper.page.evaluate(
        "id => realtime.send('join_room', {room_id: id}).then(() => 'joined', e => e.code)",
        room_id,
    )
    assert asked == "removed_from_room"

    # The founder ends the room for everyone.
    founder.page.get_by_role("button", name="End room").click()
    expect(founder.page.get_by_text("You ended the room.")).to_be_visible()
    expect(listener.page.get_by_text("A moderator ended the room.")).to_be_visible()
    expect(listener.page.get_by_role("heading", name="Hallway")).to_be_visible()
    errors = founder.errors + listener.errors + tipper.errors
    assert not errors, errors
