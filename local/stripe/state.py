"""Process-wide settings and mutable state of the emulator (endpoints, keys, switches)."""

from __future__ import annotations

import asyncio
import contextvars
import time
from dataclasses import dataclass, field
from typing import Any

# The API version stripe-python 16.1.0 pins (stripe._api_version._ApiVersion.CURRENT). Events carry
# it in `api_version`, as real Stripe stamps events with the account's API version.
DEFAULT_API_VERSION = "2026-10-28.endive"


@dataclass
class Settings:
    """Knobs of one emulator process. Tests shrink the delays; the defaults suit a dev stack."""

    api_version: str = DEFAULT_API_VERSION
    # Seconds between an event's creation and its first delivery attempt.
    webhook_initial_delay: float = 0.2
    # Pause before each retry of a failed delivery; its length is the number of retries.
    webhook_retry_delays: tuple[float, ...] = (1.0, 4.0, 16.0)
    webhook_timeout: float = 10.0
    # How long an idempotency key and its saved answer are kept (Stripe: at least 24 h).
    idempotency_ttl: float = 24 * 3600.0
    # How long an account link stays usable (Stripe: a few minutes).
    account_link_ttl: int = 300


@dataclass
class Endpoint:
    """A webhook endpoint registered through /_config/webhooks/{name}."""

    name: str
    url: str
    secret: str
    connect: bool = False
    events: list[str] | None = None

    def wants(self, event_type: str, is_connect_event: bool) -> bool:
        if self.connect != is_connect_event:
            return False
        return self.events is None or "*" in self.events or event_type in self.events


@dataclass
class Delivery:
    """One delivery attempt of one event to one endpoint, kept for /_test/webhook_deliveries."""

    event_id: str
    event_type: str
    endpoint: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    at: float

    def export(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class SavedAnswer:
    """What an idempotency key is bound to: the request it first came with and its answer."""

    method: str
    path: str
    params: str
    created: float
    request_id: str
    status: int | None = None  # None while the first request is still running
    body: bytes = b""
    content_type: str = "application/json"


@dataclass
class AccountLink:
    """An onboarding link; Stripe gives it no id, the token in its url identifies it here."""

    token: str
    account: str
    refresh_url: str
    return_url: str
    type: str
    created: int
    expires_at: int
    url: str
    used: bool = False

    def export(self) -> dict[str, Any]:
        return {
            "object": "account_link",
            "created": self.created,
            "expires_at": self.expires_at,
            "url": self.url,
        }


@dataclass
class RequestInfo:
    """Facts about the API request being served, read by code deep inside localstripe calls."""

    request_id: str
    idempotency_key: str | None = None
    account: str | None = None  # the Stripe-Account header: the request acts on that account
    base_url: str = ""
    api: bool = True  # False for /_test and /_config routes: their events have no request id


current_request: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "salon_stripe_request", default=None
)


def current_account() -> str | None:
    """The connected account the current request acts for (Stripe-Account header), if any."""
    info = current_request.get()
    return info.account if info else None


@dataclass
class State:
    """Everything the emulator keeps besides localstripe's object store."""

    settings: Settings = field(default_factory=Settings)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    idempotency: dict[tuple[str, str, str], SavedAnswer] = field(default_factory=dict)
    account_links: dict[str, AccountLink] = field(default_factory=dict)
    rate_limited_requests: int = 0
    # Error codes that the next POST /v1/transfers calls answer with, one per call.
    transfer_failures: list[str] = field(default_factory=list)

    def prune_idempotency(self) -> None:
        horizon = time.time() - self.settings.idempotency_ttl
        for key in [k for k, v in self.idempotency.items() if v.created < horizon]:
            del self.idempotency[key]

    def reset(self) -> None:
        """Forget endpoints, keys, links, switches and the delivery log (not the settings)."""
        for task in list(self.tasks):
            task.cancel()
        self.tasks.clear()
        self.endpoints.clear()
        self.deliveries.clear()
        self.idempotency.clear()
        self.account_links.clear()
        self.rate_limited_requests = 0
        self.transfer_failures.clear()


STATE = State()

MAX_DELIVERY_LOG = 2000
