"""The mended moto: a cancelled transaction still leaves its items as they were."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from offline.moto_server import dynamodb_mended

TABLE = "records"


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    """A table in an in-process moto with the mends applied."""
    with mock_aws(), dynamodb_mended():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(
            TableName=TABLE, Item={"pk": {"S": "record"}, "status": {"S": "pending"}}
        )
        client.put_item(
            TableName=TABLE, Item={"pk": {"S": "place"}, "arrivedAt": {"N": "1"}}
        )
        yield client


def update(pk: str, expression: str, **extra: Any) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": TABLE,
            "Key": {"pk": {"S": pk}},
            "UpdateExpression": expression,
            **extra,
        }
    }


def item(client: Any, pk: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = client.get_item(
        TableName=TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True
    ).get("Item")
    return found


def test_cancelled_transaction_leaves_every_item_as_it_was(dynamodb: Any) -> None:
    actions = [
        update(
            "record",
            "SET #s = :done",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":done": {"S": "done"}},
        ),
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "new"}}}},
        update(
            "place",
            "SET inferenceId = :id",
            ConditionExpression="attribute_not_exists(arrivedAt)",
            ExpressionAttributeValues={":id": {"S": "abc"}},
        ),
    ]

    with pytest.raises(ClientError, match="TransactionCanceledException"):
        dynamodb.transact_write_items(TransactItems=actions)

    assert item(dynamodb, "record") == {
        "pk": {"S": "record"},
        "status": {"S": "pending"},
    }
    assert item(dynamodb, "new") is None
    assert item(dynamodb, "place") == {"pk": {"S": "place"}, "arrivedAt": {"N": "1"}}


def test_transaction_that_holds_is_applied_whole(dynamodb: Any) -> None:
    actions = [
        update(
            "record",
            "SET #s = :done",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":done": {"S": "done"}},
        ),
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "new"}}}},
    ]

    dynamodb.transact_write_items(TransactItems=actions)

    assert item(dynamodb, "record") == {"pk": {"S": "record"}, "status": {"S": "done"}}
    assert item(dynamodb, "new") == {"pk": {"S": "new"}}


def test_mends_are_undone_when_the_block_ends() -> None:
    original = DynamoDBBackend.transact_write_items

    with dynamodb_mended():
        mended = DynamoDBBackend.transact_write_items

    assert mended is not original
    assert DynamoDBBackend.transact_write_items is original
