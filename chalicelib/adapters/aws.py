"""A boto3 client made on first use and shared by the threads of one container."""

from __future__ import annotations

from threading import Lock
from typing import Any

import boto3


class LazyClient:
    def __init__(self, service: str, region: str) -> None:
        self._service = service
        self._region = region
        self._client: Any = None
        self._lock = Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = boto3.client(self._service, region_name=self._region)
            return self._client
