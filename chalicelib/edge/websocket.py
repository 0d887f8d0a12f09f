"""The WebSocket protocol: admitting sockets, parsing messages, dispatching actions, errors."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from chalice.app import Response, WebsocketEvent

from chalicelib.adapters.dynamo.connections import (
    ConnectionRecord,
    ConnectionRepository,
    NotConnectedError,
)
from chalicelib.domain.errors import (
    NotAuthenticatedError,
    PayloadTooLargeError,
    SalonError,
    ValidationError,
)
from chalicelib.edge.errors import error_payload, http_status, internal_payload, ws_error
from chalicelib.edge.validation import Field, parse_json_object, validate

logger = logging.getLogger("salon.realtime")

ENVELOPE = ("action", "ref")
MAX_REF_LENGTH = 64
GATEWAY_MAX_MESSAGE_BYTES = 128 * 1024
REF = Field("ref", str, required=False, max_length=MAX_REF_LENGTH)


class Poster(Protocol):
    def post(self, connection_id: str, message: dict[str, Any]) -> bool: ...

    def close(self, connection_id: str) -> None: ...


class Authenticator(Protocol):
    def authenticate(self, access_token: str) -> str: ...


@dataclass(frozen=True)
class Context:
    """Who sent a message, over which connection, and when."""

    connection: ConnectionRecord
    now: datetime

    @property
    def user_id(self) -> str:
        return self.connection.user_id


Handler = Callable[[Context, dict[str, Any]], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Action:
    name: str
    fields: tuple[Field, ...]
    handler: Handler


class UnknownActionError(ValidationError):
    code = "unknown_action"
    default_message = "That action does not exist."


class Realtime:
    def __init__(
        self,
        authenticator: Authenticator,
        connections: ConnectionRepository,
        poster: Poster,
        clock: Callable[[], datetime],
        max_message_bytes: int,
        on_disconnect: Callable[[ConnectionRecord], None] | None = None,
    ) -> None:
        self._on_disconnect = on_disconnect
        self._auth = authenticator
        self._connections = connections
        self._poster = poster
        self._clock = clock
        self._max_bytes = max_message_bytes
        self._actions: dict[str, Action] = {}
        self.register(Action("ping", (), self._ping))

    def register(self, action: Action) -> None:
        self._actions[action.name] = action

    @property
    def actions(self) -> Mapping[str, Action]:
        return self._actions

    def connect(self, connection_id: str, query: Mapping[str, str] | None) -> str:
        """Admit a connection that carries a valid access token; raise otherwise."""
        token = (query or {}).get("token")
        if not token:
            raise NotAuthenticatedError("Connect with ?token=<access token>.")
        user_id = self._auth.authenticate(token)
        self._connections.add(connection_id, user_id, self._clock())
        return user_id

    def disconnect(self, connection_id: str) -> None:
        connection = self._connections.get(connection_id, self._clock())
        if connection is not None and self._on_disconnect is not None:
            try:
                self._on_disconnect(connection)
            except SalonError:
                pass  # the room refused (ended, already left): nothing to keep
        self._connections.remove(connection_id)

    def drop_user(self, user_id: str) -> int:
        """Close every socket of a member (suspension); the gateway then sends $disconnect."""
        connection_ids = self._connections.for_user(user_id)
        for connection_id in connection_ids:
            self._poster.close(connection_id)
        return len(connection_ids)

    def receive(self, connection_id: str, body: str | None, is_base64: bool = False) -> None:
        """Handle one client message; every failure becomes an error reply, never silence."""
        ref: str | None = None
        try:
            raw = base64.b64decode(body or "") if is_base64 else (body or "").encode()
            if len(raw) > self._max_bytes:
                ref = _readable_ref(raw)
                raise PayloadTooLargeError(
                    f"Messages are limited to {self._max_bytes} bytes; this one has {len(raw)}."
                )
            try:
                message = parse_json_object(raw, what="message")
            except ValidationError:
                ref = _readable_ref(raw)  # JSON Salon refuses (NaN, say) may still name one
                raise
            ref = _ref_of(message)
            reply = self._dispatch(connection_id, message)
        except SalonError as error:
            reply = ws_error(error_payload(error), ref)
        except Exception:
            logger.exception("websocket action failed", extra={"connection_id": connection_id})
            reply = ws_error(internal_payload(), ref)
        if reply is not None:
            if ref is not None and "ref" not in reply:
                reply = {**reply, "ref": ref}
            self._poster.post(connection_id, reply)

    def _dispatch(self, connection_id: str, message: dict[str, Any]) -> dict[str, Any] | None:
        name = message.get("action")
        if not isinstance(name, str) or not name:
            raise ValidationError("Every message needs an 'action' string.", field="action")
        action = self._actions.get(name)
        if action is None:
            raise UnknownActionError(f"Unknown action '{name[:64]}'.", field="action")
        payload = validate(message, (*action.fields, REF), ignore=("action",))
        payload.pop("ref", None)
        now = self._clock()
        connection = self._connections.get(connection_id, now)
        if connection is None:
            raise NotConnectedError()
        reply = action.handler(Context(connection, now), payload)
        # Actions whose effect is told to the room by events still get an answer of their own,
        # so that a client knows its request was done (and can match it by `ref`).
        return reply if reply is not None else {"type": "ack", "action": name}

    def _ping(self, ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
        return {"type": "pong", "at": ctx.now.isoformat()}


def _ref_of(message: dict[str, Any]) -> str | None:
    """The client's ref, to echo on every reply: an over-long one is refused, but its first
    MAX_REF_LENGTH characters still come back so that the client can tell which message."""
    ref = message.get("ref")
    return ref[:MAX_REF_LENGTH] if isinstance(ref, str) else None


def _readable_ref(raw: bytes) -> str | None:
    """The ref of a message refused for its size, when it can be read at all. API Gateway
    delivers at most 128 KB, so reading it costs no more than reading a message."""
    if len(raw) > GATEWAY_MAX_MESSAGE_BYTES:
        return None
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return _ref_of(message) if isinstance(message, dict) else None


def admit(realtime: Realtime, event: WebsocketEvent) -> Response | None:
    """`$connect`: a Response that refuses the handshake, or None to accept it."""
    raw = event.to_dict()
    try:
        realtime.connect(event.connection_id, raw.get("queryStringParameters"))
    except SalonError as error:
        return Response(body={"error": error_payload(error)}, status_code=http_status(error))
    return None


def receive(realtime: Realtime, event: WebsocketEvent) -> None:
    raw = event.to_dict()
    realtime.receive(event.connection_id, raw.get("body"), bool(raw.get("isBase64Encoded")))
