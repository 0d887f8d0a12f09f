"""The monthly stipend run for N enrolled creators, against moto and the Stripe emulator.

N creators (default 10,000) are seeded with onboarded Connect accounts in the emulator, a
`creator_accounts` row and an enrollment each. Then the real run pays them: `Program.run` from
`Services`, through the real Stripe SDK to the emulator on 127.0.0.1, the real DynamoDB
adapters against moto in-process, and the real `Timers` adapter to a moto SQS queue. Each
Lambda invocation gets a wall-clock budget (`--invocation-seconds`); when the run hands over,
the bench takes the `payout_continue` message off the queue and gives it to a fresh invocation
through `Services.on_timer`, as the `timers` Lambda would, until the run is done.

Requests are counted where they leave the process: every HTTP attempt of the Stripe SDK
(`RequestsClient.request`, retries included), every DynamoDB call (PynamoDB's
`Connection._make_api_call`) and every SQS send. Only the run is counted, not the seeding or
the checks. At the end every creator must have been paid exactly once: one `paid` payout row,
one stipend ledger entry, the earnings counter, and exactly one transfer in the emulator to
the right account for the right amount (all checked in the emulator's store, a sample also
through the SDK).

The floor is what Stripe's rate allows: at least one Stripe request per creator, so N / rate
seconds at the pacer's rate (`settings.stripe_requests_per_second`, 20/s in production).

Two costs of the test doubles grow with the data and would swamp the app's own at this size;
both are replaced by equivalents that give the same answers (flags keep the originals): moto
copies every table a TransactWriteItems touches (`--moto-table-copy`; local/moto_atomic.py
saves only the items named, as the tests and the local stack do), and the
emulator scans its whole store for a transfer's reversals on every transfer (`--emulator-as-is`).
The wall time also depends on what else the machine runs: the load average is printed with it.

    .venv/bin/python -m bench.payouts                  # 10,000 creators, 20 req/s, 60 s budget
    .venv/bin/python -m bench.payouts --rate 1000      # the code's own cost, pacer out of the way
    .venv/bin/python -m bench.payouts --creators 1000 --invocation-seconds 30 --handover-seconds 60
    .venv/bin/python -m bench.payouts --creators 10000 --stripe-latency-ms 300  # real latency

Options: --repeat R (medians of R runs), --page-size, --seed sdk (accounts through HTTP),
--samples, --amount-cents; see --help.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import random
import re
import shlex
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.env import QUEUES, bench_env

os.environ.update(
    bench_env(
        SALON_WS_MANAGEMENT_URL="http://127.0.0.1:9/unused",
        SALON_TIMERS_QUEUE_URL=f"{QUEUES}/bench-timers",
        POWERTOOLS_METRICS_NAMESPACE="SalonBench",
        POWERTOOLS_IDEMPOTENCY_DISABLED="1",
    )
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

import boto3
import stripe
from moto import mock_aws
from pynamodb.connection.base import Connection
from stripe._http_client import RequestsClient

from chalicelib.adapters.dynamo.models import (
    CreatorAccountModel,
    LedgerEntryModel,
    PayoutModel,
)
from chalicelib.adapters.stripe_gateway import AccountState
from chalicelib.config import settings as env_settings
from chalicelib.domain.program import Enrollment, month_of, transfer_group
from chalicelib.services.container import Services
from local import moto_atomic
from local.stripe import Settings as EmulatorSettings
from local.stripe import reset as reset_emulator
from local.stripe import serve_in_thread
from local.tables import create_tables

QUEUE_NAME = "bench-timers"
QUEUE_URL = os.environ["SALON_TIMERS_QUEUE_URL"]
STRIPE_KEY = "sk_test_bench"  # the emulator accepts any sk_ key
# Production hands over with 60 s of at most 900 s left. Scaled to a 60 s budget that would be
# 4 s, less than one page of 50 creators takes on this harness when the machine is busy (the
# hand-over is checked between pages), so by default the bench keeps a quarter of the budget.
HANDOVER_SHARE = 0.25
STRIPE_LIMITS = {"test mode": 25.0, "live": 100.0}  # requests/s per account (FACTS.md)
IDS = re.compile(r"/(acct|tr|trr|evt)_[A-Za-z0-9]+")


# --- metering ---------------------------------------------------------------------------------


@dataclass
class Meter:
    """What the run sent out, and where its time went; counts only while `on`."""

    on: bool = False
    added_latency_s: float = 0.0  # --stripe-latency-ms: slept before each Stripe request
    stripe: Counter[str] = field(default_factory=Counter)
    stripe_s: float = 0.0
    transfer_ms: list[float] = field(default_factory=list)
    dynamodb: Counter[str] = field(default_factory=Counter)
    dynamodb_s: float = 0.0
    dynamodb_op_s: Counter[str] = field(default_factory=Counter)
    sqs_sends: int = 0
    pacer_sleep_s: float = 0.0
    # The run pays with parallel workers: every count is added under this lock.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def snapshot(self) -> tuple[int, int, float, float, float]:
        return (
            sum(self.stripe.values()),
            sum(self.dynamodb.values()),
            self.stripe_s,
            self.dynamodb_s,
            self.pacer_sleep_s,
        )


@contextmanager
def metered(meter: Meter) -> Iterator[None]:
    original_dynamo = Connection._make_api_call
    original_http = RequestsClient.request

    def dynamo(self: Connection, operation: str, kwargs: dict[str, Any]) -> Any:
        if not meter.on:
            return original_dynamo(self, operation, kwargs)
        start = time.perf_counter()
        try:
            return original_dynamo(self, operation, kwargs)
        finally:
            took = time.perf_counter() - start
            with meter.lock:
                meter.dynamodb_s += took
                meter.dynamodb_op_s[operation] += took
                meter.dynamodb[operation] += 1

    def http(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if not meter.on:
            return original_http(self, method, url, *args, **kwargs)
        start = time.perf_counter()
        if meter.added_latency_s:
            time.sleep(meter.added_latency_s)
        try:
            return original_http(self, method, url, *args, **kwargs)
        finally:
            took = time.perf_counter() - start
            path = IDS.sub(r"/\1_{id}", url.split("://", 1)[-1].split("?")[0])
            name = f"{method.upper()} {path[path.find('/') :]}"
            with meter.lock:
                meter.stripe[name] += 1
                meter.stripe_s += took
                if name == "POST /v1/transfers":
                    meter.transfer_ms.append(took * 1000)

    Connection._make_api_call = dynamo  # type: ignore[method-assign]
    RequestsClient.request = http  # type: ignore[method-assign]
    try:
        yield
    finally:
        Connection._make_api_call = original_dynamo  # type: ignore[method-assign]
        RequestsClient.request = original_http  # type: ignore[method-assign]


def meter_services(svc: Services, meter: Meter) -> None:
    """Count SQS sends and pacer sleeps of one container's services."""

    def before(**_: Any) -> None:
        if meter.on:
            meter.sqs_sends += 1

    svc.timers._sqs().meta.events.register("before-call.sqs.SendMessage", before)
    sleep = svc.program.pacer.sleep

    def paced(seconds: float) -> None:
        start = time.perf_counter()
        sleep(seconds)
        if meter.on:
            with meter.lock:
                meter.pacer_sleep_s += time.perf_counter() - start

    svc.program.pacer.sleep = paced


