"""How long one stage event takes to reach every client of a big room, through the local gateway.

The whole local stack runs in a child process (`local.stack`: moto, the Chalice app and the
local API Gateway WebSocket emulator) on free loopback ports. N members are seeded straight into
its DynamoDB, N WebSocket clients connect and are put in one room (one host, one speaker, the
rest listening), and then the speaker's microphone is switched: the speaker unmutes, the host
mutes, and so on. Each switch is one stage event to all N connections (chalicelib/services/
fanout.py). For each event the bench times, from just before the action is sent: the first
client to hear of it, the median client, the last client (the number that matters), and the
actor's own ack (sent once the action's posts are made or queued).

Both paths a room-wide post can take are measured in one run, each on a stack of its own
(`--mode both`, the default): `inline`, the baseline, where the Lambda that acted posts every
socket, and `queue`, the code as deployed, where a big room goes through the fan-out queue.

Setup is not measured. The first `--real-joins` listeners (default 100) send `join_room`; the
others are written as the rows a join leaves behind, because under moto every join costs
O(room size) (the audience query copies every row it reads; until local/moto_atomic.py rolled
transactions back item by item, each transaction also deep-copied the whole room_members
table): 2,000 real joins took over 20 minutes. `--real-joins N` does them all anyway.

Two baselines are measured in the same run, interleaved with the big room's samples so that
machine noise hits all of them: one `ping` -> `pong` round trip (one message through the gateway,
one handler and one post), and the same stage event in a room of 10.

    .venv/bin/python -m bench.stage_fanout [--clients 2000] [--rounds 9] [--mode both]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import os
import queue
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
READY = "SALON_STACK_READY "
STAGE = "local"
# The two paths a room-wide post can take (chalicelib/services/fanout.py): the baseline posts
# every socket from the Lambda that acted; the fan-out queue hands a big room to its workers.
MODES = {"inline": 1_000_000, "queue": None}
SMALL_ROOM = 10
BATCH = 100  # connects / joins in flight at once
JOIN_ATTEMPTS = 3
SEED_THREADS = 16
TOKEN_TTL_S = 6 * 3600
PHONE_PREFIXES = ("+1212555", "+1646555", "+1312555", "+1212556", "+1646556", "+1312556")
STARTUP_S = 90.0
STOP_S = 20.0  # as tests/e2e/conftest.py; with 2,000 sockets the stack needs the kill


class BenchError(RuntimeError):
    pass


class RefusedError(BenchError):
    def __init__(self, text: str, reply: dict[str, Any]) -> None:
        super().__init__(text)
        self.reply = reply


# --- file descriptors ----------------------------------------------------------------------


def raise_fd_limit(needed: int) -> int:
    """Soft open-files limit up to the hard one (the stack inherits it); refuse if too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise BenchError(
            f"open-files limit is {soft} (hard {hard}); {needed} are needed: "
            "raise it (ulimit -Hn) or use fewer --clients"
        )
    return soft


# --- the stack -----------------------------------------------------------------------------


