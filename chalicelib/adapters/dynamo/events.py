"""Scheduled events, their hosts' rows and their RSVPs, in DynamoDB."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.adapters.dynamo.models import EventHostModel, EventModel, EventRsvpModel
from chalicelib.adapters.dynamo.paging import Page, decode_cursor, read_page
from chalicelib.adapters.dynamo.tx import condition_failed, transaction
from chalicelib.domain.errors import ConflictError
from chalicelib.domain.events import EventNotFoundError, EventStatus, ScheduledEvent

SCHEDULED = EventStatus.SCHEDULED.value


class EventChangedError(ConflictError):
    code = "event_changed"
    default_message = "The event changed meanwhile; reload it and try again."


def _sort_key(event: ScheduledEvent) -> str:
    return f"{_iso(event.starts_at)}#{event.event_id}"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def club_listing(club_id: str) -> str:
    """The event_hosts key under which a club's events are listed."""
    return f"club#{club_id}"


def _listed_under(event: ScheduledEvent) -> set[str]:
    return set(event.host_ids) | ({club_listing(event.club_id)} if event.club_id else set())


def _event(row: EventModel) -> ScheduledEvent:
    return ScheduledEvent(
        event_id=row.event_id,
        host_id=row.host_id,
        title=row.title,
        description=row.description or "",
        starts_at=row.starts_at,
        created_at=row.created_at,
        cohost_ids=frozenset(row.cohost_ids or ()),
        status=EventStatus(row.status),
        room_id=row.room_id,
        rsvp_count=int(row.rsvp_count or 0),
        version=int(row.revision),
        club_id=row.club_id,
    )


