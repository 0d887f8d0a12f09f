"""Integration fixtures: an in-process moto AWS with every table, the app wired to fakes, and
the Stripe emulator with a webhook inbox for the money tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from chalice.test import Client
from moto import mock_aws

from chalicelib.adapters.media import Limits
from chalicelib.adapters.media.janus import JanusVideoRoom
from chalicelib.services import container
from deploy.wiring import Template
from local.janus import JanusProcess
from local.outbox import create_push_applications
from local.tables import create_photos_bucket, create_tables
from tests.conftest import assert_allowed
from tests.support.crowd import Crowd
from tests.support.fakes import ManualTimers, RecordingConnections
from tests.support.iam_replay import Replay
from tests.support.stripe_local import (
    CONNECT_SECRET,
    PLATFORM_SECRET,
    WebhookInbox,
    register_webhooks,
    running_emulator,
    serve_inbox,
)


@pytest.fixture(autouse=True)
def iam_checked(iam_replay: Replay) -> Iterator[None]:
    """Every AWS call a test makes through a handler must be one its function's role allows."""
    from local import aws_calls

    aws_calls.install()
    aws_calls.take()
    yield
    assert_allowed(iam_replay, aws_calls.take())


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        create_tables()
        create_photos_bucket()
        yield


@pytest.fixture
def sockets() -> RecordingConnections:
    return RecordingConnections()


@pytest.fixture
def timers() -> ManualTimers:
    return ManualTimers()


@pytest.fixture(scope="session")
def janus() -> Iterator[JanusProcess]:
    """One real Janus on loopback for the whole run (rooms are never shared between tests)."""
    with JanusProcess() as process:
        yield process


def janus_plane(process: JanusProcess, max_listeners: int = 300) -> JanusVideoRoom:
    config = process.config
    return JanusVideoRoom(
        process.url,
        process.admin_url,
        api_secret=lambda: config.api_secret,
        admin_secret=lambda: config.admin_secret,
        limits=Limits(max_publishers=12, max_listeners=max_listeners),
    )


@pytest.fixture
def svc(
    aws: None,
    sockets: RecordingConnections,
    timers: ManualTimers,
    janus: JanusProcess,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    """A fresh service container per test, posting to recording sockets, on a real Janus."""
    services = container.Services(container.settings())
    services.__dict__["poster"] = sockets
    services.__dict__["timers"] = timers
    # Its own queue: tests that push read it (tests/integration/test_push.py).
    services.__dict__["notifications_queue"] = ManualTimers()
    services.__dict__["media"] = janus_plane(janus)
    monkeypatch.setattr(container, "services", lambda: services)
    import app as app_module

    monkeypatch.setattr(app_module, "services", lambda: services)
    return services


@pytest.fixture
def client(svc: Any) -> Iterator[Client]:
    import app as app_module

    with Client(app_module.app) as test_client:
        yield test_client


# --- Stripe --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    yield from running_emulator()


@pytest.fixture(scope="module")
def inbox_server() -> Iterator[WebhookInbox]:
    inbox = WebhookInbox()
    server = serve_inbox(inbox)
    try:
        yield inbox
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def inbox(emulator: str, inbox_server: WebhookInbox) -> WebhookInbox:
    """A fresh emulator (no objects, no keys) sending its webhooks to an empty inbox."""
    from local.stripe import reset

    reset()
    inbox_server.take()
    register_webhooks(emulator, inbox_server)
    return inbox_server


@pytest.fixture
def pay(svc: Any, emulator: str, inbox: WebhookInbox) -> Any:
    """The service container, with Stripe settings pointing at the emulator."""
    svc.settings = dataclasses.replace(
        svc.settings,
        stripe_secret_key="sk_test_salon",
        stripe_api_base=emulator,
        stripe_webhook_secret=PLATFORM_SECRET,
        stripe_connect_webhook_secret=CONNECT_SECRET,
        app_url="http://127.0.0.1:8000",
    )
    return svc


@pytest.fixture
def sdk(emulator: str) -> stripe.StripeClient:
    """What a client app does with Stripe.js: confirm with a card. (The emulator takes only
    secret keys; Stripe.js would use a publishable key.)"""
    return stripe.StripeClient("sk_test_client_stand_in", base_addresses={"api": emulator})


@pytest.fixture
def paying_crowd(client: Client, pay: Any, sockets: RecordingConnections) -> Crowd:
    """Members with sockets, in an app that pays through the emulator."""
    return Crowd(client, pay, sockets)


# --- push ----------------------------------------------------------------------------------

PUSH_CAP = 4


@pytest.fixture
def applications(packaged: Template) -> dict[str, str]:
    """The platform applications the packaged template names, created in moto."""
    environment = packaged.by_handler()["app"].environment
    arns = {
        platform: environment[f"SALON_PUSH_{platform.upper()}_APPLICATION_ARN"]
        for platform in ("apns", "fcm")
    }
    create_push_applications(list(arns.values()))
    return arns


@pytest.fixture
def push_crowd(
    client: Client, svc: Any, sockets: RecordingConnections, applications: dict[str, str]
) -> Crowd:
    """Members with sockets in an app that pushes to moto's SNS, with a small hourly cap and
    fan-out pages of two (so paging is exercised)."""
    svc.settings = dataclasses.replace(
        svc.settings,
        push_apns_application_arn=applications["apns"],
        push_fcm_application_arn=applications["fcm"],
        push_cap_per_hour=PUSH_CAP,
        push_fanout_page=2,
    )
    return Crowd(client, svc, sockets)
