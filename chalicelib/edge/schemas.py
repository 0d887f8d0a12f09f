"""The shape of every request body, query and admin event, declared once."""

from __future__ import annotations

import dataclasses
import re

from chalicelib.domain import clubs, moderation
from chalicelib.domain.errors import NotFoundError
from chalicelib.domain.events import MAX_DESCRIPTION_LENGTH
from chalicelib.domain.photos import PHOTO_TYPES
from chalicelib.domain.text import MAX_TITLE_LENGTH
from chalicelib.edge.validation import Field

ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"

PHONE = Field("phone", str, min_length=1, max_length=32)
CODE = Field("code", str, pattern=r"[0-9]{6}")
NAME = Field("name", str, min_length=1, max_length=50)
USERNAME = Field("username", str, min_length=1, max_length=30)
BIO = Field("bio", str, required=False, max_length=300)
PHOTO_URL = Field("photo_url", str, required=False, max_length=500, pattern=r"(https://\S+)?")
SIGN_UP_TOKEN = Field("sign_up_token", str, min_length=1, max_length=2048)
REFRESH_TOKEN = Field("refresh_token", str, min_length=1, max_length=256)
LIMIT = Field("limit", int, required=False, minimum=1, maximum=100)
CURSOR = Field("cursor", str, required=False, max_length=2048)
USER_ID = Field("user_id", str, pattern=ID_PATTERN)
COUNT = Field("count", int, minimum=1, maximum=1000)

SIGN_IN = (PHONE,)
VERIFY = (PHONE, CODE)
SIGN_UP = (SIGN_UP_TOKEN, NAME, USERNAME)
RESERVE = (SIGN_UP_TOKEN, USERNAME)
REFRESH = (REFRESH_TOKEN,)
INVITE = (PHONE,)
EDIT_PROFILE = (
    Field("name", str, required=False, min_length=1, max_length=50),
    BIO,
    PHOTO_URL,
)
PAGE = (LIMIT, CURSOR)
PHOTO_UPLOAD = (Field("content_type", str, choices=tuple(PHOTO_TYPES)),)
PHOTO = (Field("key", str, min_length=1, max_length=200),)

ENABLED = (Field("enabled", bool),)
AMOUNT_CENTS = Field("amount_cents", int, minimum=1, maximum=10_000_000)
CREATOR_ID = Field("creator_id", str, pattern=ID_PATTERN)
TIP = (
    CREATOR_ID,
    AMOUNT_CENTS,
    Field("idempotency_key", str, min_length=8, max_length=128, pattern=r"[A-Za-z0-9_\-:.]+"),
)
QUOTE = (CREATOR_ID, AMOUNT_CENTS)
DEVICE = (
    Field("platform", str, choices=("apns", "fcm")),
    # APNs tokens are 64 hex digits, FCM registration tokens ~160 URL-safe characters.
    Field("token", str, min_length=8, max_length=4096, pattern=r"[A-Za-z0-9_\-:.]+"),
)
PUSH_SETTINGS = (
    Field("receive", dict, required=False, max_length=1000),
    Field("quiet_hours", dict, required=False, max_length=200),
    Field("time_zone", str, required=False, min_length=1, max_length=64),
)
EVENT_FIELDS = (
    Field("title", str, min_length=1, max_length=MAX_TITLE_LENGTH),
    Field("description", str, required=False, max_length=MAX_DESCRIPTION_LENGTH),
    # ISO 8601 with its offset: 2026-12-24T18:00:00+01:00
    Field("starts_at", str, min_length=1, max_length=40),
    Field("cohost_ids", list, required=False, max_length=1000),
)
# An event held in a club (by its admins, or members where the club lets them start rooms).
NEW_EVENT = (*EVENT_FIELDS, Field("club_id", str, required=False, pattern=ID_PATTERN))
EDIT_EVENT = tuple(dataclasses.replace(f, required=False) for f in EVENT_FIELDS)
UPCOMING = (Field("scope", str, required=False, choices=("mine", "following")),)
NEW_CLUB = (
    Field("name", str, min_length=1, max_length=clubs.MAX_NAME_LENGTH),
    Field("description", str, required=False, max_length=clubs.MAX_DESCRIPTION_LENGTH),
    Field("members_start_rooms", bool, required=False),
)
CLUB_INVITE = (USER_ID,)
CLUB_ROLE = (Field("role", str, choices=("admin", "member")),)
FEEDBACK = (Field("text", str, min_length=1, max_length=2000),)

