"""The CloudFormation that Chalice does not write: tables, the queues, shared settings.

Each function's role is written by deploy/roles.py.

Tables come from the PynamoDB models, so the deployment, the local stack and the tests can
never disagree about a key, an index or a TTL attribute.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import TTLAttribute
from pynamodb.indexes import AllProjection, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.adapters.dynamo.models import ALL_MODELS

SCALAR = {"S": "S", "N": "N", "B": "B"}


def logical_id(model: type[Model]) -> str:
    return "Table" + model.__name__.removesuffix("Model")


def short_name(model: type[Model], prefix: str) -> str:
    return str(model.Meta.table_name).removeprefix(prefix)


def _projection(index: Any) -> dict[str, Any]:
    projection = index.Meta.projection
    if isinstance(projection, AllProjection):
        return {"ProjectionType": "ALL"}
    if isinstance(projection, KeysOnlyProjection):
        return {"ProjectionType": "KEYS_ONLY"}
    if isinstance(projection, IncludeProjection):
        return {"ProjectionType": "INCLUDE", "NonKeyAttributes": projection.non_key_attributes}
    raise ValueError(f"unknown projection {projection!r}")


def table_resource(model: type[Model], table_name: str, stage: str) -> dict[str, Any]:
    attributes = model.get_attributes()
    key_names: set[str] = set()

    def key_schema(hash_name: str, range_name: str | None) -> list[dict[str, str]]:
        schema = [{"AttributeName": hash_name, "KeyType": "HASH"}]
        key_names.add(hash_name)
        if range_name:
            schema.append({"AttributeName": range_name, "KeyType": "RANGE"})
            key_names.add(range_name)
        return schema

    properties: dict[str, Any] = {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": key_schema(model._hash_keyname, model._range_keyname),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "DeletionProtectionEnabled": stage == "prod",
        "Tags": [{"Key": "app", "Value": "salon"}, {"Key": "stage", "Value": stage}],
    }
    indexes = []
    for index in model._indexes.values():
        hash_name = next(a.attr_name for a in index.Meta.attributes.values() if a.is_hash_key)
        range_name = next(
            (a.attr_name for a in index.Meta.attributes.values() if a.is_range_key), None
        )
        indexes.append(
            {
                "IndexName": index.Meta.index_name,
                "KeySchema": key_schema(hash_name, range_name),
                "Projection": _projection(index),
            }
        )
    if indexes:
        properties["GlobalSecondaryIndexes"] = indexes
    by_name = {a.attr_name: a for a in attributes.values()}
    properties["AttributeDefinitions"] = [
        {"AttributeName": name, "AttributeType": SCALAR[by_name[name].attr_type]}
        for name in sorted(key_names)
    ]
    ttl = [a.attr_name for a in attributes.values() if isinstance(a, TTLAttribute)]
    if ttl:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl[0], "Enabled": True}
    retain = "Retain" if stage == "prod" else "Delete"
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": retain,
        "UpdateReplacePolicy": retain,
        "Properties": properties,
    }


# Each SQS handler (its logical id) and the stage's queue it reads.
QUEUE_HANDLERS = {
    "Timers": "TimersQueue",
    "Notifications": "NotificationsQueue",
    "Fanout": "FanoutQueue",
}
# The handlers that answer Lambda's partial batch response (chalicelib/edge/queues.py): only
# the messages they report failed come back. Without the setting Lambda ignores the answer
# and a batch that returns is deleted whole, the failed messages with it.
REPORTS_BATCH_ITEM_FAILURES = {"Notifications", "Fanout"}


def point_timers_at_stage_queue(template: dict[str, Any]) -> None:
    """Chalice names each queue by a fixed name; aim its event source at this stage's queue.
    (A merge template cannot: it would merge the two intrinsic functions into one.)"""
    for function, queue in QUEUE_HANDLERS.items():
        events = template["Resources"][function]["Properties"]["Events"]
        source = events[f"{function}SqsEventSource"]["Properties"]
        source["Queue"] = {"Fn::GetAtt": [queue, "Arn"]}
        if template["Resources"][queue]["Properties"].get("FifoQueue"):
            # Lambda refuses a batching window on a FIFO queue; Chalice always writes one.
            source.pop("MaximumBatchingWindowInSeconds", None)
        if function in REPORTS_BATCH_ITEM_FAILURES:
            source["FunctionResponseTypes"] = ["ReportBatchItemFailures"]


# Each SNS handler (its logical id) and the stage's topic it is subscribed to.
TOPIC_HANDLERS = {"PushEndpointEvents": "PushEventsTopic"}


def point_handlers_at_stage_topics(template: dict[str, Any]) -> None:
    """As for queues: Chalice subscribes each SNS handler to a topic by a fixed name; subscribe
    it to this stage's topic instead (a Ref to a topic is its ARN)."""
    for function, topic in TOPIC_HANDLERS.items():
        events = template["Resources"][function]["Properties"]["Events"]
        events[f"{function}SnsSubscription"]["Properties"]["Topic"] = {"Ref": topic}


