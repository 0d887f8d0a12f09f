"""Janus's VideoRoom (a selective forwarder) as Salon's media plane, over its HTTP API.

Only Salon holds Janus's API secret and admin secret; clients reach nothing of Janus but its
media ports. Every session and handle is Salon's, made after Salon's permission check:

- a room is a VideoRoom room named by the Salon room id (`string_ids`), with a secret derived
  from the API secret, created and destroyed through the admin API's `message_plugin`;
- each connection has at most two sessions, whose ids Salon derives (an HMAC of the room, the
  member and the connection), so nothing about them is stored: one publishes (the participant
  id is the member's user id, so Salon can always `kick` it), one holds a handle per speaker
  the member listens to;
- answers and offers come back as asynchronous events: the call long-polls its own session for
  the event of its own transaction.

SDP passes through and is never logged; errors carry Janus's code and reason, never the SDP.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from chalicelib.adapters.media import (
    Limits,
    MediaNegotiationError,
    MediaUnavailableError,
)

logger = logging.getLogger("salon.media")

PLUGIN = "janus.plugin.videoroom"
# Janus's own error codes that mean "already so": idempotent for Salon.
SESSION_IN_USE = 468
NO_SUCH_SESSION = 458
NO_SUCH_HANDLE = 459
ROOM_EXISTS = 427
NO_SUCH_ROOM = 426
NO_SUCH_FEED = 428  # also "no such user" for kick
# An unparsable or unusable JSEP (Janus's 463-465), or a session or handle that is gone.
CLIENT_FAULTS = frozenset({NO_SUCH_SESSION, NO_SUCH_HANDLE, 463, 464, 465})
EVENT_WAIT_S = 5.0
Http = Callable[[str, dict[str, Any] | None, float], Any]


def _http(url: str, body: dict[str, Any] | None, timeout: float) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 (Salon's configured Janus URL)
        url,
        data=data,
        headers={"content-type": "application/json"},
        method="POST" if data else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            return json.load(reply)
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as exc:
        logger.warning("janus unreachable", extra={"error": type(exc).__name__})
        raise MediaUnavailableError() from exc


class JanusError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"janus {code}: {reason}")
        self.code = code
        self.reason = reason


class JanusVideoRoom:
    kind = "janus"

    def __init__(
        self,
        url: str,
        admin_url: str,
        api_secret: Callable[[], str],
        admin_secret: Callable[[], str],
        limits: Limits,
        ice_servers: list[dict[str, Any]] | None = None,
        http: Http = _http,
        event_wait_s: float = EVENT_WAIT_S,
    ) -> None:
        self.url = url.rstrip("/")
        self.admin_url = admin_url.rstrip("/")
        self._api_secret = api_secret
        self._admin_secret = admin_secret
        self.limits = limits
        self.ice_servers = ice_servers or []
        self._http = http
        self._event_wait_s = event_wait_s

    # --- rooms ----------------------------------------------------------------------------

    def open_room(self, room_id: str) -> str:
        self._plugin(
            {
                "request": "create",
                "room": room_id,
                "admin_key": self._admin_secret(),
                "secret": self._room_secret(room_id),
                "is_private": True,
                "permanent": False,
                "publishers": self.limits.max_publishers,
                "audiocodec": "opus",
                "audiolevel_event": False,
            },
            ok=frozenset({ROOM_EXISTS}),
        )
        return room_id

    def close_room(self, ref: str) -> None:
        """Destroying the room hangs up every publisher in it: nothing is forwarded after."""
        self._plugin(
            {"request": "destroy", "room": ref, "secret": self._room_secret(ref)},
            ok=frozenset({NO_SUCH_ROOM}),
        )

    def credentials(
        self, ref: str, user_id: str, connection_id: str, may_publish: bool
    ) -> dict[str, Any]:
        # Nothing to hand out: the client's SDP goes through Salon, which holds the secrets.
        return {"kind": self.kind, "ice_servers": self.ice_servers, "may_publish": may_publish}

    def revoke_publish(self, ref: str, user_id: str) -> None:
        """Hang up the member's publisher, wherever it was published from."""
        self._plugin(
            {"request": "kick", "room": ref, "secret": self._room_secret(ref), "id": user_id},
            ok=frozenset({NO_SUCH_FEED, NO_SUCH_ROOM}),
        )

    def evict(self, ref: str, user_id: str, connection_id: str) -> None:
        """Drop every session of that connection: its publisher and what it listens to."""
        for purpose in ("pub", "sub"):
            self._destroy_session(self._session_id(purpose, ref, user_id, connection_id))

    # --- the relay ------------------------------------------------------------------------

    def publish(self, ref: str, user_id: str, connection_id: str, offer_sdp: str) -> str:
        # One publication per member: an earlier one (another tab, the page before a reload)
        # is hung up first, so the new one takes the member's participant id at once.
        self.revoke_publish(ref, user_id)
        # A Janus that restarted has lost its rooms: the first publication brings it back.
        self.open_room(ref)
        session = self._session_id("pub", ref, user_id, connection_id)
        self._destroy_session(session)
        self._create_session(session)
        handle = self._attach(session)
        event, jsep = self._ask(
            session,
            handle,
            {
                "request": "joinandconfigure",
                "room": ref,
                "ptype": "publisher",
                "id": user_id,
                "display": user_id,
                "audio": True,
                "video": False,
                "data": False,
            },
            {"type": "offer", "sdp": offer_sdp},
        )
        if event.get("videoroom") != "joined" or not jsep or jsep.get("type") != "answer":
            raise MediaNegotiationError()
        return str(jsep["sdp"])

    def is_publishing(self, ref: str, user_id: str) -> bool:
        reply = self._plugin(
            {"request": "listparticipants", "room": ref}, ok=frozenset({NO_SUCH_ROOM})
        )
        return any(
            p.get("id") == user_id and p.get("publisher") for p in reply.get("participants", [])
        )

    def subscribe(
        self, ref: str, user_id: str, connection_id: str, feed_user_id: str
    ) -> tuple[str, str]:
        session = self._session_id("sub", ref, user_id, connection_id)
        self._create_session(session)
        handle = self._attach(session)
        try:
            event, jsep = self._ask(
                session,
                handle,
                {
                    "request": "join",
                    "room": ref,
                    "ptype": "subscriber",
                    "streams": [{"feed": feed_user_id}],
                    "use_msid": True,
                },
            )
        except MediaNegotiationError:
            self._detach(session, handle)
            raise
        if event.get("videoroom") != "attached" or not jsep or jsep.get("type") != "offer":
            self._detach(session, handle)
            raise MediaNegotiationError()
        return str(handle), str(jsep["sdp"])

    def start(
        self, ref: str, user_id: str, connection_id: str, handle: str, answer_sdp: str
    ) -> None:
        session = self._session_id("sub", ref, user_id, connection_id)
        event, _ = self._ask(
            session,
            _handle_id(handle),
            {"request": "start"},
            {"type": "answer", "sdp": answer_sdp},
        )
        if event.get("started") != "ok":
            raise MediaNegotiationError()

    def unsubscribe(self, ref: str, user_id: str, connection_id: str, handle: str) -> None:
        self._detach(self._session_id("sub", ref, user_id, connection_id), _handle_id(handle))

    # --- Janus's API ----------------------------------------------------------------------

    def _session_id(self, purpose: str, ref: str, user_id: str, connection_id: str) -> int:
        """A session id nobody else can guess or reproduce, derived instead of stored."""
        digest = hmac.new(
            self._api_secret().encode(),
            "|".join(("janus-session", purpose, ref, user_id, connection_id)).encode(),
            hashlib.sha256,
        ).digest()
        return int.from_bytes(digest[:6], "big") + 1  # ≤ 2**48: exact in JavaScript too

    def _room_secret(self, ref: str) -> str:
        return hmac.new(
            self._admin_secret().encode(), f"janus-room|{ref}".encode(), hashlib.sha256
        ).hexdigest()

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": secrets.token_hex(8), "apisecret": self._api_secret()}
        reply: dict[str, Any] = self._http(f"{self.url}{path}", body, 10.0)
        if reply.get("janus") == "error":
            error = reply.get("error") or {}
            raise JanusError(int(error.get("code", 0)), str(error.get("reason", "")))
        return reply

    def _plugin(self, request: dict[str, Any], ok: frozenset[int] = frozenset()) -> dict[str, Any]:
        """A synchronous VideoRoom request through the admin API (no session needed)."""
        body = {
            "janus": "message_plugin",
            "transaction": secrets.token_hex(8),
            "admin_secret": self._admin_secret(),
            "plugin": PLUGIN,
            "request": request,
        }
        reply: dict[str, Any] = self._http(self.admin_url, body, 10.0)
        if reply.get("janus") == "error":
            logger.error(
                "janus refused", extra={"janus_code": (reply.get("error") or {}).get("code")}
            )
            raise MediaUnavailableError()
        response: dict[str, Any] = reply.get("response") or {}
        code = response.get("error_code")
        if code is not None and code not in ok:
            logger.error(
                "videoroom refused",
                extra={"janus_code": code, "request": request.get("request")},
            )
            raise MediaUnavailableError()
        return response

    def _create_session(self, session: int) -> None:
        try:
            self._call("", {"janus": "create", "id": session})
        except JanusError as exc:
            if exc.code != SESSION_IN_USE:
                raise MediaUnavailableError() from exc

    def _destroy_session(self, session: int) -> None:
        try:
            self._call(f"/{session}", {"janus": "destroy"})
        except JanusError as exc:
            if exc.code != NO_SUCH_SESSION:
                raise MediaUnavailableError() from exc

    def _attach(self, session: int) -> int:
        try:
            reply = self._call(f"/{session}", {"janus": "attach", "plugin": PLUGIN})
        except JanusError as exc:
            raise MediaUnavailableError() from exc
        return int(reply["data"]["id"])

    def _detach(self, session: int, handle: int) -> None:
        try:
            self._call(f"/{session}/{handle}", {"janus": "detach"})
        except JanusError as exc:
            if exc.code not in (NO_SUCH_SESSION, NO_SUCH_HANDLE):
                raise MediaUnavailableError() from exc

    def _ask(
        self,
        session: int,
        handle: int,
        request: dict[str, Any],
        jsep: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """An asynchronous plugin request: post it, then wait for its event on the session."""
        body: dict[str, Any] = {"janus": "message", "body": request}
        if jsep is not None:
            body["jsep"] = jsep
        try:
            ack = self._call(f"/{session}/{handle}", body)
        except JanusError as exc:
            # The client's doing: a description Janus cannot use, a handle gone. Anything else
            # (a wrong secret, a plugin error) is Salon's side, and retrying may help.
            if exc.code in CLIENT_FAULTS:
                raise MediaNegotiationError() from exc
            logger.error("janus refused", extra={"janus_code": exc.code})
            raise MediaUnavailableError() from exc
        transaction = ack.get("transaction")
        deadline = time.monotonic() + self._event_wait_s
        while time.monotonic() < deadline:
            polled = self._http(
                f"{self.url}/{session}?maxev=1&apisecret={self._api_secret()}",
                None,
                self._event_wait_s + 1,
            )
            if not isinstance(polled, dict) or polled.get("transaction") != transaction:
                continue  # keepalives and other handles' events (webrtcup, media, hangup)
            if polled.get("janus") == "error":
                raise MediaNegotiationError()
            data = (polled.get("plugindata") or {}).get("data") or {}
            if "error_code" in data:
                logger.info("videoroom refused", extra={"janus_code": data["error_code"]})
                raise MediaNegotiationError(
                    "That speaker is not sending audio right now."
                    if data["error_code"] == NO_SUCH_FEED
                    else None
                )
            return data, polled.get("jsep")
        raise MediaUnavailableError()


def _handle_id(handle: str) -> int:
    try:
        value = int(handle)
    except ValueError as exc:
        raise MediaNegotiationError("That audio handle is not valid.") from exc
    if value <= 0:
        raise MediaNegotiationError("That audio handle is not valid.")
    return value
