"""Clubs through the handlers (REST on moto, rooms over the WebSocket function): founding,
invitations, leaving, handing over, following, club rooms and their moderators, the hallway,
club events, and what deleting an account does to a member's clubs."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib.adapters.dynamo.clubs import ClubChangedError
from chalicelib.domain import clubs as club_rules
from chalicelib.domain.clubs import MAX_FOUNDED
from local.outbox import latest_code
from tests.support.account import ask_code, delete_me, phone_of
from tests.support.crowd import Crowd, Person
from tests.support.fakes import RecordingConnections
from tests.support.push import rest


@pytest.fixture
def crowd(client: Client, svc: Any, sockets: RecordingConnections) -> Crowd:
    return Crowd(client, svc, sockets)


def found(crowd: Crowd, founder: Person, name: str = "Jazz", **fields: Any) -> dict[str, Any]:
    answer = rest(crowd, "POST", "/clubs", founder, {"name": name, **fields})
    assert answer.status_code == 201, answer.json_body
    return dict(answer.json_body)


def code_of(answer: Any) -> tuple[int, str]:
    return answer.status_code, answer.json_body["error"]["code"]


def member_of(crowd: Crowd, club: dict[str, Any], admin: Person, name: str) -> Person:
    """A new person an admin invites into the club, who accepts."""
    person = crowd.person(name)
    path = f"/clubs/{club['club_id']}"
    assert rest(crowd, "POST", f"{path}/invitations", admin, {"user_id": person.user_id})
    accepted = rest(crowd, "PUT", f"{path}/membership", person)
    assert accepted.json_body["me"]["role"] == "member", accepted.json_body
    return person


def test_a_founder_is_the_first_admin_and_founds_at_most_five_open_clubs(crowd: Crowd) -> None:
    ada = crowd.person("ada")
    club = found(crowd, ada, description="Standards on Sundays")
    assert club["me"] == {"role": "admin", "following": False}
    assert (club["admin_count"], club["member_count"], club["status"]) == (1, 1, "open")
    for i in range(1, MAX_FOUNDED):
        found(crowd, ada, f"Club {i}")
    refused = rest(crowd, "POST", "/clubs", ada, {"name": "One too many"})
    assert code_of(refused) == (409, "too_many_clubs")
    # Closing one frees its place.
    closed = rest(crowd, "POST", f"/clubs/{club['club_id']}/close", ada).json_body
    assert closed["status"] == "closed"
    found(crowd, ada, "Another")
    mine = rest(crowd, "GET", "/clubs", ada).json_body["items"]
    assert len(mine) == MAX_FOUNDED + 1 and mine[-1]["status"] == "closed"


def test_an_admin_invites_and_the_invitee_accepts_or_declines(crowd: Crowd) -> None:
    ada, bob, cy = crowd.person("ada"), crowd.person("bob"), crowd.person("cyd")
    club = found(crowd, ada)
    path = f"/clubs/{club['club_id']}"
    invited = rest(crowd, "POST", f"{path}/invitations", ada, {"user_id": bob.user_id})
    assert invited.status_code == 200
    pending = rest(crowd, "GET", "/clubs", bob).json_body["items"]
    assert [(c["club_id"], c["me"]["role"]) for c in pending] == [(club["club_id"], "invited")]
    # A member does not invite; an invitation is not membership.
    assert code_of(rest(crowd, "POST", f"{path}/invitations", bob, {"user_id": cy.user_id})) == (
        403,
        "not_club_admin",
    )
    joined = rest(crowd, "PUT", f"{path}/membership", bob).json_body
    assert joined["me"]["role"] == "member" and joined["member_count"] == 2
    assert code_of(rest(crowd, "POST", f"{path}/invitations", ada, {"user_id": bob.user_id})) == (
        409,
        "already_club_member",
    )
    rest(crowd, "POST", f"{path}/invitations", ada, {"user_id": cy.user_id})
    roster = rest(crowd, "GET", f"{path}/members", ada).json_body["items"]
    assert [(m["username"], m["role"]) for m in roster] == [
        ("ada", "admin"),
        ("cyd", "invited"),
        ("bob", "member"),
    ]
    # Members do not see pending invitations.
    seen = rest(crowd, "GET", f"{path}/members", bob).json_body["items"]
    assert [m["username"] for m in seen] == ["ada", "bob"]
    declined = rest(crowd, "DELETE", f"{path}/membership", cy).json_body
    assert declined["me"]["role"] is None and declined["member_count"] == 2
    assert code_of(rest(crowd, "PUT", f"{path}/membership", cy)) == (409, "no_club_invitation")


def roster_pages(crowd: Crowd, path: str, viewer: Person) -> list[dict[str, Any]]:
    pages, cursor = [], None
    while True:
        query = f"?limit=1&cursor={cursor}" if cursor else "?limit=1"
        page = rest(crowd, "GET", f"{path}/members{query}", viewer).json_body
        pages.append(page)
        if not (cursor := page["cursor"]):
            return pages


def test_a_member_paging_the_roster_learns_nothing_of_pending_invitations(crowd: Crowd) -> None:
    ada = crowd.person("ada")
    club = found(crowd, ada)
    path = f"/clubs/{club['club_id']}"
    bob, dee = member_of(crowd, club, ada, "bob"), member_of(crowd, club, ada, "dee")
    # Invitations sort between the admins and the members; pages of one would stop on them.
    for name in ("cyd", "eve", "fay"):
        invitee = crowd.person(name)
        assert rest(crowd, "POST", f"{path}/invitations", ada, {"user_id": invitee.user_id})

    pages = roster_pages(crowd, path, bob)
    seen = [m["username"] for page in pages for m in page["items"]]
    assert seen == ["ada", "bob", "dee"]
    cursors = [json.loads(base64.urlsafe_b64decode(p["cursor"])) for p in pages if p["cursor"]]
    assert cursors and all(not c["roster_key"]["S"].startswith("invited#") for c in cursors)
    assert all(p["items"] for p in pages[:-1])  # only the last page may be empty
    # The admin pages through everyone, the invitations in their place.
    everyone = [m["username"] for page in roster_pages(crowd, path, ada) for m in page["items"]]
    assert everyone == ["ada", "cyd", "eve", "fay", "bob", "dee"]
    # An admin's cursor that stopped on an invitation is no way in for a member.
    at_invitation = rest(crowd, "GET", f"{path}/members?limit=2", ada).json_body["cursor"]
    assert json.loads(base64.urlsafe_b64decode(at_invitation))["roster_key"]["S"].startswith(
        "invited#"
    )
    refused = rest(crowd, "GET", f"{path}/members?limit=1&cursor={at_invitation}", dee)
    assert code_of(refused)[0] == 400
    assert refused.json_body["error"]["field"] == "cursor"


def test_an_invitation_across_a_block_is_refused(crowd: Crowd, client: Client) -> None:
    ada, bob = crowd.person("ada"), crowd.person("bob")
    club = found(crowd, ada)
    assert rest(crowd, "PUT", f"/users/{ada.user_id}/block", bob).status_code == 200
    refused = rest(
        crowd, "POST", f"/clubs/{club['club_id']}/invitations", ada, {"user_id": bob.user_id}
    )
    assert code_of(refused) == (403, "blocked")


def test_the_last_admin_hands_over_before_leaving_and_admins_remove_members(crowd: Crowd) -> None:
    ada = crowd.person("ada")
    club = found(crowd, ada)
    path = f"/clubs/{club['club_id']}"
    bob = member_of(crowd, club, ada, "bob")
    cy = member_of(crowd, club, ada, "cyd")
    assert code_of(rest(crowd, "DELETE", f"{path}/membership", ada)) == (409, "last_club_admin")
    handed = rest(crowd, "PUT", f"{path}/members/{bob.user_id}/role", ada, {"role": "admin"})
    assert handed.json_body["admin_count"] == 2
    assert code_of(rest(crowd, "DELETE", f"{path}/members/{bob.user_id}", ada)) == (
        409,
        "club_target_is_admin",
    )
    left = rest(crowd, "DELETE", f"{path}/membership", ada).json_body
    assert left["me"]["role"] is None and left["admin_count"] == 1
    removed = rest(crowd, "DELETE", f"{path}/members/{cy.user_id}", bob).json_body
    assert removed["member_count"] == 1
    assert code_of(rest(crowd, "DELETE", f"{path}/members/{bob.user_id}", cy)) == (
        403,
        "not_club_admin",
    )


def test_anyone_follows_and_a_follow_outlasts_leaving(crowd: Crowd) -> None:
    ada, fan = crowd.person("ada"), crowd.person("fan")
    club = found(crowd, ada)
    path = f"/clubs/{club['club_id']}"
    followed = rest(crowd, "PUT", f"{path}/follow", fan).json_body
    assert followed["me"] == {"role": None, "following": True} and followed["follower_count"] == 1
    assert rest(crowd, "PUT", f"{path}/follow", fan).json_body["follower_count"] == 1  # once
    bob = member_of(crowd, club, ada, "bob")
    rest(crowd, "PUT", f"{path}/follow", bob)
    after = rest(crowd, "DELETE", f"{path}/membership", bob).json_body
    assert after["me"] == {"role": None, "following": True}
    assert (after["member_count"], after["follower_count"]) == (1, 2)
    unfollowed = rest(crowd, "DELETE", f"{path}/follow", fan).json_body
    assert unfollowed["follower_count"] == 1


def test_a_members_only_room_refuses_outsiders_and_the_clubs_admins_moderate_it(
    crowd: Crowd,
) -> None:
    ada = crowd.person("ada")
    club = found(crowd, ada)
    path = f"/clubs/{club['club_id']}"
    bob = member_of(crowd, club, ada, "bob")
    rest(crowd, "PUT", f"{path}/members/{bob.user_id}/role", ada, {"role": "admin"})
    cy = member_of(crowd, club, ada, "cyd")
    outsider = crowd.person("outsider")
    room = ada.ok("start_club_room", club_id=club["club_id"], title="Sunday", kind="members")
    assert (room["kind"], room["club_id"]) == ("members", club["club_id"])
    assert outsider.refused("join_room", room_id=room["room_id"]) == "club_members_only"
    # Members may not start rooms in this club; a follower is not a member.
    assert (
        cy.refused("start_club_room", club_id=club["club_id"], title="Mine", kind="open")
        == "club_rooms_admins_only"
    )
    assert cy.ok("join_room", room_id=room["room_id"])["viewer"]["role"] == "listener"
    # The other admin enters as a moderator and moderates.
    entered = bob.ok("join_room", room_id=room["room_id"])
    assert entered["viewer"]["role"] == "moderator"
    bob.ok("remove_member", user_id=cy.user_id)
    assert cy.refused("join_room", room_id=room["room_id"]) == "removed_from_room"
    view = rest(crowd, "GET", path, outsider).json_body
    assert [r["room_id"] for r in view["live_rooms"]] == [room["room_id"]]


def test_create_room_does_not_open_a_members_room(crowd: Crowd) -> None:
    ada = crowd.person("ada")
    assert ada.refused("create_room", title="Sneaky", kind="members") == "invalid_request"


def test_the_hallway_raises_a_clubs_rooms_to_its_followers_and_members_only_to_members(
    crowd: Crowd,
) -> None:
    ada, fan, stranger = crowd.person("ada"), crowd.person("fan"), crowd.person("stranger")
    club = found(crowd, ada, "Night owls")
    rest(crowd, "PUT", f"/clubs/{club['club_id']}/follow", fan)
    # Rooms newer than the club's, so the club's is raised, not merely the newest.
    open_room = ada.ok("start_club_room", club_id=club["club_id"], title="Owls", kind="open")
    others = [crowd.person(f"host{i}") for i in range(3)]
    for i, host in enumerate(others):
        host.ok("create_room", title=f"Other {i}", kind="open")
    [first, *_] = rest(crowd, "GET", "/rooms", fan).json_body["items"]
    assert (first["room_id"], first["club_id"], first["club_name"]) == (
        open_room["room_id"],
        club["club_id"],
        "Night owls",
    )
    # Not their club: the room is ranked as any other (the newest, the biggest first).
    theirs = rest(crowd, "GET", "/rooms", stranger).json_body["items"]
    assert theirs[0]["room_id"] != open_room["room_id"]
    club_room = next(r for r in theirs if r["room_id"] == open_room["room_id"])
    assert (club_room["club_id"], club_room["club_name"]) == (club["club_id"], None)


def test_a_members_room_is_in_the_hallway_of_members_not_followers(crowd: Crowd) -> None:
    ada, fan = crowd.person("ada"), crowd.person("fan")
    club = found(crowd, ada)
    rest(crowd, "PUT", f"/clubs/{club['club_id']}/follow", fan)
    bob = member_of(crowd, club, ada, "bob")
    room = ada.ok("start_club_room", club_id=club["club_id"], title="Inner", kind="members")
    assert room["room_id"] in {
        r["room_id"] for r in rest(crowd, "GET", "/rooms", bob).json_body["items"]
    }
    assert room["room_id"] not in {
        r["room_id"] for r in rest(crowd, "GET", "/rooms", fan).json_body["items"]
    }


def test_a_clubs_events_are_upcoming_for_its_members_and_followers(crowd: Crowd) -> None:
    ada, fan, bob = crowd.person("ada"), crowd.person("fan"), crowd.person("bob")
    club = found(crowd, ada)
    rest(crowd, "PUT", f"/clubs/{club['club_id']}/follow", fan)
    starts = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    refused = rest(
        crowd,
        "POST",
        "/events",
        bob,
        {"title": "Gig", "starts_at": starts, "club_id": club["club_id"]},
    )
    assert code_of(refused) == (403, "not_club_member")
    made = rest(
        crowd,
        "POST",
        "/events",
        ada,
        {"title": "Gig", "starts_at": starts, "club_id": club["club_id"]},
    )
    assert made.status_code == 201 and made.json_body["club_id"] == club["club_id"]
    member = member_of(crowd, club, ada, "member")
    listed = rest(crowd, "GET", "/events?scope=mine", member).json_body["items"]
    assert [e["event_id"] for e in listed] == [made.json_body["event_id"]]
    followed = rest(crowd, "GET", "/events?scope=following", fan).json_body["items"]
    assert [e["event_id"] for e in followed] == [made.json_body["event_id"]]
    assert rest(crowd, "GET", "/events?scope=mine", bob).json_body["items"] == []
    # It goes live as the club's room.
    room = ada.ok("start_event", event_id=made.json_body["event_id"])
    assert room["club_id"] == club["club_id"]
    live = rest(crowd, "GET", f"/clubs/{club['club_id']}", fan).json_body["live_rooms"]
    assert [r["room_id"] for r in live] == [room["room_id"]]


def club_rows_of(user_id: str) -> list[str]:
    """Every place in a club (membership, invitation, follow) that names the member. (A club
    keeps its founder's id, like the ledger: once the profile is gone, it names nobody.)"""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    found_rows = []
    for table in dynamodb.list_tables()["TableNames"]:
        if not table.endswith("club_members"):
            continue
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            found_rows += [json.dumps(i) for i in page["Items"] if user_id in json.dumps(i)]
    return found_rows


def test_deleting_an_account_erases_its_places_and_hands_over_or_closes_its_clubs(
    crowd: Crowd, client: Client, svc: Any
) -> None:
    ada = crowd.person("ada")
    shared = found(crowd, ada, "Shared")
    alone = found(crowd, ada, "Alone")
    heir = member_of(crowd, shared, ada, "heir")
    later = member_of(crowd, shared, ada, "later")
    other = found(crowd, heir, "Other")
    rest(crowd, "PUT", f"/clubs/{other['club_id']}/follow", ada)
    invited_by_heir = found(crowd, later, "Invites")
    rest(
        crowd,
        "POST",
        f"/clubs/{invited_by_heir['club_id']}/invitations",
        later,
        {"user_id": ada.user_id},
    )
    assert club_rows_of(ada.user_id)

    ask_code(client, ada)
    assert delete_me(client, ada, latest_code(phone_of(svc, ada))).status_code == 204

    assert club_rows_of(ada.user_id) == []
    handed = rest(crowd, "GET", f"/clubs/{shared['club_id']}", heir).json_body
    assert handed["me"]["role"] == "admin"  # the longest-standing member
    assert (handed["admin_count"], handed["member_count"]) == (1, 2)
    closed = rest(crowd, "GET", f"/clubs/{alone['club_id']}", heir).json_body
    assert closed["status"] == "closed"
    assert rest(crowd, "GET", f"/clubs/{other['club_id']}", heir).json_body["follower_count"] == 0


def test_two_admins_leaving_at_the_same_moment_leave_the_club_one_admin(
    crowd: Crowd, svc: Any
) -> None:
    """Both read a club of two admins; the save that would leave none is refused by the
    club's condition, and reading again gives the rule's own answer."""
    ada = crowd.person("ada")
    club = found(crowd, ada)
    path = f"/clubs/{club['club_id']}"
    bob = member_of(crowd, club, ada, "bob")
    rest(crowd, "PUT", f"{path}/members/{bob.user_id}/role", ada, {"role": "admin"})
    repo = svc.clubs.repo
    seen = repo.get(club["club_id"])
    places = [repo.membership(club["club_id"], p.user_id) for p in (ada, bob)]
    assert seen.admin_count == 2
    first, second = (club_rules.leave(seen, place) for place in places)  # both allowed
    repo.change(seen, places[0], first)
    with pytest.raises(ClubChangedError):
        repo.change(seen, places[1], second)
    refused = rest(crowd, "DELETE", f"{path}/membership", bob)
    assert code_of(refused) == (409, "last_club_admin")
    assert rest(crowd, "GET", path, bob).json_body["admin_count"] == 1
