"""Push notifications: what a member receives, when they do not, and what a burst becomes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalicelib.domain.errors import ValidationError

MAX_DEVICES_PER_MEMBER = 10
MAX_TOKEN_LENGTH = 4096
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class Platform(Enum):
    APNS = "apns"
    FCM = "fcm"


class PushKind(Enum):
    """Why a push goes out. Members mute kinds one by one."""

    PING = "ping"  # someone pinged you into their room
    ROOM_STARTED = "room_started"  # someone you follow started an open room
    ON_STAGE = "on_stage"  # someone you follow went on stage in an open room
    EVENT_STARTED = "event_started"  # an event you RSVP'd to went live
    TIP = "tip"  # you received a tip
    STIPEND = "stipend"  # the creator program paid your stipend

    @property
    def collapses(self) -> bool:
        """Followed people talking come in bursts: those are collected and sent as one."""
        return self in (PushKind.ROOM_STARTED, PushKind.ON_STAGE)


@dataclass(frozen=True)
class Preferences:
    """A member's push settings. Quiet hours run from `quiet_from` to `quiet_to` on the
    member's own clock (`time_zone`, IANA); they may span midnight."""

    muted: frozenset[PushKind] = frozenset()
    quiet_from: str | None = None
    quiet_to: str | None = None
    time_zone: str = "UTC"

    def receives(self, kind: PushKind) -> bool:
        return kind not in self.muted

    def is_quiet(self, at: datetime) -> bool:
        if not (self.quiet_from and self.quiet_to) or self.quiet_from == self.quiet_to:
            return False
        local = at.astimezone(ZoneInfo(self.time_zone)).time()
        start, end = _clock(self.quiet_from), _clock(self.quiet_to)
        if start < end:
            return start <= local < end
        return local >= start or local < end  # across midnight

    def to_dict(self) -> dict[str, Any]:
        return {
            "receive": {kind.value: kind not in self.muted for kind in PushKind},
            "quiet_hours": (
                {"from": self.quiet_from, "to": self.quiet_to}
                if self.quiet_from and self.quiet_to
                else None
            ),
            "time_zone": self.time_zone,
        }


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def change_preferences(current: Preferences, changes: dict[str, Any]) -> Preferences:
    """Apply a PATCH of settings; every bad value is refused with the field it is in."""
    muted = set(current.muted)
    receive = changes.get("receive")
    if receive is not None:
        if not isinstance(receive, dict):
            raise ValidationError("receive must be an object of kinds.", field="receive")
        for name, wanted in receive.items():
            try:
                kind = PushKind(name)
            except ValueError as exc:
                raise ValidationError(f"No such notification: {name}.", field="receive") from exc
            if not isinstance(wanted, bool):
                raise ValidationError("Each kind is true or false.", field="receive")
            (muted.discard if wanted else muted.add)(kind)
    quiet_from, quiet_to = current.quiet_from, current.quiet_to
    if "quiet_hours" in changes:
        quiet = changes["quiet_hours"]
        if quiet is None:
            quiet_from = quiet_to = None
        elif isinstance(quiet, dict) and set(quiet) == {"from", "to"}:
            for value in quiet.values():
                if not (isinstance(value, str) and _HH_MM.fullmatch(value)):
                    raise ValidationError("Quiet hours are HH:MM.", field="quiet_hours")
            quiet_from, quiet_to = quiet["from"], quiet["to"]
        else:
            raise ValidationError(
                "quiet_hours is null or {from, to} in HH:MM.", field="quiet_hours"
            )
    time_zone = changes.get("time_zone", current.time_zone)
    if not valid_time_zone(time_zone):
        raise ValidationError("That is not an IANA time zone.", field="time_zone")
    return Preferences(frozenset(muted), quiet_from, quiet_to, time_zone)


def valid_time_zone(name: Any) -> bool:
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# What SNS platform applications report on their events topic (docs/runbook.md): an endpoint
# deleted, changed (SNS disables one when APNs or FCM says its token is dead), or a permanent
# delivery failure. EndpointCreated is not subscribed to.
ENDPOINT_EVENTS = frozenset({"EndpointDeleted", "EndpointUpdated", "DeliveryFailure"})
ENDPOINT_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:endpoint/[A-Za-z_]+/[^/]+/[^/]+$")


@dataclass(frozen=True)
class EndpointEvent:
    kind: str
    endpoint_arn: str


def endpoint_event(message: str) -> EndpointEvent | None:
    """The endpoint event in an SNS notification's Message, or None for anything else (the
    topic could be published to by mistake: that is ignored, not retried)."""
    try:
        document = json.loads(message)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    kind, arn = document.get("EventType"), document.get("EndpointArn")
    if kind not in ENDPOINT_EVENTS or not isinstance(arn, str) or not ENDPOINT_ARN.match(arn):
        return None
    return EndpointEvent(kind, arn)


def hour_window(at: datetime) -> int:
    """The hour a push counts against the cap in (epoch hours, UTC)."""
    return int(at.timestamp()) // 3600


@dataclass(frozen=True)
class Push:
    """One notification as the device shows it; `data` deep-links into the app."""

    kind: PushKind
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)


def talking(count: int, first_name: str, room_id: str, title: str) -> Push:
    """What a burst of followed people talking becomes: one push, naming one or counting."""
    if count == 1:
        return Push(PushKind.ROOM_STARTED, f"{first_name} is talking", title, {"room_id": room_id})
    return Push(
        PushKind.ROOM_STARTED,
        f"{count} people you follow are talking",
        f"{first_name} and others: {title}",
        {"room_id": room_id},
    )


def ping(name: str, room_id: str, title: str) -> Push:
    return Push(PushKind.PING, f"{name} wants you in their room", title, {"room_id": room_id})


def event_started(title: str, room_id: str, event_id: str) -> Push:
    return Push(
        PushKind.EVENT_STARTED,
        "Starting now",
        title,
        {"room_id": room_id, "event_id": event_id},
    )


def tip_received(name: str, amount_cents: int, currency: str) -> Push:
    return Push(
        PushKind.TIP,
        "You received a tip",
        f"{name} sent you {_money(amount_cents, currency)}",
    )


def stipend_paid(amount_cents: int, currency: str, month: str) -> Push:
    return Push(
        PushKind.STIPEND,
        "Your stipend was paid",
        f"{_money(amount_cents, currency)} for {month}",
    )


def _money(cents: int, currency: str) -> str:
    symbol = "$" if currency.lower() == "usd" else currency.upper() + " "
    return f"{symbol}{cents // 100}.{cents % 100:02d}"
