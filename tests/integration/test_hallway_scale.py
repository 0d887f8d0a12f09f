"""The hallway at scale: a member who follows 1,000 people, with 10,000 live rooms. The requests
one page makes are counted (every botocore call to DynamoDB) and stay bounded by the follows,
not by the rooms; rooms where followed people speak come first however old they are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.client
import pytest
from chalice.test import Client

from chalicelib.adapters.dynamo.identity import FOLLOWS
from chalicelib.adapters.dynamo.models import (
    ClubMemberModel,
    ClubModel,
    RelationModel,
    RoomModel,
    UserModel,
)
from chalicelib.adapters.dynamo.rooms import LIVE
from tests.support.crowd import Crowd, speaker_in
from tests.support.fakes import RecordingConnections

FOLLOWED, LIVE_ROOMS = 1_000, 10_000


def count_dynamodb(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.service_name == "dynamodb":
            calls.append(operation)
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counted)
    return calls


def seed(viewer_id: str, speaking: dict[str, str]) -> None:
    """1,000 followed people and 10,000 live rooms, written directly. `speaking`: followed
    person -> the (old) room they are on stage in."""
    now = datetime.now(UTC)
    with UserModel.batch_write() as users, RelationModel.batch_write() as relations:
        for i in range(FOLLOWED):
            uid = f"followed{i:04d}"
            users.save(
                UserModel(
                    uid,
                    phone=f"+1555{i:07d}",
                    username=uid,
                    name=uid,
                    created_at=now,
                    on_stage_in={speaking[uid]} if uid in speaking else None,
                )
            )
            relations.save(
                RelationModel(
                    viewer_id,
                    FOLLOWS + uid,
                    other_id=uid,
                    inverse_edge=FOLLOWS + viewer_id,
                    created_at=now,
                )
            )
    on_stage = {room: uid for uid, room in speaking.items()}
    with RoomModel.batch_write() as rooms:
        for i in range(LIVE_ROOMS):
            room_id = f"room{i:05d}"
            host = on_stage.get(room_id, f"stranger{i:05d}")
            rooms.save(
                RoomModel(
                    room_id,
                    title=f"Room {i}",
                    kind="open",
                    creator_id=host,
                    created_at=now - timedelta(minutes=LIVE_ROOMS - i),  # room00000: oldest
                    capacity=8000,
                    stage_ids={host},
                    moderator_ids={host},
                    listener_count=i % 50,
                    revision=1,
                    live=LIVE,
                )
            )


@pytest.fixture
def crowd(client: Client, svc: Any, sockets: RecordingConnections) -> Crowd:
    return Crowd(client, svc, sockets)


def test_a_hallway_page_is_bounded_by_the_follows_not_the_rooms(
    crowd: Crowd, svc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer = crowd.person("viewer")
    # Three followed people speak in three of the oldest rooms (far past any "newest" page).
    speaking = {
        "followed0007": "room00003",
        "followed0500": "room00010",
        "followed0999": "room00001",
    }
    seed(viewer.user_id, speaking)
    calls = count_dynamodb(monkeypatch)
    page = svc.rooms.hallway(viewer.user_id, 20, None)
    first = [item["room_id"] for item in page["items"][:3]]
    assert sorted(first) == sorted(speaking.values())
    assert all(item["followed_on_stage"] == 1 for item in page["items"][:3])
    assert len(page["items"]) == 20 and page["cursor"]
    # 1 Query of the follows (1,000 rows < 1 MB), 10 BatchGetItem of their stages (100 keys
    # each), 1 Query of the viewer's clubs (none), 1 BatchGetItem of the rooms they speak in,
    # 1 Query + 1 BatchGetItem of the newest 100 live rooms, 2 of the moderators' edges to
    # the viewer (103 moderators), 2 of the viewer's own rows in the 103 rooms (a room that
    # removed them is not offered), 1 of the names.
    assert calls.count("Query") == 3
    assert calls.count("BatchGetItem") == 10 + 1 + 1 + 3 + 2 + 1
    assert len(calls) == 21
    assert "Scan" not in calls


def test_stepping_on_and_off_a_stage_keeps_the_hallways_index(crowd: Crowd, svc: Any) -> None:
    host = crowd.person("host")
    room_id = str(host.ok("create_room", title="Index", kind="open")["room_id"])
    assert UserModel.get(host.user_id).on_stage_in == {room_id}
    guest = speaker_in(crowd, room_id, host, "guest")
    assert UserModel.get(guest.user_id).on_stage_in == {room_id}
    guest.ok("step_down")
    assert not UserModel.get(guest.user_id).on_stage_in
    host.ok("end_room")
    # An ended room leaves the index with the cleanup timer (a big stage would not fit the
    # ending's transaction); the hallway shows live rooms only meanwhile.
    assert svc.rooms.hallway(guest.user_id, 20, None)["items"] == []
    assert crowd.fire("cleanup") == 1
    assert not UserModel.get(host.user_id).on_stage_in


CLUBS = 100


def test_a_members_clubs_raise_their_rooms_for_a_bounded_number_of_requests(
    crowd: Crowd, svc: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member who follows 1,000 people and belongs to or follows 100 clubs (the first 100
    are what the hallway reads), each club with one of the oldest of 10,000 live rooms: the
    page is the clubs' rooms, for one Query and one BatchGetItem of the clubs and one
    BatchGetItem per 100 of their rooms."""
    viewer = crowd.person("viewer")
    seed(viewer.user_id, {})
    now = datetime.now(UTC)
    with ClubModel.batch_write() as clubs, ClubMemberModel.batch_write() as places:
        for i in range(CLUBS):
            club_id = f"club{i:03d}"
            # Club rooms are among the oldest: only the clubs raise them.
            clubs.save(
                ClubModel(
                    club_id,
                    name=f"Club {i}",
                    founder_id=f"stranger{i:05d}",
                    created_at=now,
                    status="open",
                    live_room_ids={f"room{i:05d}"},
                )
            )
            following = i % 2 == 0
            places.save(
                ClubMemberModel(
                    club_id,
                    viewer.user_id,
                    role=None if following else "member",
                    following=following,
                    roster_key=None if following else f"member#{i:03d}#{viewer.user_id}",
                )
            )
    for i in range(CLUBS):
        RoomModel(f"room{i:05d}").update(actions=[RoomModel.club_id.set(f"club{i:03d}")])
    calls = count_dynamodb(monkeypatch)
    page = svc.rooms.hallway(viewer.user_id, 100, None)
    assert {item["club_id"] for item in page["items"]} == {f"club{i:03d}" for i in range(CLUBS)}
    assert all(item["club_name"] for item in page["items"])
    # As above, 1 Query and 10 BatchGetItem for the 1,000 follows and their stages; then
    # 1 Query + 1 BatchGetItem of the 100 clubs, 1 BatchGetItem of their 100 rooms (with the
    # rooms followed people speak in: none here), 1 Query + 1 BatchGetItem of the newest 100
    # live rooms, 4 of the 200 moderators' edges to the viewer, 2 of the viewer's rows in the
    # 200 rooms, 1 of the names on the page's stages.
    assert calls.count("Query") == 3
    assert calls.count("BatchGetItem") == 10 + 1 + 1 + 1 + 4 + 2 + 1
    assert len(calls) == 23
    assert "Scan" not in calls
