"""The local stack as a subprocess on free loopback ports, for e2e and browser tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
READY = "SALON_STACK_READY "
# The stacks the tests start run their Janus with these, so a test can ask Janus itself.
JANUS_SECRETS = {
    "SALON_JANUS_API_SECRET": "test-stack-janus-api-secret",
    "SALON_JANUS_ADMIN_SECRET": "test-stack-janus-admin-secret",
}
FREE_PORTS = ("--rest-port", "0", "--ws-port", "0", "--aws-port", "0", "--stripe-port", "0")


@contextmanager
def running_stack(
    log: Path,
    idle_timeout_s: int = 30,
    record_aws_calls: Path | None = None,
    template: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Start `python -m local.stack` wired by the packaged `template` (default: the dev stage's),
    yield what it serves where (and, as `stdout_log`, the file its stdout goes to), stop it by
    its pid."""
    from deploy.wiring import packaged_template

    template = template or packaged_template("dev")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SALON_"))}
    env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    # Every test client comes from 127.0.0.1: the per-address sign-in limit would stop them.
    env["SALON_SIGN_IN_STARTS_PER_IP_PER_HOUR"] = "10000"
    env["SALON_AUDIENCE_COUNT_INTERVAL_S"] = "1"
    if record_aws_calls is not None:
        env["SALON_RECORD_AWS_CALLS"] = str(record_aws_calls)
    env.update({**JANUS_SECRETS, **(extra_env or {})})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.stack",
            *FREE_PORTS,
            "--idle-timeout",
            str(idle_timeout_s),
            "--ready-line",
            "--template",
            str(template),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    try:
        info = wait_ready(process, log)
        info["stdout_log"] = str(drain_stdout(process, log.with_suffix(".stdout.log")))
        assert_ready(info["rest"])
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def drain_stdout(process: subprocess.Popen[str], path: Path) -> Path:
    """Copy the stack's stdout to `path` from now on. Powertools writes its logs and EMF metrics
    to stdout, as on Lambda: a pipe nobody reads fills (64 KiB) and the next request that logs
    or counts blocks the stack forever."""
    assert process.stdout is not None
    stdout = process.stdout

    def copy() -> None:
        with path.open("w") as out:
            for line in stdout:
                out.write(line)
                out.flush()

    threading.Thread(target=copy, name="stack-stdout", daemon=True).start()
    return path


def assert_ready(rest: str) -> None:
    """The stack says it is ready: `GET /_local/ready` answers 200 (503 while starting)."""
    with urllib.request.urlopen(rest + "/_local/ready", timeout=10) as response:
        assert response.status == 200, response.status


def wait_ready(process: subprocess.Popen[str], log: Path) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith(READY):
            info: dict[str, Any] = json.loads(line[len(READY) :])
            return info
        if not line and process.poll() is not None:
            break
    raise RuntimeError(f"the local stack did not start:\n{log.read_text()[-4000:]}")
