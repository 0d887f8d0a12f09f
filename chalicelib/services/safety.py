"""Trust and safety use cases: members report members and rooms, operators decide, reporters
learn the outcome; rooms' moderators (and operators) read what moderators did."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.adapters.connections import Connections
from chalicelib.adapters.dynamo.connections import ConnectionRecord, ConnectionRepository
from chalicelib.adapters.dynamo.identity import IdentityRepository
from chalicelib.adapters.dynamo.rooms import RoomRepository
from chalicelib.adapters.dynamo.safety import SafetyRepository
from chalicelib.config import Settings
from chalicelib.domain import moderation
from chalicelib.domain import rooms as domain
from chalicelib.domain.identity import MemberStatus
from chalicelib.domain.moderation import Decision, Reason, Report, ReportStatus, TargetKind
from chalicelib.services.identity import Identity
from chalicelib.services.rooms import NotInAnyRoomError

logger = logging.getLogger("salon.safety")

LOG_PAGE = 100


@dataclass
class Safety:
    repo: SafetyRepository
    people: IdentityRepository
    identity: Identity
    rooms: RoomRepository
    connections: ConnectionRepository
    poster: Connections
    settings: Settings
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    # Closes every socket of a member (Realtime.drop_user): what suspension does.
    drop_user: Callable[[str], int]

    # --- members report -------------------------------------------------------------------

    def report(
        self, reporter_id: str, kind: str, target_id: str, reason: str, note: str
    ) -> dict[str, Any]:
        target_kind = TargetKind(kind)
        if target_kind is TargetKind.MEMBER:
            if target_id == reporter_id:
                raise moderation.SelfReportError(field="target_id")
            self.people.profile(target_id)  # member_not_found for nobody
        else:
            self.rooms.load(target_id)  # room_not_found for nothing
        now = self.clock()
        self.identity.limit(f"reports:{reporter_id}", now, self.settings.reports_per_hour)
        report = Report(
            self.new_id(),
            reporter_id,
            target_kind,
            target_id,
            Reason(reason),
            note,
            ReportStatus.OPEN,
            now,
        )
        self.repo.add_report(report)
        logger.info("report made", extra={"report_id": report.report_id})
        return report.for_reporter()

    def my_reports(self, reporter_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        reports, next_cursor = self.repo.reports_by(reporter_id, limit, cursor)
        return {"items": [r.for_reporter() for r in reports], "cursor": next_cursor}

    # --- operators decide ----------------------------------------------------------------

    def queue(self, status: str, limit: int, cursor: str | None) -> dict[str, Any]:
        reports, next_cursor = self.repo.queue(ReportStatus(status), limit, cursor)
        return {"items": [r.for_operator() for r in reports], "cursor": next_cursor}

    def open(self, report_id: str) -> dict[str, Any]:
        """A report with what an operator needs to decide: who reported, the target, and for a
        room the moderation log."""
        report = self.repo.report(report_id)
        ids = [report.reporter_id]
        if report.target_kind is TargetKind.MEMBER:
            ids.append(report.target_id)
        profiles = self.people.profiles(ids)
        answer: dict[str, Any] = {
            **report.for_operator(),
            "reporter": _person(profiles.get(report.reporter_id)),
        }
        if report.target_kind is TargetKind.MEMBER:
            target = profiles.get(report.target_id)
            answer["target"] = {
                **(_person(target) or {"user_id": report.target_id}),
                "status": target.status.value if target else "deleted",
            }
        else:
            answer["room_log"] = self.repo.room_log(report.target_id, self.clock(), LOG_PAGE, None)[
                0
            ]
        return answer

    def decide(
        self, report_id: str, decision: str, user_id: str | None, days: int | None
    ) -> dict[str, Any]:
        """Record the decision (once), then apply it, then tell the reporter. A suspension
        closes the member's sockets, which ends rooms where they were the last moderator."""
        now = self.clock()
        decided = moderation.decide(
            self.repo.report(report_id), Decision(decision), user_id, days, now
        )
        if decided.acted_on is not None:
            self.people.profile(decided.acted_on)  # member_not_found before anything is recorded
        self.repo.save_decision(decided)
        if decided.decision is Decision.SUSPEND and decided.acted_on:
            until = now + timedelta(days=days) if days else None
            self.identity.set_status(decided.acted_on, MemberStatus.SUSPENDED, until)
            self.drop_user(decided.acted_on)
        elif decided.decision is Decision.WARN and decided.acted_on:
            self._tell(
                decided.acted_on,
                {"type": "warning", "reason": decided.reason.value, "at": now.isoformat()},
            )
        self._tell(
            decided.reporter_id,
            {
                "type": "report_decided",
                "report_id": decided.report_id,
                "outcome": decision,
                "at": now.isoformat(),
            },
        )
        logger.info("report decided", extra={"report_id": report_id, "decision": decision})
        return decided.for_operator()

    def _tell(self, user_id: str, message: dict[str, Any]) -> None:
        for connection_id in self.connections.for_user(user_id):
            self.poster.post(connection_id, message)

    # --- moderation logs -----------------------------------------------------------------

    def room_log_for_moderator(self, who: ConnectionRecord, cursor: str | None) -> dict[str, Any]:
        """The log of the socket's room, for its moderators while it is live."""
        if not who.room_id:
            raise NotInAnyRoomError()
        loaded = self.rooms.load(who.room_id, [who.user_id])
        if not loaded.room.is_live:
            raise domain.RoomEndedError()
        member = loaded.room.members.get(who.user_id)
        if member is None or member.role is not domain.Role.MODERATOR:
            raise domain.NotAModeratorError()
        items, next_cursor = self.repo.room_log(who.room_id, self.clock(), LOG_PAGE, cursor)
        return {
            "type": "moderation_log",
            "room_id": who.room_id,
            "items": items,
            "cursor": next_cursor,
        }

    def room_log(self, room_id: str, cursor: str | None) -> dict[str, Any]:
        """Operators: any room's log, for `moderation_log_days` after each entry."""
        items, next_cursor = self.repo.room_log(room_id, self.clock(), LOG_PAGE, cursor)
        return {"room_id": room_id, "items": items, "cursor": next_cursor}


def _person(profile: Any) -> dict[str, Any] | None:
    if profile is None:
        return None
    return {"user_id": profile.user_id, "username": profile.username, "name": profile.name}
