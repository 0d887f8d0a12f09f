"""A small JSON-over-HTTP client for driving the local stack like a mobile client would."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class HttpResponse:
    status: int
    body: Any


class HttpClient:
    def __init__(self, base_url: str, validate: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.validate = validate

    def request(
        self,
        method: str,
        path: str,
        payload: Any = None,
        token: str | None = None,
        raw: bytes | None = None,
    ) -> HttpResponse:
        data = (
            raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
        )
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = HttpResponse(response.status, _json(response.read()))
        except urllib.error.HTTPError as error:
            answer = HttpResponse(error.code, _json(error.read()))
        if self.validate:
            self._check(method, path, payload, raw, answer)
        return answer

    def _check(
        self, method: str, path: str, payload: Any, raw: bytes | None, answer: HttpResponse
    ) -> None:
        """Every request and response of the e2e tests must match docs/openapi.yaml."""
        from tests.support import contract

        if path.startswith("/_local/admin/"):
            name = path.rsplit("/", 1)[-1]
            contract.validate_admin_answer(name, answer.body)
            return
        operation = contract.operation_for(method, path)
        if raw is None and payload is not None and 200 <= answer.status < 300:
            contract.validate_request(method, operation.path, payload)
        contract.validate_response(method, operation.path, answer.status, answer.body)

    def get(self, path: str, token: str | None = None) -> HttpResponse:
        return self.request("GET", path, token=token)

    def post(self, path: str, payload: Any = None, token: str | None = None) -> HttpResponse:
        return self.request("POST", path, payload, token)

    def put(self, path: str, payload: Any = None, token: str | None = None) -> HttpResponse:
        return self.request("PUT", path, payload, token)

    def delete(self, path: str, token: str | None = None) -> HttpResponse:
        return self.request("DELETE", path, token=token)

    def sign_in(self, phone: str) -> dict[str, Any]:
        """Start sign-in, read the code from the local SMS outbox, verify."""
        started = self.post("/auth/sign-in", {"phone": phone})
        assert started.status == 202, started.body
        code = self.get(f"/_local/sms/{phone.lstrip('+')}").body["latest_code"]
        verified = self.post("/auth/verify", {"phone": phone, "code": code})
        assert verified.status == 200, verified.body
        answer: dict[str, Any] = verified.body
        return answer


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def member_of_their_own(api: HttpClient, phone: str, username: str) -> dict[str, Any]:
    """A member made by the operators' founder function (no invitation spent), signed in:
    the answer of `POST /auth/verify`."""
    made = api.post(
        "/_local/admin/admin_create_founder",
        {"phone": phone, "name": username.title(), "username": username, "invites": 0},
    )
    assert made.body["ok"], made.body
    return api.sign_in(phone)


def open_link(url: str, action: str) -> None:
    """What the creator does on Stripe's onboarding page."""
    data = urllib.parse.urlencode({"action": action}).encode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(urllib.request.Request(url, data=data))
    except urllib.error.HTTPError as redirect:
        assert redirect.code == 303  # back to the app's return URL


def wait_until(check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)
