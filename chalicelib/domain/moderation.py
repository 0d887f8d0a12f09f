"""Trust and safety rules: what a room's moderation log records, reports and their decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from chalicelib.domain.errors import ConflictError, NotFoundError, ValidationError

if TYPE_CHECKING:  # the edge's schemas import this module: not the room rules with it
    from chalicelib.domain import rooms as domain

# --- the moderation log ---------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    """One thing a moderator did to someone else, or to the room. Names and times only."""

    room_id: str
    actor_id: str
    action: str
    target_id: str | None
    at: datetime

    def to_dict(self) -> dict[str, object]:
        return {
            "actor_id": self.actor_id,
            "action": self.action,
            "target_id": self.target_id,
            "at": self.at.isoformat(),
        }


def log_entries(events: list[domain.Event]) -> list[LogEntry]:
    """The moderation log's entries for what a room action caused: removals, mutes, moves to
    the audience and changes of moderators done by someone to someone else, and a room ended
    by a moderator. What people do to themselves (step down, mute) is not moderation."""
    entries: list[LogEntry] = []
    for event in events:
        target: str | None = getattr(event, "user_id", None)
        actor: str | None = getattr(event, "by_id", None)
        action = _LOGGED.get(type(event).__name__)
        if action is None or actor is None or (target is not None and actor == target):
            continue
        entries.append(LogEntry(event.room_id, actor, action, target, event.at))
    return entries


# Room events by class name (tests/unit/test_safety_rules.py checks each names one).
_LOGGED: dict[str, str] = {
    "MemberRemoved": "remove_member",
    "SpeakerMuted": "mute",
    "MovedToAudience": "move_to_audience",
    "ModeratorAdded": "make_moderator",
    "ModeratorRemoved": "unmake_moderator",
    "RoomEnded": "end_room",
}
LOGGED_ACTIONS = tuple(sorted(_LOGGED.values()))


# --- reports --------------------------------------------------------------------------------


class TargetKind(Enum):
    MEMBER = "member"
    ROOM = "room"


class Reason(Enum):
    HARASSMENT = "harassment"
    HATE = "hate"
    SPAM = "spam"
    IMPERSONATION = "impersonation"
    SEXUAL_CONTENT = "sexual_content"
    VIOLENCE = "violence"
    SELF_HARM = "self_harm"
    UNDERAGE = "underage"
    OTHER = "other"


class ReportStatus(Enum):
    OPEN = "open"
    DECIDED = "decided"


class Decision(Enum):
    DISMISS = "dismiss"
    WARN = "warn"
    SUSPEND = "suspend"


MAX_NOTE_LENGTH = 1000
MAX_SUSPENSION_DAYS = 3650


class SelfReportError(ValidationError):
    code = "cannot_report_yourself"
    default_message = "You cannot report yourself."


class ReportNotFoundError(NotFoundError):
    code = "report_not_found"
    default_message = "There is no such report."


class ReportAlreadyDecidedError(ConflictError):
    code = "report_already_decided"
    default_message = "That report has been decided already."


@dataclass(frozen=True)
class Report:
    report_id: str
    reporter_id: str
    target_kind: TargetKind
    target_id: str
    reason: Reason
    note: str
    status: ReportStatus
    created_at: datetime
    decision: Decision | None = None
    suspended_days: int | None = None
    acted_on: str | None = None
    decided_at: datetime | None = None

    def for_reporter(self) -> dict[str, object]:
        """What the reporter sees of their report: the outcome, never who else was involved
        beyond the target they named."""
        return {
            "report_id": self.report_id,
            "target_kind": self.target_kind.value,
            "target_id": self.target_id,
            "reason": self.reason.value,
            "note": self.note,
            "status": self.status.value,
            "created_at": self.created_at.isoformat(),
            "outcome": self.decision.value if self.decision else None,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }

    def for_operator(self) -> dict[str, object]:
        """Reports are never anonymous to operators."""
        return {
            **self.for_reporter(),
            "reporter_id": self.reporter_id,
            "decision": self.decision.value if self.decision else None,
            "suspended_days": self.suspended_days,
            "acted_on": self.acted_on,
        }


def decide(
    report: Report,
    decision: Decision,
    acted_on: str | None,
    days: int | None,
    at: datetime,
) -> Report:
    """The operator's decision on an open report. A suspension has `days` (None: indefinite);
    it and a warning apply to `acted_on` (the reported member, or someone of a reported room)."""
    if report.status is ReportStatus.DECIDED:
        raise ReportAlreadyDecidedError()
    if decision is Decision.DISMISS:
        acted_on, days = None, None
    elif acted_on is None:
        if report.target_kind is not TargetKind.MEMBER:
            raise ValidationError(
                "Name the member (`user_id`) a decision on a room's report applies to.",
                field="user_id",
            )
        acted_on = report.target_id
    if decision is not Decision.SUSPEND:
        days = None
    return Report(
        report.report_id,
        report.reporter_id,
        report.target_kind,
        report.target_id,
        report.reason,
        report.note,
        ReportStatus.DECIDED,
        report.created_at,
        decision,
        days,
        acted_on,
        at,
    )
