"""The local stack answers only once it is ready: the founder seeded, Stripe's webhooks set up.

Until then every request to the REST server gets 503 (with `Retry-After`), so that a
client that comes too early is told to wait instead of being served by a half-made stack (a
sign-in before the founder exists would put the founder's number on the waitlist for good).
`GET /_local/ready` is the endpoint to wait for: 503 while starting, 200 once ready.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

from chalice.local import LocalDevServer

# Not Salon's `Error`: nothing of Salon's ran. The shape of API Gateway's own refusals.
NOT_READY = {
    "message": "The local stack is still starting (seeding the founder, setting up Stripe's "
    "webhooks); retry in a moment, or wait for GET /_local/ready to answer 200.",
    "ready": False,
}


def hold_until_ready(server: LocalDevServer, ready: threading.Event) -> None:
    """Make `server` answer 503 to every request until `ready` is set."""
    current: Any = server.server.RequestHandlerClass
    handler = current.func if isinstance(current, functools.partial) else current
    keywords = current.keywords if isinstance(current, functools.partial) else {}

    class HeldHandler(handler):  # type: ignore[misc, valid-type]
        def parse_request(self) -> bool:
            if not super().parse_request():
                return False
            if ready.is_set():
                return True
            body = json.dumps(NOT_READY).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Retry-After", "1")
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            # The request's body was not read: this connection cannot carry another request.
            self.close_connection = True
            return False

    server.server.RequestHandlerClass = functools.partial(HeldHandler, **keywords)
