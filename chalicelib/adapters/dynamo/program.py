"""Applications, enrollments, stipend payouts and payout runs in DynamoDB."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.adapters.dynamo.models import (
    ApplicationModel,
    EnrollmentModel,
    PayoutModel,
    PayoutRunModel,
)
from chalicelib.adapters.dynamo.money import Entry, MoneyRepository
from chalicelib.adapters.dynamo.paging import decode_cursor, read_page
from chalicelib.adapters.dynamo.tx import Transaction, condition_failed, transaction
from chalicelib.domain.money import CURRENCY, EntryKind
from chalicelib.domain.program import (
    AlreadyAppliedError,
    ApplicationDecidedError,
    ApplicationNotFoundError,
    Enrollment,
    NotEnrolledError,
    payout_id,
)


@dataclass(frozen=True)
class Payout:
    user_id: str
    month: str
    amount_cents: int
    status: str
    reason: str | None
    transfer_id: str | None
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "amount_cents": self.amount_cents,
            "status": self.status,
            "reason": self.reason,
            "transfer_id": self.transfer_id,
        }


def _payout(row: PayoutModel) -> Payout:
    return Payout(
        row.user_id,
        row.month,
        int(row.amount_cents),
        row.status,
        row.reason,
        row.transfer_id,
        int(row.attempts or 0),
    )


def _enrollment(row: EnrollmentModel) -> Enrollment:
    return Enrollment(
        row.user_id,
        int(row.monthly_cents),
        row.start_month,
        int(row.months),
        row.last_month,
        row.ended_at,
    )


class ProgramRepository:
    # Stipends are written to the same ledger as tips, by the same code.
    _ledger = MoneyRepository()

    # --- applications -------------------------------------------------------------------------

    def apply(self, user_id: str, pitch: str, links: list[str], at: datetime) -> None:
        """One application at a time; a rejected one may be replaced by a new one."""
        try:
            ApplicationModel(
                user_id, pitch=pitch, links=json.dumps(links), status="pending", created_at=at
            ).save(
                condition=ApplicationModel.user_id.does_not_exist()
                | (ApplicationModel.status == "rejected")
            )
        except PutError as error:
            if condition_failed(error):
                raise AlreadyAppliedError() from error
            raise

    def application(self, user_id: str) -> dict[str, Any] | None:
        try:
            row = ApplicationModel.get(user_id, consistent_read=True)
        except ApplicationModel.DoesNotExist:
            return None
        return {
            "user_id": row.user_id,
            "pitch": row.pitch,
            "links": json.loads(row.links),
            "status": row.status,
            "reason": row.reason,
            "created_at": row.created_at.isoformat(),
            "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        }

    def applications(self, status: str | None) -> list[dict[str, Any]]:
        condition = ApplicationModel.status == status if status else None
        rows = ApplicationModel.scan(filter_condition=condition)
        found = [self.application(row.user_id) for row in rows]
        return sorted((a for a in found if a), key=lambda a: str(a["created_at"]))

    def decide(
        self,
        user_id: str,
        approved: bool,
        at: datetime,
        reason: str | None,
        enrollment: Enrollment | None,
    ) -> None:
        """Decide a pending application; approval enrolls in the same transaction."""
        tx = transaction()
        try:
            with tx:
                tx.update(
                    ApplicationModel(user_id),
                    actions=[
                        ApplicationModel.status.set("approved" if approved else "rejected"),
                        ApplicationModel.decided_at.set(at),
                        ApplicationModel.reason.set(reason)
                        if reason
                        else ApplicationModel.reason.remove(),
                    ],
                    condition=ApplicationModel.status == "pending",
                )
                if enrollment is not None:
                    tx.save(
                        EnrollmentModel(
                            user_id,
                            monthly_cents=enrollment.monthly_cents,
                            start_month=enrollment.start_month,
                            months=enrollment.months,
                            last_month=enrollment.last_month,
                            created_at=at,
                        )
                    )
        except TransactWriteError as error:
            if tx.failed(error)[0]:
                if self.application(user_id) is None:
                    raise ApplicationNotFoundError() from error
                raise ApplicationDecidedError() from error
            raise

    # --- enrollments --------------------------------------------------------------------------

    def enrollment(self, user_id: str) -> Enrollment | None:
        try:
            return _enrollment(EnrollmentModel.get(user_id, consistent_read=True))
        except EnrollmentModel.DoesNotExist:
            return None

    def end_enrollment(self, enrollment: Enrollment) -> None:
        assert enrollment.ended_at is not None
        try:
            EnrollmentModel(enrollment.user_id).update(
                actions=[
                    EnrollmentModel.last_month.set(enrollment.last_month),
                    EnrollmentModel.ended_at.set(enrollment.ended_at),
                ],
                condition=EnrollmentModel.user_id.exists(),
            )
        except UpdateError as error:
            if condition_failed(error):
                raise NotEnrolledError() from error
            raise

    def enrollments_page(
        self, cursor: str | None, limit: int
    ) -> tuple[list[Enrollment], str | None]:
        rows = EnrollmentModel.scan(limit=limit, last_evaluated_key=decode_cursor(cursor))
        return read_page(rows, _enrollment)

    def add_enrollment(self, enrollment: Enrollment, at: datetime) -> None:
        EnrollmentModel(
            enrollment.user_id,
            monthly_cents=enrollment.monthly_cents,
            start_month=enrollment.start_month,
            months=enrollment.months,
            last_month=enrollment.last_month,
            created_at=at,
        ).save()

    # --- payouts ------------------------------------------------------------------------------

    def payout(self, user_id: str, month: str) -> Payout | None:
        try:
            return _payout(PayoutModel.get(payout_id(user_id, month), consistent_read=True))
        except PayoutModel.DoesNotExist:
            return None

    def payouts_of(self, user_id: str) -> list[Payout]:
        rows = PayoutModel.scan(filter_condition=PayoutModel.user_id == user_id)
        return sorted((_payout(r) for r in rows), key=lambda p: p.month)

    def claim(
        self, user_id: str, month: str, amount_cents: int, run_id: str, at: datetime
    ) -> Payout:
        """The payout row for this creator and month, created pending if new. A paid one comes
        back paid; two runs may hold the same pending one: Stripe's idempotency key and the
        ledger's condition make their work count once."""
        try:
            PayoutModel(
                payout_id(user_id, month),
                user_id=user_id,
                month=month,
                amount_cents=amount_cents,
                status="pending",
                claimed_by=run_id,
                claimed_at=at,
                attempts=0,
                updated_at=at,
            ).save(condition=PayoutModel.payout_id.does_not_exist())
        except PutError as error:
            if not condition_failed(error):
                raise
            try:  # a row a skip released (no claim): this run takes it
                PayoutModel(payout_id(user_id, month)).update(
                    actions=[PayoutModel.claimed_by.set(run_id), PayoutModel.claimed_at.set(at)],
                    condition=PayoutModel.claimed_by.does_not_exist()
                    & (PayoutModel.status != "paid"),
                )
            except UpdateError as taken:
                if not condition_failed(taken):
                    raise
        payout = self.payout(user_id, month)
        assert payout is not None
        return payout

    def note_attempt(self, user_id: str, month: str) -> None:
        """Recorded before Stripe is called: a later run then looks for the transfer first."""
        PayoutModel(payout_id(user_id, month)).update(actions=[PayoutModel.attempts.add(1)])

    def skip(self, user_id: str, month: str, reason: str, at: datetime) -> None:
        PayoutModel(payout_id(user_id, month)).update(
            actions=[
                PayoutModel.status.set("skipped"),
                PayoutModel.reason.set(reason),
                PayoutModel.claimed_by.remove(),
                PayoutModel.updated_at.set(at),
            ],
            condition=PayoutModel.status != "paid",
        )

    def complete(
        self,
        user_id: str,
        month: str,
        amount_cents: int,
        transfer_id: str,
        at: datetime,
        run_id: str | None = None,
    ) -> bool:
        """Mark the payout paid and write its ledger entry, once, and count it in the record
        of the run that paid it (`run_id`, or, from a webhook, the run that claimed the row),
        all in one transaction: however many runs and webhooks complete one payout, one run
        record counts it. False if already recorded."""
        if run_id is None:
            known = self.payout_row(user_id, month)
            run_id = known.claimed_by if known is not None else None
        entry = Entry(
            entry_id=f"stipend#{user_id}#{month}",
            kind=EntryKind.STIPEND,
            creator_id=user_id,
            amount_cents=amount_cents,
            currency=CURRENCY,
            created_at=at,
            transfer_id=transfer_id,
        )

        def mark_paid(tx: Transaction) -> None:
            tx.update(
                PayoutModel(payout_id(user_id, month)),
                actions=[
                    PayoutModel.status.set("paid"),
                    PayoutModel.transfer_id.set(transfer_id),
                    PayoutModel.reason.remove(),
                    PayoutModel.updated_at.set(at),
                ],
            )
            if run_id is not None:
                tx.update(
                    PayoutRunModel(run_id),
                    actions=[
                        PayoutRunModel.paid.add(1),
                        PayoutRunModel.total_cents.add(amount_cents),
                    ],
                    condition=PayoutRunModel.run_id.exists(),
                )

        return self._ledger.record(entry, also=mark_paid)

    def payout_row(self, user_id: str, month: str) -> PayoutModel | None:
        try:
            return PayoutModel.get(payout_id(user_id, month), consistent_read=True)
        except PayoutModel.DoesNotExist:
            return None

    # --- runs ---------------------------------------------------------------------------------

    def start_run(self, run_id: str, month: str, at: datetime) -> None:
        PayoutRunModel(run_id, month=month, status="running", started_at=at).save(
            condition=PayoutRunModel.run_id.does_not_exist()
        )

    def run(self, run_id: str) -> dict[str, Any] | None:
        try:
            row = PayoutRunModel.get(run_id, consistent_read=True)
        except PayoutRunModel.DoesNotExist:
            return None
        return {
            "run_id": row.run_id,
            "month": row.month,
            "status": row.status,
            "cursor": row.cursor,
            "paid": int(row.paid),
            "already_paid": int(row.already_paid),
            "skipped": int(row.skipped),
            "failed": int(row.failed),
            "total_cents": int(row.total_cents),
            "reasons": json.loads(row.reasons),
            "invocations": int(row.invocations),
            "started_at": row.started_at.isoformat(),
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        }

    def save_progress(
        self,
        run_id: str,
        counts: dict[str, int],
        reasons: dict[str, int],
        cursor: str | None,
        done: bool,
        at: datetime,
        started_from: str | None,
    ) -> bool:
        """Record an invocation's progress, if the run is still where this invocation found
        it: a duplicate hand-over message that ran the same pages saves nothing. False then."""
        # `paid` and `total_cents` are counted by complete(), with the payment itself.
        actions: list[Action] = [
            PayoutRunModel.already_paid.add(counts.get("already_paid", 0)),
            PayoutRunModel.skipped.add(counts.get("skipped", 0)),
            PayoutRunModel.failed.add(counts.get("failed", 0)),
            PayoutRunModel.invocations.add(1),
            PayoutRunModel.reasons.set(json.dumps(reasons, sort_keys=True)),
            PayoutRunModel.cursor.set(cursor) if cursor else PayoutRunModel.cursor.remove(),
        ]
        if done:
            actions += [PayoutRunModel.status.set("done"), PayoutRunModel.finished_at.set(at)]
        unmoved = (
            PayoutRunModel.cursor == started_from
            if started_from
            else PayoutRunModel.cursor.does_not_exist()
        )
        try:
            PayoutRunModel(run_id).update(
                actions=actions, condition=unmoved & (PayoutRunModel.status == "running")
            )
        except UpdateError as error:
            if condition_failed(error):
                return False
            raise
        return True

    # --- transfers seen by webhooks ---------------------------------------------------------

    def record_reversal(
        self, user_id: str, transfer_id: str, reversal_id: str, amount_cents: int, at: datetime
    ) -> bool:
        """One stipend reversal (`trr_...`), once. False if it was recorded already."""
        return self._ledger.record(
            Entry(
                entry_id=f"{reversal_id}#reversal",
                kind=EntryKind.STIPEND_REVERSAL,
                creator_id=user_id,
                amount_cents=-amount_cents,
                currency=CURRENCY,
                created_at=at,
                transfer_id=transfer_id,
                stripe_amount_cents=amount_cents,
            )
        )

    def delete_application(self, user_id: str) -> None:
        """A deleted member's pitch and links go; enrollments and payouts are money records."""
        ApplicationModel(user_id).delete()
