"""The Stripe emulator for tests, and a webhook inbox that hands deliveries to the app on demand.

The emulator signs and POSTs events to the inbox as Stripe would; the test then delivers them to
the app's webhook routes, in order, shuffled, twice or tampered with, as it pleases.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PLATFORM_SECRET = "whsec_test_platform_secret"
CONNECT_SECRET = "whsec_test_connect_secret"
PATHS = {"/platform": "/webhooks/stripe", "/connect": "/webhooks/stripe-connect"}


@dataclass(frozen=True)
class Delivery:
    route: str  # the app's webhook route
    body: bytes
    signature: str

    @property
    def event_type(self) -> str:
        import json

        return str(json.loads(self.body)["type"])


@dataclass
class WebhookInbox:
    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    # Each test registers its endpoints under a new generation; a delivery still in flight from
    # an earlier test (the emulator retries and delays) arrives at an old one and is dropped.
    generation: int = 0

    def accept(self, path: str, body: bytes, signature: str) -> None:
        generation, _, endpoint = path.strip("/").partition("/")
        with self.changed:
            if generation != str(self.generation):
                return
            self.deliveries.append(Delivery(PATHS["/" + endpoint], body, signature))
            self.changed.notify_all()

    def next_generation(self) -> str:
        """Forget everything received; return the URL prefix of the new generation."""
        with self.changed:
            self.generation += 1
            self.deliveries = []
        return f"{self.url}/{self.generation}"

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while sum(d.event_type == event_type for d in self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [d.event_type for d in self.deliveries]
                    raise AssertionError(f"no {event_type} delivered; saw {seen}")
                self.changed.wait(left)

    def take(self) -> list[Delivery]:
        with self.changed:
            taken, self.deliveries = self.deliveries, []
        return taken


def serve_inbox(inbox: WebhookInbox) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            inbox.accept(self.path, body, self.headers.get("Stripe-Signature", ""))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    inbox.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server


def emulator_post(base: str, path: str, **form: str) -> Any:
    import json

    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(base + path, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def register_webhooks(base: str, inbox: WebhookInbox) -> None:
    prefix = inbox.next_generation()
    emulator_post(
        base, "/_config/webhooks/platform", url=prefix + "/platform", secret=PLATFORM_SECRET
    )
    emulator_post(
        base,
        "/_config/webhooks/connect",
        url=prefix + "/connect",
        secret=CONNECT_SECRET,
        connect="true",
    )


def running_emulator() -> Iterator[str]:
    from local.stripe import Settings, reset, serve_in_thread

    port, stop = serve_in_thread(
        "127.0.0.1", 0, Settings(webhook_initial_delay=0.0, webhook_retry_delays=(0.05,))
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop()
        reset()
