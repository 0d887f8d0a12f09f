"""The outboxes of the embedded AWS: what moto's SNS 'sent' by SMS (per phone number) and by
mobile push (per device token), newest first."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

CODE = re.compile(r"\b(\d{6})\b")


def messages(phone: str, region: str = "us-east-1") -> list[str]:
    backend = sns_backends[DEFAULT_ACCOUNT_ID][region]
    return [text for number, text in reversed(backend.sms_messages.values()) if number == phone]


def latest_code(phone: str, region: str = "us-east-1") -> str | None:
    for text in messages(phone, region):
        match = CODE.search(text)
        if match:
            return match.group(1)
    return None


# --- push ------------------------------------------------------------------------------------


def _endpoints(token: str, region: str) -> list[Any]:
    backend = sns_backends[DEFAULT_ACCOUNT_ID][region]
    return [e for e in backend.platform_endpoints.values() if e.token == token]


def pushes(token: str, region: str = "us-east-1") -> list[dict[str, Any]]:
    """What moto's SNS 'delivered' to the device holding `token`, newest first, as that
    platform's app would read it (APNs `aps.alert`, or FCM `notification` and `data`)."""
    found: list[dict[str, Any]] = []
    for endpoint in _endpoints(token, region):
        platform = endpoint.application.platform
        for message_id, raw in endpoint.messages.items():
            document = json.loads(raw)
            if platform == "GCM":
                gcm = json.loads(document["GCM"])
                shown, data = gcm["notification"], gcm["data"]
            else:
                apns = json.loads(document.get("APNS") or document["APNS_SANDBOX"])
                shown = apns.pop("aps")["alert"]
                data = apns
            found.append(
                {
                    "message_id": message_id,
                    "platform": "fcm" if platform == "GCM" else "apns",
                    "title": shown["title"],
                    "body": shown["body"],
                    "data": data,
                }
            )
    return list(reversed(found))


def disable_device(token: str, region: str = "us-east-1") -> int:
    """What APNs or FCM reporting a dead token does to an SNS endpoint: it is disabled, and,
    as SNS does and moto does not, the change is reported to the topic the platform
    application names in its EventEndpointUpdated attribute, if any."""
    endpoints = _endpoints(token, region)
    for endpoint in endpoints:
        endpoint.attributes["Enabled"] = False
        topic = endpoint.application.attributes.get("EventEndpointUpdated")
        if topic:
            report_endpoint_event(topic, "EndpointUpdated", endpoint.arn, region)
    return len(endpoints)


def report_endpoint_event(topic_arn: str, kind: str, endpoint_arn: str, region: str) -> None:
    """An endpoint event published as SNS publishes it. The Message's fields are those AWS
    re:Post members quote from real DeliveryFailure events (EndpointArn, EventType, Resource,
    Service, Time...); Salon reads only EventType and EndpointArn."""
    import boto3

    application = endpoint_arn.replace(":endpoint/", ":app/").rsplit("/", 1)[0]
    message = {
        "EndpointArn": endpoint_arn,
        "EventType": kind,
        "Resource": application,
        "Service": "SNS",
        "Time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    platform = application.rsplit("/", 2)[-2]
    boto3.client("sns", region_name=region).publish(
        TopicArn=topic_arn,
        Subject=f"{kind} event for app {application.rsplit('/', 1)[-1]} ({platform})",
        Message=json.dumps(message),
    )


def point_push_events_at(
    topic_arn: str, application_arns: list[str], region: str = "us-east-1"
) -> None:
    """What the runbook has an operator do: create the stage's endpoint events topic if need
    be, and point each platform application's endpoint events at it."""
    import boto3

    from local.sns_events import PUSH_EVENT_ATTRIBUTES

    sns = boto3.client("sns", region_name=region)
    sns.create_topic(Name=topic_arn.rsplit(":", 1)[-1])
    for arn in application_arns:
        sns.set_platform_application_attributes(
            PlatformApplicationArn=arn, Attributes=dict.fromkeys(PUSH_EVENT_ATTRIBUTES, topic_arn)
        )


def create_push_applications(arns: list[str], region: str = "us-east-1") -> None:
    """The platform applications an operator creates (docs/runbook.md), named as the
    template's ARNs say: `arn:...:app/<platform>/<name>`."""
    import boto3

    sns = boto3.client("sns", region_name=region)
    for arn in arns:
        platform, name = arn.split(":app/", 1)[1].split("/", 1)
        sns.create_platform_application(Name=name, Platform=platform, Attributes={})
