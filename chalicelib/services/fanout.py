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

    def post_now(self, connection_ids: Iterable[str], messages: Sequence[dict[str, Any]]) -> None:
        """Post in this Lambda, in order; a connection that is gone (410) is removed."""
        ids = list(dict.fromkeys(connection_ids))
        gone: set[str] = set()
        for message in messages:
            live = [c for c in ids if c not in gone]
            gone.update(self.poster.post_many(live, message))
        for connection_id in gone:
            # A 410 means the client is gone for good; its row would otherwise linger.
            self.connections.remove(connection_id)

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
        by_group: dict[int, list[str]] = defaultdict(list)
        for connection_id in ids:
            by_group[group_of(connection_id, self.groups)].append(connection_id)
        # The id SQS deduplicates on: a retried send of the same batch is dropped.
        key = self.new_id()
        entries = [
            (
                f"{room_id}.{group}",
                f"{key}.{group}.{part}",
                {"kind": POST, "messages": list(messages), "connection_ids": chunk},
            )
            for group, members in sorted(by_group.items())
            for part, chunk in enumerate(_even_chunks(members, self.chunk_size))
        ]
        self.queue.in_order(entries)
        return len(entries)

    def on_message(self, body: dict[str, Any]) -> None:
        """One queued chunk, in a fan-out Lambda."""
        if body.get("kind") != POST:
            logger.warning("unknown fan-out message", extra={"fanout_kind": str(body.get("kind"))})
            return
        ids = [str(c) for c in body.get("connection_ids", [])]
        messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
        self.post_now(ids, messages)


def _even_chunks(items: list[str], most: int) -> list[list[str]]:
    """As few chunks as `most` allows, of even sizes (so a group's chunks take as long)."""
    parts = -(-len(items) // max(1, most))
    size = -(-len(items) // parts)
    return [items[i : i + size] for i in range(0, len(items), size)]
