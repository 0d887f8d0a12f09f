"""Rooms in DynamoDB: the shared room item, one item per member, and optimistic saves.

A room is never loaded whole: a room of 8,000 cannot be, and need not be. An action loads the
room item, the people on stage (few) and the people it touches; the listeners it does not touch
stay in the table and are counted (`Room.unloaded_listeners`). Saving writes only what changed,
each item conditioned on the revision it was read at, in one transaction. A listener joining
writes its own item and adds one to the room's counter: O(1), whatever the room's size.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pynamodb.attributes import UnicodeSetAttribute
from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo.connections import NotConnectedError
from chalicelib.adapters.dynamo.models import (
    ConnectionModel,
    RoomMemberModel,
    RoomModel,
    UserModel,
)
from chalicelib.adapters.dynamo.paging import decode_cursor, read_page
from chalicelib.adapters.dynamo.tx import client, condition_failed, transaction
from chalicelib.domain.errors import ConflictError, NotFoundError
from chalicelib.domain.rooms import (
    DEFAULT_MAX_PUBLISHERS,
    Member,
    Role,
    Room,
    RoomEndedError,
    RoomType,
)

LIVE = "live"
ENDED_ROOM_TTL = timedelta(days=1)
BATCH_GET_KEYS = 100  # DynamoDB's limit per BatchGetItem
UNPROCESSED_RETRIES = 5


class RoomNotFoundError(NotFoundError):
    code = "room_not_found"
    default_message = "There is no such room."


class RoomChangedError(ConflictError):
    code = "room_changed"
    default_message = "The room changed at the same moment; try again."


@dataclass
class LoadedRoom:
    """A partial view of a room, and what it looked like when read, to save only the changes."""

    room: Room
    before: Room
    revision: int
    member_revisions: dict[str, int]
    connections: dict[str, str | None]
    listener_count: int
    pending_connections: dict[str, str | None] = field(default_factory=dict)
    # The rows read (removed people's too), to copy the unchanged stage rows when saving.
    rows: dict[str, RoomMemberModel] = field(default_factory=dict)
    # Whether the room item held a copy of its stage when read (rooms from before it do not).
    stage_copied: bool = True
    # (connection id, room id): the socket's room, saved in the same transaction (a join).
    socket_room: tuple[str, str] | None = None

    def connection_of(self, user_id: str) -> str | None:
        return self.pending_connections.get(user_id, self.connections.get(user_id))


@dataclass(frozen=True)
class RoomSummary:
    room_id: str
    title: str
    kind: RoomType
    creator_id: str
    created_at: datetime
    stage_ids: frozenset[str]
    moderator_ids: frozenset[str]
    invited: frozenset[str]
    listener_count: int
    club_id: str | None = None


def _hand_key_prefix(hands_round: int) -> str:
    return f"{hands_round:010d}#"


def _member(row: RoomMemberModel, hands_round: int) -> Member:
    # A hand raised before hands last closed is down, though its item was never rewritten.
    current = int(row.hand_round or 0) == hands_round
    return Member(
        user_id=row.user_id,
        role=Role(row.role),
        joined_at=row.joined_at,
        muted=bool(row.muted),
        hand_raised_at=row.hand_raised_at if current else None,
        invited_to_speak_at=row.invited_to_speak_at,
        connected=bool(row.connected),
        disconnected_at=row.disconnected_at,
    )


def _member_row(
    room_id: str, member: Member, revision: int, connection_id: str | None, hands_round: int
) -> RoomMemberModel:
    listener = member.role is Role.LISTENER
    hand = member.hand_raised_at
    hand_key = None
    if hand is not None and listener:
        hand_key = f"{_hand_key_prefix(hands_round)}{hand.isoformat()}#{member.user_id}"
    return RoomMemberModel(
        room_id,
        member.user_id,
        role=member.role.value,
        muted=member.muted,
        joined_at=member.joined_at,
        hand_raised_at=hand,
        hand_round=hands_round if hand else None,
        invited_to_speak_at=member.invited_to_speak_at,
        connected=member.connected,
        disconnected_at=member.disconnected_at,
        connection_id=connection_id,
        removed=False,
        revision=revision,
        hand_key=hand_key,
        audience_key=f"{member.joined_at.isoformat()}#{member.user_id}" if listener else None,
    )


def _stage_copy(rows: dict[str, RoomMemberModel]) -> str | None:
    if not rows:
        return None
    return json.dumps({uid: rows[uid].serialize() for uid in sorted(rows)}, sort_keys=True)


def _stage_rows(copied: str | None) -> dict[str, RoomMemberModel] | None:
    if copied is None:
        return None
    return {uid: RoomMemberModel.from_raw_data(raw) for uid, raw in json.loads(copied).items()}


def _read(room_id: str, user_ids: list[str]) -> tuple[RoomModel | None, list[RoomMemberModel]]:
    """The room item and the named members' rows, read consistently in one BatchGetItem
    across the two tables (plus retries of what DynamoDB left unprocessed)."""
    rooms_table, members_table = RoomModel.Meta.table_name, RoomMemberModel.Meta.table_name
    request: dict[str, Any] = {
        rooms_table: {"Keys": [{"room_id": {"S": room_id}}], "ConsistentRead": True}
    }
    if user_ids:
        request[members_table] = {
            "Keys": [{"room_id": {"S": room_id}, "user_id": {"S": uid}} for uid in user_ids],
            "ConsistentRead": True,
        }
    item: RoomModel | None = None
    rows: list[RoomMemberModel] = []
    for attempt in range(UNPROCESSED_RETRIES + 1):
        answer = client().batch_get_item(RequestItems=request)
        for raw in answer.get("Responses", {}).get(rooms_table, []):
            item = RoomModel.from_raw_data(raw)
        rows += [
            RoomMemberModel.from_raw_data(r) for r in answer["Responses"].get(members_table, [])
        ]
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            return item, rows
        time.sleep(0.05 * 2**attempt)  # throttled: back off, as the SDK does for errors
    raise RoomChangedError("The room could not be read right now; try again.")


@dataclass(frozen=True)
class _RoomItemState:
    """What the room item stores of the domain's room. A change to any of it is saved on the
    item (bumping its revision), so the hallway's copy of the stage and the moderators can never
    lag the members' rows."""

    hands_allowed: bool
    hands_round: int
    ended_at: datetime | None
    invited: frozenset[str]
    stage_ids: frozenset[str]
    moderator_ids: frozenset[str]
    # Saved with the stage so that two unmutes at once cannot both take the last slot.
    publisher_ids: frozenset[str]

    @classmethod
    def of(cls, room: Room) -> _RoomItemState:
        return cls(
            hands_allowed=room.hands_allowed,
            hands_round=room.hands_round,
            ended_at=room.ended_at,
            invited=frozenset(room.invited),
            stage_ids=frozenset(uid for uid, m in room.members.items() if m.role.on_stage),
            moderator_ids=frozenset(
                uid for uid, m in room.members.items() if m.role is Role.MODERATOR
            ),
            publisher_ids=frozenset(uid for uid, m in room.members.items() if m.publishing),
        )


