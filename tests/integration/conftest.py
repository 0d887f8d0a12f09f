"""Integration fixtures: an in-process moto AWS with every table, and the app wired to fakes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib.services import container
from local.tables import create_tables
from tests.support.fakes import ManualTimers, RecordingConnections


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        create_tables()
        yield


@pytest.fixture
def sockets() -> RecordingConnections:
    return RecordingConnections()


@pytest.fixture
def timers() -> ManualTimers:
    return ManualTimers()


@pytest.fixture
def svc(
    aws: None, sockets: RecordingConnections, timers: ManualTimers, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A fresh service container per test, posting to recording sockets."""
    services = container.Services(container.settings())
    services.__dict__["poster"] = sockets
    services.__dict__["timers"] = timers
    monkeypatch.setattr(container, "services", lambda: services)
    import app as app_module

    monkeypatch.setattr(app_module, "services", lambda: services)
    return services


@pytest.fixture
def client(svc: Any) -> Iterator[Client]:
    import app as app_module

    with Client(app_module.app) as test_client:
        yield test_client
