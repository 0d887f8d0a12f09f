"""One speaker to N real WebRTC listeners through Janus on loopback: what each listener costs.

Janus (`local.janus.JanusProcess`, Debian's 1.1.2, VideoRoom over HTTP) runs on 127.0.0.1. Every
signaling call goes through Salon's own adapter, `chalicelib.adapters.media.janus.JanusVideoRoom`
(open_room, publish, subscribe, start): the bench measures Salon's real code path, not a copy.
The speaker is an aiortc publisher sending a 400 Hz tone as Opus (20 ms frames of 960 samples at
48 kHz, 50 packets a second, `--speaker-kbps` 32 as a browser's voice); the listeners are aiortc
subscribers, spread over `--workers` processes (asyncio in each) so that both cores can play
them. Each listener does what a client does for Janus (ICE, DTLS, SRTP, RTCP receiver reports,
the jitter buffer) but does not decode the Opus unless `--decode`: decoding is the listener's
own device's cost, and leaving it out lets this machine play more listeners.

The sweep adds listeners up to each N of `--listeners` (0 first: the baseline, speaker only),
waits `--warmup` seconds, then measures over `--window` seconds:
- Janus's CPU (utime+stime from /proc/<pid>/stat, as % of one core) and RSS (VmRSS);
- the bench's CPU and RSS (the listener workers; the speaker's process apart): what the
  listeners cost the bench, not Janus;
- per listener, from aiortc's getStats() (inbound-rtp): packets received and lost in the window,
  and the interarrival jitter (RFC 3550, computed by the listener from arrival times); received
  is given against the nominal 50 packets a second and against what the speaker really sent;
- each worker's event-loop lag (how late a 20 ms timer fires): a late loop makes jitter that is
  the bench's, not Janus's; and the whole machine's busy CPU (/proc/stat), other work included.

A step is degraded when p95 loss > 1 %, p95 jitter > 30 ms, or the worst 5 % of listeners get
< 95 % of the 50 packets a second. Whose fault: when every core was > 95 % busy, the machine's
("bench saturated the machine" when Janus, the listeners and the speaker used ≥ 90 % of it,
"machine busy" when other work did); else the bench's when its workers were saturated (loop
lag p95 > 20 ms or a worker above 90 % of a core); else Janus's. "speaker late" is added when
the speaker's own pace was off by > 5 % (its process starved; then it bursts to catch up).

The sweep stops after the first step whose forwarding broke (a listener dropped, or p95 loss
> 1 %; a step that is only late goes on); `--keep-going` runs it all. Janus's cost per listener
is the slope of its CPU and RSS over the steps whose forwarding was intact. A markdown table
goes to stdout and the numbers to build/bench/sfu_fanout.json.

Only loopback is used: aioice's host-address discovery is replaced by 127.0.0.1, no STUN or TURN
server is configured, Janus gathers on `lo` only, and every SDP either side produces is checked
to carry 127.0.0.1 candidates only (the bench stops otherwise).

Diagnosis: the workers log to build/bench/sfu_worker<i>.log why a listener's connection ended
(aioice's "Consent to send expired": no STUN answer for 6 checks in a row, ~30 s);
SFU_BENCH_LENIENT_CONSENT=1 keeps listeners that would have given up (to see whether media still
flows); SFU_BENCH_PROFILE=1 writes a cProfile of each worker beside the log.

    make bench-sfu
    build/tools/bench/bin/python -m bench.sfu_fanout --listeners 0,25,50,100 [--workers 2]
        [--warmup 5] [--window 10] [--decode] [--ramp-pause 0] [--keep-going]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import logging
import math
import multiprocessing
import os
import re
import resource
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from chalicelib.adapters.media import Limits  # noqa: E402
from chalicelib.adapters.media.janus import JanusVideoRoom  # noqa: E402
from local.janus import JanusProcess  # noqa: E402

LOOPBACK = "127.0.0.1"
ROOM = "room-bench"
SPEAKER = "speaker-1"
SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
PACKETS_PER_S = SAMPLE_RATE / FRAME_SAMPLES
TONE_HZ = 400  # a whole number of cycles per frame: the frame repeats seamlessly
LOSS_LIMIT = 0.01
JITTER_LIMIT_MS = 30.0
RECEIVED_LIMIT = 0.95
LAG_LIMIT_MS = 20.0
WORKER_CPU_LIMIT = 90.0
MACHINE_BUSY_LIMIT = 95.0  # % of every core, whoever uses them
SENT_TOLERANCE = 0.05  # the speaker's own pace: off by more, its process was starved
WIRE_OVERHEAD_BYTES = 12 + 10 + 28  # RTP header, SRTP tag (80-bit), UDP + IPv4
SIGNALING_IN_FLIGHT = 8
CLK_TCK = os.sysconf("SC_CLK_TCK")
OUT = ROOT / "build" / "bench" / "sfu_fanout.json"
CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+", re.MULTILINE)


# --- loopback only ------------------------------------------------------------------------


def loopback_only() -> None:
    """aioice gathers a host candidate on every interface: give it loopback alone."""
    import aioice.ice

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [LOOPBACK]

    aioice.ice.get_host_addresses = host_addresses


def light_listeners() -> None:
    """Listeners that receive, decrypt, count and report RTP but do not decode the Opus.

    Janus sees exactly the same client (ICE, DTLS, SRTP, RTCP receiver reports); only the
    client-side decoding, a cost of the listener's own device, is left out of the bench's
    budget so that two cores can play more listeners. `--decode` keeps it. The decoder thread
    is stopped as soon as the receiver starts: a thread per listener, even an idle one, makes
    every GIL hand-over dearer (cProfile showed 100 µs per SRTP call with 50 of them).
    """
    import aiortc.rtcrtpreceiver

    receiver = aiortc.rtcrtpreceiver.RTCRtpReceiver
    original = receiver.receive

    async def receive(self: Any, parameters: Any) -> None:
        await original(self, parameters)
        thread = self._RTCRtpReceiver__decoder_thread
        if thread is not None:
            self._RTCRtpReceiver__decoder_queue.put(None)
            thread.join()
            self._RTCRtpReceiver__decoder_thread = None  # nothing is queued for decoding

    receiver.receive = receive


def speaker_bitrate(bps: int) -> None:
    """aiortc encodes Opus at 96 kbit/s stereo; a browser's voice default is about 32 kbit/s."""
    import aiortc.codecs.opus

    original = aiortc.codecs.opus.OpusEncoder.__init__

    def init(self: Any) -> None:
        original(self)
        self.codec.bit_rate = bps

    aiortc.codecs.opus.OpusEncoder.__init__ = init


