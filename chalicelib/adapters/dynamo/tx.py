"""DynamoDB transactions that can say which of the caller's actions failed its condition."""

from __future__ import annotations

from functools import lru_cache
from types import TracebackType
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib.config import settings

CONDITION_FAILED = "ConditionalCheckFailed"
# PynamoDB sends the actions grouped by kind, in this order, whatever order they were added in;
# cancellation reasons come back in the order sent.
_SENT_ORDER = ("condition_check", "delete", "save", "update")


def condition_failed(error: Exception) -> bool:
    """Whether a single-item write was refused by its condition (by the error code)."""
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


@lru_cache(maxsize=1)
def _connection() -> Connection:
    return Connection(region=settings().region)


def client() -> Any:
    """The botocore DynamoDB client behind PynamoDB, for the one call PynamoDB lacks: a
    BatchGetItem across tables."""
    return _connection().client


class Transaction:
    """All-or-nothing writes. `failed(error)` lists, in the order the actions were added,
    whether each one's condition failed. `token` makes a retried commit idempotent (10 min)."""

    def __init__(self, token: str | None = None) -> None:
        self._tx = TransactWrite(connection=_connection(), client_request_token=token)
        self._added: list[tuple[str, int]] = []
        self._counts = dict.fromkeys(_SENT_ORDER, 0)

    @property
    def size(self) -> int:
        """How many actions were added: the index the next one will have in `failed`."""
        return len(self._added)

    def _add(self, kind: str) -> None:
        self._added.append((kind, self._counts[kind]))
        self._counts[kind] += 1

    def condition_check(
        self, model_cls: Any, hash_key: Any, range_key: Any = None, *, condition: Any
    ) -> None:
        self._add("condition_check")
        self._tx.condition_check(model_cls, hash_key, range_key, condition=condition)

    def delete(self, model: Any, condition: Any = None) -> None:
        self._add("delete")
        self._tx.delete(model, condition=condition)

    def save(self, model: Any, condition: Any = None) -> None:
        self._add("save")
        self._tx.save(model, condition=condition)

    def update(self, model: Any, actions: list[Any], condition: Any = None) -> None:
        self._add("update")
        self._tx.update(model, actions=actions, condition=condition)

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._tx._commit()

    def failed(self, error: TransactWriteError) -> list[bool]:
        codes = [reason.code if reason else None for reason in error.cancellation_reasons]
        offset, start = {}, 0
        for kind in _SENT_ORDER:
            offset[kind] = start
            start += self._counts[kind]
        codes += [None] * (start - len(codes))
        return [codes[offset[kind] + i] == CONDITION_FAILED for kind, i in self._added]


def transaction(token: str | None = None) -> Transaction:
    return Transaction(token)
