"""Open WebSocket connections in DynamoDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamo.models import ConnectionModel
from chalicelib.adapters.dynamo.tx import condition_failed
from chalicelib.domain.errors import NotAuthenticatedError


class NotConnectedError(NotAuthenticatedError):
    code = "not_connected"
    default_message = "This connection is not signed in; reconnect with a fresh token."


@dataclass(frozen=True)
class ConnectionRecord:
    connection_id: str
    user_id: str
    connected_at: datetime
    room_id: str | None = None


class ConnectionRepository:
    def __init__(self, ttl_s: int) -> None:
        self._ttl = timedelta(seconds=ttl_s)

    def add(self, connection_id: str, user_id: str, at: datetime) -> None:
        ConnectionModel(connection_id, user_id=user_id, connected_at=at, ttl=at + self._ttl).save()

    def get(self, connection_id: str, now: datetime) -> ConnectionRecord | None:
        try:
            row = ConnectionModel.get(connection_id, consistent_read=True)
        except ConnectionModel.DoesNotExist:
            return None
        # TTL deletion is lazy (up to days): an expired row is already gone for us.
        if row.ttl is not None and row.ttl <= now:
            return None
        return ConnectionRecord(row.connection_id, row.user_id, row.connected_at, row.room_id)

    def set_room(self, connection_id: str, room_id: str | None) -> None:
        action = (
            ConnectionModel.room_id.set(room_id) if room_id else ConnectionModel.room_id.remove()
        )
        try:
            ConnectionModel(connection_id).update(
                actions=[action], condition=ConnectionModel.connection_id.exists()
            )
        except UpdateError as error:
            # The socket closed meanwhile: $disconnect has dealt with its room.
            if not condition_failed(error):
                raise

    def remove(self, connection_id: str) -> None:
        ConnectionModel(connection_id).delete()

    def for_user(self, user_id: str) -> list[str]:
        return [row.connection_id for row in ConnectionModel.by_user.query(user_id)]
