"""Operations in the packaged template: access logs, throttling, concurrency, dead letters,
alarms on metrics the code really emits, one dashboard, and the Lambda zip against the lock
and with its bytecode."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from deploy.operations import (
    ALARM,
    ASYNC_EVENTS,
    LAMBDA_NAMESPACE,
    POLLED_EVENTS,
    RESERVED_CONCURRENCY,
    asynchronous_functions,
    context_variables,
    event_types,
    functions,
    metrics_namespace,
)
from deploy.package import lock_drift, package

# $context variables (API Gateway's access logging references for REST and WebSocket) that hold
# neither a request header nor the query string (where the WebSocket token travels), nor a
# body, nor a credential ($context.identity.apiKey, $context.authorizer.* would). Anything else
# in an access log format fails the test until someone shows it is safe and adds it here.
SAFE_CONTEXT = {
    "$context.requestId",
    "$context.extendedRequestId",
    "$context.requestTime",
    "$context.identity.sourceIp",
    "$context.identity.userAgent",
    "$context.httpMethod",
    "$context.resourcePath",
    "$context.protocol",
    "$context.status",
    "$context.responseLength",
    "$context.responseLatency",
    "$context.integration.status",
    "$context.integration.latency",
    "$context.integrationLatency",
    "$context.error.message",
    "$context.error.responseType",
    "$context.connectionId",
    "$context.eventType",
    "$context.routeKey",
}


@pytest.fixture(scope="module")
def prod_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    """`make package STAGE=prod`, once for the module: the template and its folder."""
    out = tmp_path_factory.mktemp("package") / "prod"
    template = package("prod", out)
    yield json.loads(template.read_text()), out


@pytest.fixture(scope="module")
def resources(prod_package: tuple[dict[str, Any], Path]) -> dict[str, Any]:
    return prod_package[0]["Resources"]


def access_log_formats(resources: dict[str, Any]) -> dict[str, str]:
    return {
        "rest": resources["RestAPI"]["Properties"]["AccessLogSetting"]["Format"],
        "websocket": resources["WebsocketAPIStage"]["Properties"]["AccessLogSettings"]["Format"],
    }


def test_both_stages_write_access_logs_to_their_own_log_group(resources: dict[str, Any]) -> None:
    rest = resources["RestAPI"]["Properties"]["AccessLogSetting"]["DestinationArn"]
    websocket = resources["WebsocketAPIStage"]["Properties"]["AccessLogSettings"]
    groups = {rest["Fn::GetAtt"][0], websocket["DestinationArn"]["Fn::GetAtt"][0]}
    assert len(groups) == 2
    for group in groups:
        assert resources[group]["Type"] == "AWS::Logs::LogGroup"
        assert resources[group]["Properties"]["RetentionInDays"] > 0


def test_access_logs_hold_no_header_query_string_or_body(resources: dict[str, Any]) -> None:
    for api, text in access_log_formats(resources).items():
        fields = json.loads(text)  # one JSON object per line, every value one variable
        assert all(re.fullmatch(r"\$context\.[A-Za-z0-9_.]+", v) for v in fields.values()), api
        assert context_variables(text) <= SAFE_CONTEXT, (
            api,
            context_variables(text) - SAFE_CONTEXT,
        )
        assert "$context.requestId" in context_variables(text)
        assert "$input" not in text and "$stageVariables" not in text


def test_no_stage_logs_request_or_message_bodies(resources: dict[str, Any]) -> None:
    [rest] = resources["RestAPI"]["Properties"]["MethodSettings"]
    websocket = resources["WebsocketAPIStage"]["Properties"]["DefaultRouteSettings"]
    assert rest["DataTraceEnabled"] is False
    assert websocket["DataTraceEnabled"] is False


def test_both_stages_are_throttled(resources: dict[str, Any]) -> None:
    [rest] = resources["RestAPI"]["Properties"]["MethodSettings"]
    websocket = resources["WebsocketAPIStage"]["Properties"]["DefaultRouteSettings"]
    assert (rest["ResourcePath"], rest["HttpMethod"]) == ("/*", "*")
    for settings in (rest, websocket):
        assert 0 < settings["ThrottlingRateLimit"] <= settings["ThrottlingBurstLimit"]


def test_payout_functions_run_one_at_a_time(resources: dict[str, Any]) -> None:
    payouts = {
        name
        for name in functions(resources)
        if "payout" in resources[name]["Properties"]["Handler"]
    }
    assert payouts == set(RESERVED_CONCURRENCY)
    for name in payouts:
        assert resources[name]["Properties"]["ReservedConcurrentExecutions"] == 1


def test_the_timers_queue_redrives_to_a_dead_letter_queue(resources: dict[str, Any]) -> None:
    redrive = resources["TimersQueue"]["Properties"]["RedrivePolicy"]
    dead_letters = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert resources[dead_letters]["Type"] == "AWS::SQS::Queue"
    assert dead_letters != "TimersQueue"
    assert redrive["maxReceiveCount"] > 1


def test_asynchronous_functions_retry_then_dead_letter_with_a_role_that_may_send(
    resources: dict[str, Any],
) -> None:
    asynchronous = asynchronous_functions(resources)
    assert {"PayoutsMonthly", "PayoutsCatchUp"} <= set(asynchronous)
    grants = [
        (statement, {r["Ref"] for r in policy["Properties"]["Roles"]})
        for policy in resources.values()
        if policy["Type"] == "AWS::IAM::Policy"
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    for name in asynchronous:
        properties = resources[name]["Properties"]
        assert properties["EventInvokeConfig"]["MaximumRetryAttempts"] >= 1
        target = properties["DeadLetterQueue"]["TargetArn"]
        assert resources[target["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue"
        role = properties["Role"]["Fn::GetAtt"][0]
        assert any(
            "sqs:SendMessage" in statement["Action"]
            and statement["Resource"] == target
            and role in roles
            for statement, roles in grants
        ), name


def test_every_event_source_is_known_to_be_asynchronous_or_polled(
    resources: dict[str, Any],
) -> None:
    """A new kind of trigger must be classified before it ships, or it would get no DLQ."""
    for name in functions(resources):
        assert event_types(resources, name) <= ASYNC_EVENTS | POLLED_EVENTS, name


def alarms(resources: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["Properties"] for r in resources.values() if r["Type"] == ALARM]


def dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_every_function_has_an_errors_and_a_throttles_alarm(resources: dict[str, Any]) -> None:
    watched = {
        (alarm["MetricName"], dimensions(alarm)["FunctionName"]["Ref"])
        for alarm in alarms(resources)
        if alarm["Namespace"] == LAMBDA_NAMESPACE
    }
    names = functions(resources)
    assert len(names) > 10
    assert watched == {(m, f) for m in ("Errors", "Throttles") for f in names}


def test_every_dead_letter_queue_has_a_depth_alarm(resources: dict[str, Any]) -> None:
    targets = {
        r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for r in resources.values()
        if "RedrivePolicy" in r.get("Properties", {})
    } | {
        resources[f]["Properties"]["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0]
        for f in functions(resources)
        if "DeadLetterQueue" in resources[f]["Properties"]
    }
    watched = {
        dimensions(alarm)["QueueName"]["Fn::GetAtt"][0]
        for alarm in alarms(resources)
        if alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    assert (
        targets
        == watched
        == {
            "TimersDeadLetterQueue",
            "NotificationsDeadLetterQueue",
            "FanoutDeadLetterQueue",
            "AsyncDeadLetterQueue",
        }
    )


def test_every_alarm_notifies_the_alarm_topic(resources: dict[str, Any]) -> None:
    for alarm in alarms(resources):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert resources["AlarmTopic"]["Type"] == "AWS::SNS::Topic"


def emitted(output: str) -> list[tuple[str, dict[str, str]]]:
    """(metric, its dimensions) for every EMF record Powertools printed."""
    found = []
    for line in output.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            names = [n for group in directive["Dimensions"] for n in group]
            for metric in directive["Metrics"]:
                found.append((metric["Name"], {n: record[n] for n in names}))
    return found


class FailingRun:
    """A payout run that ends with one stipend failed, as Program.run reports it."""

    def run(self, *args: Any) -> dict[str, Any]:
        return {"status": "done", "paid": 2, "skipped": 0, "failed": 1, "total_cents": 20000}


def test_the_metrics_salon_alarms_on_are_the_ones_its_handlers_emit(
    resources: dict[str, Any], client: Client, svc: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import dataclasses

    svc.settings = dataclasses.replace(svc.settings, stripe_webhook_secret="whsec_test")
    svc.__dict__["program"] = FailingRun()
    capsys.readouterr()
    for signature in ({}, {"Stripe-Signature": "t=1,v1=forged"}):
        answer = client.http.post(
            "/webhooks/stripe",
            body=json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}),
            headers={"Content-Type": "application/json", **signature},
        )
        assert answer.json_body["error"]["code"] == "invalid_signature"
    client.lambda_.invoke("admin_run_payouts", {})
    records = emitted(capsys.readouterr().out)

    custom = [a for a in alarms(resources) if a["Namespace"] == metrics_namespace(resources)]
    assert {a["MetricName"] for a in custom} == {"PayoutsFailed", "WebhookSignatureFailures"}
    for alarm in custom:
        assert (alarm["MetricName"], dimensions(alarm)) in records, records
    assert records.count(("WebhookSignatureFailures", {"service": "salon"})) == 2


SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.[A-Za-z]+)?\}")


def test_the_dashboard_shows_only_resources_the_template_has(resources: dict[str, Any]) -> None:
    [dashboard] = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    referenced = set(SUBSTITUTION.findall(body))
    widgets = json.loads(body)["widgets"]
    assert {w["type"] for w in widgets} == {"alarm", "metric"}
    assert {r for r in referenced if not r.startswith("AWS::")} <= resources.keys()
    alarm_ids = {k for k, r in resources.items() if r["Type"] == ALARM}
    assert alarm_ids <= referenced


def test_every_checkov_suppression_carries_its_reason(resources: dict[str, Any]) -> None:
    skips = [
        skip
        for r in resources.values()
        for skip in r.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"])
        assert len(skip["comment"]) > 40, skip


def test_no_role_may_read_every_queue_in_the_account(resources: dict[str, Any]) -> None:
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if any(str(a).startswith("sqs:") for a in statement["Action"]):
                    assert statement["Resource"] != "*", name


def test_the_lambda_zip_ships_exactly_the_locked_packages(
    prod_package: tuple[dict[str, Any], Path],
) -> None:
    assert lock_drift(prod_package[1] / "deployment.zip") == []


def test_the_lambda_zip_ships_bytecode_python_loads_without_its_sources_times(
    prod_package: tuple[dict[str, Any], Path],
) -> None:
    """/var/task is read-only: a module without bytecode in the zip is compiled at every cold
    start. Each of Salon's modules has its unchecked-hash .pyc for the functions' Python, and
    nothing stale from a working tree's __pycache__ is shipped."""
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(prod_package[1] / "deployment.zip") as archive:
        names = set(archive.namelist())
        ours = sorted(n for n in names if n == "app.py" or n.startswith("chalicelib/"))
        sources = [n for n in ours if n.endswith(".py")]
        for source in sources:
            folder, _, module = source.rpartition("/")
            pyc = f"{folder + '/' if folder else ''}__pycache__/{module[:-3]}.{tag}.pyc"
            header = archive.read(pyc)[:16]
            assert header[:4] == importlib.util.MAGIC_NUMBER, pyc
            assert int.from_bytes(header[4:8], "little") == 0b01, pyc  # hash-based, unchecked
        assert all(n.endswith(f".{tag}.pyc") for n in names if n.endswith(".pyc"))
        # Lambda's limit on a function's unzipped code.
        assert sum(i.file_size for i in archive.infolist()) < 250 * 1024 * 1024
    assert len(sources) > 40


