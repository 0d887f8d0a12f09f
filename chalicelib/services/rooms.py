"""Room use cases: load what an action touches, ask the domain, save, and tell who needs to know.

Fan-out follows each event's audience: stage changes reach everyone connected to the room,
raised hands reach moderators, an invitation reaches its invitee, and listener churn reaches
nobody directly: it marks the room's audience count as changed, and one delayed flush per
interval sends the count to everyone (so a join costs O(1), and the last change of a burst
still goes out).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.connections import Connections
from chalicelib.adapters.dynamo.clubs import ClubRepository
from chalicelib.adapters.dynamo.connections import ConnectionRecord, ConnectionRepository
from chalicelib.adapters.dynamo.identity import FOLLOWS, IdentityRepository
from chalicelib.adapters.dynamo.paging import decode_token, encode_token
from chalicelib.adapters.dynamo.rooms import (
    LoadedRoom,
    RoomChangedError,
    RoomNotFoundError,
    RoomRepository,
    RoomSummary,
)
from chalicelib.adapters.dynamo.safety import SafetyRepository
from chalicelib.adapters.media import MediaPlane, MediaUnavailableError, SignalingRelay
from chalicelib.adapters.timers import Timers
from chalicelib.config import Settings
from chalicelib.domain import notifications as push
from chalicelib.domain import rooms as domain
from chalicelib.domain.clubs import ClubStatus
from chalicelib.domain.errors import ForbiddenError, NotFoundError, ValidationError
from chalicelib.domain.moderation import log_entries
from chalicelib.domain.rooms import Event, Room, RoomType, Scope
from chalicelib.services.fanout import Fanout
from chalicelib.services.notifications import Notifier

logger = logging.getLogger("salon.rooms")

SAVE_ATTEMPTS = 3
CLEANUP_DELAY_S = 60
MEDIA_RETRY_S = 2
MEDIA_OPS = ("close_room", "revoke_publish", "evict")
# The hallway reads the newest live rooms besides those where people one follows speak, and
# the follows in pages this big (a relation row is ~100 bytes; a Query page holds 1 MB).
HALLWAY_NEWEST = 100
FOLLOWS_PAGE = 1000
Op = Callable[[Room], list[Event]]


class NotInAnyRoomError(ForbiddenError):
    code = "not_in_a_room"
    default_message = "Join a room first."


class NotFollowingError(ForbiddenError):
    code = "not_following"
    default_message = "You can only ping people you follow."


class NotAllowedToPublishError(ForbiddenError):
    code = "not_allowed_to_publish"
    default_message = "Only people on stage who are unmuted can send audio."


class NotPublishingError(NotFoundError):
    code = "not_publishing"
    default_message = "That person is not sending audio right now."


class MediaRelayUnsupportedError(ForbiddenError):
    code = "media_relay_unsupported"
    default_message = "This room's audio is reached with the credentials in the room view."


@dataclass
class Rooms:
    repo: RoomRepository
    people: IdentityRepository
    connections: ConnectionRepository
    poster: Connections
    fanout: Fanout
    timers: Timers
    settings: Settings
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    media: MediaPlane
    moderation_log: SafetyRepository
    notifier: Notifier
    clubs: ClubRepository

    # --- entering and leaving -------------------------------------------------------------

    def create(
        self,
        who: ConnectionRecord,
        title: str,
        kind: str,
        hosts: Iterable[str] = (),
        club_id: str | None = None,
    ) -> dict[str, Any]:
        self._leave_current(who)
        room_id = self.new_id()
        limits = self.media.limits
        room, _ = domain.create_room(
            room_id,
            who.user_id,
            title,
            RoomType(kind),
            self.clock(),
            # What the media plane can really serve caps the room (docs/architecture.md).
            capacity=min(self.settings.room_capacity, limits.max_listeners),
            max_publishers=min(self.settings.max_publishers, limits.max_publishers),
            hosts=hosts,
            club_id=club_id,
        )
        room.media_ref = self.media.open_room(room_id)
        try:
            self.repo.create(room, who.connection_id)
        except Exception:
            self.media.close_room(room.media_ref)
            raise
        self.connections.set_room(who.connection_id, room.room_id)
        logger.info("room created", extra={"room_id": room.room_id})
        if room.kind is RoomType.OPEN:
            self.notifier.followers_talking(
                who.user_id, push.PushKind.ROOM_STARTED, room_id, room.title
            )
        return self._view(self.repo.load(room_id, [who.user_id]), who.user_id, who.connection_id)

    def join(self, who: ConnectionRecord, room_id: str) -> dict[str, Any]:

        def enter(loaded: LoadedRoom) -> list[Event]:
            moderators = [m.user_id for m in loaded.room.moderators()]
            followers, blockers = self.people.edges_to(who.user_id, moderators)
            club_id = loaded.room.club_id
            entry = domain.EntryContext(
                followed_by_moderator=bool(followers),
                blocked_by_moderator=bool(blockers),
                # Only a members-only room asks (one read); other rooms' joins cost the same.
                club_member=loaded.room.kind is RoomType.MEMBERS
                and club_id is not None
                and self.clubs.membership(club_id, who.user_id).is_member,
            )
            loaded.pending_connections[who.user_id] = who.connection_id
            # The socket's room is saved with the membership, in the same transaction.
            loaded.socket_room = (who.connection_id, room_id)
            return domain.join(loaded.room, who.user_id, entry, self.clock())

        loaded, _ = self._apply(room_id, who.user_id, (), enter)
        # Only once the new room has let them in do they leave the one they were in.
        if who.room_id and who.room_id != room_id:
            self._leave_current(who)
        return self._view(loaded, who.user_id, who.connection_id)

    def leave(self, who: ConnectionRecord) -> dict[str, Any]:
        """Leave the socket's room; leaving a room that has ended (or expired) only lets go of
        it, so a client can always get out, and then create or join another."""
        room_id = self._room_of(who)
        try:
            self._apply(
                room_id,
                who.user_id,
                (),
                lambda view: domain.leave(view.room, who.user_id, self.clock()),
            )
        except (domain.RoomEndedError, RoomNotFoundError):
            pass
        self.connections.set_room(who.connection_id, None)
        return {"type": "left", "room_id": room_id}

    def _leave_current(self, who: ConnectionRecord) -> None:
        if not who.room_id:
            return
        try:
            self._apply(
                who.room_id,
                who.user_id,
                (),
                lambda view: domain.leave(view.room, who.user_id, self.clock()),
            )
        except (domain.RoomEndedError, domain.NotInRoomError, NotFoundError):
            pass  # already out of it

    def disconnected(self, connection: ConnectionRecord) -> None:
        """The socket is gone: keep the seat for the grace period, then let it go."""
        if not connection.room_id:
            return
        user_id = connection.user_id

        def drop(loaded: LoadedRoom) -> list[Event]:
            # A newer socket may already have resumed this membership: leave it alone.
            if loaded.connections.get(user_id) != connection.connection_id:
                return []
            return domain.disconnect(loaded.room, user_id, self.clock())

        try:
            loaded, _ = self._apply(connection.room_id, user_id, (), drop)
        except (domain.RoomEndedError, domain.NotInRoomError, NotFoundError):
            return
        # The socket's audio goes with it (a reload publishes again from the new socket).
        if loaded.room.media_ref:
            self.media.evict(loaded.room.media_ref, user_id, connection.connection_id)
        self.timers.after(
            self.settings.reconnect_grace_s + 1,
            {"kind": "expire", "room_id": connection.room_id, "user_id": user_id},
        )

    # --- the stage ------------------------------------------------------------------------

    def act(self, who: ConnectionRecord, op: Callable[..., list[Event]], *args: Any) -> None:
        """A stage action by `who` in their room: `op(room, who, *args, at)`."""
        room_id = self._room_of(who)
        targets = [a for a in args if isinstance(a, str)]
        self._apply(
            room_id,
            who.user_id,
            targets,
            lambda view: op(view.room, who.user_id, *args, self.clock()),
        )

    def audience(self, who: ConnectionRecord, cursor: str | None) -> dict[str, Any]:
        room_id = self._room_of(who)
        if self.repo.live_connections(room_id, [who.user_id]).get(who.user_id) != who.connection_id:
            raise NotInAnyRoomError()
        ids, next_cursor = self.repo.audience_page(room_id, 50, cursor)
        return {
            "type": "audience",
            "room_id": room_id,
            "audience": self._people(ids),
            "cursor": next_cursor,
        }

    # --- audio through the media plane (docs/architecture.md, "The media plane") ----------

    def media_publish(self, who: ConnectionRecord, sdp: str) -> dict[str, Any]:
        """Send the caller's audio: only once Salon has checked they may (on stage, unmuted)."""
        relay, loaded = self._media_member(who)
        if not loaded.room.member(who.user_id).publishing:
            raise NotAllowedToPublishError()
        ref = loaded.room.media_ref
        answer = relay.publish(ref, who.user_id, who.connection_id, sdp)
        # A demotion saved meanwhile may have had nothing to cut off yet: look again.
        again = self.repo.load(loaded.room.room_id, [who.user_id]).room
        member = again.members.get(who.user_id)
        if not again.is_live or member is None or not member.publishing:
            self.media.revoke_publish(ref, who.user_id)
            raise NotAllowedToPublishError()
        return {"type": "media_answer", "room_id": again.room_id, "sdp": answer}

    def media_live(self, who: ConnectionRecord) -> dict[str, Any]:
        """The caller's audio reaches the SFU: tell the room, who then subscribe to it."""
        relay, loaded = self._media_member(who)
        room = loaded.room
        if not room.member(who.user_id).publishing:
            raise NotAllowedToPublishError()
        if not relay.is_publishing(room.media_ref, who.user_id):
            raise NotPublishingError("Your audio has not reached the SFU yet: try again shortly.")
        message = {"type": "media_live", "room_id": room.room_id, "user_id": who.user_id}
        sockets = self.repo.connections(room.room_id)
        others = [c for c in sockets.values() if c != who.connection_id]
        self.fanout.post_all(room.room_id, others, [message])
        return message

    def media_subscribe(self, who: ConnectionRecord, user_id: str) -> dict[str, Any]:
        """Listen to one speaker: the SFU's offer, for the caller to answer."""
        relay, loaded = self._media_member(who, [user_id])
        speaker = loaded.room.members.get(user_id)
        if speaker is None or not speaker.publishing or user_id == who.user_id:
            raise NotPublishingError(field="user_id")
        handle, offer = relay.subscribe(
            loaded.room.media_ref, who.user_id, who.connection_id, user_id
        )
        return {
            "type": "media_offer",
            "room_id": loaded.room.room_id,
            "user_id": user_id,
            "handle": handle,
            "sdp": offer,
        }

    def media_answer(self, who: ConnectionRecord, handle: str, sdp: str) -> dict[str, Any]:
        relay, loaded = self._media_member(who)
        relay.start(loaded.room.media_ref, who.user_id, who.connection_id, handle, sdp)
        return {"type": "media_started", "room_id": loaded.room.room_id, "handle": handle}

    def media_unsubscribe(self, who: ConnectionRecord, handle: str) -> dict[str, Any]:
        relay, loaded = self._media_member(who)
        relay.unsubscribe(loaded.room.media_ref, who.user_id, who.connection_id, handle)
        return {"type": "media_unsubscribed", "room_id": loaded.room.room_id, "handle": handle}

    def _media_member(
        self, who: ConnectionRecord, others: Iterable[str] = ()
    ) -> tuple[SignalingRelay, LoadedRoom]:
        """The relay and the room, with the caller a member through this very socket."""
        if not isinstance(self.media, SignalingRelay):
            raise MediaRelayUnsupportedError()
        loaded = self.repo.load(self._room_of(who), [who.user_id, *others])
        if not loaded.room.is_live:
            raise domain.RoomEndedError()
        if loaded.connections.get(who.user_id) != who.connection_id or not loaded.room.media_ref:
            raise NotInAnyRoomError()
        return self.media, loaded

    def _sync_media(self, loaded: LoadedRoom) -> None:
        """Take away at the SFU what the change took away in the room: a publisher who may no
        longer send is cut off, a member who left loses everything, an ended room is closed.
        A member who gains the right to send is sent fresh credentials to do it with."""
        before, after = loaded.before, loaded.room
        ref = after.media_ref
        if not ref:
            return
        if before.is_live and not after.is_live:
            self._enforce("close_room", ref)
            return
        for uid, was in before.members.items():
            now = after.members.get(uid)
            if was.publishing and (now is None or not now.publishing):
                self._enforce("revoke_publish", ref, uid)
            if now is None and (connection := loaded.connection_of(uid)):
                self._enforce("evict", ref, uid, connection)
        for uid, now in after.members.items():
            earlier = before.members.get(uid)
            if now.publishing == (earlier is not None and earlier.publishing):
                continue
            if connection := loaded.connection_of(uid):
                credentials = self.media.credentials(ref, uid, connection, now.publishing)
                self._send(
                    [connection],
                    {"type": "media_credentials", "room_id": after.room_id, **credentials},
                )

    def _enforce(self, op: str, *args: str) -> None:
        """A right taken away at the SFU. If the SFU cannot be reached, the room's change
        stands and the cut is retried from the timers queue until it is done."""
        try:
            getattr(self.media, op)(*args)
        except MediaUnavailableError:
            logger.error("media plane unreachable", extra={"media_op": op})
            self.timers.after(MEDIA_RETRY_S, {"kind": "media", "op": op, "args": list(args)})

    # --- pings ---------------------------------------------------------------------------

    def ping_into_room(self, who: ConnectionRecord, user_id: str) -> None:
        room_id = self._room_of(who)
        if not self.people.relation_exists(who.user_id, FOLLOWS + user_id):
            raise NotFollowingError(field="user_id")
        loaded = self.repo.load(room_id, [who.user_id])
        if not loaded.room.is_live:
            raise domain.RoomEndedError()
        loaded.room.member(who.user_id)
        sender = self.people.profiles([who.user_id]).get(who.user_id)
        message = {
            "type": "room_ping",
            "room_id": room_id,
            "title": loaded.room.title,
            "from": {
                "user_id": who.user_id,
                "username": sender.username if sender else None,
                "name": sender.name if sender else None,
            },
        }
        for connection_id in self.connections.for_user(user_id):
            self.poster.post(connection_id, message)
        # Their phone too, connected or not: the socket may be a tab nobody is looking at.
        name = (sender.name if sender else None) or "Someone"
        self.notifier.send(user_id, push.ping(name, room_id, loaded.room.title), who.user_id)

    def announce_if_on_stage(self, user_id: str, message: dict[str, Any]) -> None:
        """Tell the room when something happens to someone on its stage (a tip, say)."""
        for connection_id in self.connections.for_user(user_id):
            connection = self.connections.get(connection_id, self.clock())
            if connection is None or not connection.room_id:
                continue
            room = self.repo.load(connection.room_id, [user_id]).room
            member = room.members.get(user_id)
            if room.is_live and member is not None and member.role.on_stage:
                sockets = self.repo.connections(room.room_id)
                self.fanout.post_all(
                    room.room_id, list(sockets.values()), [{**message, "room_id": room.room_id}]
                )
                return

    # --- timers ---------------------------------------------------------------------------

    def on_timer(self, message: dict[str, Any]) -> None:
        kind = message.get("kind")
        room_id = str(message.get("room_id", ""))
        if kind == "flush_count":
            self._flush_count(room_id)
        elif kind == "expire":
            grace = timedelta(seconds=self.settings.reconnect_grace_s)
            user_id = str(message.get("user_id", ""))
            try:
                self._apply(
                    room_id,
                    user_id,
                    (),
                    lambda view: domain.expire_disconnected(
                        view.room, grace, self.clock(), first=user_id
                    ),
                    actor_checked=False,
                )
            except NotFoundError:
                return
        elif kind == "cleanup":
            # The SFU's room closed when the room ended; what its members held there goes too.
            try:
                ref = self.repo.load(room_id).room.media_ref
            except NotFoundError:
                ref = ""
            for user_id, connection_id in self.repo.connections(room_id).items() if ref else ():
                self._enforce("evict", ref, user_id, connection_id)
            self.repo.delete_members(room_id)
        elif kind == "media" and message.get("op") in MEDIA_OPS:
            # Raises while the SFU is still unreachable: the queue retries, then dead-letters.
            getattr(self.media, str(message["op"]))(*[str(a) for a in message.get("args", [])])
        else:
            logger.warning("unknown timer message", extra={"timer_kind": str(kind)})

    # --- the hallway (REST) ---------------------------------------------------------------

    def hallway(self, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        """Live rooms the caller may enter: most followed people on stage first, then size."""
        # Bounded, whatever the number of live rooms: the rooms the people one follows are on
        # stage in (their `on_stage_in`, read in batches of 100), and the newest live rooms.
        followed = self._following(user_id)
        speaking_in = {r for rooms in self.people.stages_of(followed).values() for r in rooms}
        # The live rooms of the clubs one belongs to or follows (the first 100 clubs: one
        # Query, one BatchGetItem), read with the others.
        places = self.clubs.of_user(user_id)
        clubs = self.clubs.many(p.club_id for p in places) if places else {}
        club_rooms = {
            r for c in clubs.values() if c.status is ClubStatus.OPEN for r in c.live_room_ids
        }
        member_of = {p.club_id for p in places if p.is_member}
        found = {r.room_id: r for r in self.repo.summaries(speaking_in | club_rooms)}
        for summary in self.repo.live_rooms(HALLWAY_NEWEST):
            found.setdefault(summary.room_id, summary)
        rooms = list(found.values())
        following = set(followed)
        moderators = {m for r in rooms for m in r.moderator_ids}
        follows_me, blocked_me = self.people.edges_to(user_id, moderators)
        visible = [
            r for r in rooms if self._may_enter(r, user_id, follows_me, blocked_me, member_of)
        ]
        # A room that removed the caller would refuse them (removed_from_room): not offered.
        removed = self.repo.removed_from(user_id, [r.room_id for r in visible])
        visible = [r for r in visible if r.room_id not in removed]
        ranked = sorted(
            visible,
            key=lambda r: (
                r.club_id not in clubs,  # one's clubs' rooms first
                -len(r.stage_ids & following),
                -(r.listener_count + len(r.stage_ids)),
                -r.created_at.timestamp(),
            ),
        )
        start = _offset(cursor)
        page = ranked[start : start + limit]
        names = self._people(sorted({uid for r in page for uid in r.stage_ids}))
        by_id = {p["user_id"]: p for p in names}
        items = [
            {
                "room_id": r.room_id,
                "title": r.title,
                "kind": r.kind.value,
                "created_at": r.created_at.isoformat(),
                "listener_count": r.listener_count,
                "stage": [by_id[u] for u in sorted(r.stage_ids) if u in by_id],
                "followed_on_stage": len(r.stage_ids & following),
                "club_id": r.club_id,
                "club_name": clubs[r.club_id].name if r.club_id in clubs else None,
            }
            for r in page
        ]
        more = start + limit < len(ranked)
        return {"items": items, "cursor": _encode_offset(start + limit) if more else None}

    def _may_enter(
        self,
        room: RoomSummary,
        user_id: str,
        follows_me: set[str],
        blocked_me: set[str],
        member_of: set[str],
    ) -> bool:
        if room.moderator_ids & blocked_me:
            return False
        if user_id == room.creator_id or user_id in room.invited or user_id in room.stage_ids:
            return True
        if room.kind is RoomType.OPEN:
            return True
        if room.kind is RoomType.SOCIAL:
            return bool(room.moderator_ids & follows_me)
        if room.kind is RoomType.MEMBERS:
            return room.club_id in member_of
        return False

    def _following(self, user_id: str) -> list[str]:
        ids: list[str] = []
        cursor: str | None = None
        while True:
            page = self.people.outgoing(user_id, FOLLOWS, FOLLOWS_PAGE, cursor)
            ids += page.items
            if not page.cursor:
                return ids
            cursor = page.cursor

    # --- views ----------------------------------------------------------------------------

    def _view(self, loaded: LoadedRoom, viewer_id: str, connection_id: str) -> dict[str, Any]:
        """What the viewer sees, from a room already loaded with them in it."""
        room_id = loaded.room.room_id
        view: dict[str, Any] = domain.snapshot(loaded.room, viewer_id)
        viewer = loaded.room.members.get(viewer_id)
        if viewer is not None and loaded.room.media_ref and loaded.room.is_live:
            view["media"] = self.media.credentials(
                loaded.room.media_ref, viewer_id, connection_id, viewer.publishing
            )
        audience, cursor = self.repo.audience_page(room_id, domain.DEFAULT_PAGE_SIZE, None)
        hands = (
            self.repo.raised_hands(room_id, loaded.room.hands_round)
            if "raised_hands" in view
            else []
        )
        # Everyone the view names, in one read of their profiles.
        stage_ids = [s["user_id"] for s in view["stage"]]
        people = {
            p["user_id"]: p for p in self._people([*audience, *stage_ids, *(u for u, _ in hands)])
        }
        view["audience"] = [people[uid] for uid in audience if uid in people]
        view["audience_cursor"] = cursor
        view["audience_has_more"] = cursor is not None
        view["stage"] = [{**s, **people.get(s["user_id"], {})} for s in view["stage"]]
        if "raised_hands" in view:
            view["raised_hands"] = [
                {**people.get(uid, {"user_id": uid}), "raised_at": at} for uid, at in hands
            ]
        return {"type": "room", **view}

    def _people(self, user_ids: list[str]) -> list[dict[str, Any]]:
        profiles = self.people.profiles(user_ids)
        return [
            {"user_id": uid, "username": p.username, "name": p.name, "photo_url": p.photo_url}
            for uid in user_ids
            if (p := profiles.get(uid)) is not None
        ]

    # --- the machinery --------------------------------------------------------------------

    def _room_of(self, who: ConnectionRecord) -> str:
        if not who.room_id:
            raise NotInAnyRoomError()
        return who.room_id

    def _apply(
        self,
        room_id: str,
        actor_id: str,
        involved: Iterable[str],
        op: Callable[[LoadedRoom], list[Event]],
        *,
        actor_checked: bool = True,
    ) -> tuple[LoadedRoom, list[Event]]:
        """Load, run the rule, save; when someone else changed the room meanwhile, start over
        (the rule then refuses with its own clear error, or succeeds on the new state)."""
        involved = list(involved)
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            loaded = self.repo.load(room_id, [actor_id, *involved])
            events = op(loaded)
            if not events and not loaded.pending_connections:
                return loaded, []
            try:
                self.repo.save(loaded, actor_id if actor_checked else "")
            except RoomChangedError:
                if attempt == SAVE_ATTEMPTS:
                    raise
                continue
            self._sync_media(loaded)
            self._publish(loaded, events, actor_id)
            entries = log_entries(events)
            if entries:
                self.moderation_log.log(entries, self.new_id())
            return loaded, events
        raise RoomChangedError()

    def _publish(self, loaded: LoadedRoom, events: list[Event], actor_id: str = "") -> None:
        room = loaded.room
        to_everyone: list[dict[str, Any]] = []
        to_user: dict[str, list[dict[str, Any]]] = defaultdict(list)
        count_changed = loaded.before.audience_count != room.audience_count
        moderators = {m.user_id for m in room.moderators()} | {
            m.user_id for m in loaded.before.moderators()
        }
        about: set[str] = set()
        for event in events:
            message: dict[str, Any] = event.to_message(room.version)
            audience = event.audience
            if audience.scope is Scope.EVERYONE:
                to_everyone.append(message)
                if isinstance(subject := message.get("user_id"), str):
                    about.add(subject)
            elif audience.scope is Scope.MODERATORS:
                for uid in moderators:
                    to_user[uid].append(message)
            # Scope.COUNT_ONLY: nobody hears of it one by one; the count goes out coalesced.
            for uid in audience.user_ids:
                to_user[uid].append(message)
            if isinstance(event, domain.InvitationAccepted) and room.kind is RoomType.OPEN:
                self.notifier.followers_talking(
                    event.user_id, push.PushKind.ON_STAGE, room.room_id, room.title
                )
            if isinstance(event, domain.RoomEnded):
                self.timers.after(CLEANUP_DELAY_S, {"kind": "cleanup", "room_id": room.room_id})
        reached: set[str] = set()
        if to_everyone:
            # First, inline: the one who acted, the moderators (before and after), the people
            # the events are about; their sockets were read with the room. Then everyone else.
            first_ids = [actor_id, *sorted(moderators), *sorted(about), *sorted(to_user)]
            first = [
                c for uid in dict.fromkeys(first_ids) if uid and (c := loaded.connection_of(uid))
            ]
            self.fanout.post_now(first, to_everyone)
            sockets = self.repo.connections(room.room_id)
            # People who just left or were removed hear it too: their rows are gone.
            for uid in loaded.before.members:
                if uid not in sockets and (conn := loaded.connection_of(uid)):
                    sockets[uid] = conn
            done = set(first)
            rest = [c for c in sockets.values() if c not in done]
            self.fanout.post_all(room.room_id, rest, to_everyone)
            reached = set(sockets.values()) | done
        for uid, messages in to_user.items():
            conn = loaded.connection_of(uid) or self.repo.member_connection(room.room_id, uid)
            # Someone outside the room (a guest just invited) is reached wherever they are.
            targets = [conn] if conn else self.connections.for_user(uid)
            for message in messages:
                for target in targets:
                    if not (target in reached and message in to_everyone):
                        self._send([target], message)
        if count_changed:
            self._count_changed(room.room_id, room.audience_count)

    def _send(self, connection_ids: list[str], message: dict[str, Any]) -> None:
        """A post to one person (or a few), from this Lambda."""
        self.fanout.post_now(connection_ids, [message])

    def _count_changed(self, room_id: str, audience: int) -> None:
        if self.repo.claim_count_flush(room_id):
            self.timers.after(
                domain.audience_count_interval_s(audience, self.settings.audience_count_interval_s),
                {"kind": "flush_count", "room_id": room_id},
            )

    def _flush_count(self, room_id: str) -> None:
        self.repo.release_count_flush(room_id, self.clock())
        count = self.repo.listener_count(room_id)
        sockets = self.repo.connections(room_id)
        self.fanout.post_all(
            room_id,
            list(sockets.values()),
            [{"type": "audience_count", "room_id": room_id, "count": count}],
        )


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    decoded = decode_token(cursor)
    value = decoded.get("offset") if isinstance(decoded, dict) else None
    if not isinstance(value, int) or value < 0:
        raise ValidationError("That cursor is not valid.", field="cursor")
    return value


def _encode_offset(offset: int) -> str:
    return encode_token({"offset": offset})
