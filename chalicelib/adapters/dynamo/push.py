"""Push devices, settings, the hourly cap and collapsing bursts, in DynamoDB."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.constants import ALL_OLD
from pynamodb.exceptions import DeleteError, PutError, UpdateError

from chalicelib.adapters.dynamo.models import PushDeliveryModel, PushDeviceModel, PushMemberModel
from chalicelib.adapters.dynamo.tx import condition_failed
from chalicelib.domain.notifications import Platform, Preferences, PushKind


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    platform: Platform
    endpoint_arn: str


@dataclass(frozen=True)
class MemberState:
    """A member's settings and the hour their push count is for, as last read."""

    preferences: Preferences
    window: int | None


@dataclass(frozen=True)
class Burst:
    burst_id: str
    actor_ids: frozenset[str]
    room_id: str
    title: str


def _preferences(row: PushMemberModel) -> Preferences:
    return Preferences(
        muted=frozenset(PushKind(k) for k in (row.muted or ()) if k in _KINDS),
        quiet_from=row.quiet_from,
        quiet_to=row.quiet_to,
        time_zone=row.time_zone or "UTC",
    )


_KINDS = {k.value for k in PushKind}


class PushRepository:
    # --- devices ----------------------------------------------------------------------------

    def devices(self, user_id: str) -> list[Device]:
        return [
            Device(r.user_id, r.device_id, Platform(r.platform), r.endpoint_arn)
            for r in PushDeviceModel.query(user_id, consistent_read=True)
        ]

    def add_device(self, device: Device, at: datetime) -> None:
        PushDeviceModel(
            device.user_id,
            device.device_id,
            platform=device.platform.value,
            endpoint_arn=device.endpoint_arn,
            registered_at=at,
        ).save()

    def device(self, user_id: str, device_id: str) -> Device | None:
        try:
            r = PushDeviceModel.get(user_id, device_id, consistent_read=True)
        except PushDeviceModel.DoesNotExist:
            return None
        return Device(r.user_id, r.device_id, Platform(r.platform), r.endpoint_arn)

    def devices_with_endpoint(self, endpoint_arn: str) -> list[tuple[str, str]]:
        """(user id, device id) of each device row holding this SNS endpoint (one, unless a
        token moved between members: SNS keeps one endpoint per token)."""
        return [
            (row.user_id, row.device_id) for row in PushDeviceModel.by_endpoint.query(endpoint_arn)
        ]

    def remove_device(self, user_id: str, device_id: str) -> None:
        try:
            PushDeviceModel(user_id, device_id).delete()
        except DeleteError as error:
            if not condition_failed(error):
                raise

    # --- deliveries -------------------------------------------------------------------------

    def claim_delivery(
        self, notification_id: str, device_id: str, at: datetime, keep: timedelta
    ) -> bool:
        """Mark one notification as sent to one device, once: False if it already was. Kept
        for `keep` (TTL), longer than a message can be redelivered."""
        try:
            PushDeliveryModel(f"{notification_id}#{device_id}", ttl=at + keep).save(
                condition=PushDeliveryModel.delivery_id.does_not_exist()
            )
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def release_delivery(self, notification_id: str, device_id: str) -> None:
        """The publish failed: a retry may send it."""
        PushDeliveryModel(f"{notification_id}#{device_id}").delete()

    # --- settings ---------------------------------------------------------------------------

    def preferences(self, user_id: str) -> Preferences:
        return self.preferences_of([user_id]).get(user_id, Preferences())

    def preferences_of(self, user_ids: Iterable[str]) -> dict[str, Preferences]:
        ids = list(dict.fromkeys(user_ids))
        rows = PushMemberModel.batch_get(
            ids,
            attributes_to_get=["user_id", "muted", "quiet_from", "quiet_to", "time_zone"],
        )
        return {row.user_id: _preferences(row) for row in rows} if ids else {}

    def set_preferences(self, user_id: str, prefs: Preferences) -> None:
        muted = {k.value for k in prefs.muted}
        actions: list[Any] = [
            PushMemberModel.muted.set(muted) if muted else PushMemberModel.muted.remove(),
            PushMemberModel.time_zone.set(prefs.time_zone),
        ]
        if prefs.quiet_from and prefs.quiet_to:
            actions += [
                PushMemberModel.quiet_from.set(prefs.quiet_from),
                PushMemberModel.quiet_to.set(prefs.quiet_to),
            ]
        else:
            actions += [PushMemberModel.quiet_from.remove(), PushMemberModel.quiet_to.remove()]
        PushMemberModel(user_id).update(actions=actions)

    def forget(self, user_id: str) -> list[Device]:
        """Everything push knows of a member, removed; their devices are returned so that the
        caller deletes the SNS endpoints too."""
        devices = self.devices(user_id)
        for device in devices:
            self.remove_device(user_id, device.device_id)
        PushMemberModel(user_id).delete()
        return devices

    # --- the hourly cap ---------------------------------------------------------------------

    def take_quota(
        self,
        user_id: str,
        window: int,
        cap: int,
        notification_id: str,
        known: MemberState | None = None,
    ) -> bool:
        """Count one notification against the member's hour; False when the hour's cap is
        reached. Each step is one conditional update, so parallel pushes cannot exceed the cap;
        a notification counted already (a retried message) is not counted again and passes.
        The state just read (`known`) says which step to try first."""
        member = PushMemberModel(user_id)
        same_hour = (
            (PushMemberModel.window == window)
            & (PushMemberModel.sent < cap)
            & ~PushMemberModel.counted.contains(notification_id)
        )
        new_hour = PushMemberModel.window.does_not_exist() | (PushMemberModel.window < window)
        steps: list[tuple[list[Any], Any]] = [
            (
                [PushMemberModel.sent.add(1), PushMemberModel.counted.add({notification_id})],
                same_hour,
            ),
            (
                [
                    PushMemberModel.window.set(window),
                    PushMemberModel.sent.set(1),
                    PushMemberModel.counted.set({notification_id}),
                ],
                new_hour,
            ),
        ]
        if known is not None and known.window != window:
            steps.reverse()
        for actions, condition in steps:
            try:
                member.update(actions=actions, condition=condition)
                return cap > 0
            except UpdateError as error:
                if not condition_failed(error):
                    raise
        # The cap, or a retry of a notification this hour already counts.
        row = PushMemberModel.get(user_id, consistent_read=True)
        return row.window == window and notification_id in (row.counted or set())

    # --- bursts -----------------------------------------------------------------------------

    def add_to_burst(
        self, user_id: str, actor_id: str, room_id: str, title: str, token: str
    ) -> bool:
        """Collect one followed person talking, in one update; True when this starts the
        burst (the caller then schedules its one push). `token` is unique to this call: the
        burst is new if it is the one the item now holds."""
        answer = PushMemberModel(user_id).update(
            actions=[
                PushMemberModel.burst_actors.add({actor_id}),
                PushMemberModel.burst_id.set(PushMemberModel.burst_id | token),
                PushMemberModel.burst_room_id.set(PushMemberModel.burst_room_id | room_id),
                PushMemberModel.burst_title.set(PushMemberModel.burst_title | title),
            ]
        )
        return str(answer["Attributes"]["burst_id"]["S"]) == token

    def restore_burst(self, user_id: str, burst: Burst) -> None:
        """A burst taken whose push then failed goes back, so the retried message takes it
        again (merged into any burst begun meanwhile, which then keeps its own id)."""
        PushMemberModel(user_id).update(
            actions=[
                PushMemberModel.burst_actors.add(set(burst.actor_ids)),
                PushMemberModel.burst_id.set(PushMemberModel.burst_id | burst.burst_id),
                PushMemberModel.burst_room_id.set(PushMemberModel.burst_room_id | burst.room_id),
                PushMemberModel.burst_title.set(PushMemberModel.burst_title | burst.title),
            ]
        )

    def take_burst(self, user_id: str) -> tuple[Burst | None, MemberState]:
        """The burst collected so far, cleared in the same update that reads it (so nobody
        added meanwhile is lost), with the member's settings and count as they were."""
        answer = PushMemberModel._get_connection().update_item(
            user_id,
            actions=[
                PushMemberModel.burst_actors.remove(),
                PushMemberModel.burst_id.remove(),
                PushMemberModel.burst_room_id.remove(),
                PushMemberModel.burst_title.remove(),
            ],
            return_values=ALL_OLD,
        )
        row = PushMemberModel.from_raw_data(answer.get("Attributes") or {"user_id": {"S": user_id}})
        state = MemberState(_preferences(row), None if row.window is None else int(row.window))
        if not row.burst_id:
            return None, state
        burst = Burst(
            row.burst_id,
            frozenset(row.burst_actors or ()),
            row.burst_room_id or "",
            row.burst_title or "",
        )
        return burst, state