# --- moto -------------------------------------------------------------------------------------


@contextmanager
def indexed_transfer_reversals() -> Iterator[None]:
    """The emulator finds a transfer's reversals by scanning its whole object store, and its
    export reads `reversals`, `amount_reversed` and `reversed`, each a scan: six scans per
    POST /v1/transfers (the answer and the event). With 10,000 creators the store grows to
    40,000 objects and each transfer costs the emulator ~20 ms of CPU more than the first did.
    Here reversals are indexed by transfer as they are made (same answers); `--emulator-as-is`
    keeps the scans."""
    from localstripe.resources import store

    from local.stripe import connect

    made: dict[str, list[Any]] = {}
    original_init = connect.TransferReversal.__init__
    original_objects = connect.Transfer.__dict__["_reversal_objects"]

    def init(self: Any, transfer: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, transfer, *args, **kwargs)
        made.setdefault(self.transfer, []).append(self)

    def reversal_objects(self: Any) -> list[Any]:
        return [r for r in made.get(self.id, []) if store.get(f"transfer_reversal:{r.id}") is r]

    connect.TransferReversal.__init__ = init  # type: ignore[method-assign]
    connect.Transfer._reversal_objects = property(reversal_objects)  # type: ignore[assignment]
    try:
        yield
    finally:
        connect.TransferReversal.__init__ = original_init  # type: ignore[method-assign]
        connect.Transfer._reversal_objects = original_objects  # type: ignore[assignment]


