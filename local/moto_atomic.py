"""Makes moto's DynamoDB answer one request at a time, as DynamoDB applies each atomically.

moto reads and copies items without locks; two threads writing at once can make it fail with
"dictionary changed size during iteration". DynamoDB itself applies every request (a put, a
conditional update, a whole transaction) atomically, so serialising requests in the emulator
changes no behaviour Salon relies on: concurrent clients still race on conditions between
requests, exactly as they do on AWS.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.RLock()
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    _installed = True
