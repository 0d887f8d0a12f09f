"""Stripe-shaped API errors for the emulator, built on localstripe's UserError."""

from __future__ import annotations

from typing import Any

from localstripe.errors import UserError

INVALID_REQUEST = "invalid_request_error"
CARD_ERROR = "card_error"
IDEMPOTENCY_ERROR = "idempotency_error"
API_ERROR = "api_error"


class ApiError(UserError):  # type: ignore[misc]  # localstripe is untyped
    """A UserError whose body carries Stripe's `type`, `code`, `param` and extra fields.

    Subclassing UserError keeps localstripe's own handlers and ours on one error path: whatever
    raises it inside a localstripe method is turned into a JSON answer by our error middleware.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        contents: dict[str, Any] = {}
        if code is not None:
            contents["code"] = code
            contents["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param is not None:
            contents["param"] = param
        contents.update(extra)
        super().__init__(status, message, contents)
        # UserError always writes type=invalid_request_error; put Stripe's real type back.
        self.body["error"]["type"] = type


def unknown_parameters(params: dict[str, Any]) -> ApiError:
    """The error Stripe answers when a request carries a parameter the endpoint does not know."""
    name = sorted(params)[0]
    return ApiError(400, f"Received unknown parameter: {name}", param=name)


def invalid(param: str, message: str | None = None) -> ApiError:
    """A 400 for one bad parameter value."""
    return ApiError(400, message or f"Invalid value for {param}.", param=param)


def missing(param: str) -> ApiError:
    """A 400 for a required parameter that was not sent."""
    return ApiError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def no_such(kind: str, id: str, param: str = "id") -> ApiError:
    """Stripe's 404 for an object that does not exist."""
    return ApiError(404, f"No such {kind}: '{id}'", code="resource_missing", param=param)