class Stack:
    """`python -m local.stack` on free ports; its stderr (and stdout after the ready line) go
    to files in `workdir`."""

    def __init__(self, workdir: Path, env: dict[str, str], idle_timeout_s: float) -> None:
        self.stderr_path = workdir / "stack.stderr.log"
        self.stdout_path = workdir / "stack.stdout.log"
        self._env = env
        self._idle_timeout_s = idle_timeout_s
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._drain: threading.Thread | None = None

    def start(self, timeout_s: float) -> dict[str, Any]:
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "local.stack",
                    "--rest-port",
                    "0",
                    "--ws-port",
                    "0",
                    "--aws-port",
                    "0",
                    "--idle-timeout",
                    str(self._idle_timeout_s),
                    "--no-seed",
                    "--ready-line",
                ],
                cwd=ROOT,
                env=self._env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        # Powertools writes logs and EMF metrics to stdout: keep draining it, or the stack
        # blocks once the pipe is full.
        self._drain = threading.Thread(target=self._read_stdout, name="stack-stdout", daemon=True)
        self._drain.start()
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the stack is exiting
                try:
                    self.process.wait(5)
                except subprocess.TimeoutExpired:
                    pass
                break
            if line.startswith(READY):
                info: dict[str, Any] = json.loads(line[len(READY) :])
                return info
        code = self.process.poll()
        state = f"exited with {code}" if code is not None else f"not ready after {timeout_s:.0f} s"
        raise BenchError(f"the local stack {state} (its stderr follows)")

    def _read_stdout(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        ready = False
        with self.stdout_path.open("w") as out:
            for line in self.process.stdout:
                if not ready:
                    self._lines.put(line)
                    ready = line.startswith(READY)
                out.write(line)
        self._lines.put(None)

    def stderr_tail(self, chars: int = 4000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self) -> str:
        """SIGTERM, then SIGKILL: by the child's pid only. Safe to call twice."""
        process = self.process
        if process is None or process.poll() is not None:
            return "already stopped"
        started = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        how = "stopped on SIGTERM"
        try:
            process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            how = f"killed after {STOP_S:.0f} s"
        if self._drain is not None:
            self._drain.join(5)
        return f"{how} in {time.perf_counter() - started:.1f} s (exit code {process.returncode})"


def stack_environment(
    secret: str, clients: int, count_interval_s: int, inline_max: int | None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SALON_"))}
    if inline_max is not None:
        env["SALON_FANOUT_INLINE_MAX"] = str(inline_max)
    env.update(
        {
            "SALON_STAGE": STAGE,
            "SALON_JWT_SECRET": secret,
            "SALON_AUDIENCE_COUNT_INTERVAL_S": str(count_interval_s),
            "SALON_ROOM_CAPACITY": str(max(8000, clients + SMALL_ROOM + 10)),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_TRACE_DISABLED": "1",
        }
    )
    return env


# --- seeding members (setup, not measured) -------------------------------------------------


@dataclass(frozen=True)
class Member:
    user_id: str
    token: str


def phone_numbers(count: int) -> Iterator[str]:
    from chalicelib.domain.identity import normalize_phone

    made = 0
    for prefix in PHONE_PREFIXES:
        for n in range(10_000):
            if made == count:
                return
            yield normalize_phone(f"{prefix}{n:04d}")  # raises if not a valid number
            made += 1
    if made < count:
        raise BenchError(f"only {made} test phone numbers are available; use fewer --clients")


class _PlainWrites:
    """Stands in for `transaction()` in the identity repository while seeding: each save is
    its own conditional PutItem (seeding has no concurrent writer of the same rows)."""

    def __enter__(self) -> _PlainWrites:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def save(self, model: Any, condition: Any = None) -> None:
        model.save(condition=condition)


def table_prefix(tables: Sequence[str]) -> str:
    """The prefix of the stack's tables: the template's (`salon-dev-`), not the stage's."""
    prefixes = {name.rsplit("-", 1)[0] + "-" for name in tables if name.count("-") >= 2}
    phones = [name for name in tables if name.endswith("-phones")]
    if len(phones) != 1:
        raise BenchError(f"the stack has no phones table: {sorted(tables)[:3]}")
    prefix = phones[0].removesuffix("phones")
    if not all(name.startswith(prefix) for name in tables) or not prefixes:
        raise BenchError(f"the stack's tables share no prefix: {sorted(tables)[:3]}")
    return prefix


def seed_members(info: dict[str, Any], secret: str, count: int) -> list[Member]:
    """Members, sessions and access tokens, written straight into the stack's DynamoDB."""
    prefix = table_prefix(info["tables"])
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": info["aws"],
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "SALON_STAGE": STAGE,
            # The stack names its tables as the packaged template does (local/stack.py).
            "SALON_TABLE_PREFIX": prefix,
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    # Imported only now: the models read the table prefix and endpoint from the environment.
    # seed_listeners's modules too, all at once, so that they come from the same edit of the
    # working tree.
    import chalicelib.adapters.dynamo.connections
    import chalicelib.adapters.dynamo.rooms
    import chalicelib.domain.rooms  # noqa: F401
    from chalicelib.adapters.dynamo import identity as identity_module
    from chalicelib.adapters.dynamo.identity import IdentityRepository
    from chalicelib.adapters.tokens import TokenIssuer
    from chalicelib.config import settings

    if settings().table_prefix != prefix:
        raise BenchError(f"table prefix {settings().table_prefix!r} is not the stack's")
    # moto's TransactWriteItems deep-copies every table it names (for its rollback): O(table
    # size) per transaction, so seeding N founders that way is O(N^2), and without a lock
    # around moto it fails now and then with "dictionary changed size during iteration"
    # (HTTP 500). The same rows are written here one conditional put at a time instead.
    identity_module.transaction = _PlainWrites
    repo = IdentityRepository()
    issuer = TokenIssuer(lambda: secret, TOKEN_TTL_S)
    now = datetime.now(UTC)

    def one(args: tuple[int, str]) -> Member:
        i, phone = args
        user_id = uuid.uuid4().hex
        session_id = uuid.uuid4().hex
        repo.create_founder(user_id, phone, f"bench{i:05d}", f"Bench {i}", 0, now)
        repo.create_session(session_id, user_id, secrets.token_hex(16), now, TOKEN_TTL_S)
        token, _ = issuer.issue(user_id, session_id, now)
        return Member(user_id, token)

    with ThreadPoolExecutor(SEED_THREADS, "seed") as pool:
        return list(pool.map(one, enumerate(phone_numbers(count))))


def seed_listeners(room_id: str, user_ids: Sequence[str]) -> None:
    """What `join_room` leaves behind for each listener, written in bulk: their room member
    row (with the socket the gateway gave them), the room's listener count, and the room on
    their connection. Needs `seed_members` to have set up the environment first."""
    from chalicelib.adapters.dynamo.connections import ConnectionRepository
    from chalicelib.adapters.dynamo.models import ConnectionModel, RoomMemberModel, RoomModel
    from chalicelib.adapters.dynamo.rooms import _member_row
    from chalicelib.domain.rooms import Member, Role

    wanted = set(user_ids)
    socket_of = {
        row.user_id: row.connection_id
        for row in ConnectionModel.scan(attributes_to_get=["connection_id", "user_id"])
        if row.user_id in wanted
    }
    if len(socket_of) != len(wanted):
        raise BenchError(f"{len(wanted) - len(socket_of)} connected clients have no connection row")
    start = datetime.now(UTC)
    with RoomMemberModel.batch_write() as batch:
        for i, user_id in enumerate(user_ids):
            joined = start + timedelta(microseconds=i)  # distinct, like real joins
            member = Member(user_id=user_id, role=Role.LISTENER, joined_at=joined)
            batch.save(_member_row(room_id, member, 1, socket_of[user_id], 0))
    RoomModel(room_id).update(actions=[RoomModel.listener_count.add(len(user_ids))])
    connections = ConnectionRepository(TOKEN_TTL_S)
    with ThreadPoolExecutor(SEED_THREADS, "seed-rooms") as pool:
        list(pool.map(lambda uid: connections.set_room(socket_of[uid], room_id), user_ids))


# --- WebSocket clients ---------------------------------------------------------------------


@dataclass
class Watch:
    """Arrival times of one event type in one room, one per client."""

    type: str
    room_id: str
    expected: int
    arrivals: dict[int, float] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def arrived(self, client: int, at: float) -> None:
        self.arrivals.setdefault(client, at)
        if len(self.arrivals) >= self.expected:
            self.done.set()


class Hub:
    """What every client's reader checks incoming events against."""

    def __init__(self) -> None:
        self.watch: Watch | None = None


class Client:
    _refs = itertools.count()

    def __init__(self, index: int, member: Member, hub: Hub) -> None:
        self.index = index
        self.member = member
        self.hub = hub
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.pending: dict[str, asyncio.Future[tuple[float, dict[str, Any]]]] = {}
        self.audience_count: int | None = None

    @property
    def user_id(self) -> str:
        return self.member.user_id

    async def open(self, url: str, timeout_s: float) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            f"{url}?token={self.member.token}",
            open_timeout=timeout_s,
            ping_interval=None,  # keep client pings out of the measurement
            compression=None,
            close_timeout=2,
            max_queue=None,
        )
        self.reader = asyncio.create_task(self._read(), name=f"reader-{self.index}")

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                now = time.perf_counter()
                message = json.loads(raw)
                ref = message.get("ref")
                if ref is not None:
                    future = self.pending.pop(ref, None)
                    if future is not None and not future.done():
                        future.set_result((now, message))
                    continue
                kind = message.get("type")
                if kind == "audience_count":
                    self.audience_count = message.get("count")
                watch = self.hub.watch
                if (
                    watch is not None
                    and kind == watch.type
                    and message.get("room_id") == (watch.room_id)
                ):
                    watch.arrived(self.index, now)
        except ConnectionClosed:
            pass
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(BenchError(f"client {self.index}: connection closed"))

    async def request(
        self, action: str, timeout_s: float, **fields: Any
    ) -> tuple[float, float, dict[str, Any]]:
        """Send one action; (sent at, reply at, reply). Raises on an error reply or timeout."""
        ref = f"b{next(self._refs)}"
        future: asyncio.Future[tuple[float, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )
        self.pending[ref] = future
        data = json.dumps({"action": action, "ref": ref, **fields})
        sent = time.perf_counter()
        await self.ws.send(data)
        try:
            replied, reply = await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            self.pending.pop(ref, None)
            raise BenchError(
                f"client {self.index}: no reply to {action} in {timeout_s:.0f} s"
            ) from None
        if reply.get("type") == "error":
            raise RefusedError(f"client {self.index}: {action} refused: {reply}", reply)
        return sent, replied, reply

    def abort(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            self.ws.transport.abort()


async def in_batches(
    items: Sequence[Any], run: Callable[[Any], Awaitable[Any]], what: str, log: Callable[..., None]
) -> None:
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
        results = await asyncio.gather(*(run(i) for i in batch), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise BenchError(
                f"{len(failed)} of {len(batch)} {what} failed in the batch at {start}; "
                f"first: {failed[0]!r}"
            ) from failed[0]
        done = start + len(batch)
        if done % 500 == 0 or done == len(items):
            log(f"  {what}: {done}/{len(items)}")


@dataclass
class Room:
    name: str
    clients: list[Client]
    room_id: str = ""

    @property
    def host(self) -> Client:
        return self.clients[0]

    @property
    def speaker(self) -> Client:
        return self.clients[1]

    @property
    def listeners_after_setup(self) -> int:
        return len(self.clients) - 2  # the host moderates, the speaker is on stage


async def open_room(
    room: Room, real_joins: int, timeout_s: float, log: Callable[..., None]
) -> None:
    """Host creates an open room; the next `real_joins` clients send `join_room` and the rest
    are seeded as listeners; then one listener is brought on stage."""
    _, _, reply = await room.host.request(
        "create_room", timeout_s, title=f"bench {room.name}", kind="open"
    )
    room.room_id = str(reply["room_id"])

    async def join(client: Client) -> None:
        for attempt in range(1, JOIN_ATTEMPTS + 1):
            try:
                await client.request("join_room", timeout_s, room_id=room.room_id)
                return
            except RefusedError as error:
                # moto answers 500 now and then to concurrent transactions (see seed_members);
                # botocore retries those, and a join that still failed is safe to send again.
                if error.reply.get("code") != "internal_error" or attempt == JOIN_ATTEMPTS:
                    raise

    joining = room.clients[1 : 1 + max(1, real_joins)]
    await in_batches(joining, join, f"{room.name} joins", log)
    seeded = room.clients[1 + len(joining) :]
    if seeded:
        log(f"  {room.name}: seeding {len(seeded)} listeners...")
        await asyncio.get_running_loop().run_in_executor(
            None, seed_listeners, room.room_id, [c.user_id for c in seeded]
        )
    await room.host.request("invite_to_speak", timeout_s, user_id=room.speaker.user_id)
    await room.speaker.request("accept_speaker_invite", timeout_s)


async def settle(rooms: Sequence[Room], timeout_s: float) -> None:
    """Wait for the coalesced audience count to reach everyone with its final value, so that
    no count broadcast runs during a sample."""
    deadline = time.monotonic() + timeout_s
    while True:
        lagging = sum(
            1
            for room in rooms
            for c in room.clients
            if c.audience_count != room.listeners_after_setup
        )
        if not lagging:
            return
        if time.monotonic() > deadline:
            seen = {
                room.name: dict(Counter(c.audience_count for c in room.clients)) for room in rooms
            }
            raise BenchError(
                f"{lagging} clients never got the final audience count in {timeout_s:.0f} s "
                f"(expected {[r.listeners_after_setup for r in rooms]}; last seen: {seen})"
            )
        await asyncio.sleep(0.2)


# --- samples -------------------------------------------------------------------------------


@dataclass
class Sample:
    first: float
    median: float
    last: float
    ack: float


async def stage_event(hub: Hub, room: Room, unmute: bool, timeout_s: float) -> Sample:
    """The speaker unmutes, or the host mutes the speaker: one event to everyone in the room."""
    watch = Watch("speaker_unmuted" if unmute else "speaker_muted", room.room_id, len(room.clients))
    hub.watch = watch
    try:
        if unmute:
            sent, acked, _ = await room.speaker.request("unmute", timeout_s)
        else:
            sent, acked, _ = await room.host.request(
                "mute", timeout_s, user_id=room.speaker.user_id
            )
        try:
            await asyncio.wait_for(watch.done.wait(), timeout_s)
        except TimeoutError:
            raise BenchError(
                f"{room.name}: {len(watch.arrivals)} of {watch.expected} clients got "
                f"{watch.type} in {timeout_s:.0f} s"
            ) from None
    finally:
        hub.watch = None
    times = sorted(t - sent for t in watch.arrivals.values())
    return Sample(times[0], statistics.median(times), times[-1], acked - sent)


async def ping(client: Client, timeout_s: float) -> float:
    sent, replied, _ = await client.request("ping", timeout_s)
    return replied - sent


# --- the run -------------------------------------------------------------------------------


@dataclass
class Results:
    clients: int
    rounds: int
    setup: dict[str, float] = field(default_factory=dict)
    pings: list[float] = field(default_factory=list)
    small: list[Sample] = field(default_factory=list)
    big: list[Sample] = field(default_factory=list)


@contextmanager
def phase(results: Results, name: str, log: Callable[..., None]) -> Iterator[None]:
    started = time.perf_counter()
    log(f"{name}...")
    yield
    results.setup[name] = time.perf_counter() - started


async def run(
    info: dict[str, Any],
    members: list[Member],
    args: argparse.Namespace,
    results: Results,
    stop_stack: Callable[[], str],
    log: Callable[..., None],
) -> None:
    hub = Hub()
    clients = [Client(i, m, hub) for i, m in enumerate(members)]
    big = Room("big", clients[: args.clients])
    small = Room("small", clients[args.clients :])
    url = info["websocket"]
    timeout = args.timeout
    try:

        async def connect(client: Client) -> None:
            await client.open(url, timeout)

        with phase(results, "connect", log):
            await in_batches(clients, connect, "connects", log)
        with phase(results, "join", log):
            await open_room(small, SMALL_ROOM, timeout, log)
            await open_room(big, args.real_joins, timeout, log)
        with phase(results, "settle", log):
            await settle((big, small), timeout + args.count_interval)

        # Warm-up (not counted): one unmute and one mute in each room, and a ping.
        log("warm-up...")
        await ping(big.host, timeout)
        for unmute in (True, False):
            await stage_event(hub, small, unmute, timeout)
            await stage_event(hub, big, unmute, timeout)

        log(f"measuring {args.rounds} rounds...")
        for r in range(args.rounds):
            unmute = r % 2 == 0  # the speaker starts muted: unmute, mute, unmute, ...
            results.pings.append(await ping(big.host, timeout))
            results.small.append(await stage_event(hub, small, unmute, timeout))
            results.big.append(await stage_event(hub, big, unmute, timeout))
            s = results.big[-1]
            log(
                f"  round {r + 1}: {'unmute' if unmute else 'mute  '} "
                f"last {s.last * 1000:7.0f} ms  first {s.first * 1000:6.0f} ms  "
                f"ping {results.pings[-1] * 1000:5.1f} ms"
            )
    finally:
        # Stop the stack while the clients are still connected: closing them first would make
        # the stack run one $disconnect per client before it can stop.
        log("stopping the stack...")
        log("stack " + await asyncio.get_running_loop().run_in_executor(None, stop_stack))
        for client in clients:
            client.abort()
        readers = [c.reader for c in clients if c.reader is not None]
        await asyncio.gather(*readers, return_exceptions=True)


# --- the report ----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def report(results: Results, command: str) -> None:
    n = results.clients
    med = statistics.median
    ping_ms = med(results.pings)
    small_last = med(s.last for s in results.small)
    big_last = med(s.last for s in results.big)
    print()
    print(f"command: {command}")
    print(
        f"clients: {n} in the big room, {SMALL_ROOM} in the small one; "
        f"rounds: {results.rounds} (medians; unmute and mute alternate)"
    )
    print(
        "setup: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in results.setup.items())
    )
    print()
    header = f"{'':<34}{'first':>12}{'median':>12}{'last':>12}{'ack':>12}{'x ping':>9}"
    print(header)
    print("-" * len(header))
    print(f"{'baseline: ping -> pong round trip':<34}{'':>36}{ms(ping_ms):>12}{'':>12}{1:>8.1f}x")
    for label, samples in (
        (f"stage event, room of {SMALL_ROOM}", results.small),
        (f"stage event, room of {n}", results.big),
    ):
        first, median, last = (
            med(getattr(s, a) for s in samples) for a in ("first", "median", "last")
        )
        ack = med(s.ack for s in samples)
        print(
            f"{label:<34}{ms(first):>12}{ms(median):>12}{ms(last):>12}{ms(ack):>12}"
            f"{last / ping_ms:>8.1f}x"
        )
    print()
    spread = med(s.last - s.first for s in results.big)
    print(
        f"reaching {n} clients: {big_last * 1000:.0f} ms = {big_last / ping_ms:.1f} x one round "
        f"trip, {big_last / small_last:.1f} x a room of {SMALL_ROOM}"
    )
    print(
        f"  {n / big_last:.0f} posts/s end to end (N / last); {(n - 1) / spread:.0f} posts/s "
        f"from the first arrival to the last ({spread * 1000:.0f} ms); "
        f"{med(s.first for s in results.big) * 1000:.0f} ms before the first arrival"
    )
    print("  last arrival per round (ms): " + " ".join(f"{s.last * 1000:.0f}" for s in results.big))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=2000, help="clients in the big room")
    parser.add_argument("--rounds", type=int, default=9, help="samples of each measurement")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds for any one wait")
    parser.add_argument(
        "--count-interval", type=int, default=5, help="SALON_AUDIENCE_COUNT_INTERVAL_S"
    )
    parser.add_argument(
        "--real-joins",
        type=int,
        default=100,
        help="big-room clients that send join_room; the rest are seeded as listeners "
        "(joins cost O(room size) each under moto: all 2,000 take over 20 minutes)",
    )
    parser.add_argument(
        "--mode",
        choices=("both", *MODES),
        default="both",
        help="inline: every post from the acting Lambda (the baseline); queue: a big room "
        "through the fan-out queue; both (default): one stack each, one after the other",
    )
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--log-dir", type=Path, help="keep the stack's logs here (default: a temporary folder)"
    )
    args = parser.parse_args(argv)
    if args.clients < 3 or args.rounds < 1:
        parser.error("--clients must be at least 3 and --rounds at least 1")
    command = " ".join(
        [os.path.relpath(sys.executable, Path.cwd()), "-m", "bench.stage_fanout"]
        + (sys.argv[1:] if argv is None else argv)
    )
    started = time.perf_counter()

    def log(text: str) -> None:
        if not args.quiet:
            print(f"[{time.perf_counter() - started:6.1f} s] {text}", file=sys.stderr, flush=True)

    if args.mode == "both":
        return run_both(args, argv if argv is not None else sys.argv[1:], command)
    total = args.clients + SMALL_ROOM
    try:
        limit = raise_fd_limit(2 * total + 1024)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    log(f"open-files limit {limit}")
    secret = secrets.token_urlsafe(32)
    results = Results(args.clients, args.rounds)
    with tempfile.TemporaryDirectory(prefix="salon-fanout-") as tmp:
        workdir = args.log_dir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        stack = Stack(
            workdir,
            stack_environment(secret, total, args.count_interval, MODES[args.mode]),
            idle_timeout_s=24 * 3600,
        )
        try:
            with phase(results, "stack start", log):
                info = stack.start(STARTUP_S)
            with phase(results, "seed", log):
                members = seed_members(info, secret, total)
            asyncio.run(run(info, members, args, results, stack.stop, log))
        except BenchError as error:
            print(f"error: {error}", file=sys.stderr)
            if stack.process is not None:
                print(f"stack stderr (tail):\n{stack.stderr_tail(3000)}", file=sys.stderr)
            return 1
        except BaseException:
            if stack.process is not None:
                print(f"stack stderr (tail):\n{stack.stderr_tail(3000)}", file=sys.stderr)
            raise
        finally:
            stack.stop()
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(results)))
    report(results, command)
    return 0