class EventRepository:
    def create(self, event: ScheduledEvent) -> None:
        with transaction() as tx:
            tx.save(
                EventModel(
                    event.event_id,
                    host_id=event.host_id,
                    cohost_ids=set(event.cohost_ids) or None,
                    title=event.title,
                    description=event.description,
                    starts_at=event.starts_at,
                    created_at=event.created_at,
                    status=event.status.value,
                    rsvp_count=0,
                    revision=1,
                    club_id=event.club_id,
                ),
                condition=EventModel.event_id.does_not_exist(),
            )
            for host in sorted(_listed_under(event)):
                tx.save(EventHostModel(host, _sort_key(event), event_id=event.event_id))

    def get(self, event_id: str) -> ScheduledEvent:
        try:
            return _event(EventModel.get(event_id, consistent_read=True))
        except EventModel.DoesNotExist as exc:
            raise EventNotFoundError() from exc

    def many(self, event_ids: Iterable[str]) -> list[ScheduledEvent]:
        ids = list(dict.fromkeys(event_ids))
        return [_event(row) for row in EventModel.batch_get(ids)] if ids else []

    def update(self, before: ScheduledEvent, after: ScheduledEvent) -> None:
        """Save an edit or a cancellation, conditioned on the version read; the hosts' rows
        move with the time and the co-hosts, in the same transaction."""
        try:
            with transaction() as tx:
                tx.update(
                    EventModel(before.event_id),
                    actions=[
                        EventModel.title.set(after.title),
                        EventModel.description.set(after.description),
                        EventModel.starts_at.set(after.starts_at),
                        EventModel.status.set(after.status.value),
                        EventModel.cohost_ids.set(set(after.cohost_ids))
                        if after.cohost_ids
                        else EventModel.cohost_ids.remove(),
                        EventModel.revision.set(before.version + 1),
                    ],
                    condition=(EventModel.revision == before.version)
                    & (EventModel.status == SCHEDULED),
                )
                old = {(host, _sort_key(before)) for host in _listed_under(before)}
                new = {(host, _sort_key(after)) for host in _listed_under(after)}
                for host, key in sorted(old - new):
                    tx.delete(EventHostModel(host, key))
                for host, key in sorted(new - old):
                    tx.save(EventHostModel(host, key, event_id=after.event_id))
        except TransactWriteError as error:
            if tx.failed(error)[0]:
                raise EventChangedError() from error
            raise

    def start(self, event: ScheduledEvent, room_id: str) -> bool:
        """Mark it live in its room, once: False if another host (or an edit) was first."""
        try:
            EventModel(event.event_id).update(
                actions=[
                    EventModel.status.set(EventStatus.LIVE.value),
                    EventModel.room_id.set(room_id),
                    EventModel.revision.set(event.version + 1),
                ],
                condition=(EventModel.revision == event.version) & (EventModel.status == SCHEDULED),
            )
        except UpdateError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def drop_host(self, before: ScheduledEvent, after: ScheduledEvent, user_id: str) -> None:
        """A deleted member leaves the event (`after`: handed over, cancelled, or without
        them), whatever its status, conditioned on the version read; their host row goes in
        the same transaction."""
        try:
            with transaction() as tx:
                tx.update(
                    EventModel(before.event_id),
                    actions=[
                        EventModel.host_id.set(after.host_id),
                        EventModel.status.set(after.status.value),
                        EventModel.cohost_ids.set(set(after.cohost_ids))
                        if after.cohost_ids
                        else EventModel.cohost_ids.remove(),
                        EventModel.revision.set(before.version + 1),
                    ],
                    condition=EventModel.revision == before.version,
                )
                tx.delete(EventHostModel(user_id, _sort_key(before)))
        except TransactWriteError as error:
            if tx.failed(error)[0]:
                raise EventChangedError() from error
            raise

    def hosted_ever(self, user_id: str) -> list[str]:
        """Every event the member hosts or co-hosts, past ones too (their host rows)."""
        return list(dict.fromkeys(row.event_id for row in EventHostModel.query(user_id)))

    def drop_host_row(self, user_id: str, event_id: str) -> None:
        """A host row whose event is gone."""
        for row in EventHostModel.query(
            user_id, filter_condition=EventHostModel.event_id == event_id
        ):
            row.delete()

    # --- RSVPs ------------------------------------------------------------------------------

    def rsvp(self, event_id: str, user_id: str, at: datetime) -> bool:
        """RSVP, counted in the same transaction; False if already, or no longer scheduled
        (the caller tells which by reading the event)."""
        try:
            with transaction() as tx:
                tx.save(
                    EventRsvpModel(event_id, user_id, created_at=at),
                    condition=EventRsvpModel.user_id.does_not_exist(),
                )
                tx.update(
                    EventModel(event_id),
                    actions=[EventModel.rsvp_count.add(1)],
                    condition=EventModel.status == SCHEDULED,
                )
        except TransactWriteError as error:
            if any(tx.failed(error)):
                return False
            raise
        return True

    def unrsvp(self, event_id: str, user_id: str) -> bool:
        try:
            with transaction() as tx:
                tx.delete(
                    EventRsvpModel(event_id, user_id),
                    condition=EventRsvpModel.user_id.exists(),
                )
                tx.update(
                    EventModel(event_id),
                    actions=[EventModel.rsvp_count.add(-1)],
                    condition=EventModel.event_id.exists(),
                )
        except TransactWriteError as error:
            if any(tx.failed(error)):
                return False
            raise
        return True

    def rsvps_of(self, user_id: str) -> list[str]:
        """The events a member RSVP'd to (account deletion)."""
        return [row.event_id for row in EventRsvpModel.by_member.query(user_id)]

    def has_rsvp(self, event_id: str, user_id: str) -> bool:
        try:
            EventRsvpModel.get(event_id, user_id, consistent_read=True)
        except EventRsvpModel.DoesNotExist:
            return False
        return True

    def rsvps(self, event_id: str, limit: int, cursor: str | None) -> Page:
        rows = EventRsvpModel.query(event_id, limit=limit, last_evaluated_key=decode_cursor(cursor))
        return Page(*read_page(rows, lambda row: row.user_id))

    # --- lists ------------------------------------------------------------------------------

    def hosted_by(self, user_ids: Iterable[str], since: datetime, limit: int) -> list[str]:
        """The events these members host (or co-host) starting from `since`, soonest first:
        one query per member."""
        found: list[tuple[str, str]] = []
        for user_id in dict.fromkeys(user_ids):
            rows = EventHostModel.query(
                user_id, EventHostModel.starts_event >= _iso(since), limit=limit
            )
            found += [(row.starts_event, row.event_id) for row in rows]
        return list(dict.fromkeys(event_id for _, event_id in sorted(found)))[:limit]
