"""The web client's events and notifications, in Chromium: a host schedules a room, a follower
asks to be notified, the host starts it, and the follower's notification (this browser's push
outbox on the local stack) has a Join button that takes them into the room."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.support.browser import member_by_operator
from tests.support.http import HttpClient


def test_a_follower_is_notified_when_the_event_starts_and_joins_from_it(
    api: HttpClient, open_page: Any
) -> None:
    host, fan = member_by_operator(api, "web_host"), member_by_operator(api, "web_fan")
    followed = api.put(f"/users/{host.user_id}/follow", token=fan.token)
    assert followed.status == 200

    hosting = open_page(host, hash_="#events")
    hosting.get_by_label("Title", exact=True).fill("Listening party")
    hosting.get_by_role("button", name="Schedule").click()
    mine = hosting.get_by_role("list", name="Your events")
    expect(mine.get_by_role("heading", name="Listening party")).to_be_visible()

    fan_page = open_page(fan, hash_="#events")
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
    someone = member_by_operator(api, "web_quiet")
    page = open_page(someone, hash_="#notifications")
    page.get_by_label("I receive a tip").uncheck()
    page.get_by_label("From", exact=True).fill("22:00")
    page.get_by_label("To", exact=True).fill("07:00")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    settings = api.get("/me/notification-settings", someone.token).body
    assert settings["receive"]["tip"] is False
    assert settings["quiet_hours"] == {"from": "22:00", "to": "07:00"}


def test_a_club_admin_schedules_an_event_in_their_club_and_its_followers_see_it(
    api: HttpClient, open_page: Any
) -> None:
    admin, fan = member_by_operator(api, "web_club_host"), member_by_operator(api, "web_club_fan")
    club = api.post("/clubs", {"name": "Jazz lovers"}, admin.token).body
    assert api.put(f"/clubs/{club['club_id']}/follow", token=fan.token).status == 200
    api.post("/clubs", {"name": "Someone else's"}, fan.token)  # not offered to the admin

    hosting = open_page(admin, hash_="#events")
    picker = hosting.get_by_role("combobox", name="Club")
    expect(picker.locator("option")).to_have_text(["No club", "Jazz lovers"])
    hosting.get_by_label("Title", exact=True).fill("Club jam")
    picker.select_option(label="Jazz lovers")
    hosting.get_by_role("button", name="Schedule").click()
    expect(hosting.get_by_text("Scheduled.")).to_be_visible()

    [event] = [
        e
        for e in api.get("/events?scope=mine", admin.token).body["items"]
        if e["title"] == "Club jam"
    ]
    assert event["club_id"] == club["club_id"]
    fan_page = open_page(fan, hash_="#events")
    theirs = fan_page.get_by_role("list", name="Events of people you follow")
    expect(theirs.get_by_role("heading", name="Club jam")).to_be_visible()