# --- seeding ----------------------------------------------------------------------------------


def onboarded_accounts_direct(user_ids: list[str]) -> dict[str, AccountState]:
    """Connected accounts made and onboarded through the emulator's own Python objects (what
    POST /v1/accounts and /_test/accounts/{id}/complete_onboarding do, without HTTP)."""
    from local.stripe.connect import Account

    states = {}
    for user_id in user_ids:
        account = Account(
            type="express",
            capabilities={"card_payments": {"requested": True}, "transfers": {"requested": True}},
            metadata={"salon_user_id": user_id},
        )
        account._complete_onboarding()
        assert account._can_receive_transfers()
        states[user_id] = AccountState(
            account_id=account.id,
            charges_enabled=account.charges_enabled,
            payouts_enabled=account.payouts_enabled,
            details_submitted=account.details_submitted,
            requirements_due=len(account.requirements["currently_due"]),
        )
    return states


def onboarded_accounts_sdk(
    svc: Services, emulator: str, user_ids: list[str], threads: int
) -> dict[str, AccountState]:
    """The same through HTTP, as the app and the tests do: create, onboard, read back."""
    import urllib.request

    def one(user_id: str) -> tuple[str, AccountState]:
        state = svc.stripe.create_account(user_id)
        request = urllib.request.Request(  # noqa: S310 - the emulator on loopback
            f"{emulator}/_test/accounts/{state.account_id}/complete_onboarding",
            data=b"",
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            response.read()
        return user_id, svc.stripe.account(state.account_id)

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(one, user_ids))


def seed(
    svc: Services,
    emulator: str,
    count: int,
    month: str,
    amount_cents: int,
    how: str,
    threads: int,
) -> tuple[dict[str, str], dict[str, float]]:
    """`count` creators: an onboarded account, a creator_accounts row and an enrollment each."""
    user_ids = [f"creator{i:05d}" for i in range(count)]
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if how == "sdk":
        states = onboarded_accounts_sdk(svc, emulator, user_ids, threads)
    else:
        states = onboarded_accounts_direct(user_ids)
    timings["accounts"] = time.perf_counter() - start
    assert all(s.ready for s in states.values())
    start = time.perf_counter()
    now = datetime.now(UTC)
    money, repo = svc.program.money, svc.program.repo

    def rows(user_id: str) -> None:
        money.save_account(user_id, states[user_id], now)
        repo.add_enrollment(Enrollment.new(user_id, amount_cents, month, 3), now)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(rows, user_ids))
    timings["dynamodb rows"] = time.perf_counter() - start
    return {u: s.account_id for u, s in states.items()}, timings


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Invocation:
    seconds: float
    cpu_s: float  # this process, every thread (app, SDK, moto and the emulator)
    paid: int
    stripe: int
    dynamodb: int
    pacer_sleep_s: float


@dataclass
class Result:
    creators: int
    workers: int
    rate: float
    invocation_s: float
    handover_s: float
    wall_s: float
    cpu_s: float
    app_thread_cpu_s: float  # the thread that runs the Lambda code (and moto, in-process)
    load: tuple[float, float]  # 1-minute load average before and after the run
    invocations: list[Invocation]
    meter: Meter
    seed_s: dict[str, float]
    checks: list[str]

    @property
    def floor_s(self) -> float:
        return self.creators / self.rate


def budget(seconds: float) -> Callable[[], int]:
    """An invocation's `context.get_remaining_time_in_millis`, starting now."""
    deadline = time.monotonic() + seconds

    def time_left_ms() -> int:
        return int((deadline - time.monotonic()) * 1000)

    return time_left_ms


