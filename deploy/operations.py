"""What operating Salon needs beyond the wiring: access logs, throttling, reserved concurrency,
dead letters, alarms, one dashboard, and checkov's suppressions, each with its reason.

Applied to the template Chalice packaged (one call from deploy/package.py), so it sees every
function, API and queue under the names the deployment really uses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from deploy.template import QUEUE_HANDLERS

FUNCTION = "AWS::Serverless::Function"
ALARM = "AWS::CloudWatch::Alarm"
LAMBDA_NAMESPACE = "AWS/Lambda"
# Salon's own metrics, as Powertools writes them (EMF): the namespace the functions are given
# (POWERTOOLS_METRICS_NAMESPACE in .chalice/config.json) and the one dimension Metrics adds.
SALON_DIMENSIONS = {"service": "salon"}


@dataclass(frozen=True)
class Limits:
    """Requests per second (steady, burst) a stage accepts before API Gateway answers 429."""

    rest_rate: int
    rest_burst: int
    websocket_rate: int
    websocket_burst: int
    log_retention_days: int


LIMITS = {
    "dev": Limits(rest_rate=20, rest_burst=40, websocket_rate=50, websocket_burst=100,
                  log_retention_days=14),
    "prod": Limits(rest_rate=500, rest_burst=1000, websocket_rate=1000, websocket_burst=2000,
                   log_retention_days=90),
}  # fmt: skip

# Access log lines: who asked what and how it went. Only $context variables that carry neither
# a header nor the query string: the WebSocket token travels in the query string, REST tokens
# in the Authorization header. resourcePath is the route template (`/users/{user_id}`), so no
# ids either.
REST_ACCESS_LOG = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "protocol": "$context.protocol",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency",
    "error": "$context.error.message",
    "errorType": "$context.error.responseType",
}
WEBSOCKET_ACCESS_LOG = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTime",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "connectionId": "$context.connectionId",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "integrationLatency": "$context.integrationLatency",
    "error": "$context.error.message",
}

# A runaway here costs money or Stripe's rate limit: one invocation at a time each. (Runs are
# exactly-once per stipend row, so two functions overlapping is safe; the cap is for storms.)
RESERVED_CONCURRENCY = {"PayoutsMonthly": 1, "PayoutsCatchUp": 1, "AdminRunPayouts": 1}

# Invoked asynchronously (by EventBridge schedules): these get retries, an age limit and a DLQ.
ASYNC_RETRIES = 2
ASYNC_MAX_AGE_S = 6 * 3600
DEAD_LETTER_RETENTION_S = 14 * 24 * 3600  # SQS's maximum: two weeks to look at a failure
TIMERS_MAX_RECEIVES = 5

# Salon's alarmed metrics: (alarm logical id, metric, threshold, period seconds, what it means).
CUSTOM_ALARMS = (
    ("PayoutFailuresAlarm", "PayoutsFailed", 1, 300,
     "A payout run finished with failed stipends: read the run record (docs/runbook.md)."),
    ("WebhookSignatureFailuresAlarm", "WebhookSignatureFailures", 3, 900,
     "Stripe webhooks refused for their signature: a rotated secret or forged deliveries."),
)  # fmt: skip

# Actions that AWS does not scope to a resource: a statement granting them must say "*".
NO_RESOURCE_LEVEL = {
    "xray:PutTraceSegments": "X-Ray accepts segments with no resource-level permission",
    "xray:PutTelemetryRecords": "X-Ray accepts telemetry with no resource-level permission",
    "sns:Publish": "SMS to a phone number has no resource ARN to name",
}


def _reasons() -> dict[str, str]:
    return {
        "CKV_AWS_115": (
            "Request-serving and operator functions are bounded by stage throttling and by "
            "hand; a reservation would cap them and take from the account's unreserved pool. "
            "The timers function also flushes every room's audience count, so it is not "
            "capped either; payout continuations it runs are paced and exactly-once. Payout "
            "functions are reserved (RESERVED_CONCURRENCY)."
        ),
        "CKV_AWS_116": (
            "Invoked synchronously (API Gateway, SQS polling, the console): a Lambda DLQ only "
            "ever receives asynchronous invocations. Failures reach the caller; the timers "
            "queue has its own redrive to a dead-letter queue."
        ),
        "CKV_AWS_117": (
            "No private resource to reach: the functions call public AWS endpoints and Stripe. "
            "A VPC would add NAT gateways and cold-start cost and protect nothing."
        ),
        "CKV_AWS_173": (
            "The environment holds names and SSM parameter paths, never secrets (they are read "
            "from SSM at run time); Lambda encrypts it at rest with its AWS managed key."
        ),
        "CKV_AWS_119": (
            "Encrypted at rest with the AWS managed KMS key (SSEEnabled); a customer managed "
            "key would add a key policy to maintain and no protection inside one account."
        ),
        "CKV_AWS_120": (
            "Every response depends on the caller's bearer token and changes at once (rooms, "
            "tips): a stage cache would serve one member's answer to another or stale data."
        ),
        "CKV_AWS_27": (
            "Encrypted with SQS managed SSE (SqsManagedSseEnabled); checkov 3.3 only recognises "
            "KmsMasterKeyId (a known false positive, see FACTS.md)."
        ),
        "CKV_AWS_158": (
            "Access logs are encrypted by CloudWatch Logs at rest and hold no token, body or "
            "SDP by construction (their format is tested); a customer managed key adds a key "
            "policy and nothing more."
        ),
        "CKV_AWS_26": (
            "Alarm notifications carry alarm names and states only; CloudWatch cannot publish "
            "to a topic encrypted with the AWS managed SNS key, and a customer managed key just "
            "for this adds a key policy to maintain."
        ),
    }


# Which suppressions apply to which resource types. IAM's CKV_AWS_111 is decided per
# statement, in _iam_suppression: only actions AWS cannot scope are excused.
SUPPRESSED = {
    FUNCTION: ("CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"),
    "AWS::DynamoDB::Table": ("CKV_AWS_119",),
    "AWS::Serverless::Api": ("CKV_AWS_120",),
    "AWS::SQS::Queue": ("CKV_AWS_27",),
    "AWS::Logs::LogGroup": ("CKV_AWS_158",),
    "AWS::SNS::Topic": ("CKV_AWS_26",),
}


def add_operations(template: dict[str, Any], stage: str) -> None:
    """Everything operating Salon needs, added to a packaged template in place."""
    resources: dict[str, Any] = template["Resources"]
    limits = LIMITS[stage]
    _access_logs_and_throttling(resources, stage, limits)
    _dead_letters(resources, stage)
    for name, reserved in RESERVED_CONCURRENCY.items():
        resources[name]["Properties"]["ReservedConcurrentExecutions"] = reserved
    resources["AlarmTopic"] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"TopicName": f"salon-{stage}-alarms"},
    }
    resources.update(_alarms(resources, stage))
    resources["OperationsDashboard"] = _dashboard(resources, stage)
    _suppress(resources)


def functions(resources: dict[str, Any]) -> list[str]:
    return sorted(k for k, r in resources.items() if r["Type"] == FUNCTION)


def log_format(fields: dict[str, str]) -> str:
    return json.dumps(fields, separators=(",", ":"))


def _log_group(stage: str, api: str, limits: Limits) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Retain" if stage == "prod" else "Delete",
        "UpdateReplacePolicy": "Retain" if stage == "prod" else "Delete",
        "Properties": {
            "LogGroupName": f"/aws/apigateway/salon-{stage}-{api}-access",
            "RetentionInDays": limits.log_retention_days,
        },
    }


def _access_logs_and_throttling(resources: dict[str, Any], stage: str, limits: Limits) -> None:
    resources["RestAccessLogs"] = _log_group(stage, "rest", limits)
    resources["WebsocketAccessLogs"] = _log_group(stage, "websocket", limits)
    rest = resources["RestAPI"]["Properties"]
    rest["TracingEnabled"] = True
    rest["AccessLogSetting"] = {
        "DestinationArn": {"Fn::GetAtt": ["RestAccessLogs", "Arn"]},
        "Format": log_format(REST_ACCESS_LOG),
    }
    rest["MethodSettings"] = [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": limits.rest_rate,
            "ThrottlingBurstLimit": limits.rest_burst,
            "MetricsEnabled": True,
            # Execution logs with data trace would hold request bodies and tokens.
            "DataTraceEnabled": False,
        }
    ]
    websocket = resources["WebsocketAPIStage"]["Properties"]
    websocket["AccessLogSettings"] = {
        "DestinationArn": {"Fn::GetAtt": ["WebsocketAccessLogs", "Arn"]},
        "Format": log_format(WEBSOCKET_ACCESS_LOG),
    }
    websocket["DefaultRouteSettings"] = {
        "ThrottlingRateLimit": limits.websocket_rate,
        "ThrottlingBurstLimit": limits.websocket_burst,
        "DetailedMetricsEnabled": True,
        # Data trace would log every message body: SDP and ICE included.
        "DataTraceEnabled": False,
    }


def _queue(name: str, fifo: bool = False) -> dict[str, Any]:
    """A dead-letter queue; a FIFO queue's must be FIFO too."""
    properties: dict[str, Any] = {
        "QueueName": name + (".fifo" if fifo else ""),
        "MessageRetentionPeriod": DEAD_LETTER_RETENTION_S,
        "SqsManagedSseEnabled": True,
    }
    if fifo:
        properties["FifoQueue"] = True
    return {"Type": "AWS::SQS::Queue", "Properties": properties}


