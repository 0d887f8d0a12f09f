"""Room-wide posts that scale out: the people who must hear first are posted inline, a small
room's audience too, and a big room's audience is cut into chunks that the fan-out queue hands
to parallel fan-out Lambdas (docs/architecture.md, "Fan-out").

Order: a chunk carries every message of one action, in order. The queue is FIFO, and each
socket of a room always falls in the same one of `groups` message groups (a hash of its id), so
SQS hands a group's chunks to one Lambda at a time, in the order they were sent: one listener
hears a room's actions in the order they happened, while the groups are posted in parallel.
"""

from __future__ import annotations

import logging
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.connections import Connections
from chalicelib.adapters.dynamo.connections import ConnectionRepository
from chalicelib.adapters.timers import Timers

logger = logging.getLogger("salon.fanout")

POST = "post"
# How many times a post that failed for a reason worth retrying (throttled, API Gateway or the
# network failed; each after the client's own retries) is handed to the fan-out queue again.
RETRIES = 3


def group_of(connection_id: str, groups: int) -> int:
    """The message group a socket's posts go through: the same for every post to it."""
    return zlib.crc32(connection_id.encode()) % max(1, groups)


@dataclass
class Fanout:
    poster: Connections
    connections: ConnectionRepository
    queue: Timers
    new_id: Callable[[], str]
    # A room with at most this many sockets left to post to is posted inline: no queue hop.
    inline_max: int
    # Connection ids per queued chunk at most (SQS's message limit is 256 KB; an id is ~16 bytes).
    chunk_size: int
    # Message groups per room: how many fan-out Lambdas can post one room's event at once.
    groups: int

    def post_now(
        self, connection_ids: Iterable[str], messages: Sequence[dict[str, Any]], attempt: int = 0
    ) -> None:
        """Post in this Lambda, in order; a connection that is gone (410) is removed, and the
        posts that failed for a reason worth retrying go to the fan-out queue to be tried again
        (up to RETRIES times), so that throttling at the account's quota loses nobody's event.
        If even the queue fails, that is logged and the caller goes on: the action's other
        posts (the rest of the room, its count) must not be lost with these."""
        failed = self._deliver(connection_ids, messages)
        if failed:
            try:
                self._retry(failed, messages, attempt + 1)
            except Exception:
                logger.exception(
                    "fan-out retries could not be queued", extra={"sockets": len(failed)}
                )

    def _deliver(
        self, connection_ids: Iterable[str], messages: Sequence[dict[str, Any]]
    ) -> dict[str, list[int]]:
        """Each message to each socket, in order: the messages (by index) each socket did not
        get for a reason worth retrying. The gone sockets' rows are removed."""
        ids = list(dict.fromkeys(connection_ids))
        gone: set[str] = set()
        failed: dict[str, list[int]] = defaultdict(list)
        for index, message in enumerate(messages):
            delivery = self.poster.post_many([c for c in ids if c not in gone], message)
            gone.update(delivery.gone)
            for connection_id in delivery.failed:
                failed[connection_id].append(index)
        for connection_id in gone:
            # A 410 means the client is gone for good; its row would otherwise linger.
            self.connections.remove(connection_id)
            failed.pop(connection_id, None)  # gone after a failed post: nothing to retry
        return failed

    def _retry(
        self, failed: dict[str, list[int]], messages: Sequence[dict[str, Any]], attempt: int
    ) -> None:
        """The failed posts as chunks of the fan-out queue, each socket in its usual message
        group. A retried event may reach a socket after a newer one: the client's ordering rule
        (docs/asyncapi.yaml, "Ordering") keeps the newest about each person."""
        if attempt > RETRIES:
            logger.error(
                "fan-out posts given up", extra={"sockets": len(failed), "attempts": attempt}
            )
            return
        room_id = str(messages[0].get("room_id") or "direct")
        same_messages: dict[tuple[int, ...], list[str]] = defaultdict(list)
        for connection_id, indexes in failed.items():
            same_messages[tuple(indexes)].append(connection_id)
        logger.warning("fan-out posts to retry", extra={"sockets": len(failed), "attempt": attempt})
        self._queue(
            room_id,
            [
                ({"messages": [messages[i] for i in indexes], "attempt": attempt}, ids)
                for indexes, ids in sorted(same_messages.items())
            ],
        )

    def post_all(
        self, room_id: str, connection_ids: Iterable[str], messages: Sequence[dict[str, Any]]
    ) -> int:
        """Post to a room's sockets: inline when few, else as queued chunks for the fan-out
        Lambdas. Returns the number of chunks queued."""
        ids = list(dict.fromkeys(connection_ids))
        if not ids or not messages:
            return 0
        if len(ids) <= self.inline_max:
            self.post_now(ids, messages)
            return 0
        return self._queue(room_id, [({"messages": list(messages)}, ids)])

    def _queue(self, room_id: str, posts: list[tuple[dict[str, Any], list[str]]]) -> int:
        """Each (what to post, to whom) as chunks of the fan-out queue, every socket in its own
        message group of the room. Returns the number of chunks."""
        # The id SQS deduplicates on: a retried send of the same batch is dropped.
        key = self.new_id()
        entries = []
        for number, (body, ids) in enumerate(posts):
            by_group: dict[int, list[str]] = defaultdict(list)
            for connection_id in ids:
                by_group[group_of(connection_id, self.groups)].append(connection_id)
            entries += [
                (
                    f"{room_id}.{group}",
                    f"{key}.{number}.{group}.{part}",
                    {"kind": POST, **body, "connection_ids": chunk},
                )
                for group, members in sorted(by_group.items())
                for part, chunk in enumerate(_even_chunks(members, self.chunk_size))
            ]
        self.queue.in_order(entries)
        return len(entries)

    def on_message(self, body: dict[str, Any]) -> None:
        """One queued chunk, in a fan-out Lambda; raises when its failed posts could not be
        queued again."""
        if body.get("kind") != POST:
            logger.warning("unknown fan-out message", extra={"fanout_kind": str(body.get("kind"))})
            return
        ids = [str(c) for c in body.get("connection_ids", [])]
        messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
        attempt = body.get("attempt", 0)
        failed = self._deliver(ids, messages)
        if failed:
            # If the queue fails here, this chunk fails (the function's partial batch response)
            # and SQS hands it back whole: its sockets may hear it twice, none never.
            self._retry(failed, messages, (attempt if isinstance(attempt, int) else RETRIES) + 1)


def _even_chunks(items: list[str], most: int) -> list[list[str]]:
    """As few chunks as `most` allows, of even sizes (so a group's chunks take as long)."""
    parts = -(-len(items) // max(1, most))
    size = -(-len(items) // parts)
    return [items[i : i + size] for i in range(0, len(items), size)]
