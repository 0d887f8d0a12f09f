"""The local stack serves nobody until it is ready: a sign-in that comes before the founder is
seeded is told to wait, instead of putting the founder's number on the waitlist for good."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from local.stack import FOUNDER_PHONE, LOCALHOST, free_port
from tests.support.held_stack import SEEDING
from tests.support.stack import ROOT, wait_ready


def call(base: str, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_nothing_is_served_before_the_founder_is_seeded(tmp_path: Path) -> None:
    rest_port = free_port()
    base = f"http://{LOCALHOST}:{rest_port}"
    log = tmp_path / "stack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SALON_"))}
    env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    ports = (
        "--rest-port",
        str(rest_port),
        "--ws-port",
        "0",
        "--aws-port",
        "0",
        "--stripe-port",
        "0",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.held_stack", *ports, "--ready-line"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = process.stdout.readline()
        while line and not line.startswith(SEEDING):
            line = process.stdout.readline()
        assert line.startswith(SEEDING), log.read_text()[-4000:]

        # The REST server is up, but the founder does not exist yet: every request must wait.
        for method, path, payload in (
            ("GET", "/health", None),
            ("GET", "/_local/ready", None),
            ("POST", "/auth/sign-in", {"phone": FOUNDER_PHONE}),
            ("POST", "/auth/verify", {"phone": FOUNDER_PHONE, "code": "000000"}),
        ):
            assert call(base, method, path, payload)[0] == 503, (method, path)
        status, body = call(base, "GET", "/health")
        assert body["ready"] is False and "starting" in body["message"]

        process.stdin.write("go\n")
        process.stdin.flush()
        wait_ready(process, log)

        assert call(base, "GET", "/_local/ready") == (200, {"ready": True})
        assert call(base, "GET", "/health")[0] == 200
        assert call(base, "POST", "/auth/sign-in", {"phone": FOUNDER_PHONE})[0] == 202
        outbox = call(base, "GET", "/_local/sms/" + FOUNDER_PHONE.lstrip("+"))[1]
        status, answer = call(
            base, "POST", "/auth/verify", {"phone": FOUNDER_PHONE, "code": outbox["latest_code"]}
        )
        assert status == 200, answer
        assert answer["user"]["username"] == "founder", answer  # a member, not waitlisted
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
