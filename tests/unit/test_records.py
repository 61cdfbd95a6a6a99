"""Inference records in DynamoDB (moto in-process): links that must not be lost."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from gateway.aws import clients, records
from gateway.models.records import Delivery, InferenceRecord, Status

TABLE = "inference-records-test"
OUTPUT = "s3://bucket/outputs/5b0e.out"
FAILURE = "s3://bucket/failures/5b0e-error.out"


@pytest.fixture
def inferences() -> Iterator[records.InferenceRecords]:
    with mock_aws():
        clients.reset()
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        store = records.InferenceRecords(dynamodb, TABLE, 30)
        store.create(pending("inf-1", created_at=1))
        yield store


def pending(inference_id: str, created_at: int) -> InferenceRecord:
    return InferenceRecord(
        inference_id=inference_id,
        endpoint="echo",
        status=Status.PENDING,
        created_at=created_at,
        updated_at=created_at,
        request_ttl_seconds=60,
        invocation_timeout_seconds=60,
        delivery=Delivery.NONE,
    )


def test_link_survives_a_failed_transaction(inferences, monkeypatch):
    def refuse(**kwargs: Any) -> None:
        error = {"Error": {"Code": "InternalServerError", "Message": "try again"}}
        raise ClientError(error, "TransactWriteItems")

    monkeypatch.setattr(inferences.client, "transact_write_items", refuse)

    early = inferences.link_submission("inf-1", OUTPUT, FAILURE, now=2)

    assert early == []
    assert inferences.record_arrival(OUTPUT, now=3) == "inf-1"
    assert inferences.get("inf-1").output_location == OUTPUT


def test_object_that_landed_before_its_link_is_returned_to_replay(inferences):
    inferences.record_arrival(FAILURE, now=2)

    early = inferences.link_submission("inf-1", OUTPUT, FAILURE, now=3)

    assert early == [FAILURE]


def test_a_late_failure_of_an_earlier_submission_leaves_a_newer_record_alone(
    inferences,
):
    inferences.fail_submission("inf-1", "ThrottlingException", now=2, created_at=1)
    inferences.create(pending("inf-1", created_at=3))

    # The first failure's write, retried by botocore, lands again.
    inferences.fail_submission("inf-1", "ThrottlingException", now=4, created_at=1)

    record = inferences.get("inf-1")
    assert record is not None
    assert (record.status, record.created_at) == (Status.PENDING, 3)
