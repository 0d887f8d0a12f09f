"""Clubs over real HTTP and WebSockets on the local stack: a club is founded, a member invited
and accepting, a members-only room refusing an outsider, the club's other admin moderating
it, and the hallway raising the room to a follower."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.http import HttpClient, member_of_their_own
from tests.support.wsclient import WsClient

_numbers = itertools.count(8200)


def member(api: HttpClient, name: str) -> dict[str, Any]:
    signed_in = member_of_their_own(api, f"+1415555{next(_numbers):04d}", name)
    return {
        "name": name,
        "token": signed_in["access_token"],
        "user_id": signed_in["user"]["user_id"],
    }


@pytest.fixture
def sockets(stack: dict[str, Any]) -> Iterator[dict[str, WsClient]]:
    opened: dict[str, WsClient] = {}
    yield opened
    for client in opened.values():
        client.close()


def test_a_club_room_for_members_its_admins_moderating_and_the_hallway_of_a_follower(
    api: HttpClient, stack: dict[str, Any], sockets: dict[str, WsClient]
) -> None:
    founder, cofounder, regular, outsider, follower = (
        member(api, n)
        for n in ("clubfounder", "clubcofounder", "clubregular", "clubstranger", "clubfan")
    )
    club = api.post("/clubs", {"name": "Late night jazz"}, founder["token"])
    assert club.status == 201, club.body
    path = f"/clubs/{club.body['club_id']}"

    # Invitations: each invitee sees the club as invited, and accepts.
    for person in (cofounder, regular):
        sent = api.post(f"{path}/invitations", {"user_id": person["user_id"]}, founder["token"])
        assert sent.status == 200, sent.body
        [pending] = api.get("/clubs", person["token"]).body["items"]
        assert pending["me"]["role"] == "invited"
        accepted = api.put(f"{path}/membership", token=person["token"])
        assert (accepted.status, accepted.body["me"]["role"]) == (200, "member"), accepted.body
    promoted = api.put(
        f"{path}/members/{cofounder['user_id']}/role", {"role": "admin"}, founder["token"]
    )
    assert promoted.status == 200 and promoted.body["admin_count"] == 2, promoted.body
    assert api.put(f"{path}/follow", token=follower["token"]).status == 200

    for person in (founder, cofounder, regular, outsider):
        sockets[person["name"]] = WsClient(stack["websocket"], person["token"], person["name"])
    room = sockets["clubfounder"].ok(
        "start_club_room", club_id=club.body["club_id"], title="After hours", kind="members"
    )
    assert (room["kind"], room["club_id"]) == ("members", club.body["club_id"])
    room_id = room["room_id"]

    # The outsider is refused at the door, with the stable code.
    assert sockets["clubstranger"].refused("join_room", room_id=room_id) == "club_members_only"
    joined = sockets["clubregular"].ok("join_room", room_id=room_id)
    assert joined["viewer"]["role"] == "listener"
    # The other admin comes in as a moderator, and moderates: the regular is removed.
    entered = sockets["clubcofounder"].ok("join_room", room_id=room_id)
    assert entered["viewer"]["role"] == "moderator"
    sockets["clubcofounder"].ok("remove_member", user_id=regular["user_id"])
    removed = sockets["clubregular"].event("member_removed", user_id=regular["user_id"])
    assert removed["by_id"] == cofounder["user_id"]

    # A follower's hallway raises the club's open room; the members room is not theirs.
    open_room = sockets["clubcofounder"].ok(
        "start_club_room", club_id=club.body["club_id"], title="Open jam", kind="open"
    )
    [first, *_] = api.get("/rooms", follower["token"]).body["items"]
    assert (first["room_id"], first["club_name"]) == (open_room["room_id"], "Late night jazz")
    seen = {r["room_id"] for r in api.get("/rooms", follower["token"]).body["items"]}
    assert room_id not in seen
