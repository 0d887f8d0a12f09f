"""Scheduled rooms (events): who hosts them, when they may start, RSVPs, and lapsing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from chalicelib.domain.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from chalicelib.domain.text import MAX_TITLE_LENGTH

MAX_DESCRIPTION_LENGTH = 1000
MAX_COHOSTS = 10
# How far ahead an event may be scheduled, and how early a host may start it.
MAX_AHEAD = timedelta(days=90)
EARLY_START = timedelta(minutes=15)


class EventStatus(Enum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    CANCELLED = "cancelled"
    # Nobody started it within the grace period after its start time (never stored: derived).
    LAPSED = "lapsed"


_WHY = {
    EventStatus.LIVE: "is live",
    EventStatus.CANCELLED: "was cancelled",
    EventStatus.LAPSED: "has lapsed",
}


class EventNotFoundError(NotFoundError):
    code = "event_not_found"
    default_message = "There is no such event."


class NotAnEventHostError(ForbiddenError):
    code = "not_event_host"
    default_message = "Only the event's hosts can do that."


class EventNotScheduledError(ConflictError):
    code = "event_not_scheduled"
    default_message = "The event is no longer scheduled: it is live, cancelled or has lapsed."


class EventTooEarlyError(ConflictError):
    code = "event_too_early"
    default_message = "An event can be started at most 15 minutes before its start time."


class InvalidEventTimeError(ValidationError):
    code = "invalid_event_time"
    default_message = "The start time must be in the future, within 90 days, with a time zone."


@dataclass(frozen=True)
class ScheduledEvent:
    event_id: str
    host_id: str
    title: str
    description: str
    starts_at: datetime
    created_at: datetime
    cohost_ids: frozenset[str] = frozenset()
    status: EventStatus = EventStatus.SCHEDULED
    room_id: str | None = None
    rsvp_count: int = 0
    version: int = 0
    # The club it is held in: it is listed for the club's members and followers, and goes
    # live as the club's room (its admins moderate).
    club_id: str | None = None

    @property
    def host_ids(self) -> frozenset[str]:
        return self.cohost_ids | {self.host_id}

    def status_at(self, now: datetime, grace: timedelta) -> EventStatus:
        if self.status is EventStatus.SCHEDULED and now > self.starts_at + grace:
            return EventStatus.LAPSED
        return self.status


def _title(title: str) -> str:
    clean = title.strip()
    if not clean or len(clean) > MAX_TITLE_LENGTH:
        raise ValidationError(f"A title has 1 to {MAX_TITLE_LENGTH} characters.", field="title")
    return clean


def _starts_at(at: datetime, now: datetime) -> datetime:
    if at.tzinfo is None or not now < at <= now + MAX_AHEAD:
        raise InvalidEventTimeError(field="starts_at")
    return at


def _cohosts(host_id: str, cohost_ids: list[str]) -> frozenset[str]:
    cohosts = frozenset(cohost_ids) - {host_id}
    if len(cohosts) > MAX_COHOSTS:
        raise ValidationError(f"At most {MAX_COHOSTS} co-hosts.", field="cohost_ids")
    return cohosts


def schedule(
    event_id: str,
    host_id: str,
    title: str,
    description: str,
    starts_at: datetime,
    cohost_ids: list[str],
    now: datetime,
    club_id: str | None = None,
) -> ScheduledEvent:
    return ScheduledEvent(
        event_id=event_id,
        host_id=host_id,
        title=_title(title),
        description=description.strip(),
        starts_at=_starts_at(starts_at, now),
        created_at=now,
        cohost_ids=_cohosts(host_id, cohost_ids),
        club_id=club_id,
    )


def _require_scheduled(event: ScheduledEvent, now: datetime, grace: timedelta) -> None:
    status = event.status_at(now, grace)
    if status is not EventStatus.SCHEDULED:
        raise EventNotScheduledError(f"The event is no longer scheduled: it {_WHY[status]}.")


def edit(
    event: ScheduledEvent,
    actor_id: str,
    changes: dict[str, Any],
    now: datetime,
    grace: timedelta,
) -> ScheduledEvent:
    """The event's creator changes what is sent, while it is still scheduled."""
    if actor_id != event.host_id:
        raise NotAnEventHostError()
    _require_scheduled(event, now, grace)
    updated = event
    if "title" in changes:
        updated = replace(updated, title=_title(changes["title"]))
    if "description" in changes:
        updated = replace(updated, description=str(changes["description"]).strip())
    if "starts_at" in changes:
        updated = replace(updated, starts_at=_starts_at(changes["starts_at"], now))
    if "cohost_ids" in changes:
        updated = replace(updated, cohost_ids=_cohosts(event.host_id, changes["cohost_ids"]))
    return updated


def cancel(event: ScheduledEvent, actor_id: str, now: datetime, grace: timedelta) -> ScheduledEvent:
    if actor_id != event.host_id:
        raise NotAnEventHostError()
    _require_scheduled(event, now, grace)
    return replace(event, status=EventStatus.CANCELLED)


def check_start(event: ScheduledEvent, actor_id: str, now: datetime, grace: timedelta) -> None:
    """Any host may start it, from 15 minutes before its time until the grace period ends."""
    if actor_id not in event.host_ids:
        raise NotAnEventHostError()
    _require_scheduled(event, now, grace)
    if now < event.starts_at - EARLY_START:
        raise EventTooEarlyError()


def check_rsvp(event: ScheduledEvent, now: datetime, grace: timedelta) -> None:
    _require_scheduled(event, now, grace)


def without_host(
    event: ScheduledEvent, user_id: str, now: datetime, grace: timedelta
) -> ScheduledEvent:
    """A host's account is deleted. A co-host is dropped; the creator hands the event to a
    co-host (the first by id), who may then edit or cancel it. An upcoming event they host
    alone is cancelled: its RSVP'd members see it cancelled. A live, lapsed or cancelled
    event they hosted alone keeps their random id as its host, like the ledger: once the
    profile is gone it names nobody."""
    if user_id in event.cohost_ids:
        return replace(event, cohost_ids=event.cohost_ids - {user_id})
    if user_id != event.host_id:
        return event
    if event.cohost_ids:
        heir = min(event.cohost_ids)
        return replace(event, host_id=heir, cohost_ids=event.cohost_ids - {heir})
    if event.status_at(now, grace) is EventStatus.SCHEDULED:
        return replace(event, status=EventStatus.CANCELLED)
    return event