def push_events_topic(stage: str) -> dict[str, Any]:
    """Where the stage's push platform applications report endpoint events (an operator sets
    EventEndpointDeleted, EventEndpointUpdated and EventDeliveryFailure to it: runbook)."""
    return {
        "Type": "AWS::SNS::Topic",
        "Metadata": {
            "checkov": {
                "skip": [
                    {
                        "id": "CKV_AWS_26",
                        "comment": "Endpoint events carry endpoint and application ARNs only, "
                        "no token or personal data: not worth a customer managed key whose "
                        "policy would have to let SNS publish to the topic.",
                    }
                ]
            }
        },
        "Properties": {
            "TopicName": f"salon-{stage}-push-events",
            "Tags": [{"Key": "app", "Value": "salon"}, {"Key": "stage", "Value": stage}],
        },
    }


def push_application_arn(platform: str, stage: str) -> dict[str, str]:
    """The SNS platform application an operator creates for each platform (docs/runbook.md),
    by a name the stage fixes, so the template can name it without a parameter."""
    return {
        "Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:app/"
        f"{platform}/salon-{stage}-{platform.lower()}"
    }


def wire_websocket_stage(template: dict[str, Any]) -> None:
    """Every function posts to @connections on the stage the template really creates. Chalice
    names it after `api_gateway_stage`; a Ref to the stage would be circular (the stage depends
    on the functions through its routes), so its name is copied here, from the one place."""
    stage = template["Resources"]["WebsocketAPIStage"]["Properties"]["StageName"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    variables["WEBSOCKET_STAGE"] = stage


PHOTOS_PREFIX = "photos/"


def photos_bucket(stage: str) -> dict[str, Any]:
    """Profile photos: uploaded by the members' browsers with presigned POST forms (hence CORS
    for POST), read by anyone who has a photo's URL (they are shown to every member, and keys
    are unguessable), written and deleted only by the REST function (deploy/roles.py)."""
    arn = {"Fn::GetAtt": ["PhotosBucket", "Arn"]}
    return {
        "PhotosBucket": {
            "Type": "AWS::S3::Bucket",
            "Metadata": {
                "checkov": {
                    "skip": [
                        {
                            "id": "CKV_AWS_21",
                            "comment": "No versioning: a replaced or erased photo must be gone, "
                            "not kept as an old version.",
                        },
                        {
                            "id": "CKV_AWS_18",
                            "comment": "Public profile photos; reads are not worth access logs.",
                        },
                        {
                            "id": "CKV_AWS_54",
                            "comment": "The bucket policy makes photos/* readable by anyone on "
                            "purpose (profile photos); ACLs stay blocked.",
                        },
                        {
                            "id": "CKV_AWS_56",
                            "comment": "Public reads of photos/* through the bucket policy are "
                            "the point (profile photos); ACLs stay blocked.",
                        },
                    ]
                }
            },
            "Properties": {
                "BucketName": {"Fn::Sub": f"salon-{stage}-photos-${{AWS::AccountId}}"},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                # Objects are public through the bucket policy below, never through ACLs.
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": False,
                    "RestrictPublicBuckets": False,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "CorsConfiguration": {
                    "CorsRules": [
                        {
                            "AllowedMethods": ["POST"],
                            "AllowedOrigins": ["*"],
                            "AllowedHeaders": ["*"],
                            "MaxAge": 3600,
                        }
                    ]
                },
                "Tags": [{"Key": "app", "Value": "salon"}, {"Key": "stage", "Value": stage}],
            },
        },
        "PhotosBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": "PhotosBucket"},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ReadPhotos",
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "s3:GetObject",
                            "Resource": {"Fn::Join": ["", [arn, "/" + PHOTOS_PREFIX + "*"]]},
                        },
                        {
                            "Sid": "TlsOnly",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [arn, {"Fn::Join": ["", [arn, "/*"]]}],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        },
                    ],
                },
            },
        },
    }


