"""The creator program: applications, enrollments, and the monthly stipend payout run.

A payout is made exactly once per creator and month by three steps that each survive a crash:
a pending payout row written with a condition (the guard that outlives Stripe's 24-hour
idempotency keys), the Stripe transfer with an idempotency key derived from creator and month
(and, on a retry, a look for a transfer already made in that transfer group), and the row
completed together with its ledger entry in one transaction. A run walks the enrollments with a
cursor; when its time is nearly up it saves the cursor and continues in a new invocation.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.adapters.dynamo.identity import IdentityRepository
from chalicelib.adapters.dynamo.money import CreatorAccount, MoneyRepository
from chalicelib.adapters.dynamo.program import ProgramRepository
from chalicelib.adapters.stripe_gateway import StripeGateway, TransferRefusedError
from chalicelib.adapters.timers import Timers
from chalicelib.config import Settings
from chalicelib.domain import notifications as push
from chalicelib.domain.errors import RateLimitedError, UnavailableError, ValidationError
from chalicelib.domain.money import CURRENCY
from chalicelib.domain.program import (
    AlreadyEnrolledError,
    Enrollment,
    NotEnrolledError,
    add_months,
    month_of,
    parse_month,
    transfer_group,
)
from chalicelib.services.notifications import Notifier

logger = logging.getLogger("salon.program")

MAX_LINKS = 5
LINK = re.compile(r"https://\S{1,300}")
PAID, ALREADY_PAID, SKIPPED, FAILED = "paid", "already_paid", "skipped", "failed"
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass
class Pacer:
    """Keeps calls to Stripe under a rate, and backs off when Stripe says 429.

    Thread-safe: parallel workers share one pacer, and so one rate. Each call reserves the next
    free slot under a lock and sleeps outside it; a 429 pushes every later slot back, since
    the limit Stripe enforces is the account's, not one worker's."""

    per_second: float
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _next_at: float = field(default=0.0)
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _slot(self) -> float:
        """Reserve the next slot; how long to wait for it."""
        with self._lock:
            now = self.clock()
            start = max(self._next_at, now)
            self._next_at = start + 1.0 / self.per_second
            self.calls += 1
            return start - now

    def _back_off(self, pause: float) -> None:
        with self._lock:
            self._next_at = max(self._next_at, self.clock() + pause)

    def call(self, fn: Callable[[], Any]) -> Any:
        for attempt, pause in enumerate((*BACKOFF_S, None)):
            wait = self._slot()
            if wait > 0:
                self.sleep(wait)
            try:
                return fn()
            except RateLimitedError:
                if pause is None:
                    raise
                logger.warning("Stripe rate limit; backing off", extra={"attempt": attempt})
                self._back_off(pause)
        raise AssertionError("unreachable")


@dataclass
class Program:
    repo: ProgramRepository
    money: MoneyRepository
    people: IdentityRepository
    stripe: StripeGateway
    timers: Timers
    settings: Settings
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    pacer: Pacer = field(default_factory=lambda: Pacer(20.0))
    page_size: int = 50
    # Creators paid at once, all through the one pacer: Stripe's latency overlaps, its rate
    # limit does not (docs/benchmarks.md, "the payout at real latency").
    workers: int = 1
    notifier: Notifier | None = None

    # --- members ----------------------------------------------------------------------------

    def apply(self, user_id: str, pitch: str, links: list[Any]) -> dict[str, Any]:
        if len(links) > MAX_LINKS or not all(
            isinstance(link, str) and LINK.fullmatch(link) for link in links
        ):
            raise ValidationError(
                f"'links' must be at most {MAX_LINKS} https:// addresses.", field="links"
            )
        if self.repo.enrollment(user_id) is not None:
            raise AlreadyEnrolledError()
        self.repo.apply(user_id, pitch, links, self.clock())
        return self.status(user_id)

    def status(self, user_id: str) -> dict[str, Any]:
        enrollment = self.repo.enrollment(user_id)
        return {
            "application": self.repo.application(user_id),
            "enrollment": enrollment.to_dict() if enrollment else None,
            "stipends": [p.to_dict() for p in self.repo.payouts_of(user_id)],
        }

    # --- operators --------------------------------------------------------------------------

    def applications(self, status: str | None) -> dict[str, Any]:
        return {"items": self.repo.applications(status)}

    def approve(
        self, user_id: str, monthly_cents: int, start_month: str | None, months: int
    ) -> dict[str, Any]:
        start = start_month or month_of(self.clock())
        enrollment = Enrollment.new(user_id, monthly_cents, start, months)
        self.repo.decide(user_id, True, self.clock(), None, enrollment)
        logger.info("creator enrolled", extra={"user_id": user_id})
        return self.status(user_id)

    def reject(self, user_id: str, reason: str | None) -> dict[str, Any]:
        self.repo.decide(user_id, False, self.clock(), reason, None)
        return self.status(user_id)

    def end(self, user_id: str, last_month: str | None) -> dict[str, Any]:
        """No stipends after `last_month` (by default the current month, if already paid, else
        the month before)."""
        enrollment = self.repo.enrollment(user_id)
        if enrollment is None:
            raise NotEnrolledError()
        now = self.clock()
        if last_month is None:
            current = month_of(now)
            paid = self.repo.payout(user_id, current)
            last_month = current if paid and paid.status == PAID else add_months(current, -1)
        self.repo.end_enrollment(enrollment.ended_early(last_month, now))
        return self.status(user_id)

    # --- the payout run -----------------------------------------------------------------------

    def dry_run(self, month: str) -> dict[str, Any]:
        """What a run would pay now, and what it would skip and why. Writes nothing."""
        parse_month(month)
        would_pay: list[dict[str, Any]] = []
        reasons: Counter[str] = Counter()
        already, total, count, cursor = 0, 0, 0, None
        while True:
            page, cursor = self.repo.enrollments_page(cursor, self.page_size)
            for enrollment in page:
                if not enrollment.due(month):
                    continue
                payout = self.repo.payout(enrollment.user_id, month)
                if payout is not None and payout.status == PAID:
                    already += 1
                    continue
                reason = self._not_payable(self.money.creator(enrollment.user_id))
                if reason:
                    reasons[reason] += 1
                    continue
                total += enrollment.monthly_cents
                count += 1
                if len(would_pay) < 1000:
                    would_pay.append(
                        {"user_id": enrollment.user_id, "amount_cents": enrollment.monthly_cents}
                    )
            if not cursor:
                break
        return {
            "month": month,
            "dry_run": True,
            "would_pay": count,
            "would_pay_cents": total,
            "already_paid": already,
            "would_skip": dict(reasons),
            "payouts": would_pay,
        }

    def run(
        self,
        month: str | None,
        run_id: str | None,
        time_left_ms: Callable[[], int],
        from_cursor: str | None = None,
    ) -> dict[str, Any]:
        """Pay what is due for `month` until done or nearly out of time; then hand over.

        A continuation names the cursor it was handed; SQS may deliver it twice, and a copy that
        finds the run done or moved on does nothing."""
        now = self.clock()
        if run_id is None:
            month = month or month_of(now)
            parse_month(month)
            run_id = self.new_id()
            self.repo.start_run(run_id, month, now)
        run = self.repo.run(run_id)
        assert run is not None
        if run["status"] == "done" or (from_cursor is not None and run["cursor"] != from_cursor):
            return run
        month, cursor = str(run["month"]), run["cursor"]
        started_from = cursor
        reasons: Counter[str] = Counter(run["reasons"])
        counts: Counter[str] = Counter()

        def tally(paying: list[Future[tuple[str, str | None]]]) -> None:
            for future in paying:
                outcome, reason = future.result()
                counts[outcome] += 1
                if reason:
                    reasons[reason] += 1

        with ThreadPoolExecutor(max(1, self.workers), thread_name_prefix="payout") as pool:
            # The next page is read and started while the last one finishes, so that the
            # workers never wait for a page's slowest transfer. The cursor saved at a hand-over
            # is past only pages wholly done: a creator is never skipped, and never paid twice
            # (the claim row, the idempotency key and the completing transaction see to that).
            paying: list[Future[tuple[str, str | None]]] = []
            while True:
                page, next_cursor = self.repo.enrollments_page(cursor, self.page_size)
                started = [pool.submit(self._pay, e, month, run_id) for e in page if e.due(month)]
                tally(paying)
                paying, cursor = started, next_cursor
                done = cursor is None
                if done or time_left_ms() < self.settings.payout_handover_ms:
                    tally(paying)
                    break
        saved = self.repo.save_progress(
            run_id, counts, dict(reasons), cursor, done, self.clock(), started_from
        )
        if saved and not done:
            self.timers.after(0, {"kind": "payout_continue", "run_id": run_id, "cursor": cursor})
        report = self.repo.run(run_id)
        assert report is not None
        if done:
            logger.info("payout run finished", extra={"payout_run": report})
        return report

    @staticmethod
    def _not_payable(account: CreatorAccount | None) -> str | None:
        if account is None:
            return "no_payout_account"
        if not account.payouts_enabled:
            return "payouts_not_enabled"
        return None

    def _pay(self, enrollment: Enrollment, month: str, run_id: str) -> tuple[str, str | None]:
        user_id, amount = enrollment.user_id, enrollment.monthly_cents
        payout = self.repo.claim(user_id, month, amount, run_id, self.clock())
        if payout.status == PAID:
            return ALREADY_PAID, None
        account = self.money.creator(user_id)
        reason = self._not_payable(account)
        if reason or account is None:
            self.repo.skip(user_id, month, reason or "no_payout_account", self.clock())
            return SKIPPED, reason
        group = transfer_group(user_id, month)
        try:
            transfer_id = None
            if payout.attempts > 0:
                # An earlier attempt may have reached Stripe before its run died.
                transfer_id = self.pacer.call(lambda: self.stripe.find_transfer(group))
            if transfer_id is None:
                self.repo.note_attempt(user_id, month)
                transfer_id = self.pacer.call(
                    lambda: self.stripe.transfer(
                        {
                            "amount": amount,
                            "currency": CURRENCY,
                            "destination": account.stripe_account_id,
                            "transfer_group": group,
                            "description": f"Salon creator program, {month}",
                            "metadata": {
                                "salon_user_id": user_id,
                                "month": month,
                                "kind": "stipend",
                            },
                        },
                        idempotency_key=group,
                    )
                )
        except TransferRefusedError as refused:
            self.repo.skip(user_id, month, refused.code, self.clock())
            return SKIPPED, refused.code
        except (RateLimitedError, UnavailableError) as error:
            logger.warning(
                "stipend not paid this run", extra={"user_id": user_id, "error_code": error.code}
            )
            return FAILED, error.code
        # Another run (or the transfer's webhook) may have completed the same transfer first:
        # then this run did not pay it, and its record does not count it.
        if self.repo.complete(user_id, month, amount, transfer_id, self.clock(), run_id):
            self._paid(user_id, amount, month)
            return PAID, None
        return ALREADY_PAID, None

    # --- webhooks ---------------------------------------------------------------------------

    def transfer_created(self, transfer: dict[str, Any]) -> None:
        """A stipend transfer Stripe made: complete its payout if a crash left it pending."""
        meta = transfer.get("metadata") or {}
        if meta.get("kind") != "stipend":
            return
        user_id, month, amount = (
            str(meta["salon_user_id"]),
            str(meta["month"]),
            int(transfer["amount"]),
        )
        if self.repo.complete(user_id, month, amount, str(transfer["id"]), self.clock()):
            self._paid(user_id, amount, month)

    def _paid(self, user_id: str, amount_cents: int, month: str) -> None:
        """Whoever completed the payout (a run, or the webhook) tells the creator, once."""
        if self.notifier is not None:
            self.notifier.send(user_id, push.stipend_paid(amount_cents, CURRENCY, month))

    def transfer_reversed(self, transfer: dict[str, Any]) -> None:
        """Record every reversal Stripe now has of a stipend transfer, each once by its id and
        with its own amount: two reversals delivered at once, twice or in any order take back
        exactly what they reversed."""
        meta = transfer.get("metadata") or {}
        if meta.get("kind") != "stipend":
            return
        user_id, transfer_id = str(meta["salon_user_id"]), str(transfer["id"])
        for reversal in self.stripe.reversals_of(transfer_id):
            self.repo.record_reversal(
                user_id, transfer_id, str(reversal["id"]), int(reversal["amount"]), self.clock()
            )
