"""Work through an SQS queue: 'do this in N seconds' (grace periods, count flushes), or in order
(a FIFO queue's message groups: the fan-out's chunks)."""

from __future__ import annotations

import json
from threading import Lock
from typing import Any

import boto3

MAX_DELAY_S = 900  # SQS's limit on DelaySeconds
BATCH = 10


class Timers:
    def __init__(
        self, queue_url: str, region: str, setting: str = "SALON_TIMERS_QUEUE_URL"
    ) -> None:
        self._queue_url = queue_url
        self._setting = setting
        self._region = region
        self._client: Any = None
        self._lock = Lock()

    def _sqs(self) -> Any:
        with self._lock:
            if self._client is None:
                if not self._queue_url:
                    raise RuntimeError(f"No queue: set {self._setting}.")
                self._client = boto3.client("sqs", region_name=self._region)
            return self._client

    def after(self, delay_s: int, message: dict[str, Any]) -> None:
        self._sqs().send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(message, separators=(",", ":")),
            DelaySeconds=max(0, min(MAX_DELAY_S, delay_s)),
        )

    def many(self, delay_s: int, messages: list[dict[str, Any]]) -> None:
        """Several at once: ten per request, SQS's batch limit."""
        for start in range(0, len(messages), BATCH):
            batch = messages[start : start + BATCH]
            answer = self._sqs().send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": json.dumps(m, separators=(",", ":")),
                        "DelaySeconds": max(0, min(MAX_DELAY_S, delay_s)),
                    }
                    for i, m in enumerate(batch)
                ],
            )
            if answer.get("Failed"):
                raise RuntimeError(f"{len(answer['Failed'])} queued messages were refused")

    def in_order(self, entries: list[tuple[str, str, dict[str, Any]]]) -> None:
        """(message group, deduplication id, body) to a FIFO queue, ten per request: SQS
        delivers one group's messages in the order sent, one batch at a time."""
        for start in range(0, len(entries), BATCH):
            batch = entries[start : start + BATCH]
            answer = self._sqs().send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "MessageBody": json.dumps(body, separators=(",", ":")),
                        "MessageGroupId": group,
                        "MessageDeduplicationId": dedup,
                    }
                    for i, (group, dedup, body) in enumerate(batch)
                ],
            )
            if answer.get("Failed"):
                raise RuntimeError(f"{len(answer['Failed'])} queued messages were refused")
