"""Fakes of Salon's outside world that subclass the real adapters and record what they did."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from threading import Lock
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.adapters.connections import Connections
from chalicelib.adapters.timers import Timers


class RecordingConnections(Connections):
    """Delivers nothing; keeps every message per connection, and can mark connections gone."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9/unused", "us-east-1")
        self.sent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        # Every delivered post in the order made: (connection id, message type).
        self.order: list[tuple[str, str]] = []
        self._recording = Lock()
        self.gone: set[str] = set()
        self.closed: list[str] = []
        # Posts to throttle, per connection: each is refused as API Gateway refuses a post over
        # the account's quota (after the client's retries), until the count runs out.
        self.throttled: Counter[str] = Counter()

    def _post_bytes(self, connection_id: str, data: bytes) -> bool:
        if connection_id in self.gone:
            return False
        if self.throttled[connection_id] > 0:
            self.throttled[connection_id] -= 1
            raise ClientError(
                {
                    "Error": {"Code": "LimitExceededException", "Message": "Too Many Requests"},
                    "ResponseMetadata": {"HTTPStatusCode": 429},
                },
                "PostToConnection",
            )
        message = json.loads(data)
        with self._recording:
            self.sent[connection_id].append(message)
            self.order.append((connection_id, str(message.get("type"))))
        return True

    def _get_client(self) -> Any:
        return None

    def close(self, connection_id: str) -> None:
        self.closed.append(connection_id)
        self.gone.add(connection_id)

    def last(self, connection_id: str) -> dict[str, Any]:
        return self.sent[connection_id][-1]


class ManualTimers(Timers):
    """Keeps delayed messages until the test fires them (as if the delay had passed)."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9/unused", "us-east-1")
        self.pending: list[tuple[int, dict[str, Any]]] = []
        # Each `in_order` call: (message group, deduplication id, body) for a FIFO queue.
        self.ordered: list[list[tuple[str, str, dict[str, Any]]]] = []

    def after(self, delay_s: int, message: dict[str, Any]) -> None:
        self.pending.append((delay_s, message))

    def many(self, delay_s: int, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.after(delay_s, message)

    def in_order(self, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
        self.ordered.append(list(entries))

    def take(self, kind: str) -> list[dict[str, Any]]:
        taken = [m for _, m in self.pending if m["kind"] == kind]
        self.pending = [(d, m) for d, m in self.pending if m["kind"] != kind]
        return taken
