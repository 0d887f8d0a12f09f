"""Posting to WebSocket clients through API Gateway's @connections API, in parallel."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from threading import Lock
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger("salon.connections")

_GONE = "GoneException"
# Throttled (the account's request quota; 429), or API Gateway itself failed: another try
# later may well succeed. Anything else (403, 413, ...) will not.
_THROTTLED = 429


class Outcome(Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # 410: the client has gone for good
    FAILED = "failed"  # throttled, the service or the network failed: worth another try
    REFUSED = "refused"  # refused for good (a bad id, too large): logged, not tried again


@dataclass(frozen=True)
class Delivery:
    """What became of one message posted to many connections."""

    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 2, 5


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
                        # A post that gets no answer fails in seconds (and is retried through
                        # the fan-out queue), not after botocore's 60 s, past the function's 30.
                        connect_timeout=CONNECT_TIMEOUT_S,
                        read_timeout=READ_TIMEOUT_S,
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

    def post_many(self, connection_ids: Iterable[str], message: dict[str, Any]) -> Delivery:
        """Send the same message to many connections in parallel (after the client's own
        retries): which are gone, and which failed in a way another try may mend."""
        ids = list(connection_ids)
        if not ids:
            return Delivery()
        data = _encode(message)
        if len(ids) == 1:
            outcomes = [self._outcome(ids[0], data)]
        else:
            self._get_client()
            outcomes = list(self._get_pool().map(lambda cid: self._outcome(cid, data), ids))
        pairs = list(zip(ids, outcomes, strict=True))
        return Delivery(
            gone=[cid for cid, o in pairs if o is Outcome.GONE],
            failed=[cid for cid, o in pairs if o is Outcome.FAILED],
        )

    def _outcome(self, connection_id: str, data: bytes) -> Outcome:
        # One client's failure must not stop the others': each post is classified apart.
        try:
            return Outcome.DELIVERED if self._post_bytes(connection_id, data) else Outcome.GONE
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return Outcome.FAILED if status == _THROTTLED or status >= 500 else Outcome.REFUSED
        except BotoCoreError as exc:  # the network: no answer at all
            logger.warning(
                "post to connection failed",
                extra={"connection_id": connection_id, "error_code": type(exc).__name__},
            )
            return Outcome.FAILED

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
