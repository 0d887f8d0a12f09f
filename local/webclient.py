"""The reference web client (`web/`), served by the local stack's REST server under `/app/`.

Not a Chalice route: the REST server's request handler answers `/app/...` from `web/` and hands
every other path to Chalice, so the files never reach a deployed stage and the REST contract
(docs/openapi.yaml) is unchanged. Same origin as the REST API, so the client needs no CORS.

- `/app/config.json` tells the client where the WebSocket gateway and the Stripe emulator are.
- `/_local/photos/<key>` is the photos bucket's public read (the template's bucket policy lets
  anyone GET `photos/*`): moto's server cannot tell an unsigned GET is for S3, so this reads
  the object from the embedded S3 and serves it with its content type.
- `/creator/onboarding/return` and `/refresh` (where Stripe sends a creator's browser back;
  the app's `SALON_APP_URL` is the REST server locally) lead back to the client's earnings page.
"""

from __future__ import annotations

import functools
import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chalice.local import ChaliceRequestHandler, LocalDevServer

WEB_ROOT = Path(__file__).resolve().parents[1] / "web"
PREFIX = "/app/"
PHOTOS = "/_local/photos/"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
ONBOARDING_BACK = {
    "/creator/onboarding/return": "/app/#earnings",
    "/creator/onboarding/refresh": "/app/#earnings/expired",
}


def serve_web_client(server: LocalDevServer, settings: Callable[[], dict[str, Any]]) -> None:
    """Make `server` (Chalice's local server) also serve the web client."""
    chalice_handler = server.server.RequestHandlerClass
    keywords = getattr(chalice_handler, "keywords", {})
    server.server.RequestHandlerClass = functools.partial(  # type: ignore[misc]
        _handler_class(settings), **keywords
    )


def _handler_class(settings: Callable[[], dict[str, Any]]) -> type[ChaliceRequestHandler]:
    class WebClientHandler(ChaliceRequestHandler):
        def do_GET(self) -> None:
            if not self._web_client():
                self._generic_handle()

        def do_HEAD(self) -> None:
            if not self._web_client():
                self._generic_handle()

        def _web_client(self) -> bool:
            path = urllib.parse.urlsplit(self.path).path
            if path in ONBOARDING_BACK:
                self._send(303, b"", "text/plain", location=ONBOARDING_BACK[path])
            elif path == "/app":
                self._send(301, b"", "text/plain", location=PREFIX)
            elif path == PREFIX + "config.json":
                self._send(200, json.dumps(settings()).encode(), TYPES[".json"])
            elif path.startswith(PHOTOS):
                self._photo(urllib.parse.unquote(path[len(PHOTOS) :]))
            elif path.startswith(PREFIX):
                self._file(urllib.parse.unquote(path[len(PREFIX) :]) or "index.html")
            else:
                return False
            return True

        def _file(self, name: str) -> None:
            root = WEB_ROOT.resolve()
            target = (root / name).resolve()
            if root not in target.parents or not target.is_file():
                self._send(404, b"Not found.\n", "text/plain; charset=utf-8")
                return
            kind = TYPES.get(target.suffix, "application/octet-stream")
            self._send(200, target.read_bytes(), kind)

        def _photo(self, key: str) -> None:
            import boto3
            from botocore.exceptions import ClientError

            from chalicelib.config import settings as app_settings

            if not key.startswith("photos/"):  # the bucket policy's one public prefix
                self._send(403, b"Forbidden.\n", "text/plain; charset=utf-8")
                return
            s3 = boto3.client("s3", region_name=app_settings().region)
            try:
                got = s3.get_object(Bucket=app_settings().photos_bucket, Key=key)
            except ClientError:
                self._send(404, b"Not found.\n", "text/plain; charset=utf-8")
                return
            body = got["Body"].read()
            self._send(200, body, got.get("ContentType") or "application/octet-stream")

        def _send(self, status: int, body: bytes, kind: str, location: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if location:
                self.send_header("Location", location)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return WebClientHandler
