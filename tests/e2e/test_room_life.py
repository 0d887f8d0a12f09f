"""The whole life of a room, driven by 22 real WebSocket clients through the local stack."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.http import HttpClient
from tests.support.media import OFFER
from tests.support.wsclient import WsClient

FOUNDER = "+14155550100"
_numbers = itertools.count(3000)


def new_member(api: HttpClient, inviter_token: str, name: str) -> dict[str, Any]:
    phone = f"+1415555{next(_numbers):04d}"
    assert api.post("/invites", {"phone": phone}, inviter_token).status == 201
    answer = api.sign_in(phone)
    joined = api.post(
        "/auth/sign-up",
        {"sign_up_token": answer["sign_up_token"], "name": name.title(), "username": name},
    )
    assert joined.status == 201, joined.body
    return {
        "name": name,
        "token": joined.body["access_token"],
        "user_id": joined.body["user"]["user_id"],
    }


@pytest.fixture(scope="module")
def people(api: HttpClient) -> list[dict[str, Any]]:
    """22 members, invited the way Salon grows: each member has two invitations."""
    founder = api.sign_in(FOUNDER)
    first = [new_member(api, founder["access_token"], f"guest{i}") for i in range(5)]
    second = [new_member(api, first[i // 2]["token"], f"friend{i}") for i in range(10)]
    third = [new_member(api, second[i // 2]["token"], f"extra{i}") for i in range(5)]
    last = [new_member(api, second[3]["token"], "latecomer")]
    host = {
        "name": "founder",
        "token": founder["access_token"],
        "user_id": founder["user"]["user_id"],
    }
    return [host, *first, *second, *third, *last]


@pytest.fixture
def clients(stack: dict[str, Any], people: list[dict[str, Any]]) -> Iterator[dict[str, WsClient]]:
    opened = {p["name"]: WsClient(stack["websocket"], p["token"], p["name"]) for p in people}
    yield opened
    for client in opened.values():
        client.close()


def test_a_room_lives_from_creation_to_its_end(
    stack: dict[str, Any],
    api: HttpClient,
    people: list[dict[str, Any]],
    clients: dict[str, WsClient],
) -> None:
    ids = {p["name"]: p["user_id"] for p in people}
    host = clients["founder"]
    cohost, alice, bob, troll = (clients[n] for n in ("guest0", "guest1", "guest2", "guest3"))
    assert len(clients) >= 20

    # Create, and everyone joins.
    room_id = host.ok("create_room", title="Late night jazz", kind="open")["room_id"]
    for name, client in clients.items():
        if name != "founder":
            snapshot = client.ok("join_room", room_id=room_id)
            assert snapshot["viewer"]["role"] == "listener"
    listeners = len(clients) - 1
    host.event("audience_count", count=listeners, timeout=15)
    hallway = api.get("/rooms", token=people[1]["token"]).body["items"]
    assert hallway[0]["room_id"] == room_id
    assert hallway[0]["listener_count"] == listeners

    # Hands, invitations to speak, acceptance.
    for speaker in (alice, bob, cohost):
        speaker.ok("raise_hand")
    host.event("hand_raised", user_id=ids["guest2"])
    hands = host.ok("join_room", room_id=room_id)["raised_hands"]
    assert [h["username"] for h in hands] == ["guest1", "guest2", "guest0"]
    for name in ("guest1", "guest2", "guest0"):
        host.ok("invite_to_speak", user_id=ids[name])
        clients[name].event("speaker_invited", user_id=ids[name])
        clients[name].ok("accept_speaker_invite")
    clients["friend9"].event("invitation_accepted", user_id=ids["guest0"])
    host.ok("make_moderator", user_id=ids["guest0"])
    clients["friend5"].event("moderator_added", user_id=ids["guest0"])

    # Audio goes through the stack's Janus, after Salon's check: a muted speaker may not send;
    # unmuted, the SFU answers the offer; a moderator's mute takes the right away again.
    assert bob.refused("media_publish", sdp=OFFER) == "not_allowed_to_publish"
    assert clients["friend1"].refused("media_publish", sdp=OFFER) == "not_allowed_to_publish"
    alice.ok("unmute")
    alice.event("media_credentials", kind="janus", may_publish=True)
    answer = alice.ok("media_publish", sdp=OFFER)
    assert (answer["type"], answer["room_id"]) == ("media_answer", room_id)
    assert answer["sdp"].startswith("v=0")
    assert clients["friend1"].refused("media_subscribe", user_id=ids["guest2"]) == "not_publishing"
    assert not [m for m in clients["friend1"].messages if m.get("type") == "media_credentials"]

    # Mute, unmute, move to the audience, remove.
    host.ok("mute", user_id=ids["guest1"])
    clients["friend3"].event("speaker_muted", user_id=ids["guest1"])
    alice.event("media_credentials", may_publish=False)
    assert alice.refused("media_publish", sdp=OFFER) == "not_allowed_to_publish"
    assert host.refused("unmute", user_id=ids["guest1"]) == "cannot_unmute_others"
    host.ok("move_to_audience", user_id=ids["guest2"])
    bob.event("moved_to_audience", user_id=ids["guest2"])
    assert bob.refused("unmute") == "not_on_stage"
    troll.ok("raise_hand")
    host.ok("remove_member", user_id=ids["guest3"])
    troll.event("member_removed", user_id=ids["guest3"])
    assert troll.refused("join_room", room_id=room_id) == "removed_from_room"

    # A speaker drops and comes back within the grace period with their role.
    alice.close()
    host.event("member_disconnected", user_id=ids["guest1"])
    alice = WsClient(stack["websocket"], people[2]["token"], "guest1-again")
    try:
        assert alice.ok("join_room", room_id=room_id)["viewer"]["role"] == "speaker"
        host.event("member_reconnected", user_id=ids["guest1"])
    finally:
        alice.close()

    # The creator leaves: the co-host keeps the room. The last moderator leaves: it ends.
    host.ok("leave_room")
    stage = cohost.ok("join_room", room_id=room_id)["stage"]
    assert [s["username"] for s in stage if s["role"] == "moderator"] == ["guest0"]
    cohost.ok("leave_room")
    ended = clients["friend0"].event("room_ended")
    assert ended["reason"] == "last_moderator_left"
    assert clients["latecomer"].refused("raise_hand") == "room_ended"
    assert all(
        r["room_id"] != room_id for r in api.get("/rooms", token=people[1]["token"]).body["items"]
    )
