"""The media plane on Amazon IVS real-time streaming: one stage per live room, rights as tokens.

Salon never relays media or SDP here: it issues each member a short-lived participant token
whose capabilities are their rights (PUBLISH and SUBSCRIBE for a speaker who may talk,
SUBSCRIBE alone for everyone else), and takes a right away at the stage with
DisconnectParticipant, which removes that participant (that token) from the stage for good.
The client then asks for new credentials, and gets only what it may still do.

What is exposed to every participant of a stage (a token's `userId` and `attributes`) carries no
personal data: the user id is Salon's opaque id, and the one attribute says whether the token
may publish (so a revocation can tell a publishing token from a listening one without a store).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from threading import Lock
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.adapters.media import Limits, MediaUnavailableError

logger = logging.getLogger("salon.media.ivs")

# A stage holds at most 12 publishers (a hard limit, not adjustable) and 10,000 subscribers by
# default (adjustable by a quota request). Salon's rooms hold up to 8,000 members
# (Settings.room_capacity), so a room fits one stage without raising the subscriber quota.
MAX_PUBLISHERS = 12
MAX_SUBSCRIBERS = 10_000

# A token is used once, when the client joins the stage; a client that reconnects asks Salon
# for a new one. Ten minutes covers a slow join and bounds how long an unused token that Salon
# can no longer see (issued, then the right taken away before the client joined) stays usable.
TOKEN_MINUTES = 10

MAY_PUBLISH = "may_publish"  # the token attribute; "1" or "0"
PUBLISH = ["PUBLISH", "SUBSCRIBE"]
SUBSCRIBE = ["SUBSCRIBE"]

_NOT_FOUND = "ResourceNotFoundException"
_STAGE_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def default_client_factory(region: str) -> Callable[[], Any]:
    def build() -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "ivs-realtime",
            region_name=region,
            config=Config(
                connect_timeout=2,
                read_timeout=5,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    return build


class IvsStages:
    """`MediaPlane` on IVS stages. `ref` is the stage's ARN."""

    kind = "ivs"
    limits = Limits(max_publishers=MAX_PUBLISHERS, max_listeners=MAX_SUBSCRIBERS)

    def __init__(
        self,
        region: str,
        stage: str = "",
        client_factory: Callable[[], Any] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`stage` is Salon's deployment stage (dev, prod): it prefixes the stage names and
        tags each stage, so two deployments in one account can tell their stages apart."""
        self._stage = stage
        self._factory = client_factory or default_client_factory(region)
        self._clock = clock
        self._client: Any = None
        self._lock = Lock()

    def _ivs(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One API call; anything AWS refuses or fails to answer becomes MediaUnavailableError,
        except not-found, which the caller decides about (ClientError is re-raised)."""
        try:
            result: dict[str, Any] = getattr(self._ivs(), operation)(**params)
            return result
        except ClientError as exc:
            if _error_code(exc) == _NOT_FOUND:
                raise
            logger.warning("ivs call failed", extra={"call": operation, "error": _error_code(exc)})
            raise MediaUnavailableError() from exc
        except BotoCoreError as exc:
            logger.warning(
                "ivs unreachable", extra={"call": operation, "error": type(exc).__name__}
            )
            raise MediaUnavailableError() from exc

    # --- the port -------------------------------------------------------------------------

    def open_room(self, room_id: str) -> str:
        prefix = f"salon-{self._stage}-" if self._stage else "salon-"
        name = _STAGE_NAME.sub("-", prefix + room_id)[:128]
        tags = {"salon:room": room_id[:256]}
        if self._stage:
            tags["salon:stage"] = self._stage
        try:
            created = self._call("create_stage", name=name, tags=tags)
        except ClientError as exc:  # not-found cannot happen on a create: still unavailable
            raise MediaUnavailableError() from exc
        return str(created["stage"]["arn"])

    def close_room(self, ref: str) -> None:
        try:
            self._call("delete_stage", arn=ref)
        except ClientError:
            pass  # not found: already deleted

    def credentials(
        self, ref: str, user_id: str, connection_id: str, may_publish: bool
    ) -> dict[str, Any]:
        # connection_id is not put in the token: every participant of the stage can read it.
        try:
            answer = self._call(
                "create_participant_token",
                stageArn=ref,
                userId=user_id,
                duration=TOKEN_MINUTES,
                capabilities=list(PUBLISH if may_publish else SUBSCRIBE),
                attributes={MAY_PUBLISH: "1" if may_publish else "0"},
            )
        except ClientError as exc:  # the stage is gone: the room has ended
            raise MediaUnavailableError() from exc
        token = answer["participantToken"]
        expires = token.get("expirationTime") or self._clock() + timedelta(minutes=TOKEN_MINUTES)
        return {
            "kind": self.kind,
            "ice_servers": [],  # IVS's SDKs find their own way; the field is there on every plane
            "token": token["token"],
            "participant_id": token["participantId"],
            "expires_at": expires.astimezone(UTC).isoformat(),
            "may_publish": may_publish,
        }

    def revoke_publish(self, ref: str, user_id: str) -> None:
        """Disconnect every connected participant of the user whose token may publish: those
        that published, and those that joined with a publishing token and have not yet."""
        for session_id, participant in self._connected(ref, user_id):
            if participant.get("published") or self._may_publish(ref, session_id, participant):
                self._disconnect(ref, participant["participantId"], "publishing right revoked")

    def evict(self, ref: str, user_id: str, connection_id: str) -> None:
        for _, participant in self._connected(ref, user_id):
            self._disconnect(ref, participant["participantId"], "left the room")

    # --- helpers --------------------------------------------------------------------------

    def _current_session(self, ref: str) -> str | None:
        """The stage's session in progress (the one with no end time), if any."""
        params: dict[str, Any] = {"stageArn": ref, "maxResults": 100}
        while True:
            try:
                page = self._call("list_stage_sessions", **params)
            except ClientError:
                return None  # the stage is gone: nobody is connected to it
            for session in page.get("stageSessions", []):
                if not session.get("endTime"):
                    return str(session["sessionId"])
            if not page.get("nextToken"):
                return None
            params["nextToken"] = page["nextToken"]

    def _connected(self, ref: str, user_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The user's participants connected to the stage's current session."""
        session_id = self._current_session(ref)
        if session_id is None:
            return
        # IVS takes one filter per request: by user here, the state is checked below.
        params: dict[str, Any] = {
            "stageArn": ref,
            "sessionId": session_id,
            "filterByUserId": user_id,
            "maxResults": 100,
        }
        while True:
            try:
                page = self._call("list_participants", **params)
            except ClientError:
                return
            for participant in page.get("participants", []):
                if participant.get("userId") == user_id and participant.get("state") == "CONNECTED":
                    yield session_id, participant
            if not page.get("nextToken"):
                return
            params["nextToken"] = page["nextToken"]

    def _may_publish(self, ref: str, session_id: str, participant: dict[str, Any]) -> bool:
        """Whether the participant joined with a publishing token (the summary does not say)."""
        try:
            found = self._call(
                "get_participant",
                stageArn=ref,
                sessionId=session_id,
                participantId=participant["participantId"],
            )
        except ClientError:
            return False  # gone since the listing: nothing left to revoke
        attributes = found.get("participant", {}).get("attributes") or {}
        return bool(attributes.get(MAY_PUBLISH) == "1")

    def _disconnect(self, ref: str, participant_id: str, reason: str) -> None:
        try:
            self._call(
                "disconnect_participant", stageArn=ref, participantId=participant_id, reason=reason
            )
        except ClientError:
            pass  # not found: already disconnected
