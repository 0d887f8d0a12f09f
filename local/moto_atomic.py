"""Makes moto's DynamoDB answer one request at a time, as DynamoDB applies each atomically, and
roll a cancelled transaction back item by item, at DynamoDB's cost rather than a table's.

moto reads and copies items without locks; two threads writing at once can make it fail with
"dictionary changed size during iteration". DynamoDB itself applies every request (a put, a
conditional update, a whole transaction) atomically, so serialising requests in the emulator
changes no behaviour Salon relies on: concurrent clients still race on conditions between
requests, exactly as they do on AWS.

moto 5.2's TransactWriteItems deep-copies the table of every item it names before it starts
(once per item), to put them back if the transaction is cancelled: O(items x table size) per
transaction, which DynamoDB does not have (a join in a room of 2,000 copied the 2,000 member
rows; a payout run for 10,000 creators was quadratic). Here only the items the transaction
names are saved, and put back if it fails: the same outcome, since a transaction writes
nothing but the items it names.
`whole_table_copies()` brings moto's own way back, for a bench to compare.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.RLock()
_installed = False
_transact_write_items: Any = None  # moto's own, once installed


def install() -> None:
    global _installed, _transact_write_items
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _lock:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
    _transact_write_items = DynamoDBBackend.transact_write_items
    DynamoDBBackend.transact_write_items = _item_level_rollback  # type: ignore[method-assign]
    _installed = True


@contextmanager
def whole_table_copies() -> Iterator[None]:
    """moto's own transactions while inside (after `install()`): every table copied."""
    from moto.dynamodb.models import DynamoDBBackend

    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoDBBackend.transact_write_items = _item_level_rollback  # type: ignore[method-assign]


class _KeepTables:
    """Stands in for the `copy` module inside moto's transaction: its tables are not copied."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _item_level_rollback(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb import models

    saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    try:
        for entry in transact_items:
            op = next(iter(entry.values()))
            table = backend.get_table(op["TableName"])
            key = op.get("Key") or {
                name: op["Item"][name]
                for name in (table.hash_key_attr, table.range_key_attr)
                if name is not None
            }
            before = backend.get_item(op["TableName"], key)
            saved.append((op["TableName"], key, before.to_json()["Attributes"] if before else None))
    except Exception:  # noqa: BLE001 - a malformed request: moto answers it its own way
        return _transact_write_items(backend, transact_items)  # type: ignore[no-any-return]
    # Serialised by the lock above (every DynamoDB request), so no other request sees the swap.
    models.copy = _KeepTables  # type: ignore[assignment]
    try:
        return _transact_write_items(backend, transact_items)  # type: ignore[no-any-return]
    except Exception:
        for table_name, key, attributes in reversed(saved):
            if attributes is not None:
                backend.put_item(table_name, attributes)
            elif backend.get_item(table_name, key) is not None:
                backend.delete_item(table_name, key)
        raise
    finally:
        models.copy = copy
