"""Salon's settings: one frozen object read from the environment; secrets are fetched lazily."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    return default if raw in (None, "") else int(raw)


@dataclass(frozen=True)
class Settings:
    """Everything that differs between the local stack, dev and prod. Nothing else may."""

    stage: str = "local"
    version: str = "0.1.0"
    region: str = "us-east-1"
    table_prefix: str = "salon-local-"
    # The JWT signing secret: given directly (local stack, tests) or named as an SSM
    # SecureString parameter (deployed stages), fetched on first use and cached.
    jwt_secret: str = field(default="", repr=False)
    jwt_secret_parameter: str = ""
    access_token_ttl_s: int = 15 * 60
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # Where the API Gateway @connections management API lives. Built from the WebSocket
    # API's id and stage on AWS; given directly for the local gateway.
    websocket_api_id: str = ""
    websocket_stage: str = ""
    websocket_management_url: str = ""
    max_ws_message_bytes: int = 32 * 1024
    timers_queue_url: str = ""
    room_capacity: int = 8000
    reconnect_grace_s: int = 30
    audience_count_interval_s: int = 3
    max_signal_bytes: int = 16 * 1024
    # Stripe: the key and webhook secrets directly (local stack, tests) or as SSM parameters.
    stripe_secret_key: str = field(default="", repr=False)
    stripe_secret_key_parameter: str = ""
    stripe_webhook_secret: str = field(default="", repr=False)
    stripe_webhook_secret_parameter: str = ""
    stripe_connect_webhook_secret: str = field(default="", repr=False)
    stripe_connect_webhook_secret_parameter: str = ""
    stripe_api_base: str = ""
    app_url: str = "https://salon.example"
    # Profile photos: the bucket, where its objects are read, the size cap of one photo.
    photos_bucket: str = ""
    photos_url: str = ""
    photo_max_bytes: int = 5 * 1024 * 1024
    photo_upload_ttl_s: int = 300
    tip_min_cents: int = 100
    tip_max_cents: int = 100_000
    card_fee_basis_points: int = 290
    card_fee_fixed_cents: int = 30
    sender_pays_fee: bool = True
    stripe_requests_per_second: int = 20
    # A payout run hands over to a new invocation when less than this is left.
    payout_handover_ms: int = 60_000
    # Creators a payout run pays at once (one shared Stripe rate limit).
    payout_workers: int = 16
    connection_ttl_s: int = 3 * 3600
    invites_per_member: int = 2
    sign_in_code_ttl_s: int = 10 * 60
    sign_in_max_attempts: int = 5
    # Per number stays strict: it is what one person needs. Per address (an IPv4 address or an
    # IPv6 /64) it is high enough for a venue behind one NAT and still caps one address's SMS.
    sign_in_starts_per_phone_per_hour: int = 5
    sign_in_starts_per_ip_per_hour: int = 600
    # How long a retried refresh or a re-submitted right code gets the answer already given.
    retry_grace_s: int = 30
    # The media plane (chalicelib/adapters/media): "janus" (VideoRoom, reached at these URLs
    # with these secrets, which only Salon's functions hold) or "ivs" (real-time stages).
    media_plane: str = "janus"
    janus_url: str = ""
    janus_admin_url: str = ""
    janus_api_secret: str = field(default="", repr=False)
    janus_api_secret_parameter: str = ""
    janus_admin_secret: str = field(default="", repr=False)
    janus_admin_secret_parameter: str = ""
    # What one Janus node really serves (docs/benchmarks.md, "SFU fan-out"); a room is capped
    # at the smaller of this and `room_capacity`. Unmuted speakers at once: IVS's stage limit,
    # the same rule on either plane.
    janus_max_listeners: int = 300
    max_publishers: int = 12
    # Per socket, two token buckets (docs/asyncapi.yaml, `rate_limited`): every action but the
    # media ones, and the media actions (a listener entering a stage of 12 subscribes and
    # answers 24 times at once). Each holds `burst` tokens and refills `per_second`.
    ws_action_burst: int = 30
    ws_actions_per_second: int = 5
    ws_media_burst: int = 40
    ws_media_per_second: int = 4
    # Browsers send Origin with the WebSocket handshake: only these may connect (a handshake
    # without one, from a native app, is let in). Empty: the web client's own, `app_url`.
    allowed_origins: tuple[str, ...] = ()
    reports_per_hour: int = 10
    # What operators can read of a room's moderation log, in days after each entry.
    moderation_log_days: int = 30
    # A deleted member's username is held this long before anyone may take it.
    username_quarantine_days: int = 30
    # Push (docs/architecture.md, "Notifications"): its own queue, the SNS platform
    # applications, at most this many pushes a member an hour, followed people talking within
    # this many seconds of the first collapsed into one push.
    notifications_queue_url: str = ""
    push_apns_application_arn: str = ""
    push_fcm_application_arn: str = ""
    push_cap_per_hour: int = 10
    push_collapse_s: int = 60
    push_fanout_page: int = 250
    # An event nobody starts lapses this long after its start time (docs/architecture.md).
    event_grace_s: int = 3600
    # Room-wide posts (docs/architecture.md, "Fan-out"): up to `fanout_inline_max` sockets are
    # posted by the Lambda that acted; more go through the fan-out queue, this many a chunk at
    # most, in this many message groups a room (the Lambdas that post one room at once).
    fanout_queue_url: str = ""
    fanout_inline_max: int = 250
    fanout_chunk_size: int = 300
    fanout_groups: int = 16

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        stage = env.get("SALON_STAGE", "local")
        return cls(
            stage=stage,
            version=env.get("SALON_VERSION", cls.version),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or cls.region,
            table_prefix=env.get("SALON_TABLE_PREFIX", f"salon-{stage}-"),
            jwt_secret=env.get("SALON_JWT_SECRET", ""),
            jwt_secret_parameter=env.get("SALON_JWT_SECRET_PARAMETER", ""),
            access_token_ttl_s=_int(env, "SALON_ACCESS_TOKEN_TTL_S", cls.access_token_ttl_s),
            refresh_token_ttl_s=_int(env, "SALON_REFRESH_TOKEN_TTL_S", cls.refresh_token_ttl_s),
            websocket_api_id=env.get("WEBSOCKET_API_ID", ""),
            websocket_stage=env.get("WEBSOCKET_STAGE", ""),
            websocket_management_url=env.get("SALON_WS_MANAGEMENT_URL", ""),
            max_ws_message_bytes=_int(env, "SALON_MAX_WS_MESSAGE_BYTES", cls.max_ws_message_bytes),
            timers_queue_url=env.get("SALON_TIMERS_QUEUE_URL", ""),
            room_capacity=_int(env, "SALON_ROOM_CAPACITY", cls.room_capacity),
            reconnect_grace_s=_int(env, "SALON_RECONNECT_GRACE_S", cls.reconnect_grace_s),
            audience_count_interval_s=_int(
                env, "SALON_AUDIENCE_COUNT_INTERVAL_S", cls.audience_count_interval_s
            ),
            max_signal_bytes=_int(env, "SALON_MAX_SIGNAL_BYTES", cls.max_signal_bytes),
            stripe_secret_key=env.get("SALON_STRIPE_SECRET_KEY", ""),
            stripe_secret_key_parameter=env.get("SALON_STRIPE_SECRET_KEY_PARAMETER", ""),
            stripe_webhook_secret=env.get("SALON_STRIPE_WEBHOOK_SECRET", ""),
            stripe_webhook_secret_parameter=env.get("SALON_STRIPE_WEBHOOK_SECRET_PARAMETER", ""),
            stripe_connect_webhook_secret=env.get("SALON_STRIPE_CONNECT_WEBHOOK_SECRET", ""),
            stripe_connect_webhook_secret_parameter=env.get(
                "SALON_STRIPE_CONNECT_WEBHOOK_SECRET_PARAMETER", ""
            ),
            stripe_api_base=env.get("SALON_STRIPE_API_BASE", ""),
            app_url=env.get("SALON_APP_URL", cls.app_url),
            photos_bucket=env.get("SALON_PHOTOS_BUCKET", cls.photos_bucket),
            photos_url=env.get("SALON_PHOTOS_URL", cls.photos_url),
            photo_max_bytes=_int(env, "SALON_PHOTO_MAX_BYTES", cls.photo_max_bytes),
            photo_upload_ttl_s=_int(env, "SALON_PHOTO_UPLOAD_TTL_S", cls.photo_upload_ttl_s),
            tip_min_cents=_int(env, "SALON_TIP_MIN_CENTS", cls.tip_min_cents),
            tip_max_cents=_int(env, "SALON_TIP_MAX_CENTS", cls.tip_max_cents),
            card_fee_basis_points=_int(
                env, "SALON_CARD_FEE_BASIS_POINTS", cls.card_fee_basis_points
            ),
            card_fee_fixed_cents=_int(env, "SALON_CARD_FEE_FIXED_CENTS", cls.card_fee_fixed_cents),
            sender_pays_fee=env.get("SALON_SENDER_PAYS_FEE", "true").lower() != "false",
            stripe_requests_per_second=_int(
                env, "SALON_STRIPE_REQUESTS_PER_SECOND", cls.stripe_requests_per_second
            ),
            payout_handover_ms=_int(env, "SALON_PAYOUT_HANDOVER_MS", cls.payout_handover_ms),
            payout_workers=_int(env, "SALON_PAYOUT_WORKERS", cls.payout_workers),
            connection_ttl_s=_int(env, "SALON_CONNECTION_TTL_S", cls.connection_ttl_s),
            invites_per_member=_int(env, "SALON_INVITES_PER_MEMBER", cls.invites_per_member),
            sign_in_code_ttl_s=_int(env, "SALON_SIGN_IN_CODE_TTL_S", cls.sign_in_code_ttl_s),
            sign_in_max_attempts=_int(env, "SALON_SIGN_IN_MAX_ATTEMPTS", cls.sign_in_max_attempts),
            sign_in_starts_per_phone_per_hour=_int(
                env,
                "SALON_SIGN_IN_STARTS_PER_PHONE_PER_HOUR",
                cls.sign_in_starts_per_phone_per_hour,
            ),
            sign_in_starts_per_ip_per_hour=_int(
                env, "SALON_SIGN_IN_STARTS_PER_IP_PER_HOUR", cls.sign_in_starts_per_ip_per_hour
            ),
            retry_grace_s=_int(env, "SALON_RETRY_GRACE_S", cls.retry_grace_s),
            media_plane=env.get("SALON_MEDIA_PLANE", cls.media_plane),
            janus_url=env.get("SALON_JANUS_URL", ""),
            janus_admin_url=env.get("SALON_JANUS_ADMIN_URL", ""),
            janus_api_secret=env.get("SALON_JANUS_API_SECRET", ""),
            janus_api_secret_parameter=env.get("SALON_JANUS_API_SECRET_PARAMETER", ""),
            janus_admin_secret=env.get("SALON_JANUS_ADMIN_SECRET", ""),
            janus_admin_secret_parameter=env.get("SALON_JANUS_ADMIN_SECRET_PARAMETER", ""),
            janus_max_listeners=_int(env, "SALON_JANUS_MAX_LISTENERS", cls.janus_max_listeners),
            max_publishers=_int(env, "SALON_MAX_PUBLISHERS", cls.max_publishers),
            ws_action_burst=_int(env, "SALON_WS_ACTION_BURST", cls.ws_action_burst),
            ws_actions_per_second=_int(
                env, "SALON_WS_ACTIONS_PER_SECOND", cls.ws_actions_per_second
            ),
            ws_media_burst=_int(env, "SALON_WS_MEDIA_BURST", cls.ws_media_burst),
            ws_media_per_second=_int(env, "SALON_WS_MEDIA_PER_SECOND", cls.ws_media_per_second),
            allowed_origins=tuple(
                o.strip() for o in env.get("SALON_ALLOWED_ORIGINS", "").split(",") if o.strip()
            ),
            reports_per_hour=_int(env, "SALON_REPORTS_PER_HOUR", cls.reports_per_hour),
            moderation_log_days=_int(env, "SALON_MODERATION_LOG_DAYS", cls.moderation_log_days),
            username_quarantine_days=_int(
                env, "SALON_USERNAME_QUARANTINE_DAYS", cls.username_quarantine_days
            ),
            notifications_queue_url=env.get("SALON_NOTIFICATIONS_QUEUE_URL", ""),
            push_apns_application_arn=env.get("SALON_PUSH_APNS_APPLICATION_ARN", ""),
            push_fcm_application_arn=env.get("SALON_PUSH_FCM_APPLICATION_ARN", ""),
            push_cap_per_hour=_int(env, "SALON_PUSH_CAP_PER_HOUR", cls.push_cap_per_hour),
            push_collapse_s=_int(env, "SALON_PUSH_COLLAPSE_S", cls.push_collapse_s),
            push_fanout_page=_int(env, "SALON_PUSH_FANOUT_PAGE", cls.push_fanout_page),
            event_grace_s=_int(env, "SALON_EVENT_GRACE_S", cls.event_grace_s),
            fanout_queue_url=env.get("SALON_FANOUT_QUEUE_URL", ""),
            fanout_inline_max=_int(env, "SALON_FANOUT_INLINE_MAX", cls.fanout_inline_max),
            fanout_chunk_size=_int(env, "SALON_FANOUT_CHUNK_SIZE", cls.fanout_chunk_size),
            fanout_groups=_int(env, "SALON_FANOUT_GROUPS", cls.fanout_groups),
        )

    @property
    def browser_origins(self) -> frozenset[str]:
        """The Origins a browser may open a socket from."""
        if self.allowed_origins:
            return frozenset(self.allowed_origins)
        scheme, _, rest = self.app_url.partition("://")
        return frozenset({f"{scheme}://{rest.split('/', 1)[0]}"})

    def table_name(self, short_name: str) -> str:
        return f"{self.table_prefix}{short_name}"

    @property
    def management_url(self) -> str:
        if self.websocket_management_url:
            return self.websocket_management_url
        if not (self.websocket_api_id and self.websocket_stage):
            return ""
        return (
            f"https://{self.websocket_api_id}.execute-api.{self.region}.amazonaws.com"
            f"/{self.websocket_stage}"
        )


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
