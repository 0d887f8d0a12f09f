"""CPU one @connections post costs the Lambda that makes it: the production poster
(`Connections.post_many`, one boto3 client, 32 threads) against a server in another process that
answers every POST at once, so that this process's CPU time is the client's own (building,
signing and sending the request, reading the answer, the pool).

    .venv/bin/python -m bench.post_cpu [--posts 4000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
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


def measure(posts: int, rounds: int, parallel: bool = True) -> list[float]:
    """CPU seconds per post of this process, one figure per round (after a warm-up round):
    through the pool as the app posts, or one after another (`parallel=False`)."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        from chalicelib.adapters.connections import Connections, Delivery

        poster = Connections(f"http://127.0.0.1:{port}/api", "us-east-1")
        ids = [f"L0SM9cOFvHc{i:05d}=" for i in range(posts)]
        per_post = []
        for r in range(rounds + 1):
            started = time.process_time()
            if parallel:
                assert poster.post_many(ids, MESSAGE) == Delivery()
            else:
                assert all(poster.post(c, MESSAGE) for c in ids)
            spent = time.process_time() - started
            if r:  # the first round warms the client, its pool and its connections
                per_post.append(spent / posts)
        return per_post
    finally:
        server.terminate()
        server.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--posts", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    for label, parallel in (("32-thread pool (as posted)", True), ("one at a time", False)):
        per_post = measure(args.posts, args.rounds, parallel)
        print(
            f"CPU per post, {label}: median {statistics.median(per_post) * 1000:.3f} ms over "
            f"{args.rounds} rounds of {args.posts} "
            f"(each: {' '.join(f'{p * 1000:.3f}' for p in per_post)} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
