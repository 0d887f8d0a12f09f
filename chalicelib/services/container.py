"""Wires the services together once per Lambda container, on first use.

Each collaborator's module is imported where it is built, not at the top: every Lambda imports
app.py, and a function imports only the services and adapters its requests touch (the payout
functions no rooms, the WebSocket functions no Stripe). docs/benchmarks.md, "Cold start"."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings, settings

if TYPE_CHECKING:
    from chalicelib.adapters.connections import Connections
    from chalicelib.adapters.dynamo.connections import ConnectionRepository
    from chalicelib.adapters.dynamo.safety import SafetyRepository
    from chalicelib.adapters.media import MediaPlane
    from chalicelib.adapters.sms import Sms
    from chalicelib.adapters.stripe_gateway import StripeGateway
    from chalicelib.adapters.timers import Timers
    from chalicelib.adapters.tokens import TokenIssuer
    from chalicelib.edge.websocket import Realtime
    from chalicelib.services.account import Account
    from chalicelib.services.clubs import Clubs
    from chalicelib.services.events import Events
    from chalicelib.services.fanout import Fanout
    from chalicelib.services.identity import Identity
    from chalicelib.services.notifications import Notifications, Notifier
    from chalicelib.services.payments import Payments
    from chalicelib.services.photos import Photos
    from chalicelib.services.program import Program
    from chalicelib.services.reconcile import Reconciliation
    from chalicelib.services.rooms import Rooms
    from chalicelib.services.safety import Safety


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Services:
    """Collaborators built on first use, so a cold start builds only what its request touches."""

    settings: Settings

    @cached_property
    def tokens(self) -> TokenIssuer:
        from chalicelib.adapters.secrets import jwt_secret
        from chalicelib.adapters.tokens import TokenIssuer

        return TokenIssuer(lambda: jwt_secret(self.settings), self.settings.access_token_ttl_s)

    @cached_property
    def poster(self) -> Connections:
        from chalicelib.adapters.connections import Connections

        return Connections(self.settings.management_url, self.settings.region)

    @cached_property
    def connections(self) -> ConnectionRepository:
        from chalicelib.adapters.dynamo.connections import ConnectionRepository

        return ConnectionRepository(self.settings.connection_ttl_s)

    @cached_property
    def realtime(self) -> Realtime:
        from chalicelib.domain.limits import Bucket
        from chalicelib.edge.room_actions import register_room_actions
        from chalicelib.edge.websocket import Realtime

        realtime = Realtime(
            self.identity,
            self.connections,
            self.poster,
            utc_now,
            self.settings.max_ws_message_bytes,
            on_disconnect=self.rooms.disconnected,
            buckets={
                "action": Bucket(
                    "action", self.settings.ws_action_burst, self.settings.ws_actions_per_second
                ),
                "media": Bucket(
                    "media", self.settings.ws_media_burst, self.settings.ws_media_per_second
                ),
            },
            origins=self.settings.browser_origins,
        )
        register_room_actions(
            realtime,
            self.rooms,
            self.safety,
            self.events,
            self.settings.max_signal_bytes,
            clubs=self.clubs,
        )
        return realtime

    @cached_property
    def photos(self) -> Photos:
        from chalicelib.adapters.photos import PhotoStore
        from chalicelib.domain.photos import PhotoRules
        from chalicelib.services.photos import Photos

        s = self.settings
        return Photos(
            PhotoStore(s.photos_bucket, s.photos_url, s.region),
            self.identity.repo,
            PhotoRules(max_bytes=s.photo_max_bytes, upload_ttl_s=s.photo_upload_ttl_s),
            new_id,
        )

    @cached_property
    def timers(self) -> Timers:
        from chalicelib.adapters.timers import Timers

        return Timers(self.settings.timers_queue_url, self.settings.region)

    @cached_property
    def notifications_queue(self) -> Timers:
        from chalicelib.adapters.timers import Timers

        return Timers(
            self.settings.notifications_queue_url,
            self.settings.region,
            setting="SALON_NOTIFICATIONS_QUEUE_URL",
        )

    @cached_property
    def fanout_queue(self) -> Timers:
        from chalicelib.adapters.timers import Timers

        return Timers(
            self.settings.fanout_queue_url, self.settings.region, setting="SALON_FANOUT_QUEUE_URL"
        )

    @cached_property
    def fanout(self) -> Fanout:
        """Room-wide posts: inline for a small room, through the fan-out queue for a big one."""
        from chalicelib.services.fanout import Fanout

        s = self.settings
        return Fanout(
            poster=self.poster,
            connections=self.connections,
            queue=self.fanout_queue,
            new_id=new_id,
            inline_max=s.fanout_inline_max,
            chunk_size=s.fanout_chunk_size,
            groups=s.fanout_groups,
        )

    @cached_property
    def notifier(self) -> Notifier:
        """What use cases call to cause a push: it only queues."""
        from chalicelib.services.notifications import Notifier

        return Notifier(self.notifications_queue, new_id)

    @cached_property
    def notifications(self) -> Notifications:
        from chalicelib.adapters.dynamo.events import EventRepository
        from chalicelib.adapters.dynamo.push import PushRepository
        from chalicelib.adapters.push import PushGateway
        from chalicelib.domain.notifications import Platform
        from chalicelib.services.notifications import Notifications

        applications = {
            Platform.APNS: self.settings.push_apns_application_arn,
            Platform.FCM: self.settings.push_fcm_application_arn,
        }
        return Notifications(
            repo=PushRepository(),
            people=self.identity.repo,
            events=EventRepository(),
            gateway=PushGateway(self.settings.region, applications),
            queue=self.notifications_queue,
            settings=self.settings,
            clock=utc_now,
            new_id=new_id,
        )

    @cached_property
    def events(self) -> Events:
        from chalicelib.adapters.dynamo.clubs import ClubRepository
        from chalicelib.adapters.dynamo.events import EventRepository
        from chalicelib.services.events import Events

        return Events(
            repo=EventRepository(),
            people=self.identity.repo,
            rooms=self.rooms,
            notifier=self.notifier,
            settings=self.settings,
            clock=utc_now,
            new_id=new_id,
            clubs=ClubRepository(),
        )

    @cached_property
    def rooms(self) -> Rooms:
        from chalicelib.adapters.dynamo.clubs import ClubRepository
        from chalicelib.adapters.dynamo.rooms import RoomRepository
        from chalicelib.services.rooms import Rooms

        return Rooms(
            repo=RoomRepository(),
            people=self.identity.repo,
            connections=self.connections,
            poster=self.poster,
            fanout=self.fanout,
            timers=self.timers,
            settings=self.settings,
            clock=utc_now,
            new_id=new_id,
            media=self.media,
            notifier=self.notifier,
            moderation_log=self.safety_repo,
            clubs=ClubRepository(),
        )

    @cached_property
    def clubs(self) -> Clubs:
        from chalicelib.adapters.dynamo.clubs import ClubRepository
        from chalicelib.services.clubs import Clubs

        return Clubs(
            repo=ClubRepository(),
            people=self.identity.repo,
            rooms=self.rooms,
            clock=utc_now,
            new_id=new_id,
        )

    @cached_property
    def account(self) -> Account:
        from chalicelib.adapters.dynamo.money import MoneyRepository
        from chalicelib.adapters.dynamo.program import ProgramRepository
        from chalicelib.services.account import Account

        return Account(
            identity=self.identity,
            connections=self.connections,
            poster=self.poster,
            money=MoneyRepository(),
            program=ProgramRepository(),
            safety=self.safety_repo,
            stripe=self.stripe,
            settings=self.settings,
            clock=utc_now,
            forget_push=lambda user_id: self.notifications.forget(user_id),
            forget_events=lambda user_id: self.events.forget(user_id),
            erase_photo=lambda user_id: self.photos.erase(user_id),
            leave_room=lambda record: self.rooms.leave(record),
            erase_clubs=lambda user_id: self.clubs.erase(user_id),
        )

    @cached_property
    def safety_repo(self) -> SafetyRepository:
        from chalicelib.adapters.dynamo.safety import SafetyRepository

        return SafetyRepository(timedelta(days=self.settings.moderation_log_days))

    @cached_property
    def safety(self) -> Safety:
        from chalicelib.adapters.dynamo.rooms import RoomRepository
        from chalicelib.services.safety import Safety

        return Safety(
            repo=self.safety_repo,
            people=self.identity.repo,
            identity=self.identity,
            rooms=RoomRepository(),
            connections=self.connections,
            poster=self.poster,
            settings=self.settings,
            clock=utc_now,
            new_id=new_id,
            drop_user=lambda user_id: self.realtime.drop_user(user_id),
        )

    @cached_property
    def media(self) -> MediaPlane:
        """The SFU the settings name (chalicelib/adapters/media)."""
        if self.settings.media_plane == "ivs":
            from chalicelib.adapters.media.ivs import IvsStages

            return IvsStages(self.settings.region, self.settings.stage)
        from chalicelib.adapters.media import Limits
        from chalicelib.adapters.media.janus import JanusVideoRoom
        from chalicelib.adapters.secrets import janus_admin_secret, janus_api_secret

        return JanusVideoRoom(
            self.settings.janus_url,
            self.settings.janus_admin_url,
            api_secret=lambda: janus_api_secret(self.settings),
            admin_secret=lambda: janus_admin_secret(self.settings),
            limits=Limits(
                max_publishers=self.settings.max_publishers,
                max_listeners=self.settings.janus_max_listeners,
            ),
        )

    @cached_property
    def stripe(self) -> StripeGateway:
        from chalicelib.adapters.secrets import stripe_key
        from chalicelib.adapters.stripe_gateway import StripeGateway

        return StripeGateway(lambda: stripe_key(self.settings), self.settings.stripe_api_base)

    def webhook_secret(self, connect: bool) -> str:
        from chalicelib.adapters.secrets import stripe_webhook_secret

        return stripe_webhook_secret(self.settings, connect)

    @cached_property
    def payments(self) -> Payments:
        from chalicelib.adapters.dynamo.money import MoneyRepository
        from chalicelib.services.payments import Payments

        return Payments(
            repo=MoneyRepository(),
            people=self.identity.repo,
            stripe=self.stripe,
            connections=self.connections,
            poster=self.poster,
            settings=self.settings,
            clock=utc_now,
            new_id=new_id,
            on_stage_notice=self.rooms.announce_if_on_stage,
            on_transfer=self._transfer_event,
            notifier=self.notifier,
        )

    def _transfer_event(self, kind: str, transfer: dict[str, Any]) -> None:
        if kind == "transfer.created":
            self.program.transfer_created(transfer)
        else:
            self.program.transfer_reversed(transfer)

    @cached_property
    def program(self) -> Program:
        from chalicelib.adapters.dynamo.money import MoneyRepository
        from chalicelib.adapters.dynamo.program import ProgramRepository
        from chalicelib.services.program import Pacer, Program

        return Program(
            repo=ProgramRepository(),
            money=MoneyRepository(),
            people=self.identity.repo,
            stripe=self.stripe,
            timers=self.timers,
            settings=self.settings,
            clock=utc_now,
            new_id=new_id,
            pacer=Pacer(float(self.settings.stripe_requests_per_second)),
            workers=self.settings.payout_workers,
            notifier=self.notifier,
        )

    @cached_property
    def reconciliation(self) -> Reconciliation:
        from chalicelib.adapters.dynamo.money import MoneyRepository
        from chalicelib.services.program import Pacer
        from chalicelib.services.reconcile import Reconciliation

        return Reconciliation(
            money=MoneyRepository(),
            stripe=self.stripe,
            pacer=Pacer(float(self.settings.stripe_requests_per_second)),
            clock=utc_now,
        )

    def on_timer(
        self, message: dict[str, Any], time_left_ms: Callable[[], int]
    ) -> dict[str, Any] | None:
        """Delayed work from the timers queue: payout runs continue (their report is
        returned), rooms do the rest."""
        if message.get("kind") == "payout_continue":
            return self.program.run(
                None, str(message["run_id"]), time_left_ms, str(message.get("cursor") or "")
            )
        self.rooms.on_timer(message)
        return None

    @cached_property
    def sms(self) -> Sms:
        from chalicelib.adapters.sms import Sms

        return Sms(self.settings.region)

    @cached_property
    def identity(self) -> Identity:
        from chalicelib.adapters.dynamo.identity import IdentityRepository
        from chalicelib.adapters.secrets import jwt_secret
        from chalicelib.services.identity import Identity

        return Identity(
            repo=IdentityRepository(),
            tokens=self.tokens,
            sms=self.sms,
            settings=self.settings,
            clock=utc_now,
            new_id=new_id,
            code_key=lambda: jwt_secret(self.settings),
        )


@lru_cache(maxsize=1)
def services() -> Services:
    return Services(settings())
