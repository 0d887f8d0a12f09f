"""Push notifications: devices and settings (REST), and the worker that delivers them.

Whatever causes a push (a ping, a room starting, a tip) only queues a message (`Notifier`):
the notifications queue's worker reads settings, blocks and devices and publishes to SNS, so
no request waits on push, and a member with 10,000 followers costs their action one message.
The worker walks followers a page per message (each page queues the next), O(1) work per
follower: one batch read of settings and blocks, and one conditional update of the follower's
burst; the first person of a burst schedules that follower's one push, sent when the collapse
window closes ("3 people you follow are talking").

SQS delivers at least once, and a batch is retried: every notification has a stable id (given
when it is queued, or derived from what it is about), and each device is claimed for it with a
conditional write before the publish, so a replayed message or batch pushes nothing twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.dynamo.events import EventRepository
from chalicelib.adapters.dynamo.identity import FOLLOWS, IdentityRepository
from chalicelib.adapters.dynamo.push import Device, MemberState, PushRepository
from chalicelib.adapters.push import PushGateway
from chalicelib.adapters.timers import Timers
from chalicelib.config import Settings
from chalicelib.domain import notifications as domain
from chalicelib.domain.errors import ConflictError
from chalicelib.domain.notifications import Platform, Push, PushKind

logger = logging.getLogger("salon.notifications")

NAME_CACHE_S = 60
NAME_CACHE_SIZE = 1000
# How long a sent notification is remembered per device: the notifications queue keeps a
# message at most 4 days (SQS's default retention), so no retry can come later.
DELIVERY_MEMORY = timedelta(days=4)


class TooManyDevicesError(ConflictError):
    code = "too_many_devices"
    default_message = "Unregister a device first: a member has at most 10."


def device_id(token: str) -> str:
    """Devices are keyed by a digest of the token: Salon never stores the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def push_to_message(push: Push) -> dict[str, Any]:
    return {"kind": push.kind.value, "title": push.title, "body": push.body, "data": push.data}


def push_from_message(message: dict[str, Any]) -> Push:
    return Push(
        PushKind(message["kind"]),
        str(message["title"]),
        str(message["body"]),
        {str(k): str(v) for k, v in (message.get("data") or {}).items()},
    )


@dataclass
class Notifier:
    """What other use cases call: it queues, never sends. Each message carries its own id,
    the notification's identity through retries."""

    queue: Timers
    new_id: Callable[[], str]

    def send(self, user_id: str, push: Push, from_id: str | None = None) -> None:
        message = {"kind": "push", "to": user_id, "from": from_id, "push": push_to_message(push)}
        self.queue.after(0, {**message, "id": self.new_id()})

    def followers_talking(self, actor_id: str, kind: PushKind, room_id: str, title: str) -> None:
        self.queue.after(
            0,
            {
                "kind": "fanout",
                "from": actor_id,
                "push_kind": kind.value,
                "room_id": room_id,
                "title": title,
                "cursor": None,
                "id": self.new_id(),
            },
        )

    def rsvps_starting(self, event_id: str, room_id: str, title: str, host_id: str) -> None:
        self.queue.after(
            0,
            {
                "kind": "rsvps",
                "event_id": event_id,
                "room_id": room_id,
                "title": title,
                "from": host_id,
                "cursor": None,
            },
        )