# SAM event sources by how Lambda is invoked: asynchronous ones need retries and a DLQ; a
# polled queue (SQS) is synchronous and redrives on the queue itself.
ASYNC_EVENTS = {"Schedule", "CloudWatchEvent", "EventBridgeRule", "SNS", "S3"}
POLLED_EVENTS = {"SQS"}


def event_types(resources: dict[str, Any], name: str) -> set[str]:
    return {e["Type"] for e in resources[name]["Properties"].get("Events", {}).values()}


def asynchronous_functions(resources: dict[str, Any]) -> list[str]:
    """Functions that something invokes asynchronously (schedules, SNS, S3...)."""
    return [name for name in functions(resources) if event_types(resources, name) & ASYNC_EVENTS]


def _role_of(function: dict[str, Any]) -> str:
    role = function["Properties"]["Role"]
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise ValueError(f"expected the function's role as Fn::GetAtt, got {role!r}")
    return str(role["Fn::GetAtt"][0])


def _dead_letters(resources: dict[str, Any], stage: str) -> None:
    for name in QUEUE_HANDLERS:
        fifo = bool(resources[f"{name}Queue"]["Properties"].get("FifoQueue"))
        resources[f"{name}DeadLetterQueue"] = _queue(
            f"salon-{stage}-{name.lower()}-dead-letters", fifo
        )
        resources[f"{name}Queue"]["Properties"]["RedrivePolicy"] = {
            "deadLetterTargetArn": {"Fn::GetAtt": [f"{name}DeadLetterQueue", "Arn"]},
            "maxReceiveCount": TIMERS_MAX_RECEIVES,
        }
    resources["AsyncDeadLetterQueue"] = _queue(f"salon-{stage}-async-dead-letters")
    roles = set()
    for name in asynchronous_functions(resources):
        properties = resources[name]["Properties"]
        properties["DeadLetterQueue"] = {
            "Type": "SQS",
            "TargetArn": {"Fn::GetAtt": ["AsyncDeadLetterQueue", "Arn"]},
        }
        properties["EventInvokeConfig"] = {
            "MaximumRetryAttempts": ASYNC_RETRIES,
            "MaximumEventAgeInSeconds": ASYNC_MAX_AGE_S,
        }
        roles.add(_role_of(resources[name]))
    # Lambda sends a failed event to the DLQ with the function's own role (deploy/roles.py
    # gives each function one, so this runs after assign_roles): one policy on those roles.
    resources["AsyncDeadLetterPolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "SalonAsyncDeadLetters",
            "Roles": [{"Ref": role} for role in sorted(roles)],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "AsyncDeadLetters",
                        "Effect": "Allow",
                        "Action": ["sqs:SendMessage"],
                        "Resource": {"Fn::GetAtt": ["AsyncDeadLetterQueue", "Arn"]},
                    }
                ],
            },
        },
    }


