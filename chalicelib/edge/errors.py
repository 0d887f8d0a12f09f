"""The one place where errors become HTTP responses and WebSocket error messages."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import Kind, SalonError

HTTP_STATUS = {
    Kind.INVALID: 400,
    Kind.UNAUTHENTICATED: 401,
    Kind.FORBIDDEN: 403,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.GONE: 410,
    Kind.TOO_LARGE: 413,
    Kind.RATE_LIMITED: 429,
    Kind.UNAVAILABLE: 503,
}

INTERNAL_CODE = "internal_error"
INTERNAL_MESSAGE = "Something went wrong on our side. It has been logged; please try again."


def error_payload(error: SalonError) -> dict[str, Any]:
    payload: dict[str, Any] = {"code": error.code, "message": error.message}
    field = error.details.get("field")
    if field is not None:
        payload["field"] = field
    retry_after = error.details.get("retry_after")
    if retry_after is not None:
        payload["retry_after"] = retry_after
    return payload


def http_status(error: SalonError) -> int:
    return HTTP_STATUS[error.kind]


def internal_payload() -> dict[str, Any]:
    return {"code": INTERNAL_CODE, "message": INTERNAL_MESSAGE}


def ws_error(payload: dict[str, Any], ref: Any = None) -> dict[str, Any]:
    message = {"type": "error", **payload}
    if ref is not None:
        message["ref"] = ref
    return message
