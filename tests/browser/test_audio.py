"""Proof in real browsers that Salon's signaling makes audio flow, and that tips reach creators.

Three people, each in their own browser context, use the reference web client (`web/`) served
by the local stack, with Chromium's fake microphone:

1. a moderator (the founder) and a listener: the listener raises a hand, the moderator invites
   them, they accept and both unmute; each page's RTCPeerConnection.getStats() then shows
   inbound audio bytes growing from the other. When the moderator moves the listener back to
   the audience, the listener's outbound audio stops (and they still hear the moderator).
   A speaker whose modified page ignores its demotion is cut off by the SFU itself; a listener
   cannot publish even so; a speaker who reloads is heard again through a fresh subscription.
2. a third person tips the creator (the moderator) with a card through the Stripe emulator, and
   the creator's page shows the notice.

Screenshots of the hallway, the live room and the earnings page go to test-artifacts/browser/.
No test asserts how fast: bench/media_timing.py times the cut-off and the reload in the same
setting (`make bench-media`), and docs/benchmarks.md has the medians.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.live_audio import (
    NOTHING,
    ROOM_TITLE,
    Person,
    audience_card,
    audio,
    grows,
    heard_afresh,
    in_sfu_range,
    in_the_audience,
    in_the_room,
    janus_participants,
    join_from_hallway,
    last_rise,
    media_log,
    on_stage_and_live,
    open_live_room,
    room_of,
    settles,
    stage_card,
    three_people,
    wait_until,
    watch_media,
)


@pytest.fixture(scope="module")
def people(browser: Any, artifacts: Path) -> Iterator[dict[str, Person]]:
    with three_people(browser, artifacts) as people:
        yield people


@pytest.fixture(scope="module")
def live_room(stack: dict[str, Any], people: dict[str, Person]) -> dict[str, Person]:
    """The founder set up payouts, invited two friends and opened a room; the friends joined
    Salon (not the room yet)."""
    return open_live_room(stack, people)


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


def test_a_demoted_speaker_whose_client_ignores_it_is_cut_off_at_the_sfu(
    live_room: dict[str, Person], stack: dict[str, Any]
) -> None:
    """How soon the audio stops is measured by bench/media_timing.py, not asserted here."""
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
    room = room_of(founder)

    for demotion in ("Mute", "Move to audience"):
        if demotion == "Move to audience":  # unmuted again first, to be demoted the other way
            listener.page.evaluate("salonDebug.media.publisher = null")
            listener.page.locator("#room-controls").get_by_role("button", name="Unmute").click()
            expect(listener.page.get_by_text("You are live.")).to_be_visible()
            for page in (founder, tipper):
                assert wait_until(lambda p=page: grows(p, listener, "inbound_bytes")), demotion
        assert listener.user_id in janus_participants(stack, room), demotion
        stage_card(founder.page, listener).get_by_role("button", name=demotion, exact=True).click()
        # Salon hangs the speaker's publisher up at the SFU: Janus no longer has them...
        assert wait_until(
            lambda: listener.user_id not in janus_participants(stack, room), every=0.05
        ), demotion
        # ...while the page still holds its connection: it never closed it by itself.
        assert listener.page.evaluate("salonDebug.media.publisher !== null"), demotion
        # Every other page's audio from them stops, and stays stopped.
        for person in (founder, tipper):
            assert settles(person, listener, "inbound_bytes"), (demotion, person.username)
        assert last_rise((founder, tipper), listener, 1.5) is None, demotion
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
    participants = janus_participants(stack, room_of(founder))
    assert tipper.user_id not in participants, participants
    asked = founder.page.evaluate(
        "id => realtime.send('media_subscribe', {user_id: id}).then(() => 'ok', e => e.code)",
        tipper.user_id,
    )
    assert asked == "not_publishing"


def test_a_speaker_who_reloads_is_heard_again_through_a_fresh_subscription(
    live_room: dict[str, Person],
) -> None:
    """The speaker's new page announces its audio (media_live) and every other page subscribes
    afresh at once, instead of waiting for the old connection to time out. How soon is measured
    by bench/media_timing.py, not asserted here."""
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
    watch_media(founder, listener)
    before = audio(founder, listener)["handle"]
    listener.page.reload()
    # Heard again: a new subscription (the old one went with the old page) brings audio.
    assert heard_afresh(founder, listener, before), audio(founder, listener)
    assert grows(founder, listener, "inbound_bytes"), audio(founder, listener)
    assert founder.page.evaluate("window.sawReconnecting")
    # One announcement, one request: the founder's page asked for the speaker's audio once,
    # when the new page said it was live (never on its own, before there was audio to hear).
    assert media_log(founder) == ["live", "subscribe"], media_log(founder)


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
    in_the_audience(founder, listener)  # whatever the earlier tests left

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
    asked = tipper.page.evaluate(
        "id => realtime.send('join_room', {room_id: id}).then(() => 'joined', e => e.code)",
        room_of(founder),
    )
    assert asked == "removed_from_room"

    # The founder ends the room for everyone.
    founder.page.get_by_role("button", name="End room").click()
    expect(founder.page.get_by_text("You ended the room.")).to_be_visible()
    expect(listener.page.get_by_text("A moderator ended the room.")).to_be_visible()
    expect(listener.page.get_by_role("heading", name="Hallway")).to_be_visible()
    errors = founder.errors + listener.errors + tipper.errors
    assert not errors, errors