def _alarm(
    description: str,
    namespace: Any,
    metric: str,
    dimensions: dict[str, Any],
    statistic: str,
    threshold: int,
    period_s: int,
) -> dict[str, Any]:
    return {
        "Type": ALARM,
        "Properties": {
            "AlarmDescription": description,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            "Statistic": statistic,
            "Period": period_s,
            "EvaluationPeriods": 1,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": "AlarmTopic"}],
            "OKActions": [{"Ref": "AlarmTopic"}],
        },
    }


def metrics_namespace(resources: dict[str, Any]) -> str:
    """The namespace every function writes its metrics to (they must agree)."""
    namespaces = {
        resources[name]["Properties"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
        for name in functions(resources)
    }
    if len(namespaces) != 1:
        raise ValueError(f"functions disagree on their metrics namespace: {sorted(namespaces)}")
    return str(namespaces.pop())


def _alarms(resources: dict[str, Any], stage: str) -> dict[str, Any]:
    alarms: dict[str, Any] = {}
    for name in functions(resources):
        for metric in ("Errors", "Throttles"):
            alarms[f"{name}{metric}Alarm"] = _alarm(
                f"salon-{stage} {name}: {metric.lower()} in the last 5 minutes.",
                LAMBDA_NAMESPACE,
                metric,
                {"FunctionName": {"Ref": name}},
                "Sum",
                1,
                300,
            )
    for queue in [*(f"{name}DeadLetterQueue" for name in QUEUE_HANDLERS), "AsyncDeadLetterQueue"]:
        alarms[f"{queue}Alarm"] = _alarm(
            f"salon-{stage}: messages waiting in {queue} (docs/runbook.md).",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}},
            "Maximum",
            1,
            300,
        )
    namespace = metrics_namespace(resources)
    for logical_id, metric, threshold, period_s, meaning in CUSTOM_ALARMS:
        alarms[logical_id] = _alarm(
            f"salon-{stage}: {meaning}",
            namespace,
            metric,
            SALON_DIMENSIONS,
            "Sum",
            threshold,
            period_s,
        )
    return alarms