ADMIN_CREATE_FOUNDER = (PHONE, NAME, USERNAME, Field("invites", int, minimum=0, maximum=1000))
ADMIN_GRANT_INVITES = (USER_ID, COUNT)
ADMIN_ADMIT = (PHONE,)
ADMIN_MEMBER = (USER_ID,)
ADMIN_NOTHING: tuple[Field, ...] = ()
MONTH_FIELD = Field("month", str, required=False, pattern=r"\d{4}-(0[1-9]|1[0-2])")
APPLICATION = (
    Field("pitch", str, min_length=1, max_length=2000),
    Field("links", list, required=False, max_length=2000),
)
ADMIN_APPLICATIONS = (
    Field("status", str, required=False, choices=("pending", "approved", "rejected")),
)
ADMIN_APPROVE = (
    USER_ID,
    Field("monthly_cents", int, required=False, minimum=1, maximum=10_000_000),
    Field("start_month", str, required=False, pattern=r"\d{4}-(0[1-9]|1[0-2])"),
    Field("months", int, required=False, minimum=1, maximum=36),
)
ADMIN_REJECT = (USER_ID, Field("reason", str, required=False, max_length=500))
ADMIN_END_ENROLLMENT = (
    USER_ID,
    Field("last_month", str, required=False, pattern=r"\d{4}-(0[1-9]|1[0-2])"),
)
ADMIN_RUN_PAYOUTS = (MONTH_FIELD, Field("dry_run", bool, required=False))
# A day (2026-12-01) or a UTC time (2026-12-01T06:00:00Z); the period is [from, to).
PERIOD_BOUND = r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z)?"
ADMIN_RECONCILE = (
    Field("from", str, max_length=20, pattern=PERIOD_BOUND),
    Field("to", str, max_length=20, pattern=PERIOD_BOUND),
)
ADMIN_FEEDBACK = (Field("limit", int, required=False, minimum=1, maximum=500),)

REPORT = (
    Field("target_kind", str, choices=tuple(k.value for k in moderation.TargetKind)),
    Field("target_id", str, pattern=ID_PATTERN),
    Field("reason", str, choices=tuple(r.value for r in moderation.Reason)),
    Field("note", str, required=False, max_length=moderation.MAX_NOTE_LENGTH),
)
DELETE_ACCOUNT = (CODE,)
REPORT_ID = Field("report_id", str, pattern=ID_PATTERN)
ADMIN_REPORTS = (
    Field(
        "status",
        str,
        required=False,
        choices=tuple(s.value for s in moderation.ReportStatus),
    ),
    LIMIT,
    CURSOR,
)
ADMIN_REPORT = (REPORT_ID,)
ADMIN_DECIDE = (
    REPORT_ID,
    Field("decision", str, choices=tuple(d.value for d in moderation.Decision)),
    # Whom a warning or suspension applies to: by default the reported member.
    Field("user_id", str, required=False, pattern=ID_PATTERN),
    # A suspension's length; without it a suspension is indefinite.
    Field("days", int, required=False, minimum=1, maximum=moderation.MAX_SUSPENSION_DAYS),
)
ADMIN_ROOM_LOG = (Field("room_id", str, pattern=ID_PATTERN), CURSOR)


class NoSuchPathError(NotFoundError):
    code = "not_found"
    default_message = "Nothing was found at that address."


def path_id(value: str) -> str:
    """An id from the URL; anything that cannot be an id is simply not found."""
    if not re.fullmatch(ID_PATTERN, value):
        raise NoSuchPathError()
    return value
