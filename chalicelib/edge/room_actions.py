"""The room actions of the WebSocket protocol: each one's fields, and the use case it calls."""

from __future__ import annotations

from typing import Any

from chalicelib.domain import rooms as domain
from chalicelib.domain.clubs import ROOM_KINDS
from chalicelib.domain.text import MAX_TITLE_LENGTH
from chalicelib.edge.schemas import ID_PATTERN
from chalicelib.edge.validation import Field
from chalicelib.edge.websocket import Action, Context, Realtime
from chalicelib.services.clubs import Clubs
from chalicelib.services.events import Events
from chalicelib.services.rooms import Rooms
from chalicelib.services.safety import Safety

ROOM_ID = Field("room_id", str, pattern=ID_PATTERN)
EVENT_ID = Field("event_id", str, pattern=ID_PATTERN)
USER_ID = Field("user_id", str, pattern=ID_PATTERN)
# Mute and unmute act on the sender unless they name someone else.
SELF_OR_USER = Field("user_id", str, required=False, pattern=ID_PATTERN)
TITLE = Field("title", str, min_length=1, max_length=MAX_TITLE_LENGTH)
# A room for members only is a club's (start_club_room).
KIND = Field(
    "kind", str, choices=tuple(t.value for t in domain.RoomType if t is not domain.RoomType.MEMBERS)
)
CLUB_ID = Field("club_id", str, pattern=ID_PATTERN)
CLUB_ROOM_KIND = Field("kind", str, choices=ROOM_KINDS)
CURSOR = Field("cursor", str, required=False, max_length=2048)
HANDLE = Field("handle", str, pattern=r"[1-9][0-9]{0,19}")


def register_room_actions(
    realtime: Realtime,
    rooms: Rooms,
    safety: Safety,
    events: Events,
    max_signal_bytes: int,
    *,
    clubs: Clubs,
) -> None:
    def stage(name: str, op: Any, *fields: Field) -> None:
        """An action on the sender's room, with at most one target (`user_id`)."""

        def run(ctx: Context, payload: dict[str, Any]) -> None:
            rooms.act(ctx.connection, op, *(payload.get(f.name, ctx.user_id) for f in fields))

        realtime.register(Action(name, fields, run))

    def on(name: str, fields: tuple[Field, ...], run: Any, bucket: str = "action") -> None:
        realtime.register(Action(name, fields, run, bucket))

    def media(name: str, fields: tuple[Field, ...], run: Any) -> None:
        """A media action: it spends from the socket's media bucket, not its action bucket."""
        on(name, fields, run, "media")

    on(
        "create_room",
        (TITLE, KIND),
        lambda ctx, p: rooms.create(ctx.connection, p["title"], p["kind"]),
    )
    on("join_room", (ROOM_ID,), lambda ctx, p: rooms.join(ctx.connection, p["room_id"]))
    # A scheduled room going live: the same reply as create_room.
    on("start_event", (EVENT_ID,), lambda ctx, p: events.start(ctx.connection, p["event_id"]))
    # A club's room: its admins moderate it; `members` admits only the club's members.
    on(
        "start_club_room",
        (CLUB_ID, TITLE, CLUB_ROOM_KIND),
        lambda ctx, p: clubs.start_room(ctx.connection, p["club_id"], p["title"], p["kind"]),
    )
    on("leave_room", (), lambda ctx, p: rooms.leave(ctx.connection))
    on("list_audience", (CURSOR,), lambda ctx, p: rooms.audience(ctx.connection, p.get("cursor")))
    on(
        "moderation_log",
        (CURSOR,),
        lambda ctx, p: safety.room_log_for_moderator(ctx.connection, p.get("cursor")),
    )
    stage("raise_hand", lambda room, who, at: domain.raise_hand(room, who, at))
    stage("lower_hand", lambda room, who, at: domain.lower_hand(room, who, at))
    stage("set_hands_allowed", domain.set_hands_allowed, Field("allowed", bool))
    stage("invite_to_speak", domain.invite_to_speak, USER_ID)
    stage("accept_speaker_invite", lambda room, who, at: domain.accept_invitation(room, who, at))
    stage("decline_speaker_invite", lambda room, who, at: domain.decline_invitation(room, who, at))
    stage("move_to_audience", domain.move_to_audience, USER_ID)
    stage("step_down", lambda room, who, at: domain.step_down(room, who, at))
    stage("mute", domain.mute, SELF_OR_USER)
    stage("unmute", domain.unmute, SELF_OR_USER)
    stage("make_moderator", domain.make_moderator, USER_ID)
    stage("unmake_moderator", domain.unmake_moderator, USER_ID)
    stage("remove_member", domain.remove_member, USER_ID)
    stage("invite_to_room", domain.invite_to_room, USER_ID)
    stage("end_room", lambda room, who, at: domain.end_room(room, who, at))
    # Audio goes through the SFU; SDP reaches it only through these, after Salon's check.
    sdp = Field("sdp", str, min_length=1, max_length=max_signal_bytes)
    media("media_publish", (sdp,), lambda ctx, p: rooms.media_publish(ctx.connection, p["sdp"]))
    media("media_live", (), lambda ctx, p: rooms.media_live(ctx.connection))
    media(
        "media_subscribe",
        (USER_ID,),
        lambda ctx, p: rooms.media_subscribe(ctx.connection, p["user_id"]),
    )
    media(
        "media_answer",
        (HANDLE, sdp),
        lambda ctx, p: rooms.media_answer(ctx.connection, p["handle"], p["sdp"]),
    )
    media(
        "media_unsubscribe",
        (HANDLE,),
        lambda ctx, p: rooms.media_unsubscribe(ctx.connection, p["handle"]),
    )
    on(
        "ping_into_room",
        (USER_ID,),
        lambda ctx, p: rooms.ping_into_room(ctx.connection, p["user_id"]),
    )
