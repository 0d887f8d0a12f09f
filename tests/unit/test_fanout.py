"""How the fan-out cuts a room's sockets into queued chunks (chalicelib/services/fanout.py), on
fakes: who is posted inline, which message group each socket goes through, the chunks' size."""

from __future__ import annotations

import json
import math
import secrets
from collections import Counter
from typing import Any

from chalicelib.adapters.dynamo.connections import ConnectionRepository
from chalicelib.services.fanout import RETRIES, Fanout, group_of
from tests.support.fakes import ManualTimers, RecordingConnections

SQS_MESSAGE_LIMIT = 256 * 1024
EVENT = {
    "type": "speaker_muted",
    "room_id": "5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f",
    "at": "2026-11-26T21:09:00.000000+00:00",
    "user_id": "1c7a2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
    "by_id": "0b6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d",
    "version": 12,
}


class Gone(ConnectionRepository):
    def __init__(self) -> None:
        super().__init__(3600)
        self.removed: list[str] = []

    def remove(self, connection_id: str) -> None:
        self.removed.append(connection_id)


def sockets(n: int) -> list[str]:
    """Connection ids shaped like API Gateway's (16 characters, base64)."""
    return [secrets.token_urlsafe(12)[:15] + "=" for _ in range(n)]


def fanout(queue: ManualTimers, poster: RecordingConnections, **limits: int) -> Fanout:
    settings = {"inline_max": 250, "chunk_size": 300, "groups": 16, **limits}
    return Fanout(poster, Gone(), queue, lambda: secrets.token_hex(8), **settings)


def test_a_small_room_is_posted_inline_and_queues_nothing() -> None:
    queue, poster = ManualTimers(), RecordingConnections()
    ids = sockets(250)

    assert fanout(queue, poster).post_all("room", ids, [EVENT]) == 0

    assert queue.ordered == []
    assert sorted(poster.sent) == sorted(ids)


def test_a_big_room_is_queued_each_socket_once_in_chunks_of_its_group() -> None:
    queue, poster = ManualTimers(), RecordingConnections()
    ids = sockets(8000)

    chunks = fanout(queue, poster).post_all("room", ids, [EVENT])

    (entries,) = queue.ordered
    per_group = Counter(group_of(c, 16) for c in ids)
    assert chunks == len(entries) == sum(math.ceil(n / 300) for n in per_group.values())
    assert chunks == 32  # 16 groups of ~500 (600 is 4.5 standard deviations away): 2 chunks each
    assert poster.sent == {}
    queued = Counter(c for _, _, body in entries for c in body["connection_ids"])
    assert set(queued) == set(ids) and set(queued.values()) == {1}
    for group, _, body in entries:
        assert len(body["connection_ids"]) <= 300
        assert {f"room.{group_of(c, 16)}" for c in body["connection_ids"]} == {group}
        assert body["messages"] == [EVENT]
        assert len(json.dumps(body, separators=(",", ":")).encode()) < SQS_MESSAGE_LIMIT // 10
    assert len({dedup for _, dedup, _ in entries}) == len(entries)


def test_a_socket_keeps_its_group_however_the_room_changes() -> None:
    queue, poster = ManualTimers(), RecordingConnections()
    ids = sockets(600)
    post = fanout(queue, poster, inline_max=10)

    post.post_all("room", ids, [EVENT])
    post.post_all("room", ids[100:] + sockets(50), [EVENT])

    group = {}
    for entries in queue.ordered:
        for name, _, body in entries:
            for c in body["connection_ids"]:
                assert group.setdefault(c, name) == name


def test_a_queued_chunk_is_posted_in_order_and_gone_sockets_removed() -> None:
    queue, poster = ManualTimers(), RecordingConnections()
    post = fanout(queue, poster, inline_max=1)
    ids = sockets(5)
    poster.gone.add(ids[2])
    second: dict[str, Any] = {**EVENT, "type": "speaker_unmuted", "version": 13}
    post.post_all("room", ids, [EVENT, second])

    for entries in queue.ordered:
        for _, _, body in entries:
            post.on_message(body)

    assert isinstance(post.connections, Gone)
    assert post.connections.removed == [ids[2]]
    for c in ids[:2] + ids[3:]:
        assert [m["type"] for m in poster.sent[c]] == ["speaker_muted", "speaker_unmuted"]


def test_a_throttled_post_goes_back_to_the_queue_for_that_socket_and_message_only() -> None:
    queue, poster = ManualTimers(), RecordingConnections()
    post = fanout(queue, poster)
    ids = sockets(5)
    second: dict[str, Any] = {**EVENT, "type": "speaker_unmuted", "version": 13}
    poster.throttled[ids[1]] = 1  # the first message is throttled, the second gets through
    poster.throttled[ids[3]] = 2  # both are

    post.post_now(ids, [EVENT, second])

    (entries,) = queue.ordered
    retried = {c: (group, body) for group, _, body in entries for c in body["connection_ids"]}
    assert set(retried) == {ids[1], ids[3]}
    for c, (group, body) in retried.items():
        assert group == f"{EVENT['room_id']}.{group_of(c, 16)}"  # its usual group
        assert body["attempt"] == 1
    assert retried[ids[1]][1]["messages"] == [EVENT]
    assert retried[ids[3]][1]["messages"] == [EVENT, second]

    for _, _, body in entries:
        post.on_message(body)
    for c in ids:
        assert sorted(m["version"] for m in poster.sent[c]) == [12, 13], c
    assert len(queue.ordered) == 1  # nothing failed the second time


def test_a_post_throttled_on_every_try_is_given_up_after_the_retries(
    caplog: Any,
) -> None:
    queue, poster = ManualTimers(), RecordingConnections()
    post = fanout(queue, poster)
    [socket] = sockets(1)
    poster.throttled[socket] = 100

    post.post_now([socket], [EVENT])
    while queue.ordered:
        for _, _, body in queue.ordered.pop(0):
            post.on_message(body)

    assert poster.throttled[socket] == 100 - (1 + RETRIES)  # the first try and each retry
    assert poster.sent[socket] == []
    assert [r.message for r in caplog.records if r.levelname == "ERROR"] == [
        "fan-out posts given up"
    ]