def next_message(sqs: Any) -> dict[str, Any] | None:
    """What the timers queue holds: at most one payout_continue (the event source's receive)."""
    answer = sqs.receive_message(QueueUrl=QUEUE_URL, MaxNumberOfMessages=10)
    messages = answer.get("Messages", [])
    if not messages:
        return None
    assert len(messages) == 1, f"more than one hand-over queued: {messages}"
    sqs.delete_message(QueueUrl=QUEUE_URL, ReceiptHandle=messages[0]["ReceiptHandle"])
    body: dict[str, Any] = json.loads(messages[0]["Body"])
    assert body["kind"] == "payout_continue", body
    return body


def pay_everyone(
    monthly: Services, timers_fn: Services, meter: Meter, invocation_s: float
) -> tuple[dict[str, Any], list[Invocation], float, float, float]:
    """The scheduled Lambda starts the run; the timers Lambda continues it until done."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    invocations: list[Invocation] = []
    repo = monthly.program.repo
    paid_before = 0
    message: dict[str, Any] | None = None
    run_id = ""
    started, cpu_started, app_started = time.perf_counter(), time.process_time(), time.thread_time()
    while True:
        before = meter.snapshot()
        t0, c0 = time.perf_counter(), time.process_time()
        meter.on = True
        if message is None:
            report = monthly.program.run(None, None, budget(invocation_s))  # payouts_monthly
            run_id = str(report["run_id"])
        else:
            timers_fn.on_timer(message, budget(invocation_s))  # the timers Lambda
        meter.on = False
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        after = meter.snapshot()
        report = repo.run(run_id) or {}
        invocations.append(
            Invocation(
                seconds=took,
                cpu_s=cpu,
                paid=int(report["paid"]) - paid_before,
                stripe=after[0] - before[0],
                dynamodb=after[1] - before[1],
                pacer_sleep_s=after[4] - before[4],
            )
        )
        paid_before = int(report["paid"])
        late = "  OVER BUDGET: Lambda would have killed it" if took > invocation_s else ""
        print(
            f"  invocation {len(invocations):3d}: {took:7.1f} s, paid {invocations[-1].paid:6,}"
            f" (total {paid_before:,}), status {report['status']}{late}",
            file=sys.stderr,
            flush=True,
        )
        message = next_message(sqs)
        if message is None:
            break
        assert message["run_id"] == run_id
    wall = time.perf_counter() - started
    cpu, app_cpu = time.process_time() - cpu_started, time.thread_time() - app_started
    return report, invocations, wall, cpu, app_cpu


# --- checks -----------------------------------------------------------------------------------


def check_paid_exactly_once(
    report: dict[str, Any],
    invocations: int,
    accounts: dict[str, str],
    month: str,
    amount_cents: int,
    emulator: str,
    samples: int,
) -> list[str]:
    from localstripe.resources import store

    n = len(accounts)
    done: list[str] = []

    def ok(condition: bool, what: str) -> None:
        if not condition:
            raise AssertionError(what)
        done.append(what)

    ok(report["status"] == "done", "run status done")
    ok(
        (report["paid"], report["already_paid"], report["skipped"], report["failed"])
        == (n, 0, 0, 0),
        f"run report: paid {n:,}, already_paid 0, skipped 0, failed 0",
    )
    ok(report["total_cents"] == n * amount_cents, "run report total_cents = N x stipend")
    ok(report["invocations"] == invocations, f"run report invocations = {invocations}")

    payouts = [p for p in PayoutModel.scan() if p.month == month]
    by_user = Counter(p.user_id for p in payouts)
    ok(len(payouts) == n and set(by_user) == set(accounts), "one payout row per creator")
    ok(
        all(p.status == "paid" and p.transfer_id and int(p.attempts) == 1 for p in payouts),
        "every payout row paid, with its transfer id, after one attempt",
    )
    transfer_of = {p.user_id: p.transfer_id for p in payouts}

    entries = [e for e in LedgerEntryModel.scan() if e.kind == "stipend"]
    per_creator = Counter(e.creator_id for e in entries)
    ok(
        len(entries) == n and set(per_creator) == set(accounts),
        "one stipend ledger entry per creator",
    )
    ok(
        all(transfer_of[e.creator_id] == e.transfer_id for e in entries),
        "each ledger entry names the payout row's transfer",
    )
    earnings = {a.user_id: int(a.earnings_cents) for a in CreatorAccountModel.scan()}
    ok(
        all(earnings[u] == amount_cents for u in accounts),
        "every creator's earnings_cents = one stipend",
    )

    transfers = [v for k, v in store.items() if k.startswith("transfer:")]
    groups = Counter(t.transfer_group for t in transfers)
    ok(len(transfers) == n, f"{n:,} transfers in the emulator")
    ok(
        all(groups[transfer_group(u, month)] == 1 for u in accounts),
        "exactly one transfer per creator's transfer group",
    )
    by_id = {t.id: t for t in transfers}
    ok(
        all(
            by_id[transfer_of[u]].destination == accounts[u]
            and by_id[transfer_of[u]].amount == amount_cents
            for u in accounts
        ),
        "each transfer went to the creator's account, for the stipend",
    )
    sdk = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": emulator})
    sample = random.Random(7).sample(sorted(accounts), min(samples, n))
    for user_id in sample:
        found = sdk.v1.transfers.list(
            params={"transfer_group": transfer_group(user_id, month), "limit": 10}
        ).data
        assert [t.id for t in found] == [transfer_of[user_id]], user_id
    done.append(f"{len(sample)} sampled creators: one transfer each through the SDK")
    return done


# --- one measurement --------------------------------------------------------------------------


def measure(args: argparse.Namespace, emulator: str) -> Result:
    month = month_of(datetime.now(UTC))
    handover_s = (
        args.handover_seconds
        if args.handover_seconds is not None
        else args.invocation_seconds * HANDOVER_SHARE
    )
    settings = dataclasses.replace(
        env_settings(),
        stripe_secret_key=STRIPE_KEY,
        stripe_api_base=emulator,
        stripe_requests_per_second=args.rate,
        payout_handover_ms=int(handover_s * 1000),
        payout_workers=args.workers,
    )
    reset_emulator()
    meter = Meter()
    # local/moto_atomic.py rolls a cancelled transaction back item by item; the flag brings
    # moto's own copy of every table back.
    table_copies = (
        moto_atomic.whole_table_copies if args.moto_table_copy else contextlib.nullcontext
    )
    indexed = contextlib.nullcontext() if args.emulator_as_is else indexed_transfer_reversals()
    # The run pays in parallel: moto answers one request at a time, as DynamoDB applies each
    # atomically (local/moto_atomic.py).
    moto_atomic.install()
    with mock_aws(), table_copies(), indexed, metered(meter):
        create_tables()
        boto3.client("sqs", region_name="us-east-1").create_queue(QueueName=QUEUE_NAME)
        setup = Services(settings)
        print(f"seeding {args.creators:,} creators ({args.seed}) ...", file=sys.stderr, flush=True)
        accounts, seed_s = seed(
            setup, emulator, args.creators, month, args.amount_cents, args.seed, args.seed_threads
        )
        print(
            "seeded in " + ", ".join(f"{k} {v:.1f} s" for k, v in seed_s.items()),
            file=sys.stderr,
            flush=True,
        )
        # Two Lambdas, two containers: the schedule starts the run, the timers Lambda goes on.
        monthly, timers_fn = Services(settings), Services(settings)
        for svc in (monthly, timers_fn):
            if args.page_size:
                svc.program.page_size = args.page_size
            meter_services(svc, meter)
        meter.added_latency_s = args.stripe_latency_ms / 1000
        load_before = os.getloadavg()[0]
        report, invocations, wall, cpu, app_cpu = pay_everyone(
            monthly, timers_fn, meter, args.invocation_seconds
        )
        load_after = os.getloadavg()[0]
        meter.added_latency_s = 0.0
        checks = check_paid_exactly_once(
            report,
            len(invocations),
            accounts,
            month,
            args.amount_cents,
            emulator,
            args.samples,
        )
    return Result(
        creators=args.creators,
        workers=args.workers,
        rate=float(args.rate),
        invocation_s=args.invocation_seconds,
        handover_s=handover_s,
        wall_s=wall,
        cpu_s=cpu,
        app_thread_cpu_s=app_cpu,
        load=(load_before, load_after),
        invocations=invocations,
        meter=meter,
        seed_s=seed_s,
        checks=checks,
    )


# --- report -----------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def print_result(results: list[Result], command: str, stripe_latency_ms: float) -> None:
    """Every number is the median over the repeats when there are several."""
    first, n = results[0], results[0].creators

    def m(get: Callable[[Result], float]) -> float:
        return median([get(r) for r in results])

    wall = m(lambda r: r.wall_s)
    invocations = [i for r in results for i in r.invocations]
    durations = [i.seconds for i in invocations]
    over = sum(1 for d in durations if d > first.invocation_s)
    print()
    print(f"$ {command}")
    print()
    print(
        f"Payout run: {n:,} creators, pacer {first.rate:g} Stripe req/s, invocation budget "
        f"{first.invocation_s:g} s, hand-over when < {first.handover_s:g} s left, "
        f"{first.workers} workers"
        + (f", median of {len(results)} runs" if len(results) > 1 else "")
        + (f", {stripe_latency_ms:g} ms added to each Stripe request" if stripe_latency_ms else "")
    )
    rows = [
        ("creators", f"{n:,}"),
        ("invocations", f"{m(lambda r: len(r.invocations)):g}"),
        ("wall time (s)", f"{wall:.1f}"),
        ("creators paid / s", f"{n / wall:.1f}"),
        ("Stripe requests / creator", f"{m(lambda r: sum(r.meter.stripe.values())) / n:.3f}"),
        ("DynamoDB requests / creator", f"{m(lambda r: sum(r.meter.dynamodb.values())) / n:.3f}"),
        ("SQS sends (hand-overs)", f"{m(lambda r: r.meter.sqs_sends):g}"),
        (f"floor: N / pacer's {first.rate:g} req/s (s)", f"{first.floor_s:.1f}"),
        ("wall / floor", f"{wall / first.floor_s:.2f}"),
    ]
    rows += [
        (f"floor at Stripe's {name} {limit:g} req/s (s)", f"{n / limit:.1f}")
        for name, limit in STRIPE_LIMITS.items()
    ]
    rows += [
        ("longest invocation (s)", f"{max(durations):.1f} of {first.invocation_s:g}"),
        ("median invocation (s)", f"{median(durations):.1f}"),
        ("invocations over budget", f"{over}"),
        ("CPU, whole process (s)", f"{m(lambda r: r.cpu_s):.1f}"),
        ("CPU, Lambda-code thread (s)", f"{m(lambda r: r.app_thread_cpu_s):.1f}"),
        ("CPU, other threads: emulator (s)", f"{m(lambda r: r.cpu_s - r.app_thread_cpu_s):.1f}"),
        (
            "machine load avg before/after",
            f"{first.load[0]:.1f} / {first.load[1]:.1f} on {os.cpu_count()} CPUs",
        ),
    ]
    width = max(len(r[0]) for r in rows) + 2
    for name, value in rows:
        print(f"  {name.ljust(width)}{value:>22}")
    if len(results) > 1:
        print("  wall time of each run (s): " + ", ".join(f"{r.wall_s:.1f}" for r in results))

    print()
    print("Where the time went (s summed over the workers, share of their wall time):")
    parts = [
        ("Stripe HTTP (SDK request -> emulator -> answer)", m(lambda r: r.meter.stripe_s)),
        ("DynamoDB calls (PynamoDB -> botocore -> moto)", m(lambda r: r.meter.dynamodb_s)),
        ("pacer sleeping (the rate limit)", m(lambda r: r.meter.pacer_sleep_s)),
    ]
    if first.workers == 1:  # in parallel the parts overlap: there is no "rest" to tell
        rest = wall - sum(p[1] for p in parts)
        parts.append(("the rest (SDK objects, models, app code, SQS)", rest))
    for name, seconds in parts:
        print(f"  {name.ljust(50)}{seconds:9.1f}  {100 * seconds / wall:5.1f} %")
    if first.workers == 1:
        busy = (wall - m(lambda r: r.meter.pacer_sleep_s)) / n * 1000
        print(
            f"  per creator, all but the pacer's sleep: {busy:.1f} ms (the pacer's slot: ", end=""
        )
        print(f"{1000 / first.rate:.1f} ms)")
    latencies = first.meter.transfer_ms
    if latencies:
        ordered, tenth = sorted(latencies), max(1, len(latencies) // 10)
        print(
            f"  POST /v1/transfers, ms: median {median(latencies):.1f}, "
            f"p99 {ordered[int(0.99 * (len(ordered) - 1))]:.1f}, "
            f"first tenth {median(latencies[:tenth]):.1f}, last tenth "
            f"{median(latencies[-tenth:]):.1f}"
        )

    print()
    print("Requests by kind (first run): count, per creator, mean time")
    meter = first.meter
    for name, count in sorted(meter.stripe.items(), key=lambda x: -x[1]):
        print(f"  Stripe   {name.ljust(34)}{count:>8,}  {count / n:6.3f}")
    for name, count in sorted(meter.dynamodb.items(), key=lambda x: -x[1]):
        each = meter.dynamodb_op_s[name] / count * 1000
        print(f"  DynamoDB {name.ljust(34)}{count:>8,}  {count / n:6.3f}  {each:6.1f} ms")

    print()
    print("Invocations (first run): wall, CPU, paid, Stripe req, DynamoDB req, paced")
    shown = first.invocations
    if len(shown) > 24:
        shown = shown[:10] + shown[-10:]
        print(f"  ({len(first.invocations) - 20} in the middle not shown)")
    for inv in shown:
        print(
            f"  {first.invocations.index(inv) + 1:4d} {inv.seconds:7.1f} s {inv.cpu_s:7.1f} s"
            f" {inv.paid:7,} {inv.stripe:7,} {inv.dynamodb:8,} {inv.pacer_sleep_s:7.1f} s"
        )
    print()
    print(
        "Setup, not measured: "
        + ", ".join(f"{k} {median([r.seed_s[k] for r in results]):.1f} s" for k in first.seed_s)
    )
    print("Checks (every run):")
    for check in first.checks:
        print(f"  ok  {check}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creators", type=int, default=10_000)
    parser.add_argument(
        "--rate",
        type=int,
        default=env_settings().stripe_requests_per_second,
        help="the pacer's Stripe requests per second (production: %(default)s)",
    )
    parser.add_argument(
        "--invocation-seconds",
        type=float,
        default=60.0,
        help="each invocation's time limit (Lambda: at most 900)",
    )
    parser.add_argument(
        "--handover-seconds",
        type=float,
        default=None,
        help="hand over when less than this is left (default: a quarter of the budget; "
        "production: 60 of 900)",
    )
    parser.add_argument("--page-size", type=int, default=0, help="0: the Program's own")
    parser.add_argument(
        "--workers",
        type=int,
        default=env_settings().payout_workers,
        help="creators paid at once, sharing one pacer (production: %(default)s)",
    )
    parser.add_argument("--amount-cents", type=int, default=500_000)
    parser.add_argument(
        "--stripe-latency-ms",
        type=float,
        default=0.0,
        help="sleep this long before each Stripe request: what a slower Stripe would do",
    )
    parser.add_argument("--seed", choices=("direct", "sdk"), default="direct")
    parser.add_argument("--seed-threads", type=int, default=8)
    parser.add_argument("--samples", type=int, default=25, help="creators checked via the SDK")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--moto-table-copy",
        action="store_true",
        help="let moto copy whole tables on every transaction (slow; see the docstring)",
    )
    parser.add_argument(
        "--emulator-as-is",
        action="store_true",
        help="let the emulator scan its store on every transfer (slow as it fills)",
    )
    args = parser.parse_args()

    logging.getLogger("local.stripe").setLevel(logging.WARNING)
    logging.getLogger("salon").setLevel(logging.ERROR)
    port, stop = serve_in_thread(
        "127.0.0.1",
        0,
        EmulatorSettings(webhook_initial_delay=0.0, webhook_retry_delays=()),
    )
    emulator = f"http://127.0.0.1:{port}"
    results = []
    try:
        for _ in range(args.repeat):
            results.append(measure(args, emulator))
    finally:
        stop()
        reset_emulator()
    command = ".venv/bin/python -m bench.payouts " + shlex.join(sys.argv[1:])
    print_result(results, command.strip(), args.stripe_latency_ms)


if __name__ == "__main__":
    main()
