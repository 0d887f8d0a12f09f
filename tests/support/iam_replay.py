"""The IAM replay: every recorded AWS call checked against the policy of the function that
made it, as the packaged template writes that policy, with moto's IAM evaluator."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from moto.iam.access_control import IAMPolicyStatement, PermissionResult

from chalicelib.config import Settings
from deploy.wiring import ACCOUNT, REGION, Function, Template

# What the Lambda runtime itself puts in every function's environment.
LAMBDA_RUNTIME_ENV = {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


def deployed_settings(function: Function) -> Settings:
    """The settings `function` would run with on AWS: its template environment, nothing else."""
    return Settings.from_env({**LAMBDA_RUNTIME_ENV, **function.environment})


def setting_problems(
    template: Template, function: Function, setting: str, replay: Replay | None = None
) -> list[str]:
    """Why `function`, deployed, could not use `setting` (one the code was seen reading)."""
    settings = deployed_settings(function)
    where = f"{function.logical_id} reads {setting}"
    if setting == "management_url":
        url = urlsplit(settings.management_url)
        api_id = (url.hostname or "").split(".", 1)[0]
        stage = url.path.strip("/")
        stages = template.websocket_stages().get(api_id, "").split(",")
        if url.scheme != "https" or stage not in stages:
            return [
                f"{where}: it posts to {settings.management_url or 'nothing'}, but the "
                f"template's WebSocket API {api_id or '?'} has the stage(s) {stages}"
            ]
        return []
    if setting.endswith("_queue_url"):
        url = str(getattr(settings, setting))
        queue = url.rstrip("/").rsplit("/", 1)[-1]
        if queue not in template.queues().values():
            return [f"{where}: {url!r} is no queue the template defines"]
        return []
    # A secret: given directly, or named as an SSM parameter the function's role may read.
    parameter = function.environment.get(f"{setting}_PARAMETER", "")
    if not parameter:
        return [f"{where}, but the template gives it neither {setting} nor {setting}_PARAMETER"]
    if replay is not None:
        arn = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{parameter.lstrip('/')}"
        if not replay.allows(function, "ssm:GetParameter", arn):
            return [f"{where} from {parameter}, which its role may not ssm:GetParameter"]
    return []


LAMBDA_SIDS = frozenset({"Logs", "Traces", "ReadOwnQueue"})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class Replay:
    def __init__(self, template: Template, rename: Callable[[str, Function], str] | None = None):
        """`rename` maps a resource ARN the run touched to the one the deployment would (the
        integration tests' tables carry a test prefix; the template's carry the stage's)."""
        self.template = template
        self._functions = template.by_handler()
        self._rename = rename or (lambda arn, _: arn)
        self._statements: dict[str, list[dict[str, Any]]] = {}
        # (role, statement index) -> the (action, resource) pairs it allowed
        self._used: dict[tuple[str, int], set[tuple[str, str]]] = defaultdict(set)
        self.seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.checked = 0
        self.untagged = 0

    def statements(self, function: Function) -> list[dict[str, Any]]:
        if function.role not in self._statements:
            self._statements[function.role] = [
                statement
                for document in self.template.policy_documents(function)
                for statement in _as_list(document["Statement"])
            ]
        return self._statements[function.role]

    def allows(self, function: Function, action: str, resource: str) -> bool:
        allowed, denied = [], False
        for index, statement in enumerate(self.statements(function)):
            result = IAMPolicyStatement(statement).is_action_permitted(action, resource)
            if result == PermissionResult.PERMITTED:
                allowed.append(index)
            elif result == PermissionResult.DENIED:
                denied = True
        for index in allowed:
            self._used[(function.role, index)].add((action, resource))
        return bool(allowed) and not denied

    def check(self, records: Iterable[dict[str, Any]]) -> list[str]:
        """The calls the template's policies deny, one line each."""
        denials = []
        for record in records:
            if record["function"] is None:
                self.untagged += 1
                continue
            function = self._functions.get(record["function"])
            if function is None:
                denials.append(f"{record['function']}: no such function in the template")
                continue
            if "setting" in record:
                denials += setting_problems(self.template, function, record["setting"], self)
                continue
            self.checked += 1
            resource = self._rename(record["resource"], function)
            self.seen[function.logical_id].add((record["action"], resource))
            if not self.allows(function, record["action"], resource):
                denials.append(
                    f"{function.logical_id} ({function.role}) may not {record['action']} on "
                    f"{resource} (the app called {record['call']})"
                )
        return sorted(set(denials))

    def unused(self) -> dict[str, list[str]]:
        """Per role: the statements no recorded call needed (Sid, or actions on resources).
        Lambda's own statements (logs, traces, reading the event source's queue) are left out:
        the service makes those calls, not the code."""
        report: dict[str, list[str]] = {}
        roles = {f.role: f for f in self._functions.values()}
        for role, function in sorted(roles.items()):
            lines = []
            for index, statement in enumerate(self.statements(function)):
                if statement.get("Sid") in LAMBDA_SIDS:
                    continue
                name = statement.get("Sid") or str(_as_list(statement["Action"]))
                used = self._used.get((role, index), set())
                if not used:
                    lines.append(f"{name}: no call needed it")
                    continue
                # A statement some call needed may still name resources no call touched.
                lines += [
                    f"{name}: no call touched {pattern}"
                    for pattern in _as_list(statement["Resource"])
                    if not any(fnmatchcase(resource, pattern) for _, resource in used)
                ]
            if lines:
                report[role] = lines
        return report

    def never_run(self) -> list[str]:
        """The functions no recorded call came from: whatever their code calls, the replay has
        not checked (a test that calls the service directly, not the handler, bypasses it)."""
        return sorted(
            f.logical_id for f in self._functions.values() if f.logical_id not in self.seen
        )

    def write_report(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "checked_calls": self.checked,
                    "calls_outside_any_function": self.untagged,
                    "statements_no_call_needed": self.unused(),
                    "functions_never_run": self.never_run(),
                    "calls_by_function": {
                        name: sorted(f"{a} {r}" for a, r in calls)
                        for name, calls in sorted(self.seen.items())
                    },
                },
                indent=2,
            )
        )
