"""The web client as a newcomer meets it (issue 16), in Chromium at 390 px and at 1280 px.

Members are made through the REST API (each sign-in spends one of a number's 5 codes an hour),
then each page starts with that member's session in its sessionStorage, as the client keeps it.
Screenshots of the hallway, the room and the earnings at both widths go to
test-artifacts/browser/, and each of those views is checked for horizontal overflow.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Route, expect

from tests.support.browser import Member, join, new_member, no_overflow, session_of, start_room
from tests.support.http import HttpClient, open_link, wait_until

FOUNDER = "+14155550100"
WIDTHS = (390, 1280)


@pytest.fixture(scope="module")
def founder(api: HttpClient) -> Member:
    answer = api.sign_in(FOUNDER)
    user = answer["user"]
    granted = api.post(
        "/_local/admin/admin_grant_invites", {"user_id": user["user_id"], "count": 10}
    )
    assert granted.body["ok"], granted.body
    return Member(user["user_id"], user["username"], user["name"], session_of(answer))


def test_the_nav_is_hidden_while_signed_out(open_page: Any) -> None:
    for width in WIDTHS:
        page = open_page(None, width)
        expect(page.get_by_role("heading", name="Welcome to Salon")).to_be_visible()
        expect(page.locator("#nav")).to_be_hidden()
        expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
        no_overflow(page)


def test_a_listener_sees_their_raised_hand_and_can_lower_it(
    api: HttpClient, founder: Member, open_page: Any
) -> None:
    host = open_page(founder)
    start_room(host, "Hands up")
    lee = new_member(api, founder, "lee_hands", "Lee Hands")
    listener = open_page(lee, 390)
    join(listener, "Hands up")

    listener.get_by_role("button", name="Raise hand").click()
    expect(listener.get_by_role("button", name="Lower hand")).to_be_visible()
    expect(listener.get_by_text("Your hand is up")).to_be_visible()
    hands = host.get_by_role("list", name="Raised hands")
    expect(hands.locator(f'li[data-user-id="{lee.user_id}"]')).to_be_visible()

    listener.get_by_role("button", name="Lower hand").click()
    expect(listener.get_by_role("button", name="Raise hand")).to_be_visible()
    expect(listener.get_by_text("Your hand is up")).to_be_hidden()
    expect(host.get_by_text("No hands up.")).to_be_visible()
    host.get_by_role("button", name="End room").click()


def test_the_moderators_audience_list_fills_without_a_refresh(
    api: HttpClient, founder: Member, open_page: Any, artifacts: Path
) -> None:
    mod = new_member(api, founder, "mo_derator", "Mo Derator")
    ann = new_member(api, founder, "ann_audience", "Ann Audience")
    host = open_page(mod)
    start_room(host, "Who is here")
    join(open_page(ann), "Who is here")
    expect(host.locator("#audience-title")).to_have_text("Audience (1)")
    card = host.locator(f'#room-audience li[data-user-id="{ann.user_id}"]')
    expect(card).to_be_visible()
    expect(card.get_by_role("button", name="Invite to speak")).to_be_visible()
    host.get_by_role("button", name="End room").click()


def test_a_view_waiting_on_salon_shows_it_is_loading(founder: Member, open_page: Any) -> None:
    page = open_page(founder)
    expect(page.get_by_role("heading", name="Hallway")).to_be_visible()
    held: list[Route] = []
    page.route("**/creator/account", lambda route: held.append(route))  # what Earnings asks first
    page.get_by_role("link", name="Earnings").click()
    expect(page.locator("#view .loading")).to_be_visible()
    expect(page.get_by_role("heading", name="Hallway")).to_be_hidden()  # the old view is gone
    for _ in range(100):  # Playwright's sync API runs handlers only inside its own calls
        if held:
            break
        page.wait_for_timeout(100)
    held[0].continue_()
    expect(page.get_by_role("heading", name="Earnings")).to_be_visible()
    expect(page.locator("#view .loading")).to_be_hidden()


def test_the_hallway_does_not_offer_a_room_that_removed_you(
    api: HttpClient, founder: Member, open_page: Any
) -> None:
    mod = new_member(api, founder, "rex_host", "Rex Host")
    pest = new_member(api, founder, "pat_pest", "Pat Pest")
    host = open_page(mod)
    room_id = start_room(host, "No pests")
    page = open_page(pest)
    join(page, "No pests")
    host.get_by_role("button", name="Refresh the audience").click()
    host.locator(f'#room-audience li[data-user-id="{pest.user_id}"]').get_by_role(
        "button", name="Remove"
    ).click()
    expect(page.get_by_text("A moderator removed you from the room.")).to_be_visible()
    expect(page.get_by_role("heading", name="Hallway")).to_be_visible()
    expect(page.locator("#view .loading")).to_be_hidden()
    expect(page.locator("ul.rooms > li").first).to_be_visible()
    assert page.locator(f'li[data-room-id="{room_id}"]').count() == 0
    other = open_page(founder)
    expect(other.locator(f'li[data-room-id="{room_id}"]')).to_be_visible()
    host.get_by_role("button", name="End room").click()


def test_the_tip_minimum_reads_in_dollars(api: HttpClient, founder: Member, open_page: Any) -> None:
    creator = new_member(api, founder, "cleo_creator", "Cleo Creator")
    fan = new_member(api, founder, "finn_fan", "Finn Fan")
    assert api.post("/_local/admin/admin_beta_add", {"user_id": fan.user_id}).body["ok"]
    open_link(api.post("/creator/onboarding", token=creator.token).body["url"], "complete")
    assert wait_until(lambda: api.get("/creator/account", creator.token).body["ready"])
    assert api.put("/creator/send-money", {"enabled": True}, creator.token).status == 200

    page = open_page(fan, 390, f"#user/{creator.user_id}")
    page.get_by_role("button", name="Send money").click()
    page.get_by_label("Amount (USD)").fill("0.5")
    expect(page.locator("#money-status")).to_contain_text("Tips start at $1.00.")
    expect(page.locator("#money-status")).not_to_contain_text("cents")


def test_a_member_edits_their_profile(api: HttpClient, founder: Member, open_page: Any) -> None:
    eve = new_member(api, founder, "eve_editor", "Eve")
    page = open_page(eve, 390, "#me")
    page.get_by_label("Name").fill("Eve Edited")
    page.get_by_label("Bio").fill("Hosts late jazz rooms")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(page.get_by_role("heading", name="Eve Edited")).to_be_visible()
    me = api.get("/me", eve.token).body
    assert (me["name"], me["bio"]) == ("Eve Edited", "Hosts late jazz rooms")
    no_overflow(page)


def test_a_member_blocks_and_unblocks_someone(
    api: HttpClient, founder: Member, open_page: Any
) -> None:
    bea = new_member(api, founder, "bea_blocker", "Bea Blocker")
    troll = new_member(api, founder, "tom_troll", "Tom Troll")
    page = open_page(bea, 390, f"#user/{troll.user_id}")
    page.get_by_role("button", name="Block").click()
    expect(page.get_by_text("You blocked this member.")).to_be_visible()
    expect(page.get_by_role("button", name="Unblock")).to_be_visible()
    refused = api.put(f"/users/{bea.user_id}/follow", token=troll.token)
    assert (refused.status, refused.body["error"]["code"]) == (403, "blocked")

    page.get_by_role("link", name="@bea_blocker").click()
    blocked = page.get_by_role("region", name="Blocked members")
    expect(blocked.get_by_text("Tom Troll")).to_be_visible()
    blocked.get_by_role("button", name="Unblock").click()
    expect(blocked.get_by_text("You have not blocked anyone.")).to_be_visible()
    assert api.put(f"/users/{bea.user_id}/follow", token=troll.token).status == 200


def test_a_dropped_connection_shows_reconnecting_then_the_room_again(
    api: HttpClient, founder: Member, open_page: Any
) -> None:
    rae = new_member(api, founder, "rae_reconnect", "Rae Reconnect")
    page = open_page(rae, 390)
    room_id = start_room(page, "Flaky wifi")
    page.evaluate("salonDebug.realtime.ws.close(4000)")
    banner = page.locator("#connection")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Reconnecting")
    expect(banner).to_be_hidden()
    assert page.evaluate("salonDebug.room().id") == room_id
    expect(page.get_by_role("heading", name="Flaky wifi")).to_be_visible()
    # The seat is taken back on the new connection, not only kept on the page: a hand raised
    # after the reconnection reaches this moderator, which only a rejoined socket hears.
    ray = new_member(api, founder, "ray_reconnect", "Ray Reconnect")
    listener = open_page(ray, 390)
    join(listener, "Flaky wifi")
    listener.get_by_role("button", name="Raise hand").click()
    hands = page.get_by_role("list", name="Raised hands")
    expect(hands.locator(f'li[data-user-id="{ray.user_id}"]')).to_be_visible()
    page.get_by_role("button", name="End room").click()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_hallway_the_room_and_earnings_fit_the_screen(
    api: HttpClient, founder: Member, open_page: Any, artifacts: Path, width: int
) -> None:
    host_member = new_member(api, founder, f"wide_host_{width}", "Wilhelmina Longname-Hostess")
    guest = new_member(api, founder, f"wide_guest_{width}", "Gus Guest")
    host = open_page(host_member, width)
    title = f"A rather long room title about late night jazz at {width} px"
    start_room(host, title)
    page = open_page(guest, width)
    page.get_by_role("link", name="Hallway").click()
    expect(page.get_by_role("button", name=f"Join {title}")).to_be_visible()
    no_overflow(page)
    page.screenshot(path=artifacts / f"hallway-{width}.png", full_page=True)

    page.get_by_role("button", name=f"Join {title}").click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(host.locator(f'#room-audience li[data-user-id="{guest.user_id}"]')).to_be_visible()
    for who, shot in ((page, "room"), (host, "room-moderator")):
        no_overflow(who)
        who.screenshot(path=artifacts / f"{shot}-{width}.png", full_page=True)

    host.get_by_role("link", name="Earnings").click()
    expect(host.get_by_role("heading", name="You earned")).to_be_visible()
    expect(host.locator("#view .loading")).to_be_hidden()
    no_overflow(host)
    host.screenshot(path=artifacts / f"earnings-{width}.png", full_page=True)
    assert re.match(r"^\$", host.locator("#earnings-total").inner_text())


def png(width: int = 8, height: int = 8) -> bytes:
    """A small valid PNG: a solid green square."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\0" + b"\x4b\x6e\x3a" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_a_member_uploads_a_photo_that_shows_on_their_profile_the_stage_and_the_hallway(
    api: HttpClient, founder: Member, open_page: Any, artifacts: Path
) -> None:
    pia = new_member(api, founder, "pia_photo", "Pia Photo")
    page = open_page(pia, 390, "#me")
    page.get_by_label("Photo", exact=True).set_input_files(
        files=[{"name": "me.png", "mimeType": "image/png", "buffer": png()}]
    )
    page.get_by_role("button", name="Upload photo").click()
    photo = page.locator("section.card .avatar img")
    expect(photo).to_be_visible()
    url = api.get("/me", pia.token).body["photo_url"]
    assert url.startswith("http://127.0.0.1:") and "/photos/" in url
    assert photo.get_attribute("src") == url
    loaded = "(img) => img.complete && img.naturalWidth === 8"  # the very image, decoded
    page.wait_for_function(loaded, arg=photo.element_handle())
    expect(page.get_by_role("button", name="Remove photo")).to_be_visible()

    page.get_by_role("link", name="Hallway").click()
    start_room(page, "Pia's room")
    expect(
        page.locator(f'#room-stage li[data-user-id="{pia.user_id}"] .avatar img')
    ).to_have_attribute("src", url)
    page.screenshot(path=artifacts / "room-photo-390.png", full_page=True)
    guest = open_page(founder, 390)
    card = guest.locator("ul.rooms li", has_text="Pia's room")
    expect(card.locator(".faces img")).to_have_attribute("src", url)
    page.get_by_role("button", name="End room").click()

    # A file S3's form refuses (a type the form did not name) changes nothing.
    page.get_by_role("link", name="@pia_photo").click()
    page.get_by_label("Photo", exact=True).set_input_files(
        files=[{"name": "me.gif", "mimeType": "image/gif", "buffer": b"GIF89a"}]
    )
    page.get_by_role("button", name="Upload photo").click()
    expect(page.get_by_text("Something in that request is not right.")).to_be_visible()
    assert api.get("/me", pia.token).body["photo_url"] == url

    # Nor does one over the size cap (the page says so before S3 would refuse it).
    page.get_by_label("Photo", exact=True).set_input_files(
        files=[{"name": "big.png", "mimeType": "image/png", "buffer": b"\0" * (5 * 2**20 + 1)}]
    )
    page.get_by_role("button", name="Upload photo").click()
    expect(page.get_by_text("Photos are JPEG, PNG or WebP images of at most 5 MB.")).to_be_visible()
    assert api.get("/me", pia.token).body["photo_url"] == url

    page.get_by_role("button", name="Remove photo").click()
    expect(page.locator("section.card .avatar img")).to_have_count(0)
    assert api.get("/me", pia.token).body["photo_url"] == ""
