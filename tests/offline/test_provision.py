"""The provisioner: the template's resources created in moto as the template says."""

from __future__ import annotations

import json
import string
import textwrap
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from offline.event_sources import config_from_event
from offline.provision import (
    ProvisionedResource,
    local_name,
    moto_client,
    planned_resources,
    provision,
    webhook_secret_ids,
)
from offline.template import load_template


def unique_prefix() -> str:
    """A name prefix no other test uses in the shared moto."""
    return f"t{uuid.uuid4().hex[:10]}"


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Receive (and delete) every message the queue holds right now."""
    bodies: list[dict[str, Any]] = []
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = response.get("Messages") or []
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture(scope="module")
def provisioned(moto_url: str) -> dict[str, ProvisionedResource]:
    """The project's template, provisioned once under a prefix of its own."""
    template = load_template()
    secret_values = dict.fromkeys(webhook_secret_ids(template), "s3cret-for-tests")
    return provision(
        template, moto_url, secret_values=secret_values, prefix=unique_prefix()
    )


def test_every_resource_the_functions_use_is_created(
    provisioned: dict[str, ProvisionedResource],
) -> None:
    template = load_template()
    kinds = (
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::DynamoDB::Table",
        "AWS::SecretsManager::Secret",
    )
    declared = {
        logical_id: kind
        for kind in kinds
        for logical_id in template.resources_of_type(kind)
    }

    assert {key: item.type for key, item in provisioned.items()} == declared
    assert {
        "GatewayBucket",
        "ResultsQueue",
        "ResultsDeadLetterQueue",
        "DeliveryDeadLetterQueue",
        "InferenceTable",
        "WebhookSecret",
    } <= set(provisioned)
    assert "GatewayBucketPolicy" not in provisioned
    bucket = provisioned["GatewayBucket"]
    assert bucket.ref == bucket.name
    assert bucket.name.endswith("-gatewaybucket")
    assert bucket.attributes["Arn"] == f"arn:aws:s3:::{bucket.name}"


def test_bucket_notification_sends_outputs_and_failures_to_the_queue(
    moto_url: str, provisioned: dict[str, ProvisionedResource]
) -> None:
    s3, sqs = moto_client("s3", moto_url), moto_client("sqs", moto_url)
    bucket = provisioned["GatewayBucket"].name
    queue_url = provisioned["ResultsQueue"].ref
    # S3 checks a new notification with a test event, which the consumer must skip.
    assert [body.get("Event") for body in receive_all(sqs, queue_url)] == ["s3:TestEvent"]

    for key in ("outputs/a b.out", "failures/c-error.out", "inputs/d.in", "other"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")

    records = [
        record for body in receive_all(sqs, queue_url) for record in body["Records"]
    ]
    assert sorted(unquote_plus(r["s3"]["object"]["key"]) for r in records) == [
        "failures/c-error.out",
        "outputs/a b.out",
    ]
    assert {r["eventName"] for r in records} == {"ObjectCreated:Put"}
    assert {r["s3"]["bucket"]["name"] for r in records} == {bucket}


def test_queues_have_the_template_attributes_and_redrive(
    moto_url: str, provisioned: dict[str, ProvisionedResource]
) -> None:
    sqs = moto_client("sqs", moto_url)
    attributes = sqs.get_queue_attributes(
        QueueUrl=provisioned["ResultsQueue"].ref, AttributeNames=["All"]
    )["Attributes"]

    assert attributes["VisibilityTimeout"] == "540"
    assert attributes["MessageRetentionPeriod"] == "1209600"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": provisioned["ResultsDeadLetterQueue"].arn,
        "maxReceiveCount": 5,
    }
    queue = provisioned["ResultsQueue"]
    assert queue.attributes["QueueUrl"] == queue.ref
    assert queue.attributes["Arn"] == attributes["QueueArn"]
    assert queue.ref.startswith(f"{moto_url}/")


