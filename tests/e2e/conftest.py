"""The local stack, started once for the e2e tests on free loopback ports, stopped by its pid."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.http import HttpClient
from tests.support.stack import running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_stack(tmp_path_factory.mktemp("stack") / "stack.log") as info:
        yield info


@pytest.fixture(scope="session")
def api(stack: dict[str, Any]) -> HttpClient:
    return HttpClient(stack["rest"])


@pytest.fixture(scope="session")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A stack of the fuzzers' own (tests/e2e/test_fuzz_*.py): they edit, block, sign out and
    end rooms at random, which the other e2e tests must not see."""
    with running_stack(tmp_path_factory.mktemp("fuzz") / "stack.log") as info:
        yield info
