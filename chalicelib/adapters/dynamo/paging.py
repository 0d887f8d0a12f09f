"""Pages of a query or scan, and the opaque cursors clients page with (a DynamoDB key)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pynamodb.exceptions import QueryError, ScanError
from pynamodb.indexes import Index
from pynamodb.models import Model
from pynamodb.pagination import ResultIterator

from chalicelib.domain.errors import ValidationError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Page:
    items: list[str]
    cursor: str | None


def encode_token(value: Any) -> str:
    """A cursor's text: `value` as URL-safe base64 of its JSON."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def decode_token(cursor: str) -> Any:
    """What `encode_token` made the cursor from; anything else a client sends is a validation
    error on the cursor, never a server error."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past the parser's limit
        raise ValidationError("That cursor is not valid.", field="cursor") from exc


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    return encode_token(key) if key else None


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    key = decode_token(cursor)
    # A DynamoDB key: attribute names to typed values ({"S": "..."}).
    well_formed = isinstance(key, dict) and all(
        isinstance(v, dict)
        and len(v) == 1
        and next(iter(v)) in ("S", "N")
        and isinstance(next(iter(v.values())), str)
        for v in key.values()
    )
    if not well_formed:
        raise ValidationError("That cursor is not valid.", field="cursor")
    start: dict[str, Any] = key
    return start


def read_page(rows: ResultIterator[R], convert: Callable[[R], T]) -> tuple[list[T], str | None]:
    """One page of a query or scan (begun at `decode_cursor(cursor)`), and the cursor to the
    next. A cursor that decodes but names no real position is the client's mistake, not a
    server error."""
    try:
        items = [convert(row) for row in rows]
    except (QueryError, ScanError) as error:
        if getattr(error, "cause_response_code", None) == "ValidationException":
            raise ValidationError("That cursor is not valid.", field="cursor") from error
        raise
    return items, encode_cursor(rows.last_evaluated_key)


M = TypeVar("M", bound=Model)


def newest_first(
    index: Index[M], key: str, limit: int, cursor: str | None, convert: Callable[[M], T]
) -> tuple[list[T], str | None]:
    """One page of an index's items under one key, its range key descending (newest first)."""
    rows = index.query(
        key, scan_index_forward=False, limit=limit, last_evaluated_key=decode_cursor(cursor)
    )
    return read_page(rows, convert)
