"""The media plane: where the audio flows. Salon decides who may publish and who may listen;
the SFU behind this port enforces it (a listener's client cannot send, and a right taken away
is taken away at the SFU, whatever the client does).

One rule for every adapter: a member may **publish** while they are on stage and unmuted, and
may **subscribe** while they are in the room. Gaining the right to publish, the client
publishes; losing it, the SFU cuts the publisher off (`revoke_publish`). Leaving, being removed
or disconnecting for good, the SFU drops everything of that member's connection (`evict`).
Ending the room closes the SFU's room (`close_room`).

Two kinds of adapter:
- `SignalingRelay` (Janus): clients never reach the SFU's API; their SDP goes through Salon's
  WebSocket, which checks the caller's role before anything reaches the SFU.
- token based (Amazon IVS real-time): Salon issues a short-lived participant token whose
  capabilities are the member's rights (`credentials`), and the client talks to the SFU with it.

SDP and ICE pass through these calls and are never stored or logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from chalicelib.domain.errors import ConflictError, UnavailableError


class MediaUnavailableError(UnavailableError):
    """The SFU could not be reached or refused what Salon asked: retry later."""

    code = "media_unavailable"
    default_message = "Audio is not available right now. Try again in a moment."


class MediaNegotiationError(ConflictError):
    """The SFU refused the client's session description (or the feed is not there)."""

    code = "media_negotiation_failed"
    default_message = "The audio connection could not be set up. Try again."


@dataclass(frozen=True)
class Limits:
    """What one room can really be served by this adapter (documented in docs/architecture.md)."""

    max_publishers: int  # unmuted speakers at once
    max_listeners: int  # subscribers of one room


class MediaPlane(Protocol):
    """Rights at the SFU. `ref` is what `open_room` returned (kept on the room item)."""

    kind: str
    limits: Limits

    def open_room(self, room_id: str) -> str: ...

    def close_room(self, ref: str) -> None: ...

    def credentials(
        self, ref: str, user_id: str, connection_id: str, may_publish: bool
    ) -> dict[str, Any]:
        """What the client needs to reach the SFU with exactly these rights (sent to it)."""
        ...

    def revoke_publish(self, ref: str, user_id: str) -> None: ...

    def evict(self, ref: str, user_id: str, connection_id: str) -> None: ...


@runtime_checkable
class SignalingRelay(Protocol):
    """An SFU whose API only Salon holds: each call is made after Salon's permission check."""

    def publish(self, ref: str, user_id: str, connection_id: str, offer_sdp: str) -> str:
        """Publish the member's audio (replacing an earlier publication of theirs); the answer."""
        ...

    def is_publishing(self, ref: str, user_id: str) -> bool: ...

    def subscribe(
        self, ref: str, user_id: str, connection_id: str, feed_user_id: str
    ) -> tuple[str, str]:
        """Subscribe the member to one speaker: (a handle to answer with, the SFU's offer)."""
        ...

    def start(
        self, ref: str, user_id: str, connection_id: str, handle: str, answer_sdp: str
    ) -> None: ...

    def unsubscribe(self, ref: str, user_id: str, connection_id: str, handle: str) -> None: ...
