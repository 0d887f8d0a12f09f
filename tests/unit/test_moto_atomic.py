"""The emulator's transactions (local/moto_atomic.py, installed by tests/conftest.py and the local
stack): a cancelled TransactWriteItems leaves every item it named as it was, as on DynamoDB,
without moto copying the tables it touches."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.table import Table

from local import moto_atomic

TABLE = "atomic-test"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for pk, version in (("a", "1"), ("c", "1")):
            client.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "v": {"N": version}})
        yield client


@pytest.fixture
def table_copies(monkeypatch: pytest.MonkeyPatch) -> list[Table]:
    copied: list[Table] = []

    def deepcopy(table: Table, memo: Any) -> Table:
        copied.append(table)
        fresh = Table.__new__(Table)
        fresh.__dict__.update(copy.deepcopy(vars(table), memo))
        return fresh

    monkeypatch.setattr(Table, "__deepcopy__", deepcopy, raising=False)
    return copied


def cancelled_transaction(client: Any, failing_first: bool) -> ClientError:
    writes: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": TABLE,
                "Key": {"pk": {"S": "a"}},
                "UpdateExpression": "SET v = :two",
                "ExpressionAttributeValues": {":two": {"N": "2"}},
            }
        },
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "b"}, "v": {"N": "1"}}}},
        {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "c"}}}},
    ]
    check = {
        "ConditionCheck": {
            "TableName": TABLE,
            "Key": {"pk": {"S": "missing"}},
            "ConditionExpression": "attribute_exists(pk)",
        }
    }
    items = [check, *writes] if failing_first else [*writes, check]
    with pytest.raises(ClientError) as raised:
        client.transact_write_items(TransactItems=items)
    return raised.value


def table_as_is(client: Any) -> dict[str, str]:
    rows = client.scan(TableName=TABLE)["Items"]
    return {row["pk"]["S"]: row["v"]["N"] for row in rows}


@pytest.mark.parametrize("failing_first", [True, False])
def test_a_cancelled_transaction_leaves_every_item_it_named_as_it_was(
    dynamodb: Any, table_copies: list[Table], failing_first: bool
) -> None:
    error = cancelled_transaction(dynamodb, failing_first)
    assert error.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in error.response["CancellationReasons"]]
    expected = ["None"] * 3
    expected.insert(0 if failing_first else 3, "ConditionalCheckFailed")
    assert reasons == expected
    assert table_as_is(dynamodb) == {"a": "1", "c": "1"}
    assert table_copies == []


def test_the_rollback_copies_no_table_where_moto_s_own_copies_it_for_every_item(
    dynamodb: Any, table_copies: list[Table]
) -> None:
    cancelled_transaction(dynamodb, failing_first=False)
    assert table_copies == []
    with moto_atomic.whole_table_copies():
        cancelled_transaction(dynamodb, failing_first=False)
    assert len(table_copies) == 4  # moto copies the table once for each item it names
    assert table_as_is(dynamodb) == {"a": "1", "c": "1"}


def test_a_transaction_that_succeeds_writes_every_item(dynamodb: Any) -> None:
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "b"}, "v": {"N": "1"}}}},
            {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "c"}}}},
        ]
    )
    assert table_as_is(dynamodb) == {"a": "1", "b": "1"}
