"""The recorder names each AWS call as IAM authorizes it: one action per item, on the ARN of the
table, index, parameter, queue or connection it touches."""

from __future__ import annotations

from local.aws_calls import authorizations

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/"


def authorize(service: str, operation: str, params: dict[str, object], url: str = "") -> list:
    return list(authorizations(service, service, operation, params, "us-east-1", url))


def test_a_transaction_is_authorized_item_by_item_on_each_items_table() -> None:
    calls = authorize(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "salon-dev-tips"}},
                {"Update": {"TableName": "salon-dev-ledger"}},
                {"ConditionCheck": {"TableName": "salon-dev-users"}},
                {"Delete": {"TableName": "salon-dev-tips"}},
            ]
        },
    )
    assert calls == [
        ("dynamodb:PutItem", TABLE + "salon-dev-tips"),
        ("dynamodb:UpdateItem", TABLE + "salon-dev-ledger"),
        ("dynamodb:ConditionCheckItem", TABLE + "salon-dev-users"),
        ("dynamodb:DeleteItem", TABLE + "salon-dev-tips"),
    ]


def test_a_query_on_an_index_is_authorized_on_the_index() -> None:
    calls = authorize(
        "dynamodb", "Query", {"TableName": "salon-dev-tips", "IndexName": "by_sender"}
    )
    assert calls == [("dynamodb:Query", TABLE + "salon-dev-tips/index/by_sender")]


def test_a_batch_get_is_authorized_on_every_table_it_reads() -> None:
    calls = authorize("dynamodb", "BatchGetItem", {"RequestItems": {"a": {}, "b": {}}})
    assert calls == [("dynamodb:BatchGetItem", TABLE + "a"), ("dynamodb:BatchGetItem", TABLE + "b")]


def test_a_parameter_is_authorized_on_its_path() -> None:
    calls = authorize("ssm", "GetParameter", {"Name": "/salon/dev/jwt-secret"})
    assert calls == [
        ("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/salon/dev/jwt-secret")
    ]


def test_a_post_to_a_connection_is_authorized_on_the_api_and_stage_it_was_sent_to() -> None:
    deployed = authorize(
        "apigatewaymanagementapi",
        "PostToConnection",
        {"ConnectionId": "abc="},
        "https://a1b2c3.execute-api.us-east-1.amazonaws.com/api",
    )
    local = authorize(
        "apigatewaymanagementapi",
        "DeleteConnection",
        {"ConnectionId": "x="},
        "http://127.0.0.1:9/ws",
    )
    assert deployed == [
        (
            "execute-api:ManageConnections",
            "arn:aws:execute-api:us-east-1:123456789012:a1b2c3/api/POST/@connections/abc=",
        )
    ]
    assert local == [
        (
            "execute-api:ManageConnections",
            "arn:aws:execute-api:us-east-1:123456789012:local/ws/DELETE/@connections/x=",
        )
    ]


def test_a_message_is_authorized_on_its_queue() -> None:
    calls = authorize(
        "sqs", "SendMessage", {"QueueUrl": "http://h:1/123456789012/salon-dev-timers"}
    )
    assert calls == [("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:salon-dev-timers")]


def test_an_sqs_batch_is_authorized_as_its_single_action() -> None:
    """SQS has no SendMessageBatch permission: SendMessage grants both (the SQS guide,
    "Amazon SQS batch actions")."""
    queue = {"QueueUrl": "http://h:1/123456789012/q"}
    arn = "arn:aws:sqs:us-east-1:123456789012:q"
    assert authorize("sqs", "SendMessageBatch", queue) == [("sqs:SendMessage", arn)]
    assert authorize("sqs", "DeleteMessageBatch", queue) == [("sqs:DeleteMessage", arn)]


def test_an_ivs_stage_call_is_authorized_on_its_stage() -> None:
    stage = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf012345"
    assert authorize("ivs-realtime", "DisconnectParticipant", {"stageArn": stage}) == [
        ("ivs:DisconnectParticipant", stage)
    ]
    assert authorize("ivs-realtime", "DeleteStage", {"arn": stage}) == [("ivs:DeleteStage", stage)]


def test_creating_a_tagged_ivs_stage_is_also_a_tag_resource_on_a_new_stage() -> None:
    new = "arn:aws:ivs:us-east-1:123456789012:stage/*"
    assert authorize("ivs-realtime", "CreateStage", {"name": "x", "tags": {"salon:room": "r"}}) == [
        ("ivs:CreateStage", new),
        ("ivs:TagResource", new),
    ]


def test_an_object_call_is_authorized_on_the_object_and_a_head_also_on_listing_its_bucket() -> None:
    key = {"Bucket": "salon-dev-photos", "Key": "photos/u/a.png"}
    obj = "arn:aws:s3:::salon-dev-photos/photos/u/a.png"
    assert authorize("s3", "HeadObject", key) == [
        ("s3:GetObject", obj),
        ("s3:ListBucket", "arn:aws:s3:::salon-dev-photos"),
    ]
    assert authorize("s3", "DeleteObject", key) == [("s3:DeleteObject", obj)]
