"""Push devices, settings, the hourly cap and collapsing bursts, in DynamoDB."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DeleteError, UpdateError

from chalicelib.adapters.dynamo.models import PushDeviceModel, PushMemberModel
from chalicelib.adapters.dynamo.tx import condition_failed
from chalicelib.domain.notifications import Platform, Preferences, PushKind

BURST_ATTEMPTS = 3


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    platform: Platform
    endpoint_arn: str


@dataclass(frozen=True)
class Burst:
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

    def remove_device(self, user_id: str, device_id: str) -> None:
        try:
            PushDeviceModel(user_id, device_id).delete()
        except DeleteError as error:
            if not condition_failed(error):
                raise

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

    def take_quota(self, user_id: str, window: int, cap: int) -> bool:
        """Count one push against the member's hour; False when the hour's cap is reached.
        Each step is one conditional update, so parallel pushes cannot exceed the cap."""
        member = PushMemberModel(user_id)
        try:
            member.update(
                actions=[PushMemberModel.sent.add(1)],
                condition=(PushMemberModel.window == window) & (PushMemberModel.sent < cap),
            )
            return True
        except UpdateError as error:
            if not condition_failed(error):
                raise
        try:  # a new hour (or the first push ever) starts the count again
            member.update(
                actions=[PushMemberModel.window.set(window), PushMemberModel.sent.set(1)],
                condition=PushMemberModel.window.does_not_exist()
                | (PushMemberModel.window < window),
            )
            return cap > 0
        except UpdateError as error:
            if not condition_failed(error):
                raise
            return False

    # --- bursts -----------------------------------------------------------------------------

    def add_to_burst(
        self, user_id: str, actor_id: str, room_id: str, title: str, at: datetime
    ) -> bool:
        """Collect one followed person talking; True when this starts the burst (the caller
        then schedules its one push)."""
        member = PushMemberModel(user_id)
        for _ in range(BURST_ATTEMPTS):
            try:
                member.update(
                    actions=[PushMemberModel.burst_actors.add({actor_id})],
                    condition=PushMemberModel.burst_since.exists(),
                )
                return False
            except UpdateError as error:
                if not condition_failed(error):
                    raise
            try:
                member.update(
                    actions=[
                        PushMemberModel.burst_actors.set({actor_id}),
                        PushMemberModel.burst_room_id.set(room_id),
                        PushMemberModel.burst_title.set(title),
                        PushMemberModel.burst_since.set(at),
                    ],
                    condition=PushMemberModel.burst_since.does_not_exist(),
                )
                return True
            except UpdateError as error:
                if not condition_failed(error):
                    raise
        return False

    def take_burst(self, user_id: str) -> Burst | None:
        """The burst collected so far, cleared; someone added meanwhile is never lost: the
        clear is conditioned on the set read."""
        for _ in range(BURST_ATTEMPTS):
            try:
                row = PushMemberModel.get(user_id, consistent_read=True)
            except PushMemberModel.DoesNotExist:
                return None
            if row.burst_since is None:
                return None
            actors = set(row.burst_actors or ())
            try:
                PushMemberModel(user_id).update(
                    actions=[
                        PushMemberModel.burst_actors.remove(),
                        PushMemberModel.burst_room_id.remove(),
                        PushMemberModel.burst_title.remove(),
                        PushMemberModel.burst_since.remove(),
                    ],
                    condition=PushMemberModel.burst_actors == actors,
                )
            except UpdateError as error:
                if not condition_failed(error):
                    raise
                continue
            return Burst(frozenset(actors), row.burst_room_id or "", row.burst_title or "")
        return None
