"""Trust and safety in the web client (issue 14), in Chromium: reporting a member and a room
and hearing the outcome, a moderator reading the room's moderation log, and deleting one's
account with the texted code."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import Member, join, new_member, no_overflow, session_of, start_room
from tests.support.http import HttpClient

_numbers = itertools.count(7800)  # test_events_client.py counts from 7600, on the same stack


@pytest.fixture(scope="module")
def founder(api: HttpClient) -> Member:
    """A founder of this module's own (the shared founder's number has 5 codes an hour)."""
    phone = f"+1415555{next(_numbers):04d}"
    event = {"phone": phone, "name": "Sam Safety", "username": "sam_safety", "invites": 20}
    assert api.post("/_local/admin/admin_create_founder", event).body["ok"]
    answer = api.sign_in(phone)
    user = answer["user"]
    return Member(user["user_id"], user["username"], user["name"], session_of(answer))


def decide_latest(api: HttpClient, decision: str) -> dict[str, Any]:
    queue = api.post("/_local/admin/admin_reports", {}).body["result"]["items"]
    report = queue[-1]
    decided = api.post(
        "/_local/admin/admin_report_decide",
        {"report_id": report["report_id"], "decision": decision},
    ).body
    assert decided["ok"], decided
    return dict(report)


def test_a_room_report_reaches_the_operator_and_the_outcome_shows_to_the_reporter(
    api: HttpClient, founder: Member, open_page: Any
) -> None:
    host = open_page(founder)
    room_id = start_room(host, "Reported room")
    rita = new_member(api, founder, "rita_report", "Rita Report")
    page = open_page(rita, 390)
    join(page, "Reported room")
    page.get_by_text("Report this room").click()
    form = page.get_by_role("form", name="Report this room")
    form.get_by_label("Reason").select_option("spam")
    form.get_by_label("Details").fill("Selling things all evening.")
    form.get_by_role("button", name="Send report").click()
    expect(form.get_by_text("Reported.")).to_be_visible()
    no_overflow(page)

    report = decide_latest(api, "dismiss")
    assert (report["target_kind"], report["target_id"]) == ("room", room_id)
    assert report["reporter_id"] == rita.user_id
    expect(page.get_by_text("took no action")).to_be_visible()
    host.get_by_role("button", name="End room").click()


def test_a_member_is_reported_from_their_profile(
    api: HttpClient, founder: Member, open_page: Any
) -> None:
    tim = new_member(api, founder, "tim_target", "Tim Target")
    page = open_page(founder, hash_=f"#user/{tim.user_id}")
    page.get_by_text("Report Tim Target").click()
    form = page.get_by_role("form", name="Report Tim Target")
    form.get_by_label("Reason").select_option("harassment")
    form.get_by_role("button", name="Send report").click()
    expect(form.get_by_text("Reported.")).to_be_visible()
    report = decide_latest(api, "warn")
    assert (report["target_id"], report["reason"]) == (tim.user_id, "harassment")
    expect(page.get_by_text("warned the member")).to_be_visible()


def test_a_moderator_reads_the_moderation_log_in_the_room_view(
    api: HttpClient, founder: Member, open_page: Any
) -> None:
    host = open_page(founder)
    start_room(host, "Logged room")
    loud = new_member(api, founder, "lou_loud", "Lou Loud")
    listener = open_page(loud)
    join(listener, "Logged room")
    expect(listener.locator("#moderation-log")).to_be_hidden()  # listeners do not see it
    card = host.locator(f'#room-audience li[data-user-id="{loud.user_id}"]')
    card.get_by_role("button", name="Remove").click()  # the confirm dialog is accepted
    expect(card).to_be_hidden()
    host.get_by_text("Moderation log").click()
    log = host.get_by_role("list", name="Moderation log")
    expect(log.locator('li[data-action="remove_member"]')).to_contain_text("removed Lou Loud")
    host.get_by_role("button", name="End room").click()


def test_a_member_deletes_their_account_with_the_texted_code(
    api: HttpClient, founder: Member, open_page: Any
) -> None:
    dee = new_member(api, founder, "dee_delete", "Dee Delete")
    page = open_page(dee, 390, "#me")
    page.get_by_role("button", name="Text me a code to delete my account").click()
    expect(page.get_by_text("We texted you a code")).to_be_visible()
    phone = api.get("/me", dee.token).body["phone"]
    code = api.get(f"/_local/sms/{phone.lstrip('+')}").body["latest_code"]
    page.get_by_label("Code from the text message").fill(code)
    no_overflow(page)
    page.get_by_role("button", name="Delete my account forever").click()
    expect(page.get_by_role("heading", name="Welcome to Salon")).to_be_visible()
    assert api.get("/me", dee.token).status == 401
    assert api.get(f"/users/{dee.user_id}", founder.token).status == 404