def _set_or_remove(attribute: UnicodeSetAttribute, values: frozenset[str]) -> Action:
    # DynamoDB has no empty sets: an empty one is the attribute's absence.
    return attribute.set(set(values)) if values else attribute.remove()


def _room_actions(state: _RoomItemState, revision: int, listener_delta: int) -> list[Action]:
    actions: list[Action] = [
        RoomModel.hands_allowed.set(state.hands_allowed),
        RoomModel.hands_round.set(state.hands_round),
        RoomModel.revision.set(revision + 1),
        RoomModel.listener_count.add(listener_delta),
        _set_or_remove(RoomModel.stage_ids, state.stage_ids),
        _set_or_remove(RoomModel.moderator_ids, state.moderator_ids),
        _set_or_remove(RoomModel.publisher_ids, state.publisher_ids),
        _set_or_remove(RoomModel.invited, state.invited),
    ]
    if state.ended_at is not None:
        actions += [
            RoomModel.ended_at.set(state.ended_at),
            RoomModel.live.remove(),
            RoomModel.ttl.set(state.ended_at + ENDED_ROOM_TTL),
        ]
    return actions


class RoomRepository:
    def create(self, room: Room, connection_id: str | None) -> None:
        creator = room.members[room.creator_id]
        creator_row = _member_row(room.room_id, creator, 1, connection_id, room.hands_round)
        state = _RoomItemState.of(room)
        with transaction() as tx:
            tx.save(
                RoomModel(
                    room.room_id,
                    title=room.title,
                    kind=room.kind.value,
                    creator_id=room.creator_id,
                    created_at=room.created_at,
                    capacity=room.capacity,
                    max_publishers=room.max_publishers,
                    media_ref=room.media_ref or None,
                    hands_allowed=state.hands_allowed,
                    hands_round=state.hands_round,
                    stage_ids=set(state.stage_ids),
                    moderator_ids=set(state.moderator_ids),
                    publisher_ids=set(state.publisher_ids) or None,
                    invited=set(state.invited) or None,
                    hosts=set(room.hosts) or None,
                    club_id=room.club_id,
                    listener_count=0,
                    revision=1,
                    live=LIVE,
                    stage=_stage_copy({room.creator_id: creator_row}),
                ),
                condition=RoomModel.room_id.does_not_exist(),
            )
            tx.save(creator_row, condition=RoomMemberModel.user_id.does_not_exist())
            tx.update(
                UserModel(room.creator_id),
                actions=[UserModel.on_stage_in.add({room.room_id})],
                condition=UserModel.user_id.exists(),
            )

    def load(self, room_id: str, user_ids: Iterable[str] = ()) -> LoadedRoom:
        """The room item, everyone on stage, and `user_ids`: all read consistently, in one
        request (the stage comes from the room item's copy of its rows)."""
        involved = sorted({u for u in user_ids if u})
        if len(involved) >= BATCH_GET_KEYS:
            raise ValueError("a room action involves a few people, not a hundred")
        item, read = _read(room_id, involved)
        if item is None:
            raise RoomNotFoundError()
        rows = {row.user_id: row for row in read}
        stage_ids = set(item.stage_ids or ())
        copied = _stage_rows(item.stage)
        stage_copied = copied is not None and set(copied) == stage_ids
        if copied is not None and stage_copied:
            for uid, row in copied.items():
                rows.setdefault(uid, row)
        else:  # a room saved before its item held the stage: read the stage's rows
            missing = [(room_id, uid) for uid in sorted(stage_ids - set(rows))]
            for row in RoomMemberModel.batch_get(missing, consistent_read=True) if missing else ():
                rows[row.user_id] = row
        room = Room(
            room_id=item.room_id,
            title=item.title,
            kind=RoomType(item.kind),
            creator_id=item.creator_id,
            created_at=item.created_at,
            capacity=int(item.capacity),
            max_publishers=int(item.max_publishers or DEFAULT_MAX_PUBLISHERS),
            media_ref=item.media_ref or "",
            hands_allowed=bool(item.hands_allowed),
            hands_round=int(item.hands_round or 0),
            ended_at=item.ended_at,
            invited=set(item.invited or ()),
            hosts=set(item.hosts or ()),
            club_id=item.club_id,
            version=int(item.revision),
        )
        revisions: dict[str, int] = {}
        connections: dict[str, str | None] = {}
        for uid in sorted(rows):
            row = rows[uid]
            revisions[uid] = int(row.revision)
            if row.removed:
                room.removed.add(uid)
                continue
            room.members[uid] = _member(row, room.hands_round)
            connections[uid] = row.connection_id
        loaded_listeners = sum(1 for m in room.members.values() if m.role is Role.LISTENER)
        listener_count = int(item.listener_count or 0)
        room.unloaded_listeners = max(0, listener_count - loaded_listeners)
        return LoadedRoom(
            room=room,
            before=copy.deepcopy(room),
            revision=int(item.revision),
            member_revisions=revisions,
            connections=connections,
            listener_count=listener_count,
            rows=rows,
            stage_copied=stage_copied,
        )

    def save(self, loaded: LoadedRoom, actor_id: str) -> None:
        """Write what the action changed; refuse with RoomChangedError if anything it read
        has changed since."""
        before, after = loaded.before, loaded.room
        room_id = after.room_id
        listener_delta = after.audience_count - before.audience_count
        uids = sorted(set(before.members) | set(after.members) | after.removed)
        writes = {uid: w for uid in uids if (w := self._member_write(loaded, uid, actor_id))}
        saved = {uid: w[1] for uid, w in writes.items() if w[0] == "save"}
        stage = sorted(uid for uid, m in after.members.items() if m.role.on_stage)
        stage_before = sorted(uid for uid, m in before.members.items() if m.role.on_stage)
        # The room item's copy of the stage changes with any stage row, and only then.
        stage_changed = (
            stage != stage_before or any(uid in saved for uid in stage) or not loaded.stage_copied
        )
        tx = transaction()
        touched = False
        socket_at = -1
        try:
            with tx:
                state = _RoomItemState.of(after)
                if _RoomItemState.of(before) != state or stage_changed:
                    copied = _stage_copy({uid: saved.get(uid) or loaded.rows[uid] for uid in stage})
                    stage_action = (
                        RoomModel.stage.set(copied) if copied else RoomModel.stage.remove()
                    )
                    tx.update(
                        RoomModel(room_id),
                        actions=[
                            *_room_actions(state, loaded.revision, listener_delta),
                            stage_action,
                        ],
                        condition=RoomModel.revision == loaded.revision,
                    )
                    touched = True
                elif listener_delta > 0:
                    stage_size = len(stage)
                    tx.update(
                        RoomModel(room_id),
                        actions=[RoomModel.listener_count.add(listener_delta)],
                        condition=RoomModel.ended_at.does_not_exist()
                        & (RoomModel.listener_count < after.capacity - stage_size),
                    )
                    touched = True
                elif listener_delta < 0:
                    tx.update(
                        RoomModel(room_id),
                        actions=[RoomModel.listener_count.add(listener_delta)],
                        condition=RoomModel.room_id.exists(),
                    )
                    touched = True
                else:
                    self._check_hands_round(tx, loaded)
                socket_at = tx.size
                if loaded.socket_room is not None:
                    connection_id, socket_room = loaded.socket_room
                    tx.update(
                        ConnectionModel(connection_id),
                        actions=[ConnectionModel.room_id.set(socket_room)],
                        condition=ConnectionModel.connection_id.exists(),
                    )
                    touched = True
                self._index_stage(tx, loaded)
                for uid, (kind, model, condition) in writes.items():
                    if kind == "save":
                        tx.save(model, condition=condition)
                    elif kind == "delete":
                        tx.delete(model, condition=condition)
                    else:
                        tx.condition_check(RoomMemberModel, room_id, uid, condition=condition)
                    touched |= kind != "check"
                if not touched:
                    return
        except TransactWriteError as error:
            failed = tx.failed(error)
            if socket_at >= 0 and failed[socket_at]:
                raise NotConnectedError() from error  # the socket closed meanwhile
            if any(failed):
                raise RoomChangedError() from error
            raise

    def _index_stage(self, tx: Any, loaded: LoadedRoom) -> None:
        """Keep each member's `on_stage_in` (the hallway's index) with the stage: the room is
        added when they step on a live stage, deleted when they leave it. When the room ends
        the cleanup timer deletes it (`delete_members`): one write per person on stage would
        not fit a transaction's 100 items for a big stage, and the hallway shows live rooms
        only, so the index may lag an ended room."""
        before, after = loaded.before, loaded.room
        room_id = after.room_id
        if before.is_live and not after.is_live:
            return

        def on_stage(room: Room, uid: str) -> bool:
            member = room.members.get(uid)
            return room.is_live and member is not None and member.role.on_stage

        for uid in sorted(set(before.members) | set(after.members)):
            was, now = on_stage(before, uid), on_stage(after, uid)
            if was == now:
                continue
            action = (
                UserModel.on_stage_in.add({room_id})
                if now
                else UserModel.on_stage_in.delete({room_id})
            )
            tx.update(UserModel(uid), actions=[action], condition=UserModel.user_id.exists())

    def _check_hands_round(self, tx: Any, loaded: LoadedRoom) -> None:
        """A hand raised while another request closes hands must not survive into the new
        round: raising is conditioned on the round it was raised in (the loser retries and
        is told `hands_closed`)."""
        before, after = loaded.before, loaded.room
        raised = any(
            m.hand_raised_at is not None
            and (uid not in before.members or before.members[uid].hand_raised_at is None)
            for uid, m in after.members.items()
        )
        if not raised:
            return
        same_round = RoomModel.hands_round == after.hands_round
        if after.hands_round == 0:
            same_round = same_round | RoomModel.hands_round.does_not_exist()
        tx.condition_check(RoomModel, after.room_id, condition=same_round)

    def _member_write(
        self, loaded: LoadedRoom, uid: str, actor_id: str
    ) -> tuple[str, Any, Any] | None:
        """What saving does to one member's row: ("save", row, condition), ("delete", key,
        condition), ("check", None, condition) or nothing."""
        before, after = loaded.before, loaded.room
        room_id = after.room_id
        old, new = before.members.get(uid), after.members.get(uid)
        known = uid in loaded.member_revisions
        revision = loaded.member_revisions.get(uid, 0)
        unchanged = RoomMemberModel.revision == revision
        fresh = RoomMemberModel.user_id.does_not_exist()
        connection = loaded.connection_of(uid)
        if uid in after.removed and uid not in before.removed:
            row = RoomMemberModel(
                room_id,
                uid,
                role=Role.LISTENER.value,
                joined_at=after.created_at,
                removed=True,
                revision=revision + 1,
                connected=False,
            )
            return "save", row, unchanged if known else fresh
        if new is not None and (old != new or connection != loaded.connections.get(uid)):
            row = _member_row(room_id, new, revision + 1, connection, after.hands_round)
            return "save", row, unchanged if known else fresh
        if old is not None and new is None:
            return "delete", RoomMemberModel(room_id, uid), unchanged
        if uid == actor_id and known:
            # The actor's role is what allowed the action: it must still be what was read.
            return "check", None, unchanged
        return None

    # --- reads for fan-out and views ----------------------------------------------------

    def connections(self, room_id: str) -> dict[str, str]:
        """Every member's socket, for events that reach the whole room."""
        rows = RoomMemberModel.query(
            room_id,
            attributes_to_get=["user_id", "connection_id", "removed", "connected"],
        )
        return {
            row.user_id: row.connection_id
            for row in rows
            if row.connection_id and not row.removed and row.connected
        }

    def live_connections(self, room_id: str, user_ids: Iterable[str]) -> dict[str, str]:
        """The sockets of those of `user_ids` connected to the room, in two requests; an ended
        room refuses (its members' rows outlive it by a minute)."""
        try:
            item = RoomModel.get(room_id, attributes_to_get=["room_id", "ended_at"])
        except RoomModel.DoesNotExist as exc:
            raise RoomNotFoundError() from exc
        if item.ended_at is not None:
            raise RoomEndedError(room_id=room_id)
        keys = [(room_id, uid) for uid in sorted(set(user_ids))]
        rows = RoomMemberModel.batch_get(
            keys, attributes_to_get=["user_id", "connection_id", "removed", "connected"]
        )
        return {
            row.user_id: row.connection_id
            for row in rows
            if row.connection_id and not row.removed and row.connected
        }

    def member_connection(self, room_id: str, user_id: str) -> str | None:
        try:
            row = RoomMemberModel.get(room_id, user_id)
        except RoomMemberModel.DoesNotExist:
            return None
        if row.removed or not row.connected:
            return None
        return row.connection_id

    def audience_page(
        self, room_id: str, limit: int, cursor: str | None
    ) -> tuple[list[str], str | None]:
        rows = RoomMemberModel.audience.query(
            room_id, limit=limit, last_evaluated_key=decode_cursor(cursor)
        )
        return read_page(rows, lambda row: str(row.user_id))

    def raised_hands(
        self, room_id: str, hands_round: int, limit: int = 100
    ) -> list[tuple[str, str]]:
        """(user id, raised at) of this round's hands, in the order raised."""
        rows = RoomMemberModel.raised_hands.query(
            room_id,
            RoomMemberModel.hand_key.startswith(_hand_key_prefix(hands_round)),
            limit=limit,
        )
        return [(row.user_id, str(row.hand_key).split("#")[1]) for row in rows]

    def listener_count(self, room_id: str) -> int:
        try:
            return int(RoomModel.get(room_id, consistent_read=True).listener_count or 0)
        except RoomModel.DoesNotExist as exc:
            raise RoomNotFoundError() from exc

    def live_rooms(self, limit: int = 500) -> list[RoomSummary]:
        """The newest live rooms (one Query page and a BatchGetItem per 100)."""
        keys = [
            row.room_id
            for row in RoomModel.live_rooms.query(LIVE, limit=limit, scan_index_forward=False)
        ]
        return self.summaries(keys)

    def summaries(self, room_ids: Iterable[str]) -> list[RoomSummary]:
        """Those of the rooms that are live (a BatchGetItem per 100)."""
        keys = sorted(set(room_ids))
        summaries: list[RoomSummary] = []
        for item in RoomModel.batch_get(keys) if keys else ():
            if item.ended_at is not None:
                continue  # the index lags the table by a moment
            summaries.append(
                RoomSummary(
                    room_id=item.room_id,
                    title=item.title,
                    kind=RoomType(item.kind),
                    creator_id=item.creator_id,
                    created_at=item.created_at,
                    stage_ids=frozenset(item.stage_ids or ()),
                    moderator_ids=frozenset(item.moderator_ids or ()),
                    invited=frozenset(item.invited or ()),
                    listener_count=int(item.listener_count or 0),
                    club_id=item.club_id,
                )
            )
        return summaries

    def removed_from(self, user_id: str, room_ids: Iterable[str]) -> set[str]:
        """Which of `room_ids` removed `user_id` for good (one batch read of their rows)."""
        keys = [(room_id, user_id) for room_id in sorted(set(room_ids))]
        rows = RoomMemberModel.batch_get(keys, attributes_to_get=["room_id", "removed"])
        return {row.room_id for row in rows if row.removed} if keys else set()

    # --- the coalesced audience count ---------------------------------------------------

    def claim_count_flush(self, room_id: str) -> bool:
        """True for the one caller that schedules the trailing broadcast of a burst."""
        try:
            RoomModel(room_id).update(
                actions=[RoomModel.count_flush_pending.set(True)],
                condition=RoomModel.room_id.exists()
                & (
                    RoomModel.count_flush_pending.does_not_exist()
                    | (RoomModel.count_flush_pending == False)  # noqa: E712
                ),
            )
        except UpdateError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def release_count_flush(self, room_id: str, now: datetime) -> None:
        """Called before reading the count to send: a change after this schedules anew."""
        RoomModel(room_id).update(
            actions=[
                RoomModel.count_flush_pending.set(False),
                RoomModel.count_sent_at.set(now.timestamp()),
            ]
        )

    def delete_members(self, room_id: str) -> int:
        """An ended room's membership goes, and the room leaves the hallway's index of those
        who were on its stage; returns how many rows were deleted. Safe to run again."""
        deleted = 0
        with RoomMemberModel.batch_write() as batch:
            rows = RoomMemberModel.query(room_id, attributes_to_get=["room_id", "user_id", "role"])
            for row in rows:
                if Role(row.role).on_stage:
                    self._forget_stage(row.user_id, room_id)
                batch.delete(row)
                deleted += 1
        return deleted

    @staticmethod
    def _forget_stage(user_id: str, room_id: str) -> None:
        try:
            UserModel(user_id).update(
                actions=[UserModel.on_stage_in.delete({room_id})],
                condition=UserModel.user_id.exists(),
            )
        except UpdateError as error:
            if not condition_failed(error):  # an account deleted since: nothing to forget
                raise