def merge_template(stage: str) -> dict[str, Any]:
    prefix = f"salon-{stage}-"
    tables: dict[str, Any] = {}
    # The models were named with this process's prefix; the stage's own prefix replaces it.
    from chalicelib.config import settings

    local_prefix = settings().table_prefix
    for model in ALL_MODELS:
        name = prefix + short_name(model, local_prefix)
        tables[logical_id(model)] = table_resource(model, name, stage)
    return {
        "Globals": {
            "Function": {
                "Environment": {
                    "Variables": {
                        # REST, scheduled and admin Lambdas post to sockets too (FACTS: #1991).
                        "WEBSOCKET_API_ID": {"Ref": "WebsocketAPI"},
                        "SALON_TABLE_PREFIX": prefix,
                        "SALON_TIMERS_QUEUE_URL": {"Ref": "TimersQueue"},
                        "SALON_PHOTOS_BUCKET": {"Ref": "PhotosBucket"},
                        "SALON_PHOTOS_URL": {
                            "Fn::Sub": "https://${PhotosBucket.RegionalDomainName}"
                        },
                        "SALON_NOTIFICATIONS_QUEUE_URL": {"Ref": "NotificationsQueue"},
                        "SALON_FANOUT_QUEUE_URL": {"Ref": "FanoutQueue"},
                        "SALON_PUSH_APNS_APPLICATION_ARN": push_application_arn("APNS", stage),
                        "SALON_PUSH_FCM_APPLICATION_ARN": push_application_arn("GCM", stage),
                    }
                }
            }
        },
        # The operator points the platform applications' event attributes at it (runbook).
        "Outputs": {"PushEventsTopicArn": {"Value": {"Ref": "PushEventsTopic"}}},
        "Resources": {
            **tables,
            **photos_bucket(stage),
            "PushEventsTopic": push_events_topic(stage),
            "TimersQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": f"salon-{stage}-timers",
                    # Six times the handler's timeout, as AWS advises for SQS event sources.
                    "VisibilityTimeout": 5400,
                    "SqsManagedSseEnabled": True,
                },
            },
            "NotificationsQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": f"salon-{stage}-notifications",
                    "VisibilityTimeout": 5400,
                    "SqsManagedSseEnabled": True,
                },
            },
            # A big room's posts, in chunks (chalicelib/services/fanout.py): FIFO, so that
            # each message group (a share of one room's sockets) is posted in the order sent.
            # High-throughput FIFO: the limit is per group, and groups are many. Six times the
            # fan-out function's 30 s timeout.
            "FanoutQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": f"salon-{stage}-fanout.fifo",
                    "FifoQueue": True,
                    "DeduplicationScope": "messageGroup",
                    "FifoThroughputLimit": "perMessageGroupId",
                    "VisibilityTimeout": 180,
                    "SqsManagedSseEnabled": True,
                },
            },
        },
    }
