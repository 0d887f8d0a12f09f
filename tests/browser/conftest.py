"""Real browsers against the local stack: Debian's Chromium driven by Playwright, headless.

These tests run only inside a network namespace whose one interface is loopback (`make test`
runs them as `unshare --net sh -c 'ip link set lo up && pytest tests/browser'`): the stack,
Chromium and its WebRTC traffic then cannot reach anything but 127.0.0.1. Anywhere else they
are skipped. Chromium comes from the project's setup (`apt-get install chromium`), never from
`playwright install`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
READY = "SALON_STACK_READY "
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",  # without it: no ICE candidate on a loopback-only host
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-background-networking",
]


def only_loopback() -> bool:
    return {name for _, name in socket.if_nameindex()} == {"lo"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip what needs the stack or a browser unless only loopback is reachable."""
    if only_loopback():
        return
    skip = pytest.mark.skip(
        reason="browser tests run only in a loopback-only network namespace (make test)"
    )
    here = Path(__file__).parent
    for item in items:
        needs_network = {"stack", "browser"} & set(getattr(item, "fixturenames", ()))
        if needs_network and Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(skip)


def chromium_path() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium)")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The whole stack on free loopback ports, stopped by its pid."""
    log = tmp_path_factory.mktemp("stack") / "stack.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SALON_"))}
    env["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    env["SALON_SIGN_IN_STARTS_PER_IP_PER_HOUR"] = "10000"  # every page signs in from 127.0.0.1
    env["SALON_AUDIENCE_COUNT_INTERVAL_S"] = "1"
    ports = ("--rest-port", "0", "--ws-port", "0", "--aws-port", "0", "--stripe-port", "0")
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack", *ports, "--ready-line"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    try:
        yield _wait_ready(process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if ARTIFACTS.exists():
            shutil.copy(log, ARTIFACTS / "stack.log")


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
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Chromium's scratch folders stay inside this test run's own folder.
    os.environ["TMPDIR"] = str(tmp_path_factory.mktemp("chromium"))
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
