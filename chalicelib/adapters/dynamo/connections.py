"""Open WebSocket connections in DynamoDB."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamo.models import ConnectionModel
from chalicelib.adapters.dynamo.tx import condition_failed
from chalicelib.domain.errors import NotAuthenticatedError
from chalicelib.domain.limits import Bucket, SocketRateLimitedError

SPEND_ATTEMPTS = 3


class NotConnectedError(NotAuthenticatedError):
    code = "not_connected"
    default_message = "This connection is not signed in; reconnect with a fresh token."


@dataclass(frozen=True)
class ConnectionRecord:
    connection_id: str
    user_id: str
    connected_at: datetime
    room_id: str | None = None
    # bucket name -> (tokens left, when counted, epoch seconds), as last read
    buckets: tuple[tuple[str, float | None, float | None], ...] = ()

    def bucket(self, name: str) -> tuple[float | None, float | None]:
        for bucket_name, tokens, at in self.buckets:
            if bucket_name == name:
                return tokens, at
        return None, None


def _number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _record(row: ConnectionModel) -> ConnectionRecord:
    return ConnectionRecord(
        row.connection_id,
        row.user_id,
        row.connected_at,
        row.room_id,
        (
            ("action", _number(row.action_tokens), _number(row.action_at)),
            ("media", _number(row.media_tokens), _number(row.media_at)),
        ),
    )


# Each bucket's two attributes on the connection row.
_BUCKET_ATTRIBUTES = {
    "action": (ConnectionModel.action_tokens, ConnectionModel.action_at),
    "media": (ConnectionModel.media_tokens, ConnectionModel.media_at),
}


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
        return _record(row)

    def spend(self, record: ConnectionRecord, bucket: Bucket, now: datetime) -> None:
        """Spend one token of the socket's `bucket`, or raise SocketRateLimitedError. The write
        is conditioned on the count it read, so parallel Lambdas of one socket cannot both
        spend the same token; one that loses reads again."""
        tokens_attr, at_attr = _BUCKET_ATTRIBUTES[bucket.name]
        stamp = now.timestamp()
        tokens, counted_at = record.bucket(bucket.name)
        for _ in range(SPEND_ATTEMPTS):
            left = bucket.take(tokens, counted_at, stamp)
            unchanged = at_attr.does_not_exist() if counted_at is None else at_attr == counted_at
            try:
                ConnectionModel(record.connection_id).update(
                    actions=[tokens_attr.set(left), at_attr.set(stamp)],
                    condition=ConnectionModel.connection_id.exists() & unchanged,
                )
                return
            except UpdateError as error:
                if not condition_failed(error):
                    raise
            latest = self.get(record.connection_id, now)
            if latest is None:
                return  # closed meanwhile: the action will find no connection
            tokens, counted_at = latest.bucket(bucket.name)
        raise SocketRateLimitedError(retry_after=1)  # its other messages took them all

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
