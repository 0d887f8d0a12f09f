"""Posting to WebSocket clients through API Gateway's @connections API, in parallel."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from threading import Lock
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

logger = logging.getLogger("salon.connections")

_GONE = "GoneException"


class Connections:
    """One boto3 client (thread-safe) and a small pool, both built on first use."""

    def __init__(self, endpoint_url: str, region: str, max_workers: int = 32) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._max_workers = max_workers
        self._client: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = Lock()

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                if not self._endpoint_url:
                    raise RuntimeError(
                        "No @connections endpoint: set WEBSOCKET_API_ID and WEBSOCKET_STAGE "
                        "or SALON_WS_MANAGEMENT_URL."
                    )
                self._client = boto3.client(
                    "apigatewaymanagementapi",
                    endpoint_url=self._endpoint_url,
                    region_name=self._region,
                    config=Config(
                        max_pool_connections=self._max_workers,
                        retries={"max_attempts": 3, "mode": "standard"},
                    ),
                )
            return self._client

    def _get_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_workers, "salon-post")
            return self._pool

    def post(self, connection_id: str, message: dict[str, Any]) -> bool:
        """Send one message. False when the connection is gone (HTTP 410)."""
        return self._post_bytes(connection_id, _encode(message))

    def post_many(self, connection_ids: Iterable[str], message: dict[str, Any]) -> list[str]:
        """Send the same message to many connections in parallel; return the ids that are gone."""
        ids = list(connection_ids)
        if not ids:
            return []
        data = _encode(message)
        if len(ids) == 1:
            return [] if self._post_bytes(ids[0], data) else ids
        self._get_client()
        delivered = self._get_pool().map(lambda cid: self._post_quietly(cid, data), ids)
        return [cid for cid, ok in zip(ids, delivered, strict=True) if not ok]

    def _post_quietly(self, connection_id: str, data: bytes) -> bool:
        # One client's failure (throttling, a payload error) must not stop the others';
        # it is logged in _post_bytes and counts as not gone.
        try:
            return self._post_bytes(connection_id, data)
        except ClientError:
            return True

    def _post_bytes(self, connection_id: str, data: bytes) -> bool:
        try:
            self._get_client().post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _GONE:
                return False
            logger.warning(
                "post to connection failed",
                extra={"connection_id": connection_id, "error_code": _error_code(exc)},
            )
            raise
        return True

    def close(self, connection_id: str) -> None:
        try:
            self._get_client().delete_connection(ConnectionId=connection_id)
        except ClientError as exc:
            if _error_code(exc) != _GONE:
                raise


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _encode(message: dict[str, Any]) -> bytes:
    # allow_nan=False: NaN and Infinity are not JSON, and a browser's JSON.parse rejects them.
    return json.dumps(message, separators=(",", ":"), default=str, allow_nan=False).encode()
