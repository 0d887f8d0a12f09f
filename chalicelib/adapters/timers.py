"""Delayed work through an SQS queue: 'do this in N seconds' (grace periods, count flushes)."""

from __future__ import annotations

import json
from threading import Lock
from typing import Any

import boto3

MAX_DELAY_S = 900  # SQS's limit on DelaySeconds


class Timers:
    def __init__(self, queue_url: str, region: str) -> None:
        self._queue_url = queue_url
        self._region = region
        self._client: Any = None
        self._lock = Lock()

    def _sqs(self) -> Any:
        with self._lock:
            if self._client is None:
                if not self._queue_url:
                    raise RuntimeError("No timers queue: set SALON_TIMERS_QUEUE_URL.")
                self._client = boto3.client("sqs", region_name=self._region)
            return self._client

    def after(self, delay_s: int, message: dict[str, Any]) -> None:
        self._sqs().send_message(
            QueueUrl=self._queue_url,
            MessageBody=json.dumps(message, separators=(",", ":")),
            DelaySeconds=max(0, min(MAX_DELAY_S, delay_s)),
        )
