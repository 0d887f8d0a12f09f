"""The emulator's size limits (local/service_limits.py) are AWS's: read from the service models."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from local import service_limits


def dynamodb() -> object:
    return boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def put(n: int) -> dict[str, object]:
    return {"Put": {"TableName": "t", "Item": {"pk": {"S": str(n)}}}}


def refusal(client: object, operation: str, params: dict[str, object]) -> str:
    with pytest.raises(ClientError) as caught:
        service_limits.check(client, operation, params)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    return str(caught.value.response["Error"]["Message"])


def test_a_transaction_of_more_than_100_items_is_refused_as_dynamodb_does() -> None:
    client = dynamodb()
    service_limits.check(
        client, "TransactWriteItems", {"TransactItems": [put(i) for i in range(100)]}
    )
    message = refusal(client, "TransactWriteItems", {"TransactItems": [put(i) for i in range(101)]})
    assert "TransactItems has 101 members, at most 100" in message


def test_batch_totals_count_every_table() -> None:
    client = dynamodb()
    keys = [{"pk": {"S": str(i)}} for i in range(60)]
    two_tables = {"RequestItems": {"a": {"Keys": keys}, "b": {"Keys": keys}}}
    assert "120 items" in refusal(client, "BatchGetItem", two_tables)
    deletes = [{"DeleteRequest": {"Key": {"pk": {"S": str(i)}}}} for i in range(13)]
    assert "26 items" in refusal(
        client, "BatchWriteItem", {"RequestItems": {"a": deletes, "b": deletes}}
    )
    service_limits.check(
        client, "BatchWriteItem", {"RequestItems": {"a": deletes[:12], "b": deletes}}
    )


def test_installed_the_call_never_reaches_the_service() -> None:
    service_limits.install()
    client = dynamodb()
    with Stubber(client):  # no response queued: a call that got through would fail differently
        with pytest.raises(ClientError) as caught:
            client.transact_write_items(TransactItems=[put(i) for i in range(101)])  # type: ignore[attr-defined]
    assert caught.value.response["Error"]["Code"] == "ValidationException"
