"""The creator program: applications, enrollment, and stipends paid exactly once, whatever
crashes, races and time limits the payout run meets. Against moto and the Stripe emulator."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import stripe
from chalice.test import Client

from chalicelib.adapters.dynamo.models import LedgerEntryModel, PayoutModel
from chalicelib.adapters.dynamo.program import ProgramRepository
from chalicelib.adapters.stripe_gateway import StripeGateway
from chalicelib.services.program import BACKOFF_S, Pacer, Program
from tests.support.events import sqs_event
from tests.support.program import MONTH, creators, forever, transfers_to
from tests.support.reconcile import assert_reconciled
from tests.support.stripe_local import emulator_post


class Crash(Exception):
    """A Lambda dying mid-run (timeout, out of memory, a bug)."""


@pytest.fixture
def program(svc: Any, emulator: str) -> Program:
    from local.stripe import reset

    reset()
    svc.settings = dataclasses.replace(
        svc.settings,
        stripe_secret_key="sk_test_salon",
        stripe_api_base=emulator,
        payout_handover_ms=60_000,
    )
    built: Program = svc.program
    built.pacer = Pacer(1000.0)  # the emulator has no rate limit to respect
    built.page_size = 10
    return built


class Budget:
    """An invocation that runs out of time after `pages` pages of creators."""

    def __init__(self, pages: int) -> None:
        self.left = pages

    def __call__(self) -> int:
        self.left -= 1
        return 900_000 if self.left > 0 else 0


def stipend_entries(user_id: str) -> list[Any]:
    return [e for e in LedgerEntryModel.by_creator.query(user_id) if e.kind == "stipend"]


def assert_paid_exactly_once(emulator: str, ids: list[str]) -> None:
    for user_id in ids:
        assert len(transfers_to(emulator, user_id)) == 1, user_id
        assert len(stipend_entries(user_id)) == 1, user_id
        assert PayoutModel.get(f"{user_id}#{MONTH}").status == "paid"


def test_a_member_applies_and_an_operator_enrolls_them(client: Client, svc: Any) -> None:
    from tests.support.flows import founder

    me = founder(client)
    headers = {**me.auth, "Content-Type": "application/json"}
    applied = client.http.post(
        "/creator-program/applications",
        headers=headers,
        body=json.dumps({"pitch": "Weekly jazz rooms", "links": ["https://example.com/jazz"]}),
    )
    assert applied.status_code == 201
    assert applied.json_body["application"]["status"] == "pending"
    again = client.http.post(
        "/creator-program/applications", headers=headers, body=json.dumps({"pitch": "Again"})
    )
    assert again.json_body["error"]["code"] == "already_applied"
    listed = client.lambda_.invoke("admin_program_applications", {"status": "pending"}).payload
    assert [a["user_id"] for a in listed["result"]["items"]] == [me.user_id]
    approved = client.lambda_.invoke(
        "admin_program_approve", {"user_id": me.user_id, "start_month": MONTH}
    ).payload
    assert approved["result"]["enrollment"] == {
        "user_id": me.user_id,
        "monthly_cents": 500_000,
        "start_month": MONTH,
        "months": 3,
        "last_month": "2027-02",
        "ended_early": False,
    }
    status = client.http.get("/creator-program/me", headers=me.auth).json_body
    assert status["application"]["status"] == "approved"
    decided = client.lambda_.invoke("admin_program_reject", {"user_id": me.user_id}).payload
    assert decided["error"]["code"] == "application_decided"


def test_bad_applications_are_refused(client: Client, svc: Any) -> None:
    from tests.support.flows import founder

    me = founder(client)
    headers = {**me.auth, "Content-Type": "application/json"}
    for payload in (
        {"pitch": ""},
        {"pitch": "x", "links": ["ftp://no"]},
        {"pitch": "x", "links": "https://a.b"},
        {"pitch": "x" * 2001},
    ):
        response = client.http.post(
            "/creator-program/applications", headers=headers, body=json.dumps(payload)
        )
        assert response.status_code == 400, payload


def test_a_run_pays_the_due_creators_once_and_skips_the_unready_with_a_reason(
    program: Program, emulator: str
) -> None:
    ready = creators(program, emulator, 3)
    unready = creators(program, emulator, 2, ready=False, prefix="pending")
    report = program.run(MONTH, None, forever)
    assert (report["paid"], report["skipped"], report["failed"]) == (3, 2, 0)
    assert report["total_cents"] == 1_500_000
    assert report["reasons"] == {"payouts_not_enabled": 2}
    assert report["status"] == "done"
    assert_paid_exactly_once(emulator, ready)
    assert all(transfers_to(emulator, u) == [] for u in unready)
    stipends = [m for _, m in program.notifier.queue.pending if m["push"]["kind"] == "stipend"]
    assert sorted(m["to"] for m in stipends) == sorted(ready)
    # A second run the same month pays nothing more, and tells nobody again.
    again = program.run(MONTH, None, forever)
    assert (again["paid"], again["already_paid"], again["skipped"]) == (0, 3, 2)
    assert_paid_exactly_once(emulator, ready)
    assert len(program.notifier.queue.pending) == len(stipends)


def test_a_skipped_creator_is_paid_by_a_later_run_that_month(
    program: Program, emulator: str
) -> None:
    (late,) = creators(program, emulator, 1, ready=False, prefix="late")
    assert program.run(MONTH, None, forever)["skipped"] == 1
    account = program.money.creator(late)
    emulator_post(emulator, f"/_test/accounts/{account.stripe_account_id}/complete_onboarding")
    program.money.save_account(
        late, program.stripe.account(account.stripe_account_id), datetime.now(UTC)
    )
    assert program.run(MONTH, None, forever)["paid"] == 1
    assert_paid_exactly_once(emulator, [late])


def test_a_destination_stripe_refuses_is_skipped_without_blocking_the_others(
    program: Program, emulator: str
) -> None:
    ids = creators(program, emulator, 3)
    account = program.money.creator(ids[1])
    emulator_post(emulator, f"/_test/accounts/{account.stripe_account_id}/restrict")
    report = program.run(MONTH, None, forever)
    assert (report["paid"], report["skipped"]) == (2, 1)
    assert report["reasons"] == {"insufficient_capabilities_for_transfer": 1}


def test_a_dry_run_changes_nothing(program: Program, emulator: str) -> None:
    creators(program, emulator, 2)
    creators(program, emulator, 1, ready=False, prefix="pending")
    plan = program.dry_run(MONTH)
    assert (plan["would_pay"], plan["would_pay_cents"], plan["would_skip"]) == (
        2,
        1_000_000,
        {"payouts_not_enabled": 1},
    )
    assert list(PayoutModel.scan()) == []
    assert all(transfers_to(emulator, f"creator{i:04d}") == [] for i in range(2))


def test_ending_an_enrollment_early_stops_future_payouts(program: Program, emulator: str) -> None:
    (creator,) = creators(program, emulator, 1)
    program.repo.end_enrollment(
        program.repo.enrollment(creator).ended_early("2026-11", datetime.now(UTC))
    )
    assert program.run(MONTH, None, forever)["paid"] == 0
    assert transfers_to(emulator, creator) == []


def test_a_month_outside_the_enrollment_pays_nothing(program: Program, emulator: str) -> None:
    creators(program, emulator, 1)
    assert program.run("2027-03", None, forever)["paid"] == 0
    assert program.run("2026-11", None, forever)["paid"] == 0


class CrashingStripe(StripeGateway):
    def __init__(self, real: StripeGateway, victim: str, when: str) -> None:
        self.__dict__.update(real.__dict__)
        self.victim, self.when = victim, when

    def transfer(self, params: dict[str, Any], idempotency_key: str) -> str:
        hit = params["metadata"]["salon_user_id"] == self.victim
        if hit and self.when == "before":
            raise Crash("before the Stripe call")
        transfer_id = super().transfer(params, idempotency_key)
        if hit and self.when == "after":
            raise Crash("after the Stripe call")
        return transfer_id


class CrashingRepo(ProgramRepository):
    def __init__(self, victim: str) -> None:
        self.victim = victim

    def complete(
        self,
        user_id: str,
        month: str,
        amount_cents: int,
        transfer_id: str,
        at: datetime,
        run_id: str | None = None,
    ) -> bool:
        done = super().complete(user_id, month, amount_cents, transfer_id, at, run_id)
        if user_id == self.victim:
            raise Crash("after the ledger write")
        return done


@pytest.mark.parametrize("when", ["before", "after", "after_ledger"])
def test_a_crash_at_any_step_then_a_rerun_pays_everyone_exactly_once(
    program: Program, emulator: str, when: str
) -> None:
    ids = creators(program, emulator, 4)
    victim = ids[1]
    crashing = dataclasses.replace(program)
    if when == "after_ledger":
        crashing.repo = CrashingRepo(victim)
    else:
        crashing.stripe = CrashingStripe(program.stripe, victim, when)
    with pytest.raises(Crash):
        crashing.run(MONTH, None, forever)
    rerun = program.run(MONTH, None, forever)
    assert rerun["failed"] == 0
    assert_paid_exactly_once(emulator, ids)


def test_two_runs_started_at_the_same_time_pay_once(program: Program, emulator: str) -> None:
    ids = creators(program, emulator, 6)
    start = threading.Barrier(2)

    def run() -> dict[str, Any]:
        start.wait()
        return program.run(MONTH, None, forever)

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: run(), range(2)))
    assert_paid_exactly_once(emulator, ids)
    final = [program.repo.run(r["run_id"]) for r in reports]
    moved = sum(t.amount for user_id in ids for t in transfers_to(emulator, user_id))
    assert sum(r["paid"] for r in final) == 6
    assert sum(r["total_cents"] for r in final) == moved == 6 * 500_000
    assert_reconciled(program)


class OvertakenStripe(StripeGateway):
    """A run whose first transfer is made, and then, before it records it, another whole run
    goes by (a Lambda paused, a second schedule firing)."""

    def __init__(self, real: StripeGateway, overtake: Callable[[], Any]) -> None:
        self.__dict__.update(real.__dict__)
        self.overtake: Callable[[], Any] | None = overtake

    def transfer(self, params: dict[str, Any], idempotency_key: str) -> str:
        transfer_id = super().transfer(params, idempotency_key)
        overtake, self.overtake = self.overtake, None
        if overtake is not None:
            overtake()
        return transfer_id


def test_overlapping_runs_records_add_up_to_what_moved_in_stripe(
    program: Program, emulator: str
) -> None:
    ids = creators(program, emulator, 5)
    second: list[dict[str, Any]] = []
    slow = dataclasses.replace(
        program,
        stripe=OvertakenStripe(
            program.stripe, lambda: second.append(program.run(MONTH, None, forever))
        ),
    )
    first = slow.run(MONTH, None, forever)
    assert_paid_exactly_once(emulator, ids)
    reports = [program.repo.run(first["run_id"]), program.repo.run(second[0]["run_id"])]
    moved = sum(t.amount for user_id in ids for t in transfers_to(emulator, user_id))
    assert sum(r["paid"] for r in reports) == 5
    assert sum(r["total_cents"] for r in reports) == moved == 5 * 500_000
    assert sum(r["paid"] + r["already_paid"] for r in reports) == 10
    assert_reconciled(program)


def test_a_run_with_little_time_continues_across_invocations_paying_each_once(
    program: Program, emulator: str, timers: Any
) -> None:
    # 100 creators in pages of 10, two pages an invocation: five invocations at least.
    ids = creators(program, emulator, 100)
    report = program.run(MONTH, None, Budget(pages=2))
    invocations = 1
    while report["status"] != "done":
        (message,) = timers.take("payout_continue")
        report = program.run(None, message["run_id"], Budget(pages=2), message["cursor"])
        invocations += 1
    assert invocations >= 5
    assert report["invocations"] == invocations
    assert report["paid"] == 100
    assert report["total_cents"] == 100 * 500_000
    for user_id in ids[::13]:
        assert len(transfers_to(emulator, user_id)) == 1
    assert sum(1 for e in LedgerEntryModel.scan() if e.kind == "stipend") == 100


def test_transfer_webhooks_update_the_ledger_idempotently(program: Program, emulator: str) -> None:
    (creator,) = creators(program, emulator, 1)
    crashing = dataclasses.replace(program, stripe=CrashingStripe(program.stripe, creator, "after"))
    with pytest.raises(Crash):
        crashing.run(MONTH, None, forever)
    (transfer,) = transfers_to(emulator, creator)
    as_dict = transfer.to_dict()
    program.transfer_created(as_dict)
    program.transfer_created(as_dict)
    assert len(stipend_entries(creator)) == 1
    assert PayoutModel.get(f"{creator}#{MONTH}").status == "paid"
    sdk = stripe.StripeClient("sk_test_salon", base_addresses={"api": emulator})
    sdk.v1.transfers.reversals.create(transfer.id, params={"amount": 100_000})
    program.transfer_reversed(as_dict)
    program.transfer_reversed(as_dict)
    sdk.v1.transfers.reversals.create(transfer.id)  # the rest: 400,000
    program.transfer_reversed(as_dict)
    program.transfer_reversed(as_dict)
    assert program.money.creator(creator).earnings_cents == 0
    assert program.money.balance(creator) == 0
    assert_reconciled(program)


def test_a_run_backs_off_when_stripe_answers_429_and_still_pays(
    program: Program, emulator: str
) -> None:
    ids = creators(program, emulator, 2)
    pauses: list[float] = []
    program.pacer.sleep = pauses.append
    emulator_post(emulator, "/_test/rate_limit?count=3")
    report = program.run(MONTH, None, forever)
    assert report["paid"] == 2
    # Backed off after the first 429: the next slot any worker gets is half a second later.
    assert any(p == pytest.approx(BACKOFF_S[0], abs=0.05) for p in pauses)
    assert_paid_exactly_once(emulator, ids)


def test_a_run_from_the_console_leaves_a_record_and_metrics(
    client: Client, program: Program, emulator: str, capsys: pytest.CaptureFixture[str]
) -> None:
    creators(program, emulator, 2)
    creators(program, emulator, 1, ready=False, prefix="pending")
    answer = client.lambda_.invoke("admin_run_payouts", {"month": MONTH}).payload
    assert answer["ok"], answer
    report = answer["result"]
    assert program.repo.run(report["run_id"]) == report
    assert (report["paid"], report["skipped"], report["total_cents"]) == (2, 1, 1_000_000)
    emitted = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and "_aws" in line
    ]
    values = {k: v for blob in emitted for k, v in blob.items() if k.startswith("Payout")}
    assert values == {
        "PayoutsPaid": [2.0],
        "PayoutsSkipped": [1.0],
        "PayoutsFailed": [0.0],
        "PayoutCents": [1_000_000.0],
    }
    dry = client.lambda_.invoke("admin_run_payouts", {"month": MONTH, "dry_run": True}).payload
    assert dry["result"]["would_pay"] == 0 and dry["result"]["already_paid"] == 2


def test_a_hand_over_delivered_twice_is_done_once(
    program: Program, emulator: str, timers: Any
) -> None:
    creators(program, emulator, 60)
    report = program.run(MONTH, None, Budget(pages=2))
    continuations = 0
    while report["status"] != "done":
        (message,) = timers.take("payout_continue")
        report = program.run(None, message["run_id"], Budget(pages=2), message["cursor"])
        handed_over = timers.take("payout_continue")
        # SQS delivers the same message again: the copy finds the run moved on.
        duplicate = program.run(None, message["run_id"], Budget(pages=2), message["cursor"])
        assert duplicate == report
        assert timers.take("payout_continue") == []
        timers.pending += [(0, m) for m in handed_over]
        continuations += 1
    assert continuations == 2
    assert (report["paid"], report["already_paid"], report["invocations"]) == (60, 0, 3)


class SlowStripe(StripeGateway):
    """Stripe with latency: each transfer waits until `overlap` of them are in flight at once
    (or a short timeout), and records the most seen in flight."""

    def __init__(self, real: StripeGateway, overlap: int) -> None:
        self.__dict__.update(real.__dict__)
        self.lock = threading.Lock()
        self.in_flight = self.most = 0
        self.crowd = threading.Barrier(overlap)

    def transfer(self, params: dict[str, Any], idempotency_key: str) -> str:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        try:
            self.crowd.wait(timeout=2)
        except threading.BrokenBarrierError:
            pass
        try:
            return super().transfer(params, idempotency_key)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_parallel_workers_pay_each_creator_exactly_once(program: Program, emulator: str) -> None:
    ids = creators(program, emulator, 24)
    slow = SlowStripe(program.stripe, overlap=4)
    parallel = dataclasses.replace(program, stripe=slow, workers=8)
    report = parallel.run(MONTH, None, forever)
    assert (report["paid"], report["failed"]) == (24, 0)
    assert slow.most >= 4  # the transfers really overlapped
    assert parallel.pacer.calls == 24  # one Stripe request per creator, through the one pacer
    assert_paid_exactly_once(emulator, ids)
    assert_reconciled(program)


# --- the functions only a schedule or a queue starts, through their handlers as AWS runs them
# (so the IAM replay checks their roles: calling the service directly would bypass it)
def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-12-01T06:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/payouts_monthly"],
        "detail": {},
    }


def test_the_monthly_run_and_its_catch_up_pay_each_creator_once_through_their_functions(
    client: Client, program: Program, emulator: str
) -> None:
    program.clock = lambda: datetime(2026, 12, 1, 6, tzinfo=UTC)
    assert MONTH == "2026-12"
    ids = creators(program, emulator, 3)
    client.lambda_.invoke("payouts_monthly", scheduled_event())
    assert_paid_exactly_once(emulator, ids)
    client.lambda_.invoke("payouts_catch_up", scheduled_event())
    assert_paid_exactly_once(emulator, ids)


def test_a_run_handed_over_is_finished_by_the_timers_function(
    client: Client, program: Program, emulator: str, timers: Any
) -> None:
    ids = creators(program, emulator, 30)
    report = program.run(MONTH, None, Budget(pages=2))
    assert report["status"] != "done"
    (message,) = timers.take("payout_continue")
    client.lambda_.invoke("timers", sqs_event([message]))
    assert_paid_exactly_once(emulator, ids)