def run_both(args: argparse.Namespace, argv: Sequence[str], command: str) -> int:
    """Each path in its own process and stack (the models bind to one stack's endpoint when
    first imported), the baseline first; then both reports and their ratio."""
    found: dict[str, Results] = {}
    with tempfile.TemporaryDirectory(prefix="salon-fanout-both-") as tmp:
        for mode in MODES:
            out = Path(tmp) / f"{mode}.json"
            rest = [a for a in argv if not a.startswith("--mode")]
            code = subprocess.call(
                [
                    sys.executable,
                    "-m",
                    "bench.stage_fanout",
                    *rest,
                    "--mode",
                    mode,
                    "--json",
                    str(out),
                ],
                cwd=ROOT,
            )
            if code != 0:
                return code
            raw = json.loads(out.read_text())
            samples = {k: [Sample(**x) for x in raw[k]] for k in ("small", "big")}
            found[mode] = Results(**{**raw, **samples})
    print()
    print(f"command: {command}")
    med = statistics.median
    header = f"{'path':<10}{'first':>12}{'median':>12}{'last':>12}{'ack':>12}{'x ping':>9}"
    print(header)
    print("-" * len(header))
    for mode, results in found.items():
        big = results.big
        first, median, last, ack = (
            med(getattr(x, a) for x in big) for a in ("first", "median", "last", "ack")
        )
        print(
            f"{mode:<10}{ms(first):>12}{ms(median):>12}{ms(last):>12}{ms(ack):>12}"
            f"{last / med(results.pings):>8.1f}x"
        )
    inline, queued = (med(x.last for x in found[m].big) for m in MODES)
    first_inline, first_queued = (med(x.first for x in found[m].big) for m in MODES)
    print(
        f"queue / inline: last arrival {queued / inline:.2f}x, first arrival "
        f"{first_queued / first_inline:.2f}x ({found['queue'].clients} clients)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
