"""API Gateway WebSocket events, shaped as API Gateway sends them to Lambda."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

EVENT_TYPES = {"$connect": "CONNECT", "$disconnect": "DISCONNECT", "$default": "MESSAGE"}


def ws_event(
    route_key: str,
    connection_id: str,
    *,
    body: str | None = None,
    query: dict[str, str] | None = None,
    is_base64: bool = False,
) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route_key,
            "eventType": EVENT_TYPES[route_key],
            "extendedRequestId": uuid.uuid4().hex,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "messageDirection": "IN",
            "stage": "test",
            "connectedAt": now_ms,
            "requestTimeEpoch": now_ms,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
            "requestId": uuid.uuid4().hex,
            "domainName": "127.0.0.1",
            "connectionId": connection_id,
            "apiId": "local",
        },
        "isBase64Encoded": is_base64,
    }
    if route_key == "$connect":
        event["headers"] = {"Host": "127.0.0.1"}
        event["queryStringParameters"] = query
    if route_key == "$default":
        event["body"] = body
        event["requestContext"]["messageId"] = uuid.uuid4().hex
    return event


def sqs_event(
    bodies: list[dict[str, Any]], queue: str = "salon-timers", groups: list[str] | None = None
) -> dict[str, Any]:
    """An SQS batch as Lambda's event source mapping delivers it (from a FIFO queue, each
    record with its message group)."""
    arn = f"arn:aws:sqs:us-east-1:123456789012:{queue}"
    return {
        "Records": [
            {
                "messageId": uuid.uuid4().hex,
                "receiptHandle": uuid.uuid4().hex,
                "body": json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    **({"MessageGroupId": groups[index]} if groups else {}),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }
