"""The embedded AWS, with the one S3 check moto leaves out: a browser upload's POST policy.

moto's S3 stores whatever a presigned POST form sends, whatever its policy says. S3 refuses an
upload that breaks the policy: the form expired, a field differs from its condition (the key,
the Content-Type), a field no condition covers, or a file outside `content-length-range`. This
middleware makes those checks before moto sees the request, and answers as S3 does (an XML
error: `EntityTooSmall` / `EntityTooLarge` 400, `AccessDenied` 403). Signatures are not
checked (moto checks no credentials). Every other request passes through untouched.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.formparser import parse_form_data
from werkzeug.serving import make_server

# Fields S3 does not hold to the policy (AWS: "Creating a POST policy", conditions).
UNCHECKED = {"policy", "x-amz-signature", "signature", "awsaccesskeyid", "file"}
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def check_post(bucket: str, fields: dict[str, str], size: int, now: datetime) -> None:
    """Raise Refusal when S3 would refuse this form upload; `fields` are the form's fields."""
    lower = {k.lower(): v for k, v in fields.items()}
    try:
        policy = json.loads(base64.b64decode(lower["policy"]))
    except (KeyError, ValueError) as error:
        raise Refusal(400, "InvalidPolicyDocument", "Invalid Policy: Invalid JSON.") from error
    expires = datetime.fromisoformat(str(policy.get("expiration", "")).replace("Z", "+00:00"))
    if expires <= now:
        raise Refusal(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    values = {**lower, "bucket": bucket}
    covered = {"bucket"}
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            ((name, expected),) = condition.items()
            condition = ["eq", "$" + name, expected]
        operator = str(condition[0]).lower()
        if operator == "content-length-range":
            low, high = int(condition[1]), int(condition[2])
            if size < low:
                raise Refusal(
                    400,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size",
                )
            if size > high:
                raise Refusal(
                    400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"
                )
            continue
        name = str(condition[1]).lstrip("$").lower()
        covered.add(name)
        value, expected = values.get(name), str(condition[2])
        matched = (
            value == expected
            if operator == "eq"
            else (value is not None and value.startswith(expected))
        )
        if not matched:
            raise Refusal(
                403,
                "AccessDenied",
                f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}",
            )
    extra = sorted(
        k
        for k in lower
        if k not in covered and k not in UNCHECKED and not k.startswith("x-ignore-")
    )
    if extra:
        raise Refusal(
            403,
            "AccessDenied",
            f"Invalid according to Policy: Extra input fields: {extra[0]}",
        )


class PostPolicyCheck:
    """WSGI middleware in front of moto: multipart POSTs carrying a policy are checked first."""

    def __init__(self, app: WsgiApp, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.app = app
        self.clock = clock

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        kind = str(environ.get("CONTENT_TYPE", ""))
        if environ.get("REQUEST_METHOD") != "POST" or not kind.startswith("multipart/form-data"):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        probe = {**environ, "wsgi.input": io.BytesIO(body)}
        _, form, files = parse_form_data(probe)
        environ["wsgi.input"] = io.BytesIO(body)  # moto reads the body again
        if "policy" not in {k.lower() for k in form}:
            return self.app(environ, start_response)
        upload = files.get("file")
        size = len(upload.read()) if upload is not None else 0
        bucket = str(environ.get("PATH_INFO", "")).strip("/").split("/", 1)[0]
        try:
            check_post(bucket, dict(form.items()), size, self.clock())
        except Refusal as refusal:
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
                f"<Code>{refusal.code}</Code><Message>{escape(refusal.message)}</Message></Error>"
            ).encode()
            reason = {400: "Bad Request", 403: "Forbidden"}[refusal.status]
            start_response(
                f"{refusal.status} {reason}",
                [
                    ("Content-Type", "application/xml"),
                    ("Content-Length", str(len(xml))),
                    ("Access-Control-Allow-Origin", "*"),
                ],
            )
            return [xml]
        return self.app(environ, start_response)


class MotoServer(ThreadedMotoServer):
    """ThreadedMotoServer, with S3's POST policy checks in front."""

    def _server_entry(self) -> None:
        app = PostPolicyCheck(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()
