"""A test client over Chalice's that checks each request it sends and each response it gets
against docs/openapi.yaml."""

from __future__ import annotations

import json
from typing import Any

from chalice.test import Client

from tests.support import contract

NO_BODY = object()


class ContractApi:
    def __init__(self, client: Client) -> None:
        self.client = client

    def call(
        self,
        method: str,
        path: str,
        payload: Any = NO_BODY,
        *,
        auth: dict[str, str] | None = None,
        raw: str | None = None,
        valid: bool = True,
    ) -> tuple[int, Any]:
        """Send a request; `valid=False` for payloads the contract itself refuses."""
        if payload is not NO_BODY and valid:
            contract.validate_request(method, path, payload)
        body = raw if raw is not None else "" if payload is NO_BODY else json.dumps(payload)
        headers = {"Content-Type": "application/json", **(auth or {})}
        response = self.client.http.request(method, path, headers=headers, body=body.encode())
        contract.validate_response(method, path, response.status_code, response.json_body)
        return response.status_code, response.json_body

    def ok(self, status: int, method: str, path: str, payload: Any = NO_BODY, **kw: Any) -> Any:
        got, body = self.call(method, path, payload, **kw)
        assert got == status, (method, path, got, body)
        return body

    def refused(
        self, status: int, code: str, method: str, path: str, payload: Any = NO_BODY, **kw: Any
    ) -> dict[str, Any]:
        got, body = self.call(method, path, payload, **kw)
        assert (got, (body or {}).get("error", {}).get("code")) == (status, code), body
        error: dict[str, Any] = body["error"]
        return error