def _dashboard(resources: dict[str, Any], stage: str) -> dict[str, Any]:
    """One page: alarms, Lambda errors and throttles, the APIs, payouts, webhooks, DLQs.
    The body is Fn::Sub text: ${LogicalId} becomes that resource's name at deploy time."""
    names = functions(resources)
    namespace = metrics_namespace(resources)
    salon = [part for pair in SALON_DIMENSIONS.items() for part in pair]
    rest = resources["RestAPI"]["Properties"]
    rest_api = ["ApiName", rest["DefinitionBody"]["info"]["title"], "Stage", rest["StageName"]]

    def lambda_metric(metric: str) -> list[list[str]]:
        return [[LAMBDA_NAMESPACE, metric, "FunctionName", f"${{{name}}}"] for name in names]

    def widget(title: str, metrics: list[list[str]], x: int, y: int, stat: str = "Sum") -> Any:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": "${AWS::Region}",
                "stat": stat,
                "period": 300,
                "view": "timeSeries",
                "metrics": metrics,
            },
        }

    alarm_arns = [
        f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:${{{k}}}"
        for k, r in sorted(resources.items())
        if r["Type"] == ALARM
    ]
    queues = [
        *(f"{name}DeadLetterQueue" for name in QUEUE_HANDLERS),
        "AsyncDeadLetterQueue",
        *QUEUE_HANDLERS.values(),
    ]
    body = {
        "widgets": [
            {
                "type": "alarm",
                "x": 0,
                "y": 0,
                "width": 24,
                "height": 4,
                "properties": {"title": f"salon-{stage} alarms", "alarms": alarm_arns},
            },
            widget("Lambda errors", lambda_metric("Errors"), 0, 4),
            widget("Lambda throttles", lambda_metric("Throttles"), 12, 4),
            widget(
                "REST API: requests, 4XX, 5XX",
                [["AWS/ApiGateway", m, *rest_api] for m in ("Count", "4XXError", "5XXError")],
                0,
                10,
            ),
            widget(
                "WebSocket API: connects, messages, errors",
                [
                    ["AWS/ApiGateway", m, "ApiId", "${WebsocketAPI}"]
                    for m in ("ConnectCount", "MessageCount", "ClientError", "ExecutionError")
                ],
                12,
                10,
            ),
            widget(
                "Payout runs: paid, skipped, failed",
                [
                    [namespace, m, *salon]
                    for m in ("PayoutsPaid", "PayoutsSkipped", "PayoutsFailed")
                ],
                0,
                16,
            ),
            widget(
                "Stripe webhooks: events and signature failures",
                [[namespace, "WebhookSignatureFailures", *salon]],
                12,
                16,
            ),
            widget(
                "Queues: messages waiting",
                [
                    [
                        "AWS/SQS",
                        "ApproximateNumberOfMessagesVisible",
                        "QueueName",
                        f"${{{q}.QueueName}}",
                    ]
                    for q in queues
                ],
                0,
                22,
                stat="Maximum",
            ),
        ]
    }
    return {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": f"salon-{stage}",
            "DashboardBody": {"Fn::Sub": json.dumps(body, separators=(",", ":"))},
        },
    }


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    properties = resource["Properties"]
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    if "PolicyDocument" in properties:
        documents.append(properties["PolicyDocument"])
    statements: list[dict[str, Any]] = []
    for document in documents:
        found = document.get("Statement", [])
        statements += found if isinstance(found, list) else [found]
    return statements