def check_loopback(sdp: str, who: str) -> None:
    addresses = set(CANDIDATE.findall(sdp))
    if not addresses or addresses != {LOOPBACK}:
        raise SystemExit(f"{who}: SDP candidates {sorted(addresses)} are not loopback only")


def peer() -> Any:
    from aiortc import RTCConfiguration, RTCPeerConnection

    return RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN: loopback only


def media_plane(url: str, admin_url: str, api_secret: str, admin_secret: str) -> JanusVideoRoom:
    return JanusVideoRoom(
        url,
        admin_url,
        lambda: api_secret,
        lambda: admin_secret,
        Limits(max_publishers=12, max_listeners=10_000),
    )


# --- /proc ----------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    return proc_cpu_s_path(Path(f"/proc/{pid}/stat"))  # utime + stime, all threads


def thread_cpu_s(pid: int) -> dict[int, tuple[str, float]]:
    """Each thread's (name, CPU seconds): is one thread, not the process, the bottleneck?"""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            threads[int(task.name)] = (name, proc_cpu_s_path(task / "stat"))
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return threads


def proc_cpu_s_path(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine: what else ran beside the bench."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the speaker ----------------------------------------------------------------------------


def tone_track() -> Any:
    import av
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    samples = [
        int(8000 * math.sin(2 * math.pi * TONE_HZ * i / SAMPLE_RATE)) for i in range(FRAME_SAMPLES)
    ]
    pcm = b"".join(s.to_bytes(2, "little", signed=True) for s in samples)

    class Tone(MediaStreamTrack):  # type: ignore[misc]
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._start = 0.0
            self._pts = -1

        async def recv(self) -> Any:
            if self.readyState != "live":
                raise MediaStreamError
            if self._pts < 0:
                self._start, self._pts = time.time(), 0
            else:
                self._pts += FRAME_SAMPLES
                await asyncio.sleep(self._start + self._pts / SAMPLE_RATE - time.time())
            frame = av.AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
            frame.planes[0].update(pcm)
            frame.pts = self._pts
            frame.sample_rate = SAMPLE_RATE
            frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
            return frame

    return Tone()


async def connected(pc: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pc.connectionState == "connected":
            return True
        if pc.connectionState in ("failed", "closed"):
            return False
        await asyncio.sleep(0.05)
    return False


async def start_speaker(media: JanusVideoRoom, ref: str, pool: ThreadPoolExecutor) -> Any:
    from aiortc import RTCSessionDescription

    loop = asyncio.get_running_loop()
    pc = peer()
    pc.addTrack(tone_track())
    await pc.setLocalDescription(await pc.createOffer())
    check_loopback(pc.localDescription.sdp, "speaker offer")
    answer = await loop.run_in_executor(
        pool, media.publish, ref, SPEAKER, "conn-speaker", pc.localDescription.sdp
    )
    check_loopback(answer, "janus answer")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    if not await connected(pc, 15):
        raise SystemExit("the speaker's PeerConnection did not connect to Janus")
    await asyncio.sleep(1.0)  # the feed is forwarded once Janus has seen the publisher's media
    return pc


async def sent_packets(pc: Any) -> tuple[int, int]:
    for stat in (await pc.getStats()).values():
        if stat.type == "outbound-rtp":
            return int(stat.packetsSent), int(stat.bytesSent)
    return 0, 0


# --- the listeners (one worker process each share) ------------------------------------------


@dataclass
class Listener:
    pc: Any
    frames: int = 0
    task: Any = None


async def _drain(track: Any, listener: Listener) -> None:
    from aiortc.mediastreams import MediaStreamError

    try:
        while True:
            await track.recv()
            listener.frames += 1
    except MediaStreamError:
        pass


async def _lag_monitor(lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        planned = loop.time() + 0.02
        await asyncio.sleep(0.02)
        lags.append((loop.time() - planned) * 1000)


async def _listen(
    media: JanusVideoRoom,
    ref: str,
    user_id: str,
    pool: ThreadPoolExecutor,
    listeners: list[Listener],
) -> str | None:
    from aiortc import RTCSessionDescription

    loop = asyncio.get_running_loop()
    connection_id = f"conn-{user_id}"
    try:
        handle, offer = await loop.run_in_executor(
            pool, media.subscribe, ref, user_id, connection_id, SPEAKER
        )
        check_loopback(offer, "janus offer")
        pc = peer()
        listener = Listener(pc)

        @pc.on("track")  # type: ignore[misc]
        def on_track(track: Any) -> None:
            listener.task = asyncio.ensure_future(_drain(track, listener))

        @pc.on("connectionstatechange")  # type: ignore[misc]
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                logging.warning(
                    "%s %s (ice %s)", user_id, pc.connectionState, pc.iceConnectionState
                )

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        check_loopback(pc.localDescription.sdp, "listener answer")
        await loop.run_in_executor(
            pool, media.start, ref, user_id, connection_id, handle, pc.localDescription.sdp
        )
        listeners.append(listener)
        if not await connected(pc, 20):
            return "not connected"
        return None
    except Exception as exc:  # noqa: BLE001 (reported per listener, counted by the parent)
        return type(exc).__name__


async def _stats(listeners: list[Listener], lags: list[float]) -> dict[str, Any]:
    rows = []
    for listener in listeners:
        row = None
        for stat in (await listener.pc.getStats()).values():
            if stat.type == "inbound-rtp":
                row = [int(stat.packetsReceived), int(stat.packetsLost), int(stat.jitter)]
        rows.append(row)
    ordered = sorted(lags) or [0.0]
    lags.clear()
    return {
        "cpu_s": self_cpu_s(),
        "rss_mb": proc_rss_mb(os.getpid()),
        "listeners": rows,
        "connected": sum(1 for li in listeners if li.pc.connectionState == "connected"),
        "states": dict(Counter(li.pc.connectionState for li in listeners)),
        "lag_p50_ms": ordered[len(ordered) // 2],
        "lag_p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        "lag_max_ms": ordered[-1],
    }


async def _worker_main(
    conn: Connection, janus: dict[str, str], index: int, decode: bool, ramp_pause_s: float
) -> None:
    loopback_only()
    if not decode:
        light_listeners()
    # Why a listener's connection ends (ICE consent, DTLS) goes to a log of its own.
    OUT.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=OUT.with_name(f"sfu_worker{index}.log"),
        filemode="w",
        level=logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("aioice.ice").setLevel(logging.INFO)
    if os.environ.get("SFU_BENCH_LENIENT_CONSENT"):  # diagnosis: never give up on consent
        import aioice.ice

        aioice.ice.CONSENT_FAILURES = 10**6
    media = media_plane(**janus)
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(SIGNALING_IN_FLIGHT)
    commands = ThreadPoolExecutor(1)
    listeners: list[Listener] = []
    lags: list[float] = []
    monitor = asyncio.ensure_future(_lag_monitor(lags))
    made = 0
    while True:
        command, argument = await loop.run_in_executor(commands, conn.recv)
        if command == "add":
            errors: dict[str, int] = {}
            for start in range(0, int(argument), SIGNALING_IN_FLIGHT):
                batch = range(start, min(int(argument), start + SIGNALING_IN_FLIGHT))
                outcomes = await asyncio.gather(
                    *(
                        _listen(media, ROOM, f"user-{index}-{made + i}", pool, listeners)
                        for i in batch
                    )
                )
                for outcome in outcomes:
                    if outcome:
                        errors[outcome] = errors.get(outcome, 0) + 1
                await asyncio.sleep(ramp_pause_s)
            made += int(argument)
            conn.send({"errors": errors})
        elif command == "stats":
            conn.send(await _stats(listeners, lags))
        else:
            monitor.cancel()
            await asyncio.gather(*(li.pc.close() for li in listeners), return_exceptions=True)
            conn.send("stopped")
            return


def worker(
    conn: Connection, janus: dict[str, str], index: int, decode: bool, ramp_pause_s: float
) -> None:
    if os.environ.get("SFU_BENCH_PROFILE"):  # where a listener's CPU goes: cProfile per worker
        import cProfile

        cProfile.runctx(
            "asyncio.run(_worker_main(conn, janus, index, decode, ramp_pause_s))",
            globals(),
            locals(),
            str(OUT.with_name(f"sfu_worker{index}.prof")),
        )
        return
    asyncio.run(_worker_main(conn, janus, index, decode, ramp_pause_s))


# --- the sweep ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Step:
    listeners: int
    connected: int
    janus_cpu_pct: float
    janus_threads: int
    janus_busiest_thread_pct: float
    janus_busiest_thread: str
    janus_rss_mb: float
    bench_cpu_pct: float
    bench_rss_mb: float
    speaker_cpu_pct: float
    machine_busy_pct: float
    worker_cpu_max_pct: float
    lag_p95_ms: float
    lag_max_ms: float
    loss_median_pct: float
    loss_p95_pct: float
    jitter_median_ms: float
    jitter_p95_ms: float
    received_median_pct: float
    received_p5_pct: float
    of_sent_median_pct: float
    of_sent_p5_pct: float
    sent_pps: float
    sent_kbps: float
    degraded: bool
    cause: str
    states: dict[str, int] = field(default_factory=dict)
    janus_cpu_per_listener_pct: float | None = None
    janus_kb_per_listener: float | None = None
    bench_cpu_per_listener_pct: float | None = None
    bench_kb_per_listener: float | None = None


class Sweep:
    def __init__(self, janus: JanusProcess, workers: list[tuple[Any, Connection]]) -> None:
        self.janus = janus
        self.workers = workers
        self.pids = [process.pid for process, _ in workers]

    def ask(self, command: str, argument: Any = None) -> list[Any]:
        for _, conn in self.workers:
            conn.send((command, argument))
        return [conn.recv() for _, conn in self.workers]

    def snapshot(self) -> dict[str, Any]:
        pid = self.janus.pid
        assert pid is not None
        return {
            "t": time.monotonic(),
            "janus_cpu_s": proc_cpu_s(pid),
            "janus_threads": thread_cpu_s(pid),
            "speaker_cpu_s": self_cpu_s(),
            "machine": machine_busy(),
            "workers": self.ask("stats"),
        }


async def measure(
    sweep: Sweep, speaker: Any, n: int, current: int, args: argparse.Namespace
) -> tuple[Step, int, dict[str, int]]:
    loop = asyncio.get_running_loop()
    errors: dict[str, int] = {}
    if n > current:
        shares = [(n - current) // len(sweep.workers)] * len(sweep.workers)
        for i in range((n - current) % len(sweep.workers)):
            shares[i] += 1
        for (_, conn), share in zip(sweep.workers, shares, strict=True):
            conn.send(("add", share))
        for _, conn in sweep.workers:
            reply = await loop.run_in_executor(None, conn.recv)
            for name, count in reply["errors"].items():
                errors[name] = errors.get(name, 0) + count
    await asyncio.sleep(args.warmup)
    # The speaker's count is read just before each snapshot asks the workers, so both windows
    # are as long (reading 200 listeners' stats takes a while under load).
    sent_a = await sent_packets(speaker)
    a = await loop.run_in_executor(None, sweep.snapshot)
    await asyncio.sleep(args.window)
    sent_b = await sent_packets(speaker)
    b = await loop.run_in_executor(None, sweep.snapshot)
    elapsed = b["t"] - a["t"]
    janus_pid = sweep.janus.pid
    assert janus_pid is not None

    losses, jitters, received, forwarded = [], [], [], []
    sent = max(1, sent_b[0] - sent_a[0])
    for wa, wb in zip(a["workers"], b["workers"], strict=True):
        before = wa["listeners"] + [None] * (len(wb["listeners"]) - len(wa["listeners"]))
        for ra, rb in zip(before, wb["listeners"], strict=True):
            got = (rb[0] - ra[0]) if (ra and rb) else 0
            lost = (rb[1] - ra[1]) if (ra and rb) else 0
            expected = got + max(lost, 0)
            losses.append(max(lost, 0) / expected if expected else 1.0)
            jitters.append(rb[2] / SAMPLE_RATE * 1000 if rb else float("inf"))
            received.append(got / (PACKETS_PER_S * elapsed))
            forwarded.append(got / sent)
    busiest = max(
        (
            ((cpu - a["janus_threads"].get(tid, (name, 0.0))[1]) / elapsed * 100, name)
            for tid, (name, cpu) in b["janus_threads"].items()
        ),
        default=(0.0, ""),
    )
    worker_cpu = [
        (wb["cpu_s"] - wa["cpu_s"]) / elapsed * 100
        for wa, wb in zip(a["workers"], b["workers"], strict=True)
    ]
    busy = (b["machine"][0] - a["machine"][0]) / max(1, b["machine"][1] - a["machine"][1])
    lag_p95 = max(w["lag_p95_ms"] for w in b["workers"])
    step = Step(
        listeners=n,
        connected=sum(w["connected"] for w in b["workers"]),
        janus_cpu_pct=(b["janus_cpu_s"] - a["janus_cpu_s"]) / elapsed * 100,
        janus_threads=len(b["janus_threads"]),
        janus_busiest_thread_pct=busiest[0],
        janus_busiest_thread=busiest[1],
        janus_rss_mb=proc_rss_mb(janus_pid),
        bench_cpu_pct=sum(worker_cpu),
        bench_rss_mb=sum(w["rss_mb"] for w in b["workers"]),
        speaker_cpu_pct=(b["speaker_cpu_s"] - a["speaker_cpu_s"]) / elapsed * 100,
        machine_busy_pct=busy * 100 * (os.cpu_count() or 1),
        worker_cpu_max_pct=max(worker_cpu),
        lag_p95_ms=lag_p95,
        lag_max_ms=max(w["lag_max_ms"] for w in b["workers"]),
        loss_median_pct=percentile(losses, 0.5) * 100,
        loss_p95_pct=percentile(losses, 0.95) * 100,
        jitter_median_ms=percentile(jitters, 0.5),
        jitter_p95_ms=percentile(jitters, 0.95),
        received_median_pct=percentile(received, 0.5) * 100,
        received_p5_pct=percentile(received, 0.05) * 100,
        of_sent_median_pct=percentile(forwarded, 0.5) * 100,
        of_sent_p5_pct=percentile(forwarded, 0.05) * 100,
        sent_pps=(sent_b[0] - sent_a[0]) / elapsed,
        sent_kbps=(sent_b[1] - sent_a[1]) * 8 / elapsed / 1000,
        degraded=False,
        cause="",
        states=dict(sum((Counter(w["states"]) for w in b["workers"]), Counter())),
    )
    if n:
        reasons = []
        if step.loss_p95_pct > LOSS_LIMIT * 100:
            reasons.append("loss")
        if step.jitter_p95_ms > JITTER_LIMIT_MS:
            reasons.append("jitter")
        if step.received_p5_pct < RECEIVED_LIMIT * 100:
            reasons.append("received")
        step.degraded = bool(reasons)
        if step.degraded:
            step.cause = f"{blame(step)}: {'+'.join(reasons)}"
    return step, n, errors


def blame(step: Step) -> str:
    """Whose fault a degraded step most likely is (the rules are in the module docstring)."""
    ours = step.janus_cpu_pct + step.bench_cpu_pct + step.speaker_cpu_pct
    late = not (1 - SENT_TOLERANCE <= step.sent_pps / PACKETS_PER_S <= 1 + SENT_TOLERANCE)
    if step.machine_busy_pct > MACHINE_BUSY_LIMIT * (os.cpu_count() or 1):
        who = (
            "bench saturated the machine" if ours > 0.9 * step.machine_busy_pct else "machine busy"
        )
    elif step.lag_p95_ms > LAG_LIMIT_MS or step.worker_cpu_max_pct > WORKER_CPU_LIMIT:
        who = "bench saturated"
    else:
        who = "janus"
    return who + (", speaker late" if late else "")


def broken(step: Step) -> bool:
    """Forwarding no longer intact: listeners dropped or lost packets (not merely late ones)."""
    return step.connected < step.listeners or step.loss_p95_pct > LOSS_LIMIT * 100


def per_listener(steps: list[Step]) -> None:
    base = steps[0]
    for step in steps[1:]:
        n = step.listeners
        step.janus_cpu_per_listener_pct = (step.janus_cpu_pct - base.janus_cpu_pct) / n
        step.janus_kb_per_listener = (step.janus_rss_mb - base.janus_rss_mb) * 1024 / n
        step.bench_cpu_per_listener_pct = (step.bench_cpu_pct - base.bench_cpu_pct) / n
        step.bench_kb_per_listener = (step.bench_rss_mb - base.bench_rss_mb) * 1024 / n


def slope(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares y = a + b x: (a, b)."""
    if len({x for x, _ in points}) < 2:
        return None
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - b * mx, b


def table(steps: list[Step]) -> str:
    def f(value: float | None, digits: int = 1) -> str:
        return "" if value is None else f"{value:,.{digits}f}"

    lines = [
        "| N | connected | Janus CPU | Janus RSS | Janus CPU / listener | Janus mem / listener "
        "| bench CPU | bench CPU / listener | bench mem / listener | loop lag p95 "
        "| loss median / p95 | jitter median / p95 | received median / p5 "
        "| of sent median / p5 | verdict |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | --- |",
    ]
    for s in steps:
        verdict = s.cause if s.degraded else ("baseline" if not s.listeners else "ok")
        lines.append(
            f"| {s.listeners} | {s.connected} | {f(s.janus_cpu_pct)} % | {f(s.janus_rss_mb)} MB "
            f"| {f(s.janus_cpu_per_listener_pct, 3)} % | {f(s.janus_kb_per_listener, 0)} KB "
            f"| {f(s.bench_cpu_pct)} % | {f(s.bench_cpu_per_listener_pct, 2)} % "
            f"| {f(s.bench_kb_per_listener, 0)} KB | {f(s.lag_p95_ms)} ms "
            f"| {f(s.loss_median_pct, 2)} / {f(s.loss_p95_pct, 2)} % "
            f"| {f(s.jitter_median_ms)} / {f(s.jitter_p95_ms)} ms "
            f"| {f(s.received_median_pct)} / {f(s.received_p5_pct)} % "
            f"| {f(s.of_sent_median_pct)} / {f(s.of_sent_p5_pct)} % | {verdict} |"
        )
    return "\n".join(lines)


def footprint(steps: list[Step], room: int, headroom: float) -> dict[str, Any]:
    # Janus's cost is fitted wherever its forwarding was intact (every listener connected, p95
    # loss ≤ 1 %), even if the step degraded because the speaker or the bench was starved.
    healthy = [s for s in steps if not broken(s)]
    fit = slope([(s.listeners, s.janus_cpu_pct) for s in healthy])
    thread_fit = slope([(s.listeners, s.janus_busiest_thread_pct) for s in healthy])
    mem = slope([(s.listeners, s.janus_rss_mb) for s in healthy])
    result: dict[str, Any] = {
        "room": room,
        "headroom": headroom,
        "fitted_on": [s.listeners for s in healthy],
    }
    if fit and fit[1] > 0:
        per_core = 100 * headroom / fit[1]
        result.update(
            janus_idle_cpu_pct=fit[0],
            janus_cpu_pct_per_listener=fit[1],
            listeners_per_core_at_headroom=per_core,
            cores_for_room=room / per_core,
        )
    if thread_fit and thread_fit[1] > 0:
        # Janus relays a publisher's packets in that publisher's own thread (a copy per
        # subscriber); SRTP and sending happen in each subscriber's thread. The relaying thread
        # is the one that cannot spread over cores: one room's ceiling per speaker.
        result.update(
            busiest_thread_pct_per_listener=thread_fit[1],
            listeners_per_speaker_thread_at_headroom=100 * headroom / thread_fit[1],
        )
    if mem:
        result.update(janus_mb_per_listener=mem[1], janus_mb_for_room=mem[0] + mem[1] * room)
    sent = statistics.median(s.sent_kbps for s in steps)
    pps = statistics.median(s.sent_pps for s in steps)
    # aiortc counts payload bytes only; on the wire add RTP, SRTP's tag, UDP and IPv4.
    wire_kbps = sent + pps * WIRE_OVERHEAD_BYTES * 8 / 1000
    result.update(
        speaker_kbps_payload=sent,
        listener_kbps_wire=wire_kbps,
        speaker_pps=pps,
        egress_mbps_for_room=wire_kbps * room / 1000,
        ivs_stages_for_room=math.ceil(room / 10_000),
    )
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loopback_only()
    speaker_bitrate(args.speaker_kbps * 1000)
    sizes = sorted({int(x) for x in args.listeners.split(",")} | {0})
    with JanusProcess() as janus:
        secrets_ = {
            "url": janus.url,
            "admin_url": janus.admin_url,
            "api_secret": janus.config.api_secret,
            "admin_secret": janus.config.admin_secret,
        }
        media = media_plane(**secrets_)
        pool = ThreadPoolExecutor(2)
        ref = media.open_room(ROOM)
        assert ref == ROOM
        context = multiprocessing.get_context("spawn")
        workers: list[tuple[Any, Connection]] = []
        try:
            for index in range(args.workers):
                parent, child = context.Pipe()
                process = context.Process(
                    target=worker,
                    args=(child, secrets_, index, args.decode, args.ramp_pause),
                    daemon=True,
                )
                process.start()
                workers.append((process, parent))
            speaker = await start_speaker(media, ref, pool)
            sweep = Sweep(janus, workers)
            steps: list[Step] = []
            janus_log: list[str] = []
            current = 0
            for n in sizes:
                step, current, errors = await measure(sweep, speaker, n, current, args)
                steps.append(step)
                per_listener(steps)
                print(
                    f"N={n}: connected {step.connected}, janus {step.janus_cpu_pct:.1f} % "
                    f"{step.janus_rss_mb:.1f} MB, busiest thread {step.janus_busiest_thread} "
                    f"{step.janus_busiest_thread_pct:.1f} % of {step.janus_threads}, "
                    f"bench {step.bench_cpu_pct:.1f} %, "
                    f"lag p95 {step.lag_p95_ms:.1f} max {step.lag_max_ms:.0f} ms, "
                    f"loss p95 {step.loss_p95_pct:.2f} %, "
                    f"jitter p95 {step.jitter_p95_ms:.1f} ms, received p5 "
                    f"{step.received_p5_pct:.1f} % (of sent {step.of_sent_p5_pct:.1f} %), "
                    f"machine {step.machine_busy_pct:.0f} % "
                    f"{step.cause}{' errors ' + str(errors) if errors else ''}",
                    flush=True,
                )
                if broken(step):
                    janus_log.append(f"N={n}: {step.states}\n{janus.log_tail(20)}")
                    if not args.keep_going:
                        break
            await speaker.close()
        finally:
            for process, conn in workers:
                try:
                    conn.send(("stop", None))
                    if conn.poll(20):
                        conn.recv()
                except (BrokenPipeError, EOFError, OSError):
                    pass
                process.join(10)
                if process.is_alive():
                    process.kill()  # our own worker, by its own handle
                    process.join()
    return {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "janus": "Debian janus 1.1.2, VideoRoom over HTTP, loopback",
        "workers": args.workers,
        "decode": args.decode,
        "speaker_kbps_target": args.speaker_kbps,
        "warmup_s": args.warmup,
        "window_s": args.window,
        "cpus": os.cpu_count(),
        "loadavg_before": args.loadavg,
        "steps": [asdict(s) for s in steps],
        "janus_log_when_broken": janus_log,
        "footprint": footprint(steps, args.room, args.headroom),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listeners", default="0,25,50,100,150,200,300")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--keep-going", action="store_true")
    parser.add_argument("--decode", action="store_true", help="listeners decode the Opus too")
    parser.add_argument("--speaker-kbps", type=int, default=32)
    parser.add_argument(
        "--ramp-pause", type=float, default=0.0, help="seconds between batches of 8 joins"
    )
    parser.add_argument("--room", type=int, default=8000)
    parser.add_argument("--headroom", type=float, default=0.6, help="share of a core to plan")
    args = parser.parse_args()
    args.loadavg = os.getloadavg()
    result = asyncio.run(run(args))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    steps = [Step(**s) for s in result["steps"]]
    print()
    print(table(steps))
    print()
    print(json.dumps(result["footprint"], indent=2))
    print(f"\nload average before: {args.loadavg}; written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
