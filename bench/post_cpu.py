"""CPU one @connections post costs the Lambda that makes it: the production poster
(`Connections.post_many`, one boto3 client, a pool of threads) against a server in another
process, so that this process's CPU time is the client's own (building, signing and sending the
request, reading the answer, the pool).

The server answers every POST at once, or after `--latency-ms` (API Gateway's own time to
answer, which the pool's threads overlap). With a latency, each pool size in `--workers` is
measured for its CPU per post and its posts per second, in turn, each round: how many threads
keep one vCPU busy without paying for more switching than they overlap.

    .venv/bin/python -m bench.post_cpu [--posts 4000] [--rounds 5]
    .venv/bin/python -m bench.post_cpu --latency-ms 10 --workers 8,16,32
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = """
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LATENCY_S = float(sys.argv[1])

class Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if LATENCY_S:
            time.sleep(LATENCY_S)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
print(server.server_address[1], flush=True)
server.serve_forever()
"""
MESSAGE = {
    "type": "speaker_muted",
    "room_id": "5c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f",
    "at": "2026-11-26T21:09:00.000000+00:00",
    "user_id": "1c7a2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
    "by_id": "0b6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d",
    "version": 12,
}


@dataclass
class Round:
    cpu_per_post: float  # seconds of this process's CPU
    wall_s: float


def measure(
    posts: int, rounds: int, workers: Sequence[int | None], latency_ms: float = 0.0
) -> dict[int | None, list[Round]]:
    """Per pool size (None: one post after another), one Round per round after a warm-up
    round, the sizes taking turns within each round so that machine noise hits them all."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(latency_ms / 1000)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        from chalicelib.adapters.connections import Connections, Delivery

        url = f"http://127.0.0.1:{port}/api"
        posters = {
            w: Connections(url, "us-east-1", **({"max_workers": w} if w else {})) for w in workers
        }
        ids = [f"L0SM9cOFvHc{i:05d}=" for i in range(posts)]
        results: dict[int | None, list[Round]] = {w: [] for w in workers}
        for r in range(rounds + 1):
            for w, poster in posters.items():
                started, clock = time.process_time(), time.perf_counter()
                if w:
                    assert poster.post_many(ids, MESSAGE) == Delivery()
                else:
                    assert all(poster.post(c, MESSAGE) for c in ids)
                spent, wall = time.process_time() - started, time.perf_counter() - clock
                if r:  # the first round warms the clients, their pools and connections
                    results[w].append(Round(spent / posts, wall))
        return results
    finally:
        server.terminate()
        server.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the server's answer time")
    parser.add_argument("--workers", default="32", help="pool sizes to compare, e.g. 8,16,32")
    args = parser.parse_args(argv)
    sizes: list[int | None] = [int(w) for w in args.workers.split(",")]
    if not args.latency_ms:
        sizes.append(None)  # one at a time: the client's CPU with no pool at all
    results = measure(args.posts, args.rounds, sizes, args.latency_ms)
    print(
        f"{args.posts} posts a round, {args.rounds} rounds, the server answering after "
        f"{args.latency_ms:g} ms; medians (each round's in brackets)"
    )
    for w, rounds in results.items():
        label = f"{w}-thread pool" if w else "one at a time"
        cpu = [r.cpu_per_post * 1000 for r in rounds]
        rate = [args.posts / r.wall_s for r in rounds]
        print(
            f"  {label:15} CPU per post {statistics.median(cpu):.3f} ms "
            f"[{' '.join(f'{c:.3f}' for c in cpu)}]; "
            f"{statistics.median(rate):,.0f} posts/s [{' '.join(f'{x:,.0f}' for x in rate)}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