def test_table_and_secret_follow_the_template(
    moto_url: str, provisioned: dict[str, ProvisionedResource]
) -> None:
    dynamodb = moto_client("dynamodb", moto_url)
    name = provisioned["InferenceTable"].name
    table = dynamodb.describe_table(TableName=name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    secrets = moto_client("secretsmanager", moto_url)
    secret = provisioned["WebhookSecret"]

    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert provisioned["InferenceTable"].arn == table["TableArn"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}
    assert secret.ref.startswith("arn:aws:secretsmanager:")
    value = secrets.get_secret_value(SecretId=secret.ref)["SecretString"]
    assert value == "s3cret-for-tests"


def test_rerunning_changes_nothing_and_sends_no_second_test_event(
    moto_url: str, provisioned: dict[str, ProvisionedResource]
) -> None:
    sqs = moto_client("sqs", moto_url)
    receive_all(sqs, provisioned["ResultsQueue"].ref)
    prefix = provisioned["GatewayBucket"].name.split("-")[0]
    template = load_template()

    again = provision(
        template,
        moto_url,
        secret_values=dict.fromkeys(webhook_secret_ids(template), "s3cret-for-tests"),
        prefix=prefix,
    )

    assert {k: v.ref for k, v in again.items()} == {
        k: v.ref for k, v in provisioned.items()
    }
    assert receive_all(sqs, provisioned["ResultsQueue"].ref) == []


def test_function_environments_name_the_provisioned_resources(
    provisioned: dict[str, ProvisionedResource],
) -> None:
    template = load_template(
        resources={key: item.local() for key, item in provisioned.items()}
    )

    results = template.function("ResultsFunction").environment
    api = template.function("ApiFunction").environment
    assert results["GATEWAY_BUCKET"] == provisioned["GatewayBucket"].name
    assert results["INFERENCE_TABLE"] == provisioned["InferenceTable"].name
    assert results["WEBHOOK_SECRET_ARN"] == provisioned["WebhookSecret"].ref
    assert results["DELIVERY_DLQ_URL"] == provisioned["DeliveryDeadLetterQueue"].ref
    assert api["RESULTS_QUEUE_URL"] == provisioned["ResultsQueue"].ref
    [event] = template.function("ResultsFunction").events
    assert event.properties["Queue"] == provisioned["ResultsQueue"].arn
    bucket = provisioned["GatewayBucket"].name
    assert template.outputs()["AsyncOutputPath"] == f"s3://{bucket}/outputs"
    assert template.outputs()["AsyncFailurePath"] == f"s3://{bucket}/failures"


FIFO_TEMPLATE = """\
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      ContentBasedDeduplication: true
      VisibilityTimeout: 30
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt OrdersDlq.Arn
        maxReceiveCount: 3
  OrdersDlq:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
  ApiKey:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString:
        PasswordLength: 48
        ExcludePunctuation: true
  Policy:
    Type: AWS::SQS::QueuePolicy
    Properties:
      Queues: [!Ref Orders]
      PolicyDocument: {}
"""


def test_fifo_queue_and_generated_secret(moto_url: str, tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(FIFO_TEMPLATE))
    template = load_template(path)
    prefix = unique_prefix()

    created = provision(template, moto_url, prefix=prefix)

    assert sorted(created) == ["ApiKey", "Orders", "OrdersDlq"]
    assert local_name(template, "Orders", prefix) == f"{prefix}-orders.fifo"
    sqs = moto_client("sqs", moto_url)
    attributes = sqs.get_queue_attributes(
        QueueUrl=created["Orders"].ref, AttributeNames=["All"]
    )["Attributes"]
    assert attributes["FifoQueue"] == "true"
    assert attributes["ContentBasedDeduplication"] == "true"
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"] == (
        created["OrdersDlq"].arn
    )
    value = moto_client("secretsmanager", moto_url).get_secret_value(
        SecretId=created["ApiKey"].ref
    )["SecretString"]
    assert len(value) == 48
    assert set(value) <= set(string.ascii_letters + string.digits)


@pytest.mark.parametrize("queue_type", ["Standard", "Fifo"])
def test_project_sqs_events_are_settings_lambda_accepts(queue_type: str) -> None:
    overrides = {"QueueType": queue_type}
    planned = planned_resources(
        load_template(parameter_overrides=overrides), "http://127.0.0.1:5000"
    )
    template = load_template(
        parameter_overrides=overrides,
        resources={key: item.local() for key, item in planned.items()},
    )
    queue_urls = {
        item.arn: item.ref for item in planned.values() if item.type == "AWS::SQS::Queue"
    }

    configs = [
        config_from_event(function.logical_id, event, queue_urls)
        for function in template.functions()
        for event in function.events
        if event.type == "SQS"
    ]

    assert "ResultsFunction" in {config.function_logical_id for config in configs}
    for config in configs:
        queue = next(item for item in planned.values() if item.arn == config.queue_arn)
        timeout = template.function(config.function_logical_id).timeout
        visibility = template.resolve(
            template.resources[queue.logical_id]["Properties"].get(
                "VisibilityTimeout", 30
            )
        )
        assert int(visibility) >= timeout
