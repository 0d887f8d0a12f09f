"""SNS notifications as Lambda hands them to a subscribed function, for the local stack's
subscriptions and the tests."""

from __future__ import annotations

import uuid
from typing import Any

# The endpoint events a platform application can report to a topic (SetPlatformApplication-
# Attributes in the SNS API reference); Salon subscribes to all but EventEndpointCreated.
PUSH_EVENT_ATTRIBUTES = ("EventEndpointDeleted", "EventEndpointUpdated", "EventDeliveryFailure")


def lambda_sns_event(notification: dict[str, Any]) -> dict[str, Any]:
    """An SNS notification's JSON (as SNS delivers it to a queue) as Lambda hands it to a
    function: the record shape of the Lambda Developer Guide's example SNS event
    (docs.aws.amazon.com/lambda/latest/dg/with-sns.html), where the envelope's SigningCertURL
    and UnsubscribeURL are spelled SigningCertUrl and UnsubscribeUrl."""
    topic = notification["TopicArn"]
    sns = {
        "Type": notification["Type"],
        "MessageId": notification["MessageId"],
        "TopicArn": topic,
        "Subject": notification.get("Subject"),
        "Message": notification["Message"],
        "Timestamp": notification["Timestamp"],
        "SignatureVersion": notification["SignatureVersion"],
        "Signature": notification["Signature"],
        "SigningCertUrl": notification["SigningCertURL"],
        "UnsubscribeUrl": notification.get("UnsubscribeURL", ""),
        "MessageAttributes": notification.get("MessageAttributes", {}),
    }
    return {
        "Records": [
            {
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
                "EventSource": "aws:sns",
                "Sns": sns,
            }
        ]
    }