def _iam_suppression(resource: dict[str, Any]) -> str | None:
    """A reason to excuse CKV_AWS_111, when every action granted on "*" is one AWS cannot
    scope to a resource; None (the finding stands) otherwise."""
    unscoped: set[str] = set()
    for statement in _statements(resource):
        if statement.get("Effect") != "Allow" or statement.get("Resource") not in ("*", ["*"]):
            continue
        actions = statement["Action"]
        unscoped |= {actions} if isinstance(actions, str) else set(actions)
    if not unscoped or not unscoped <= NO_RESOURCE_LEVEL.keys():
        return None
    return "; ".join(f"{a}: {NO_RESOURCE_LEVEL[a]}" for a in sorted(unscoped))


def _skip(resource: dict[str, Any], check: str, reason: str) -> None:
    skips = resource.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", [])
    skips.append({"id": check, "comment": reason})


def _suppress(resources: dict[str, Any]) -> None:
    reasons = _reasons()
    with_dead_letters = set(asynchronous_functions(resources))
    for name, resource in resources.items():
        checks = list(SUPPRESSED.get(resource["Type"], ()))
        if resource["Type"] == FUNCTION:
            if name in with_dead_letters:
                checks.remove("CKV_AWS_116")  # these have a DLQ: nothing to excuse
            if "ReservedConcurrentExecutions" not in resource["Properties"]:
                checks.append("CKV_AWS_115")
        for check in checks:
            _skip(resource, check, reasons[check])
        if resource["Type"] in ("AWS::IAM::Role", "AWS::IAM::Policy"):
            reason = _iam_suppression(resource)
            if reason:
                _skip(resource, "CKV_AWS_111", reason)


CONTEXT_VARIABLE = re.compile(r"\$context\.[A-Za-z0-9_.]+")


def context_variables(log_format_text: str) -> set[str]:
    return set(CONTEXT_VARIABLE.findall(log_format_text))
