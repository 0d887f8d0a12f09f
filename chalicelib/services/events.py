"""Scheduled rooms: schedule, edit, cancel, RSVP, list, preview, and start (it becomes a room)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamo.clubs import ClubRepository
from chalicelib.adapters.dynamo.connections import ConnectionRecord
from chalicelib.adapters.dynamo.events import EventChangedError, EventRepository, club_listing
from chalicelib.adapters.dynamo.identity import FOLLOWS, IdentityRepository
from chalicelib.config import Settings
from chalicelib.domain import clubs as club_rules
from chalicelib.domain import events as domain
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.events import EventStatus, ScheduledEvent
from chalicelib.domain.identity import BlockedError, MemberNotFoundError
from chalicelib.services.notifications import Notifier
from chalicelib.services.rooms import Rooms

logger = logging.getLogger("salon.events")

UPCOMING_LIMIT = 50
# "Of people I follow" reads one short query per followed member: the first this many.
FOLLOWED_HOSTS = 200


def parse_time(text: str, field: str = "starts_at") -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise domain.InvalidEventTimeError(field=field) from exc
    if at.tzinfo is None:
        raise domain.InvalidEventTimeError(field=field)
    return at


@dataclass
class Events:
    repo: EventRepository
    people: IdentityRepository
    rooms: Rooms
    notifier: Notifier
    settings: Settings
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    clubs: ClubRepository

    @property
    def grace(self) -> timedelta:
        return timedelta(seconds=self.settings.event_grace_s)

    # --- hosts ------------------------------------------------------------------------------

    def schedule(self, user_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        cohosts = self._members(fields.get("cohost_ids", []))
        club_id = fields.get("club_id")
        if club_id:
            # Whoever may start the club's rooms may schedule its events.
            club = self.clubs.get(club_id)
            club_rules.room_kind(club, self.clubs.membership(club_id, user_id), "open")
        event = domain.schedule(
            self.new_id(),
            user_id,
            fields["title"],
            fields.get("description", ""),
            parse_time(fields["starts_at"]),
            cohosts,
            self.clock(),
            club_id=club_id or None,
        )
        self.repo.create(event)
        logger.info("event scheduled", extra={"event_id": event.event_id})
        return self._view(event, user_id)

    def edit(self, user_id: str, event_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        before = self.repo.get(event_id)
        changes = dict(fields)
        if "starts_at" in changes:
            changes["starts_at"] = parse_time(changes["starts_at"])
        if "cohost_ids" in changes:
            changes["cohost_ids"] = self._members(changes["cohost_ids"])
        after = domain.edit(before, user_id, changes, self.clock(), self.grace)
        self.repo.update(before, after)
        return self._view(self.repo.get(event_id), user_id)

    def cancel(self, user_id: str, event_id: str) -> dict[str, Any]:
        before = self.repo.get(event_id)
        after = domain.cancel(before, user_id, self.clock(), self.grace)
        self.repo.update(before, after)
        return self._view(self.repo.get(event_id), user_id)

    def start(self, who: ConnectionRecord, event_id: str) -> dict[str, Any]:
        """A host starts it: a live open room with every host a moderator, and everyone who
        RSVP'd is pushed (through the notifications queue)."""
        event = self.repo.get(event_id)
        domain.check_start(event, who.user_id, self.clock(), self.grace)
        hosts = set(event.host_ids)
        if event.club_id:  # the club's room: its admins moderate it too
            hosts |= self.clubs.admin_ids(event.club_id)
        view = self.rooms.create(who, event.title, "open", hosts=hosts, club_id=event.club_id)
        if not self.repo.start(event, view["room_id"]):
            # Another host started it (or it was just edited): this room goes again.
            self.rooms.leave(who)
            raise domain.EventNotScheduledError()
        if event.club_id:
            self.clubs.add_live_room(event.club_id, view["room_id"], ())
        self.notifier.rsvps_starting(event.event_id, view["room_id"], event.title, who.user_id)
        return view

    # --- members ----------------------------------------------------------------------------

    def rsvp(self, user_id: str, event_id: str) -> dict[str, Any]:
        event = self.repo.get(event_id)
        domain.check_rsvp(event, self.clock(), self.grace)
        if self.people.blocked_either_way(user_id, event.host_ids):
            raise BlockedError()
        if not self.repo.rsvp(event_id, user_id, self.clock()):
            # Already RSVP'd answers the same; otherwise the event stopped being scheduled.
            domain.check_rsvp(self.repo.get(event_id), self.clock(), self.grace)
        return self._view(self.repo.get(event_id), user_id)

    def unrsvp(self, user_id: str, event_id: str) -> dict[str, Any]:
        self.repo.get(event_id)
        self.repo.unrsvp(event_id, user_id)
        return self._view(self.repo.get(event_id), user_id)

    def view(self, user_id: str, event_id: str) -> dict[str, Any]:
        event = self.repo.get(event_id)
        if self.people.blocked_either_way(user_id, [event.host_id]):
            raise domain.EventNotFoundError()
        return self._view(event, user_id)

    def preview(self, event_id: str) -> dict[str, Any]:
        """What the public link shows anyone, signed in or not: no member ids."""
        public = self._public(self.repo.get(event_id))
        public["hosts"] = [{k: p[k] for k in ("username", "name")} for p in public["hosts"]]
        return public

    def upcoming(self, user_id: str, scope: str) -> dict[str, Any]:
        """Scheduled and live events, soonest first: the member's own (hosted or co-hosted)
        and their clubs', or those of people and clubs they follow."""
        now = self.clock()
        since = now - self.grace
        places = self.clubs.of_user(user_id)
        if scope == "mine":
            hosts = [user_id]
            clubs = [p.club_id for p in places if p.is_member]
        else:
            hosts = self.people.outgoing(user_id, FOLLOWS, FOLLOWED_HOSTS, None).items
            clubs = [p.club_id for p in places if p.following]
        hosts += [club_listing(c) for c in clubs]
        events = self.repo.many(self.repo.hosted_by(hosts, since, UPCOMING_LIMIT))
        blocked = self.people.blocked_either_way(user_id, {e.host_id for e in events})
        shown = sorted(
            (
                e
                for e in events
                if e.host_id not in blocked
                and e.status_at(now, self.grace) in (EventStatus.SCHEDULED, EventStatus.LIVE)
            ),
            key=lambda e: (e.starts_at, e.event_id),
        )
        return {"items": [self._view(e, user_id) for e in shown]}

    # --- account deletion -------------------------------------------------------------------

    def forget(self, user_id: str) -> None:
        """A deleted member's RSVPs go (each event's count with it), and they leave every event
        they host (domain.without_host): an upcoming one they host alone is cancelled, which
        its RSVP'd members see on the event; nobody is pushed, as when a host cancels. Safe to
        run again: a deletion that stopped halfway finishes it."""
        for event_id in self.repo.rsvps_of(user_id):
            self.repo.unrsvp(event_id, user_id)
        for event_id in self.repo.hosted_ever(user_id):
            self._leave_event(event_id, user_id)

    def _leave_event(self, event_id: str, user_id: str, attempts: int = 3) -> None:
        for attempt in range(attempts):
            try:
                before = self.repo.get(event_id)
            except domain.EventNotFoundError:
                self.repo.drop_host_row(user_id, event_id)
                return
            after = domain.without_host(before, user_id, self.clock(), self.grace)
            try:
                self.repo.drop_host(before, after, user_id)
                return
            except EventChangedError:
                # A co-host edited it meanwhile: read it again.
                if attempt == attempts - 1:
                    raise

    # --- views ------------------------------------------------------------------------------

    def link(self, event_id: str) -> str:
        return f"{self.settings.app_url}/events/{event_id}"

    def _members(self, user_ids: Any) -> list[str]:
        if not isinstance(user_ids, list) or not all(isinstance(u, str) for u in user_ids):
            raise ValidationError("cohost_ids is a list of member ids.", field="cohost_ids")
        known = self.people.profiles(user_ids)
        if any(u not in known for u in user_ids):
            raise MemberNotFoundError(field="cohost_ids")
        return list(user_ids)

    def _public(self, event: ScheduledEvent) -> dict[str, Any]:
        hosts = self.people.profiles(sorted(event.host_ids))
        return {
            "event_id": event.event_id,
            "title": event.title,
            "description": event.description,
            "starts_at": event.starts_at.isoformat(),
            "status": event.status_at(self.clock(), self.grace).value,
            "rsvp_count": event.rsvp_count,
            "hosts": [
                {"user_id": uid, "username": p.username, "name": p.name}
                for uid in sorted(event.host_ids)
                if (p := hosts.get(uid)) is not None
            ],
            "link": self.link(event.event_id),
        }

    def _view(self, event: ScheduledEvent, viewer_id: str) -> dict[str, Any]:
        return {
            **self._public(event),
            "host_id": event.host_id,
            "club_id": event.club_id,
            "room_id": event.room_id,
            "rsvp": self.repo.has_rsvp(event.event_id, viewer_id),
            "is_host": viewer_id in event.host_ids,
        }
