"""The creator program: who is enrolled, for which months, and what a month's stipend is."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from chalicelib.domain.errors import ConflictError, NotFoundError, ValidationError

DEFAULT_MONTHLY_CENTS = 500_000
DEFAULT_MONTHS = 3
MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


class InvalidMonthError(ValidationError):
    code = "invalid_month"
    default_message = "Months are written YYYY-MM."


class ApplicationNotFoundError(NotFoundError):
    code = "application_not_found"
    default_message = "There is no such application."


class AlreadyAppliedError(ConflictError):
    code = "already_applied"
    default_message = "You have an application under review already."


class AlreadyEnrolledError(ConflictError):
    code = "already_enrolled"
    default_message = "You are in the creator program already."


class NotEnrolledError(NotFoundError):
    code = "not_enrolled"
    default_message = "That member is not in the creator program."


class ApplicationDecidedError(ConflictError):
    code = "application_decided"
    default_message = "That application was decided already."


def parse_month(value: str) -> tuple[int, int]:
    match = MONTH.fullmatch(value)
    if not match:
        raise InvalidMonthError(field="month")
    return int(match.group(1)), int(match.group(2))


def add_months(month: str, count: int) -> str:
    year, mon = parse_month(month)
    index = year * 12 + (mon - 1) + count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_of(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


@dataclass(frozen=True)
class Enrollment:
    user_id: str
    monthly_cents: int
    start_month: str
    months: int
    last_month: str
    ended_at: datetime | None = None

    @classmethod
    def new(cls, user_id: str, monthly_cents: int, start_month: str, months: int) -> Enrollment:
        if monthly_cents < 1:
            raise ValidationError("The monthly amount must be positive.", field="monthly_cents")
        if months < 1:
            raise ValidationError("Enroll for at least one month.", field="months")
        parse_month(start_month)
        return cls(user_id, monthly_cents, start_month, months, add_months(start_month, months - 1))

    def due(self, month: str) -> bool:
        """Whether `month`'s stipend is owed: YYYY-MM strings compare in calendar order."""
        return self.start_month <= month <= self.last_month

    def ended_early(self, last_month: str, at: datetime) -> Enrollment:
        """No stipend after `last_month` (never later than the enrollment's own end)."""
        parse_month(last_month)
        return Enrollment(
            self.user_id,
            self.monthly_cents,
            self.start_month,
            self.months,
            min(self.last_month, last_month),
            at,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "monthly_cents": self.monthly_cents,
            "start_month": self.start_month,
            "months": self.months,
            "last_month": self.last_month,
            "ended_early": self.ended_at is not None,
        }


def payout_id(user_id: str, month: str) -> str:
    return f"{user_id}#{month}"


def transfer_group(user_id: str, month: str) -> str:
    return f"stipend-{user_id}-{month}"
