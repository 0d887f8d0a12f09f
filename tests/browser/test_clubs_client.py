"""The web client's clubs, in Chromium: a member founds a club and invites a friend by
username, the friend accepts, the founder starts a members-only club room and the friend joins
it from the club's page; a follower follows the club from its page."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.browser import member_by_operator
from tests.support.http import HttpClient

_runs = itertools.count()


@pytest.mark.parametrize("width", [1280, 390], ids=["wide", "phone"])
def test_a_club_is_founded_a_friend_invited_and_they_meet_in_its_members_room(
    api: HttpClient, open_page: Any, width: int
) -> None:
    n = next(_runs)
    founder = member_by_operator(api, f"web_founder{n}")
    friend = member_by_operator(api, f"web_friend{n}")
    fan = member_by_operator(api, f"web_clubfan{n}")

    founding = open_page(founder, width, "#clubs")
    founding.get_by_label("Club name", exact=True).fill("Night owls")
    founding.get_by_role("button", name="Found club").click()
    expect(founding.get_by_role("heading", name="Night owls", exact=True)).to_be_visible()
    club_id = founding.evaluate("location.hash.split('/')[1]")
    founding.get_by_label("Their username", exact=True).fill(friend.username)
    founding.get_by_role("button", name="Invite to club").click()
    members = founding.get_by_role("list", name="Club members")
    expect(members.locator("li", has_text="invited")).to_be_visible()

    joining = open_page(friend, width, "#clubs")
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
    following = open_page(fan, width, f"#club/{club_id}")
    following.get_by_role("button", name="Follow club").click()
    expect(following.get_by_role("button", name="Unfollow club")).to_be_visible()
    state = api.get(f"/clubs/{club_id}", fan.token).body
    assert state["me"] == {"role": None, "following": True}
