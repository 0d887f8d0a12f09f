"""Real browsers against the local stack: Debian's Chromium driven by Playwright, headless.

These tests run only inside a network namespace whose one interface is loopback (`make test`
runs them as `unshare --net sh -c 'ip link set lo up && pytest tests/browser'`): the stack,
Chromium and its WebRTC traffic then cannot reach anything but 127.0.0.1. Anywhere else they
are skipped. Chromium comes from the project's setup (`apt-get install chromium`), never from
`playwright install`.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.support.browser import (
    TIMEOUT_MS,
    Member,
    chromium_path,
    headless_chromium,
    only_loopback,
)
from tests.support.http import HttpClient
from tests.support.stack import running_stack

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"


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


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The whole stack on free loopback ports, stopped by its pid; its log kept as an artifact."""
    log = tmp_path_factory.mktemp("stack") / "stack.log"
    try:
        with running_stack(log, idle_timeout_s=600) as info:
            yield info
    finally:
        if ARTIFACTS.exists():
            shutil.copy(log, ARTIFACTS / "stack.log")


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if chromium_path() is None:
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium)")
    with headless_chromium(tmp_path_factory.mktemp("chromium")) as chromium:
        yield chromium


# The pages and REST client of the modules that sign members in with tests/support/browser.py.
@pytest.fixture(scope="module")
def api(stack: dict[str, Any]) -> HttpClient:
    return HttpClient(stack["rest"], validate=False)


@pytest.fixture(scope="module")
def open_page(
    request: pytest.FixtureRequest, browser: Any, stack: dict[str, Any], artifacts: Path
) -> Iterator[Any]:
    """open_page(member or None, width) -> a page of the client, signed in as that member;
    each page's last state is saved as a screenshot when the module's tests are done."""
    prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    contexts: list[Any] = []
    pages: list[tuple[str, Page]] = []

    def open_(member: Member | None, width: int = 1280, hash_: str = "#hallway") -> Page:
        context = browser.new_context(viewport={"width": width, "height": 860})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        if member is not None:
            context.add_init_script(
                f"sessionStorage.setItem('salon.session', {json.dumps(json.dumps(member.session))})"
            )
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # "Block …?", "Remove …?"
        page.goto(stack["web"] + hash_)
        pages.append((member.username if member else "signed-out", page))
        return page

    yield open_
    for index, (name, page) in enumerate(pages):
        with contextlib.suppress(Exception):
            page.screenshot(path=artifacts / f"{prefix}-last-{index}-{name}.png", full_page=True)
    for context in contexts:
        context.close()
