"""A WebSocket client for e2e tests: reads in the background, answers are matched by `ref`."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.support import contract

Message = dict[str, Any]


class WsClient:
    def __init__(self, url: str, token: str, name: str = "") -> None:
        self.name = name
        # Every message sent and received is checked against docs/asyncapi.yaml.
        self.validate = True
        self.mismatches: list[str] = []
        self._exit = ExitStack()
        self._ws: ClientConnection = self._exit.enter_context(
            connect(f"{url}?token={token}", open_timeout=10)
        )
        self.messages: list[Message] = []
        self._seen = threading.Condition()
        self._refs = itertools.count()
        self.closed = False
        self._reader = threading.Thread(target=self._read, name=f"ws-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                raw = self._ws.recv()
                message = json.loads(raw)
                if self.validate:
                    try:
                        contract.validate_server_message(message)
                    except AssertionError as mismatch:
                        self.mismatches.append(str(mismatch))
                with self._seen:
                    self.messages.append(message)
                    self._seen.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._seen:
                self.closed = True
                self._seen.notify_all()

    def wait_for(self, match: Callable[[Message], bool], timeout: float = 10) -> Message:
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for message in self.messages:
                    if match(message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"{self.name}: no matching message; got {self.messages}")
                self._seen.wait(left)

    def event(self, type_: str, timeout: float = 10, **fields: Any) -> Message:
        return self.wait_for(
            lambda m: m.get("type") == type_ and all(m.get(k) == v for k, v in fields.items()),
            timeout,
        )

    def send(self, action: str, **fields: Any) -> Message:
        ref = f"{self.name}-{next(self._refs)}"
        message = {"action": action, "ref": ref, **fields}
        if self.validate:
            contract.validate_client_message(message)
        self._ws.send(json.dumps(message))
        return self.wait_for(lambda m: m.get("ref") == ref)

    def send_raw(self, frame: str | bytes) -> None:
        """Send any frame as it is, unchecked: for hostile-input tests."""
        self._ws.send(frame)

    def ok(self, action: str, **fields: Any) -> Message:
        reply = self.send(action, **fields)
        assert reply["type"] != "error", (self.name, action, reply)
        return reply

    def refused(self, action: str, **fields: Any) -> str:
        reply = self.send(action, **fields)
        assert reply["type"] == "error", (self.name, action, reply)
        return str(reply["code"])

    def close(self) -> None:
        self._exit.close()
        self._reader.join(5)
        assert not self.mismatches, f"{self.name}: messages off the contract: {self.mismatches}"
