"""The local stack, started once for the e2e tests on free loopback ports, stopped by its pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.http import HttpClient

ROOT = Path(__file__).resolve().parents[2]
READY = "SALON_STACK_READY "


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    log = tmp_path_factory.mktemp("stack") / "stack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SALON_"))}
    env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    # Every e2e client comes from 127.0.0.1: the per-address sign-in limit would stop them.
    env["SALON_SIGN_IN_STARTS_PER_IP_PER_HOUR"] = "10000"
    env["SALON_AUDIENCE_COUNT_INTERVAL_S"] = "1"
    process = subprocess.Popen(
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
            "--stripe-port",
            "0",
            "--idle-timeout",
            "30",
            "--ready-line",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    try:
        info = _wait_ready(process, log)
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait_ready(process: subprocess.Popen[str], log: Path) -> dict[str, Any]:
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


@pytest.fixture(scope="session")
def api(stack: dict[str, Any]) -> HttpClient:
    return HttpClient(stack["rest"])
