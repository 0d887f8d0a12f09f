"""Reports and rooms' moderation logs in DynamoDB."""

from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo.models import ModerationLogModel, ReportModel
from chalicelib.adapters.dynamo.paging import decode_cursor, newest_first, read_page
from chalicelib.adapters.dynamo.tx import condition_failed
from chalicelib.domain.moderation import (
    Decision,
    LogEntry,
    Reason,
    Report,
    ReportAlreadyDecidedError,
    ReportNotFoundError,
    ReportStatus,
    TargetKind,
)


def _report(row: ReportModel) -> Report:
    return Report(
        report_id=row.report_id,
        reporter_id=row.reporter_id,
        target_kind=TargetKind(row.target_kind),
        target_id=row.target_id,
        reason=Reason(row.reason),
        note=row.note or "",
        status=ReportStatus(row.status),
        created_at=row.created_at,
        decision=Decision(row.decision) if row.decision else None,
        suspended_days=int(row.suspended_days) if row.suspended_days is not None else None,
        acted_on=row.acted_on,
        decided_at=row.decided_at,
    )


def _entry(row: ModerationLogModel) -> LogEntry:
    return LogEntry(row.room_id, row.actor_id, row.action, row.target_id, row.at)


class SafetyRepository:
    def __init__(self, log_ttl: timedelta) -> None:
        self._log_ttl = log_ttl

    # --- reports --------------------------------------------------------------------------

    def add_report(self, report: Report) -> None:
        ReportModel(
            report.report_id,
            reporter_id=report.reporter_id,
            target_kind=report.target_kind.value,
            target_id=report.target_id,
            reason=report.reason.value,
            note=report.note,
            status=report.status.value,
            created_at=report.created_at,
        ).save(condition=ReportModel.report_id.does_not_exist())

    def report(self, report_id: str) -> Report:
        try:
            return _report(ReportModel.get(report_id, consistent_read=True))
        except ReportModel.DoesNotExist as exc:
            raise ReportNotFoundError() from exc

    def save_decision(self, report: Report) -> None:
        """Record the decision once: two operators deciding at once, the second is refused."""
        assert report.decision is not None and report.decided_at is not None
        actions: list[Action] = [
            ReportModel.status.set(report.status.value),
            ReportModel.decision.set(report.decision.value),
            ReportModel.decided_at.set(report.decided_at),
        ]
        if report.suspended_days is not None:
            actions.append(ReportModel.suspended_days.set(report.suspended_days))
        if report.acted_on is not None:
            actions.append(ReportModel.acted_on.set(report.acted_on))
        try:
            ReportModel(report.report_id).update(
                actions=actions, condition=ReportModel.status == ReportStatus.OPEN.value
            )
        except UpdateError as error:
            if condition_failed(error):
                raise ReportAlreadyDecidedError() from error
            raise

    def reports_by(
        self, reporter_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Report], str | None]:
        return newest_first(ReportModel.by_reporter, reporter_id, limit, cursor, _report)

    def queue(
        self, status: ReportStatus, limit: int, cursor: str | None
    ) -> tuple[list[Report], str | None]:
        rows = ReportModel.by_status.query(
            status.value, limit=limit, last_evaluated_key=decode_cursor(cursor)
        )
        return read_page(rows, _report)

    def delete_report(self, report_id: str) -> None:
        ReportModel(report_id).delete()

    # --- moderation logs ------------------------------------------------------------------

    def log(self, entries: list[LogEntry], new_id: str) -> None:
        for n, entry in enumerate(entries):
            ModerationLogModel(
                entry.room_id,
                f"{entry.at.isoformat()}#{new_id}#{n}",
                actor_id=entry.actor_id,
                action=entry.action,
                target_id=entry.target_id,
                at=entry.at,
                ttl=entry.at + self._log_ttl,
            ).save()

    def room_log(
        self, room_id: str, now: datetime, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, object]], str | None]:
        """The room's log in order, without what has expired (TTL deletes late)."""
        rows = ModerationLogModel.query(
            room_id, limit=limit, last_evaluated_key=decode_cursor(cursor)
        )
        entries, next_cursor = read_page(rows, lambda row: row)
        items = [_entry(row).to_dict() for row in entries if row.ttl is None or row.ttl > now]
        return items, next_cursor