# Run with -S (no site-packages, so nothing from this venv) and the system's zone files hidden:
# zoneinfo can then only find a zone in the `tzdata` package, and only in the folder given.
RESOLVE_ZONE = """
import sys
sys.path[:0] = sys.argv[1:]
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
zone = ZoneInfo("America/Los_Angeles")
summer = datetime(2026, 7, 1, 12, tzinfo=timezone.utc).astimezone(zone)
import tzdata
print(summer.utcoffset().total_seconds() / 3600, tzdata.__file__)
"""


def resolve_zone(*path: str, tzpath: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONTZPATH": str(tzpath)}
    environment.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, "-S", "-c", RESOLVE_ZONE, *path],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_lambda_zip_carries_the_iana_zones_quiet_hours_use(
    prod_package: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    """Quiet hours are kept in the member's IANA zone (zoneinfo). Lambda's runtime has no
    system zone files to count on, so the zip ships `tzdata`: from the unzipped package alone,
    with the system's zones hidden, "America/Los_Angeles" resolves (UTC-7 in July)."""
    task, no_zones = tmp_path / "task", tmp_path / "no-zones"
    no_zones.mkdir()
    with zipfile.ZipFile(prod_package[1] / "deployment.zip") as archive:
        archive.extractall(task)
    found = resolve_zone(str(task), tzpath=no_zones)
    assert found.returncode == 0, found.stderr
    offset, origin = found.stdout.split()
    assert float(offset) == -7.0
    assert Path(origin).is_relative_to(task)
    # The same check without the package fails: it is the zip's data that answered.
    missing = resolve_zone(tzpath=no_zones)
    assert missing.returncode != 0 and "ZoneInfoNotFoundError" in missing.stderr
