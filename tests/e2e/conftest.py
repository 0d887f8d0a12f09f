"""The local stack, started once for the e2e tests on free loopback ports, stopped by its pid."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.wiring import Template
from local.aws_calls import read_sink
from tests.conftest import assert_allowed
from tests.support.http import HttpClient
from tests.support.iam_replay import Replay
from tests.support.stack import running_stack


@pytest.fixture(scope="session")
def aws_calls_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aws-calls") / "calls.jsonl"


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, aws_calls_file: Path, packaged: Template
) -> Iterator[dict[str, Any]]:
    """The local stack, wired by the packaged template the replay checks against."""
    log = tmp_path_factory.mktemp("stack") / "stack.log"
    with running_stack(log, record_aws_calls=aws_calls_file, template=packaged.path) as info:
        yield info


@pytest.fixture(autouse=True)
def iam_checked(iam_replay: Replay, aws_calls_file: Path) -> Iterator[None]:
    """Every AWS call the stack's functions made during the test must be one the packaged
    template's policy for that function allows."""
    _, start = read_sink(aws_calls_file)
    yield
    records, _ = read_sink(aws_calls_file, start)
    assert_allowed(iam_replay, records)


@pytest.fixture(scope="session")
def api(stack: dict[str, Any]) -> HttpClient:
    return HttpClient(stack["rest"])


@pytest.fixture(scope="session")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A stack of the fuzzers' own (tests/e2e/test_fuzz_*.py): they edit, block, sign out and
    end rooms at random, which the other e2e tests must not see. The fuzzer sends thousands of
    frames on one socket as fast as they are answered, so its sockets' token buckets are set
    out of its way (tests/e2e/test_trust_and_safety.py floods the real ones)."""
    unlimited = {"SALON_WS_ACTION_BURST": "1000000", "SALON_WS_MEDIA_BURST": "1000000"}
    with running_stack(tmp_path_factory.mktemp("fuzz") / "stack.log", extra_env=unlimited) as info:
        yield info
