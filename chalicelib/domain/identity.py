"""Who may join Salon and as whom: phone numbers, invitations, usernames and profiles."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import astuple, dataclass
from datetime import datetime
from enum import Enum

from chalicelib.domain.errors import (
    ConflictError,
    ForbiddenError,
    Kind,
    NotAuthenticatedError,
    NotFoundError,
    SalonError,
    ValidationError,
)

USERNAME_PATTERN = r"[A-Za-z0-9_]{3,30}"
CODE_DIGITS = 6


class PhoneStatus(Enum):
    WAITLISTED = "waitlisted"
    INVITED = "invited"
    MEMBER = "member"


class MemberStatus(Enum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


# --- errors -------------------------------------------------------------------------------


class InvalidPhoneError(ValidationError):
    code = "invalid_phone"
    default_message = "That is not a valid phone number; include the country code, like +1."


class InvalidUsernameError(ValidationError):
    code = "invalid_username"
    default_message = "Usernames have 3 to 30 letters, digits or underscores."


class WrongCodeError(SalonError):
    code = "wrong_code"
    kind = Kind.UNAUTHENTICATED
    default_message = "That code is not right."


class CodeExpiredError(SalonError):
    code = "code_expired"
    kind = Kind.GONE
    default_message = "That code has expired or was already used; ask for a new one."


class CodeLockedError(SalonError):
    code = "code_locked"
    kind = Kind.RATE_LIMITED
    default_message = "Too many wrong codes; ask for a new one."


class NotInvitedError(ForbiddenError):
    code = "not_invited"
    default_message = "Salon is invite-only: you are on the waitlist until a member invites you."


class AlreadyMemberError(ConflictError):
    code = "already_member"
    default_message = "That phone number already belongs to a member."


class AlreadyInvitedError(ConflictError):
    code = "already_invited"
    default_message = "That phone number has already been invited."


class NoInvitesLeftError(ForbiddenError):
    code = "no_invites_left"
    default_message = "You have no invitations left."


class UsernameTakenError(ConflictError):
    code = "username_taken"
    default_message = "That username is taken."


class MemberNotFoundError(NotFoundError):
    code = "member_not_found"
    default_message = "No member by that name."


class SuspendedError(ForbiddenError):
    code = "account_suspended"
    default_message = "This account is suspended."


class SessionRevokedError(NotAuthenticatedError):
    code = "session_revoked"
    default_message = "This session has ended; sign in again."


class BlockedError(ForbiddenError):
    code = "blocked"
    default_message = "You cannot do that: this member has blocked you."


class ReservationBusyError(ConflictError):
    code = "reservation_busy"
    default_message = "This number's reservation kept changing under the request; try again."


class SelfRelationError(ValidationError):
    code = "cannot_target_yourself"
    default_message = "You cannot do that to yourself."


# --- rules --------------------------------------------------------------------------------


def normalize_phone(raw: str) -> str:
    """E.164 form of a phone number written with its country code; refuse anything else."""
    import phonenumbers  # 18 ms to import: only the functions that take a number pay it

    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneError(field="phone") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneError(field="phone")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_username(raw: str) -> str:
    """Usernames are unique without regard to case; the claim key is lower-case."""
    if not re.fullmatch(USERNAME_PATTERN, raw):
        raise InvalidUsernameError(field="username")
    return raw.lower()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_digest(key: str, phone: str, code: str) -> str:
    # Keyed, because six digits are a million guesses away from any unkeyed hash.
    return hmac.new(key.encode(), f"sign-in:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def keyed_digest(key: str, purpose: str, value: str) -> str:
    """A stable name for a value that must not be stored in plain (a phone number, an address):
    equal values meet in one row, and the row does not say whose it is."""
    return hmac.new(key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def derived_secret(key: str, *parts: str) -> str:
    """An unguessable secret that the server can compute again from the same parts, so that
    a retried request gets the same answer instead of a second one."""
    mac = hmac.new(key.encode(), "\x00".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def address_group(source_ip: str) -> str:
    """Whom a per-address limit counts together: one IPv4 address, or one IPv6 /64, which is
    what a single subscriber or site is handed and can rotate addresses within at will."""
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class RefreshToken:
    """`<session id>.<secret>`: the id finds the session, the secret proves possession."""

    session_id: str
    secret: str

    def __str__(self) -> str:
        return f"{self.session_id}.{self.secret}"

    @classmethod
    def new(cls, session_id: str) -> RefreshToken:
        return cls(session_id, secrets.token_urlsafe(32))

    def successor(self, key: str) -> RefreshToken:
        """The token a refresh of this one hands out. Derived, not random, so that parallel or
        retried refreshes of one token all get the same next token."""
        return RefreshToken(self.session_id, derived_secret(key, "refresh", *astuple(self)))

    @classmethod
    def parse(cls, raw: str) -> RefreshToken:
        session_id, dot, secret = raw.partition(".")
        if not dot or not session_id or not secret:
            raise NotAuthenticatedError("That refresh token is not valid.")
        return cls(session_id, secret)


@dataclass(frozen=True)
class Profile:
    user_id: str
    username: str
    name: str
    bio: str
    photo_url: str
    invited_by: str | None
    followers_count: int
    following_count: int
    created_at: datetime
    status: MemberStatus = MemberStatus.ACTIVE
    phone: str = ""
    invites_left: int = 0
    suspended_until: datetime | None = None

    def suspended(self, now: datetime) -> bool:
        """Suspended now: indefinitely, or for a period that has not yet ended."""
        if self.status is not MemberStatus.SUSPENDED:
            return False
        return self.suspended_until is None or now < self.suspended_until

    def public(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "name": self.name,
            "bio": self.bio,
            "photo_url": self.photo_url,
            "followers_count": self.followers_count,
            "following_count": self.following_count,
            "created_at": self.created_at.isoformat(),
        }

    def private(self) -> dict[str, object]:
        return {**self.public(), "phone": self.phone, "invites_left": self.invites_left}


@dataclass(frozen=True)
class PhoneRecord:
    phone: str
    status: PhoneStatus
    invited_by: str | None = None
    user_id: str | None = None
    reserved_username: str | None = None


@dataclass(frozen=True)
class PendingCode:
    """A sign-in code as stored: its digest, the attempts spent, and when it was used, if it was
    (a used code answers the same right code again for a short while: a retry, not a reuse)."""

    digest: str
    attempts: int
    expires_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True)
class SessionState:
    """A live session: whose it is, the digest of its current refresh secret, and when that
    secret was last rotated (the retry grace is measured from then)."""

    user_id: str
    secret_digest: str
    rotated_at: datetime | None = None