@dataclass
class Notifications:
    repo: PushRepository
    people: IdentityRepository
    events: EventRepository
    gateway: PushGateway
    queue: Timers
    settings: Settings
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    # Names of people talking, for a minute: a fan-out to 10,000 names the same few people.
    _names: dict[str, tuple[datetime, str]] = field(default_factory=dict)

    # --- REST -------------------------------------------------------------------------------

    def register(self, user_id: str, platform: str, token: str) -> dict[str, Any]:
        kind = Platform(platform)
        known = self.repo.devices(user_id)
        did = device_id(token)
        if did not in {d.device_id for d in known} and len(known) >= domain.MAX_DEVICES_PER_MEMBER:
            raise TooManyDevicesError(field="token")
        arn = self.gateway.create_endpoint(kind, token)
        self.repo.add_device(Device(user_id, did, kind, arn), self.clock())
        return {"device_id": did, "platform": kind.value}

    def unregister(self, user_id: str, did: str) -> None:
        """Idempotent: a device already gone answers the same."""
        device = self.repo.device(user_id, did)
        if device is None:
            return
        self.repo.remove_device(user_id, device.device_id)
        self.gateway.delete_endpoint(device.endpoint_arn)

    def devices(self, user_id: str) -> dict[str, Any]:
        return {
            "items": [
                {"device_id": d.device_id, "platform": d.platform.value}
                for d in self.repo.devices(user_id)
            ]
        }

    def preferences(self, user_id: str) -> dict[str, Any]:
        return self.repo.preferences(user_id).to_dict()

    def change_preferences(self, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        updated = domain.change_preferences(self.repo.preferences(user_id), changes)
        self.repo.set_preferences(user_id, updated)
        return updated.to_dict()

    def forget(self, user_id: str) -> None:
        """A member's devices, endpoints and settings, gone (account deletion)."""
        for device in self.repo.forget(user_id):
            self.gateway.delete_endpoint(device.endpoint_arn)

    # --- SNS endpoint events ----------------------------------------------------------------

    def on_endpoint_event(self, message: str) -> str:
        """SNS reported an endpoint deleted, changed or failing for good: a device whose
        endpoint no longer delivers is removed now, not at its next failed publish. The event
        is only a hint: the endpoint's state is read again, so a late "disabled" event for an
        endpoint its member has registered again since (which re-enables it) removes nothing.
        Answers what happened (for logs and tests)."""
        event = domain.endpoint_event(message)
        if event is None:
            logger.warning("not an endpoint event, ignored")
            return "ignored"
        enabled = (
            None
            if event.kind == "EndpointDeleted"
            else self.gateway.endpoint_enabled(event.endpoint_arn)
        )
        if enabled:
            return "kept"
        devices = self.repo.devices_with_endpoint(event.endpoint_arn)
        for user_id, did in devices:
            self.repo.remove_device(user_id, did)
        if enabled is False:
            # Disabled for good (the platform said the token is dead): a new registration of
            # the app makes a new one.
            self.gateway.delete_endpoint(event.endpoint_arn)
        logger.info(
            "push endpoint reported gone, devices removed",
            extra={"event_type": event.kind, "devices": len(devices)},
        )
        return "removed" if devices else "unknown_endpoint"

    # --- the worker -------------------------------------------------------------------------

    def on_message(self, message: dict[str, Any], message_id: str) -> None:
        """One queued message. `message_id` is SQS's, the same on each redelivery: the
        notification's id when the message carries none (queued before ids were)."""
        kind = message.get("kind")
        if kind == "push":
            self.deliver(
                str(message["to"]),
                push_from_message(message["push"]),
                str(message.get("id") or message_id),
                message.get("from"),
            )
        elif kind == "fanout":
            self._fan_out(message, message_id)
        elif kind == "rsvps":
            self._tell_rsvps(message)
        elif kind == "burst":
            self._send_burst(str(message["to"]))
        else:
            logger.warning("unknown notification message", extra={"push_message": str(kind)})

    def deliver(
        self,
        user_id: str,
        push: Push,
        notification_id: str,
        from_id: str | None = None,
        known: MemberState | None = None,
    ) -> str:
        """Send one push to every device of a member, unless their settings, the hour's cap or
        a block say no, and never twice to a device for one `notification_id`. Answers what
        happened (for logs and tests). `known`: the member's settings and count just read,
        saving the read."""
        prefs = known.preferences if known else self.repo.preferences(user_id)
        now = self.clock()
        # A burst was filtered by kind when it was collected (room started or on stage).
        if not push.kind.collapses and not prefs.receives(push.kind):
            return "muted"
        if prefs.is_quiet(now):
            return "quiet_hours"
        if from_id and self.people.blocked_either_way(from_id, [user_id]):
            return "blocked"
        devices = self.repo.devices(user_id)
        if not devices:
            return "no_device"
        if not self.repo.take_quota(
            user_id,
            domain.hour_window(now),
            self.settings.push_cap_per_hour,
            notification_id,
            known,
        ):
            return "capped"
        sent = 0
        for device in devices:
            # Claimed first: a retry after the publish never sends it again. A publish that
            # fails releases the claim, so the retry does send it.
            if not self.repo.claim_delivery(
                notification_id, device.device_id, now, DELIVERY_MEMORY
            ):
                continue
            try:
                published = self.gateway.publish(device.endpoint_arn, push)
            except Exception:
                self.repo.release_delivery(notification_id, device.device_id)
                raise
            if not published:
                # SNS says the platform gave up on this token: forget the device.
                self.repo.remove_device(user_id, device.device_id)
                self.gateway.delete_endpoint(device.endpoint_arn)
                logger.info("push endpoint disabled, device removed")
            sent += 1
        return "sent" if sent else "already_sent"

    def _fan_out(self, message: dict[str, Any], message_id: str) -> None:
        actor = str(message["from"])
        kind = PushKind(message["push_kind"])
        page = self.people.incoming(
            actor, FOLLOWS, self.settings.push_fanout_page, message.get("cursor")
        )
        if page.cursor:  # the next page first: pages run in parallel
            self.queue.after(0, {**message, "cursor": page.cursor})
        followers = page.items
        if not followers:
            return
        blocked = self.people.blocked_either_way(actor, followers)
        prefs = self.repo.preferences_of(followers)
        # The same on a retry of this page, so a follower's burst token is too.
        page_id = f"{message.get('id') or message_id}:{message.get('cursor') or ''}"
        starts = []
        for follower in followers:
            if follower in blocked or not prefs.get(follower, domain.Preferences()).receives(kind):
                continue
            room_id, title = str(message["room_id"]), str(message["title"])
            if self.repo.add_to_burst(follower, actor, room_id, title, f"{page_id}:{follower}"):
                starts.append({"kind": "burst", "to": follower})
        self.queue.many(self.settings.push_collapse_s, starts)

    def _tell_rsvps(self, message: dict[str, Any]) -> None:
        """Everyone who RSVP'd, a page per message (each page queues the next first)."""
        event_id = str(message["event_id"])
        page = self.events.rsvps(event_id, self.settings.push_fanout_page, message.get("cursor"))
        if page.cursor:
            self.queue.after(0, {**message, "cursor": page.cursor})
        starting = domain.event_started(str(message["title"]), str(message["room_id"]), event_id)
        host = str(message["from"])
        # An event starts once: its start is the notification, whichever page or retry.
        notification_id = f"event:{event_id}"
        for user_id in page.items:
            if user_id != host:
                self.deliver(user_id, starting, notification_id, from_id=host)

    def _send_burst(self, user_id: str) -> None:
        burst, state = self.repo.take_burst(user_id)
        if burst is None:
            return
        # Someone who blocked (or was blocked) since the burst began is left out of it.
        actors = sorted(burst.actor_ids - self.people.blocked_either_way(user_id, burst.actor_ids))
        if not actors:
            return
        talking = domain.talking(len(actors), self._name(actors[0]), burst.room_id, burst.title)
        try:
            self.deliver(user_id, talking, f"burst:{burst.burst_id}", known=state)
        except Exception:
            # The message comes back: so must the burst, or its retry would find none. The
            # devices already pushed are claimed and are not pushed again.
            self.repo.restore_burst(user_id, burst)
            raise

    def _name(self, user_id: str) -> str:
        now = self.clock()
        cached = self._names.get(user_id)
        if cached is None or (now - cached[0]).total_seconds() > NAME_CACHE_S:
            profile = self.people.profiles([user_id]).get(user_id)
            cached = (now, profile.name if profile else "Someone")
            if len(self._names) > NAME_CACHE_SIZE:
                self._names.clear()
            self._names[user_id] = cached
        return cached[1]
