"""The mended moto: a cancelled transaction still leaves its items as they were, and a
condition parsed once is judged afresh against each item and each set of values."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.comparisons import ConditionExpressionParser
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


def claim(pk: str, now: int) -> dict[str, Any]:
    """A put allowed where the item is missing or has lapsed, as the gateway claims."""
    return {
        "Put": {
            "TableName": TABLE,
            "Item": {"pk": {"S": pk}, "until": {"N": str(now + 10)}},
            "ConditionExpression": "attribute_not_exists(pk) OR #until < :now",
            "ExpressionAttributeNames": {"#until": "until"},
            "ExpressionAttributeValues": {":now": {"N": str(now)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


def test_one_condition_is_judged_for_each_item_and_each_value(dynamodb: Any) -> None:
    dynamodb.transact_write_items(TransactItems=[claim("held", 100)])

    # Same expression, names and values for every item: one of them stands in the way.
    with pytest.raises(ClientError) as cancelled:
        dynamodb.transact_write_items(
            TransactItems=[claim("first", 105), claim("held", 105), claim("last", 105)]
        )
    reasons = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed", "None"]
    assert item(dynamodb, "first") is None

    # The same expression with a later value: the claim on "held" has lapsed.
    dynamodb.transact_write_items(TransactItems=[claim("first", 111), claim("held", 111)])
    assert item(dynamodb, "held") == {"pk": {"S": "held"}, "until": {"N": "121"}}


def test_a_set_added_to_after_a_condition_named_it_leaves_the_condition_as_it_was(
    dynamodb: Any,
) -> None:
    condition = {
        "ConditionExpression": "attribute_not_exists(tags) OR tags = :v",
        "ExpressionAttributeValues": {":v": {"SS": ["a"]}},
    }
    key = {"pk": {"S": "first"}}
    dynamodb.update_item(
        TableName=TABLE, Key=key, UpdateExpression="SET tags = :v", **condition
    )
    # moto keeps the request's set in the item and adds to it in place.
    dynamodb.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="ADD tags :w",
        ExpressionAttributeValues={":w": {"SS": ["b"]}},
    )
    dynamodb.put_item(
        TableName=TABLE, Item={"pk": {"S": "second"}, "tags": {"SS": ["a"]}}
    )

    dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": "second"}},
        UpdateExpression="SET seen = :v",
        **condition,
    )

    assert item(dynamodb, "second")["seen"] == {"SS": ["a"]}


def test_no_condition_and_the_text_none_are_told_apart(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "plain"}})

    with pytest.raises(ClientError, match="reserved keyword: None"):
        dynamodb.put_item(
            TableName=TABLE, Item={"pk": {"S": "plain"}}, ConditionExpression="None"
        )


def test_an_invalid_condition_fails_as_in_moto_every_time(dynamodb: Any) -> None:
    broken = claim("any", 1)
    broken["Put"]["ConditionExpression"] = "attribute_not_exists(pk) OR"

    for _ in range(2):  # a parse that failed is not kept
        with pytest.raises(ValueError, match="Bad OR expression"):
            dynamodb.transact_write_items(TransactItems=[broken])
    assert item(dynamodb, "any") is None


def test_mends_are_undone_when_the_block_ends() -> None:
    original = DynamoDBBackend.transact_write_items
    original_parse = ConditionExpressionParser.parse

    with dynamodb_mended():
        mended = DynamoDBBackend.transact_write_items
        mended_parse = ConditionExpressionParser.parse

    assert mended is not original
    assert mended_parse is not original_parse
    assert DynamoDBBackend.transact_write_items is original
    assert ConditionExpressionParser.parse is original_parse
