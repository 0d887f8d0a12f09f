"""Schemathesis over docs/openapi.yaml against the local stack: no request gets a 5xx.

Every documented operation (the local stack's own routes aside) gets positive cases (what the
schema allows) and negative ones (what it refuses), derandomized and bounded, so the run is the
same on every machine. The founder's access token is sent unless a case brings its own
`Authorization`; `POST /auth/sign-out` runs last, since it ends that session.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.support.contract import OPENAPI_PATH
from tests.support.http import HttpClient

EXAMPLES_PER_OPERATION_AND_MODE = 10
FOUNDER_PHONE = "+14155550100"
LAST = "POST /auth/sign-out"

# 500s that belong to another workstream's open item (issue 10). Each names its item; remove the
# entry once that fix is merged. Nothing else may answer 5xx.
KNOWN_SERVER_ERRORS: dict[str, str] = {}


def deployed_operations() -> list[Any]:
    schema = schemathesis.openapi.from_path(OPENAPI_PATH)
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if not result.ok().definition.raw.get("x-local-only")
    ]
    return sorted(operations, key=lambda op: (op.label == LAST, op.label))


def test_no_fuzzed_request_gets_a_server_error(fuzz_stack: dict[str, Any]) -> None:
    base = fuzz_stack["rest"]
    run = Run(base, HttpClient(base).sign_in(FOUNDER_PHONE)["access_token"])
    for operation in deployed_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                run.fuzz(operation, mode)
            except Unsatisfiable:
                pass  # nothing to break: no negative case exists for an operation without inputs

    # The token worked and the cases reached Salon's code: some were accepted, many refused.
    assert sum(n for code, n in run.statuses.items() if code < 300) > 0, run.statuses
    assert run.statuses[400] > 0, run.statuses
    assert not run.server_errors, f"{len(run.server_errors)} server errors:\n" + "\n".join(
        run.server_errors[:20]
    )


class Run:
    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.token = token
        self.session = requests.Session()
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []

    def fuzz(self, operation: Any, mode: GenerationMode) -> None:
        @settings(
            max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            self.send(operation.label, mode, case)

        one()

    def send(self, label: str, mode: GenerationMode, case: Any) -> None:
        headers = {} if "authorization" in _lower(case.headers) else _bearer(self.token)
        try:
            response = case.call(base_url=self.base, session=self.session, headers=headers)
        except requests.exceptions.InvalidHeader:
            return  # a header no HTTP client can send; the server never sees it
        self.record(label, mode.value, response, case.as_curl_command())
        if isinstance(case.body, dict):
            # What no schema-driven generator makes: the same body, as a JavaScript client that
            # cut an emoji would send it, or nested past any parser's recursion limit.
            for name, raw in _hostile_bodies(case.body):
                hostile = self.session.request(
                    case.method,
                    self.base + case.formatted_path,
                    data=raw.encode(),
                    headers={"Content-Type": "application/json", **headers},
                )
                self.record(label, name, hostile, raw[:200])

    def record(self, label: str, variant: str, response: Any, request: str) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code >= 500 and label not in KNOWN_SERVER_ERRORS:
            self.server_errors.append(
                f"{label} ({variant}) -> {response.status_code} {response.text[:300]}\n  {request}"
            )


def _hostile_bodies(body: dict[str, Any]) -> list[tuple[str, str]]:
    opening = json.dumps(body)[:-1] + (", " if body else "")
    variants = [("deep", opening + '"x": ' + "[" * 1000 + "]" * 1000 + "}")]
    strings = sorted(k for k, v in body.items() if isinstance(v, str))
    if strings:
        cut = {**body, strings[0]: body[strings[0]] + "\ud83d"}
        variants.append(("surrogate", json.dumps(cut)))
    return variants


def _lower(headers: Any) -> set[str]:
    return {str(name).lower() for name in (headers or {})}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_fuzzed_document_is_the_contract_the_tests_check() -> None:
    assert Path(OPENAPI_PATH).name == "openapi.yaml"
    labels = {op.label for op in deployed_operations()}
    assert set(KNOWN_SERVER_ERRORS) <= labels, "a known failure names no operation"
