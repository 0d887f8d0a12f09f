"""Push, for integration tests: REST calls as a member, a device, and the notifications queue
run through its handler."""

from __future__ import annotations

import json
from typing import Any

import boto3

from local.outbox import point_push_events_at
from local.sns_events import lambda_sns_event
from tests.support import contract
from tests.support.crowd import Crowd, Person
from tests.support.events import sqs_event

NOTIFICATIONS = "salon-notifications"


def auth(person: Person) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}", "Content-Type": "application/json"}


def rest(crowd: Crowd, method: str, path: str, person: Person, payload: Any = None) -> Any:
    """A request as the member; the answer must be one docs/openapi.yaml documents."""
    body = json.dumps(payload) if payload is not None else None
    answer = crowd.client.http.request(method, path, headers=auth(person), body=body)
    template = contract.operation_for(method, path.split("?", 1)[0]).path
    contract.validate_response(method, template, answer.status_code, answer.json_body)
    return answer


def device(crowd: Crowd, person: Person, platform: str = "apns") -> str:
    token = f"{person.name}-{platform}-token-0123456789abcdef"
    answer = rest(crowd, "POST", "/me/devices", person, {"platform": platform, "token": token})
    assert answer.status_code == 201, answer.body
    return token


def drain(crowd: Crowd) -> int:
    """Run the notifications queue dry through its handler, delays elapsed."""
    queue = crowd.svc.notifications_queue
    handled = 0
    while queue.pending:
        batch = [m for _, m in queue.pending]
        queue.pending.clear()
        for message in batch:
            handle(crowd, message)
            handled += 1
    return handled


def handle(crowd: Crowd, message: dict[str, Any]) -> None:
    """One queued message through the notifications function; it must not fail."""
    assert run_batch(crowd, sqs_event([message], NOTIFICATIONS)) == []


def run_batch(crowd: Crowd, event: dict[str, Any]) -> list[str]:
    """An SQS batch through the notifications function: the ids of the messages it reports
    failed (its partial batch response), as Lambda would read them."""
    answer = crowd.client.lambda_.invoke("notifications", event).payload
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


# --- SNS's endpoint events ---------------------------------------------------------------------


def endpoints_for(token: str) -> list[str]:
    """The SNS endpoints that hold a device token, on every platform application."""
    sns = boto3.client("sns", region_name="us-east-1")
    found = []
    for app in sns.list_platform_applications()["PlatformApplications"]:
        arn = app["PlatformApplicationArn"]
        for endpoint in sns.list_endpoints_by_platform_application(PlatformApplicationArn=arn)[
            "Endpoints"
        ]:
            if endpoint["Attributes"].get("Token") == token:
                found.append(endpoint["EndpointArn"])
    return found


def report_endpoint_events_to(topic_arn: str, applications: dict[str, str]) -> str:
    """What the runbook has an operator do: point each platform application's endpoint events
    at the stage's topic. SNS then delivers them to the topic's subscribers; here an SQS queue
    is subscribed too, so the test reads the notification exactly as moto's SNS sends it.
    Answers that queue's URL."""
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    point_push_events_at(topic_arn, list(applications.values()))
    queue_url = sqs.create_queue(QueueName="endpoint-events-seen")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    return str(queue_url)


def delivered_notifications(queue_url: str) -> list[dict[str, Any]]:
    """The SNS notifications (JSON envelopes) the topic delivered, taken off the queue."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    found = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        found += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)
            ],
        )
    return found


def report(crowd: Crowd, notification: dict[str, Any]) -> None:
    """One endpoint event through the function subscribed to the topic."""
    crowd.client.lambda_.invoke("push_endpoint_events", lambda_sns_event(notification))
