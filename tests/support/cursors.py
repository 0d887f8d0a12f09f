"""Cursors no listing ever handed out: each must be answered as a clear validation error."""

from __future__ import annotations

import base64
import json


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


FORGED_CURSORS = {
    "not base64": "%%%not-base64%%%",
    "not JSON": _b64(b"{not json"),
    "not UTF-8": _b64(b"\xff\xfe\xfd"),
    "a list": _b64(b"[1, 2]"),
    "a wrong shape": _b64(json.dumps({"a": 1}).encode()),
    # Under the query string's length limit, nested past the JSON parser's recursion limit.
    "nested": _b64(b"[" * 1200),
}
