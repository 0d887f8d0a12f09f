"""Domain errors: every refusal Salon makes, each with a stable code the clients can branch on."""

from __future__ import annotations

from enum import Enum


class Kind(Enum):
    """What sort of refusal an error is; the edge maps each kind to one HTTP status."""

    INVALID = "invalid"  # the request itself is malformed (400)
    UNAUTHENTICATED = "unauthenticated"  # no valid credentials (401)
    FORBIDDEN = "forbidden"  # authenticated, but the role does not allow it (403)
    NOT_FOUND = "not_found"  # the thing does not exist or is not visible (404)
    CONFLICT = "conflict"  # the state changed under the caller, or it is taken (409)
    GONE = "gone"  # it existed and has expired or been used (410)
    TOO_LARGE = "too_large"  # a payload over the limit (413)
    RATE_LIMITED = "rate_limited"  # slow down (429)
    UNAVAILABLE = "unavailable"  # a dependency failed; retrying may help (503)


class SalonError(Exception):
    """Base of every domain error. `code` is stable and documented; `message` is for people."""

    code: str = "error"
    kind: Kind = Kind.INVALID
    default_message: str = "The request could not be completed."

    def __init__(self, message: str | None = None, **details: object) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)


class ValidationError(SalonError):
    code = "invalid_request"
    kind = Kind.INVALID
    default_message = "The request is not valid."


class NotAuthenticatedError(SalonError):
    code = "not_authenticated"
    kind = Kind.UNAUTHENTICATED
    default_message = "Sign in first: the access token is missing, invalid or expired."


class ForbiddenError(SalonError):
    code = "forbidden"
    kind = Kind.FORBIDDEN
    default_message = "You are not allowed to do that."


class NotFoundError(SalonError):
    code = "not_found"
    kind = Kind.NOT_FOUND
    default_message = "Nothing was found there."


class ConflictError(SalonError):
    code = "conflict"
    kind = Kind.CONFLICT
    default_message = "That conflicts with the current state; reload and try again."


class PayloadTooLargeError(SalonError):
    code = "payload_too_large"
    kind = Kind.TOO_LARGE
    default_message = "The message is too large."


class RateLimitedError(SalonError):
    code = "rate_limited"
    kind = Kind.RATE_LIMITED
    default_message = "Too many attempts; wait a moment and try again."


class UnavailableError(SalonError):
    code = "unavailable"
    kind = Kind.UNAVAILABLE
    default_message = "A service Salon depends on did not answer; try again shortly."
