"""The SQS event source mapping: batches, partial failures, redrive and FIFO order.

A throwaway handler in a temporary directory runs behind a tiny template with an SQS
event; its queues live in the shared moto under a prefix of their own per test.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import json
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from offline.event_sources import (
    EventSourceError,
    SqsEventSource,
    check_visibility_timeout,
    config_from_event,
    failed_message_ids,
    lambda_record,
    split_by_size,
    sqs_event_sources,
)
from offline.lambda_runtime import FunctionPool
from offline.provision import ProvisionedResource, moto_client, provision
from offline.template import SamTemplate, load_template

HANDLER = """
import json
import os
import time


def _log(entry):
    with open(os.environ["RECORD_PATH"], "a") as sink:
        sink.write(json.dumps(entry) + "\\n")


def handler(event, context):
    records = event["Records"]
    started = time.time()
    bodies = [record["body"] for record in records]
    if any(body.startswith("slow") for body in bodies):
        time.sleep(0.2)
    _log({"records": records, "started": started, "ended": time.time()})
    if "boom" in bodies:
        raise RuntimeError("boom")
    if "bad-response" in bodies:
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
    failures = [
        {"itemIdentifier": record["messageId"]}
        for record in records
        if record["body"].startswith("fail")
    ]
    return {"batchItemFailures": failures}
"""

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: code/
    Runtime: python3.13
    Timeout: 1
Resources:
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 3
        Ordered:
          Type: SQS
          Properties:
            Queue: !GetAtt OrderedQueue.Arn
            BatchSize: 2
            FunctionResponseTypes: [ReportBatchItemFailures]
        Batched:
          Type: SQS
          Properties:
            Queue: !GetAtt BatchedQueue.Arn
            BatchSize: 50
            MaximumBatchingWindowInSeconds: 2
            Enabled: false
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDlq.Arn
        maxReceiveCount: 2
  WorkDlq:
    Type: AWS::SQS::Queue
  OrderedQueue:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      VisibilityTimeout: 10
  BatchedQueue:
    Type: AWS::SQS::Queue
"""

DEADLINE_SECONDS = 15.0


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the handler and the template."""
    root = tmp_path_factory.mktemp("sqs-app")
    (root / "code").mkdir()
    (root / "code" / "app.py").write_text(HANDLER)
    (root / "template.yaml").write_text(textwrap.dedent(TEMPLATE))
    return root


@dataclasses.dataclass
class Harness:
    """Provisioned queues, the resolved template, the pool and the handler's log."""

    resources: dict[str, ProvisionedResource]
    template: SamTemplate
    pool: FunctionPool
    record_path: Path
    moto_url: str

    def sqs(self) -> Any:
        return moto_client("sqs", self.moto_url)

    def source(self, event_name: str, **changes: Any) -> SqsEventSource:
        """The mapping of one of Worker's events, with settings changed if asked."""
        queue_urls = {
            item.arn: item.ref
            for item in self.resources.values()
            if item.type == "AWS::SQS::Queue"
        }
        [source] = [
            source
            for source in sqs_event_sources(
                self.template,
                {"Worker": self.pool},
                queue_urls,
                self.moto_url,
                # Short polls: each test stops at once and sees redeliveries sooner.
                wait_seconds=0,
            )
            if source.config.event_name == event_name
        ]
        source.config = dataclasses.replace(source.config, **changes)
        return source

    def invocations(self) -> list[dict[str, Any]]:
        """What the handler saw, one entry per invocation."""
        if not self.record_path.exists():
            return []
        lines = self.record_path.read_text().splitlines()
        return [json.loads(line) for line in lines]

    def seen(self) -> list[str]:
        """Bodies the handler received, in order, once per delivery."""
        return [
            record["body"]
            for invocation in self.invocations()
            for record in invocation["records"]
        ]

    def queue_bodies(self, logical_id: str) -> list[str]:
        """Receive (without deleting) what a queue holds now."""
        response = self.sqs().receive_message(
            QueueUrl=self.resources[logical_id].ref,
            MaxNumberOfMessages=10,
            VisibilityTimeout=0,
        )
        return sorted(message["Body"] for message in response.get("Messages") or [])

    def depth(self, logical_id: str) -> int:
        """Messages in a queue, visible or not."""
        attributes = self.sqs().get_queue_attributes(
            QueueUrl=self.resources[logical_id].ref,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture
def harness(app: Path, moto_url: str, tmp_path: Path) -> Iterator[Harness]:
    """Fresh queues in moto and a warm pool for one test."""
    base = load_template(app / "template.yaml")
    resources = provision(base, moto_url, prefix=f"t{uuid.uuid4().hex[:10]}")
    template = load_template(
        app / "template.yaml",
        resources={key: item.local() for key, item in resources.items()},
    )
    record_path = tmp_path / "invocations.jsonl"
    with FunctionPool(
        template.function("Worker"),
        {"RECORD_PATH": str(record_path)},
        aws_endpoint_url=moto_url,
        max_workers=4,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as pool:
        # A warm worker: a cold start must not outlast the 1 s visibility timeout.
        pool.warm(1)
        yield Harness(resources, template, pool, record_path, moto_url)


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Poll check until it holds or the deadline passes."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def send(harness: Harness, logical_id: str, *bodies: str, **extra: Any) -> None:
    """Send messages in one batch call."""
    harness.sqs().send_message_batch(
        QueueUrl=harness.resources[logical_id].ref,
        Entries=[
            {"Id": str(index), "MessageBody": body, **extra}
            for index, body in enumerate(bodies)
        ],
    )


def test_partial_batch_failure_deletes_only_successes(harness: Harness) -> None:
    send(harness, "WorkQueue", "ok-1", "fail-1", "ok-2")

    # One poller, so the three messages travel in one batch.
    with harness.source("Work", max_concurrency=1):
        # maxReceiveCount 2: two failed deliveries, then the dead-letter queue.
        wait_until(lambda: harness.depth("WorkDlq") == 1, "the failed message in the DLQ")

    assert harness.queue_bodies("WorkDlq") == ["fail-1"]
    assert harness.depth("WorkQueue") == 0
    seen = harness.seen()
    assert sorted(seen) == ["fail-1", "fail-1", "ok-1", "ok-2"]
    first = harness.invocations()[0]["records"]
    assert len(first) == 3


@pytest.mark.parametrize("trigger", ["boom", "bad-response"])
def test_function_error_or_malformed_response_keeps_the_whole_batch(
    harness: Harness, trigger: str
) -> None:
    send(harness, "WorkQueue", trigger, "ok-3")

    # One poller, so both messages travel in one batch every time.
    with harness.source("Work", max_concurrency=1):
        wait_until(lambda: len(harness.invocations()) == 2, "a second delivery")

    batches = [
        sorted(record["body"] for record in invocation["records"])
        for invocation in harness.invocations()
    ]
    assert batches == [sorted([trigger, "ok-3"])] * 2
    counts = [
        record["attributes"]["ApproximateReceiveCount"]
        for invocation in harness.invocations()
        for record in invocation["records"]
    ]
    assert counts == ["1", "1", "2", "2"]


def test_event_has_lambda_sqs_shape(harness: Harness) -> None:
    send(
        harness,
        "WorkQueue",
        "ok-attributes",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "result"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )

    with harness.source("Work"):
        wait_until(lambda: bool(harness.invocations()), "one invocation")
        wait_until(lambda: harness.depth("WorkQueue") == 0, "the message deleted")

    [record] = harness.invocations()[0]["records"]
    queue = harness.resources["WorkQueue"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.arn
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == hashlib.md5(b"ok-attributes").hexdigest()
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "result",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        },
        "blob": {
            "binaryValue": base64.b64encode(b"\x00\x01").decode(),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Binary",
        },
    }
    assert record["receiptHandle"]
    assert record["messageId"]


def test_fifo_groups_keep_order_and_never_run_twice_at_once(harness: Harness) -> None:
    groups = ("a", "b", "c", "d")
    entries = [(group, number) for number in range(2) for group in groups]
    harness.sqs().send_message_batch(
        QueueUrl=harness.resources["OrderedQueue"].ref,
        Entries=[
            {
                "Id": f"{group}{number}",
                "MessageBody": f"slow-{group}-{number}",
                "MessageGroupId": group,
                "MessageDeduplicationId": f"{group}{number}",
            }
            for group, number in entries
        ],
    )

    with harness.source("Ordered") as source:
        wait_until(lambda: source.stats()["deleted"] == 8, "every message processed")

    invocations = harness.invocations()
    for group in groups:
        holding = [
            invocation
            for invocation in invocations
            if any(
                record["attributes"]["MessageGroupId"] == group
                for record in invocation["records"]
            )
        ]
        bodies = [
            record["body"]
            for invocation in holding
            for record in invocation["records"]
            if record["attributes"]["MessageGroupId"] == group
        ]
        assert bodies == [f"slow-{group}-{number}" for number in range(2)]
        spans = sorted((entry["started"], entry["ended"]) for entry in holding)
        for (_, earlier_end), (later_start, _) in itertools.pairwise(spans):
            assert later_start >= earlier_end
    record = invocations[0]["records"][0]
    assert {"MessageGroupId", "MessageDeduplicationId", "SequenceNumber"} <= set(
        record["attributes"]
    )


def test_template_settings_reach_the_mapping(harness: Harness) -> None:
    config = harness.source("Work").config

    assert config.batch_size == 10
    assert config.batching_window_seconds == 0.0
    assert config.report_batch_item_failures is True
    assert config.max_concurrency == 3
    assert config.enabled is True
    assert not config.fifo
    ordered = harness.source("Ordered").config
    assert ordered.fifo
    assert ordered.max_concurrency == 5
    batched = harness.source("Batched").config
    assert (batched.batch_size, batched.batching_window_seconds) == (50, 2.0)
    assert batched.enabled is False
    assert batched.report_batch_item_failures is False


# Pure functions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"null", set()),
        (b"{}", set()),
        (b'{"batchItemFailures": null}', set()),
        (b'{"batchItemFailures": []}', set()),
        (b'{"batchItemFailures": [{"itemIdentifier": "m2"}]}', {"m2"}),
        (b'{"batchItemFailures": [{"itemIdentifier": "other"}]}', None),
        (b'{"batchItemFailures": [{"itemIdentifier": ""}]}', None),
        (b'{"batchItemFailures": [{"itemIdentifier": null}]}', None),
        (b'{"batchItemFailures": [{"id": "m1"}]}', None),
        (b'{"batchItemFailures": "m1"}', None),
        (b'"ok"', None),
        (b"not json", None),
    ],
)
def test_batch_item_failures_are_read_like_lambda(
    payload: bytes, expected: set[str] | None
) -> None:
    assert failed_message_ids(payload, ["m1", "m2"]) == expected


def test_large_batches_are_split_under_the_invoke_limit() -> None:
    message = {
        "MessageId": "m",
        "ReceiptHandle": "r",
        "Body": "x" * 1000,
        "MD5OfBody": "",
    }
    records = [lambda_record(message, "arn:aws:sqs:us-east-1:1:q", "us-east-1")] * 10
    size = len(json.dumps(records[0], separators=(",", ":"))) + 1

    batches = split_by_size(records, limit=64 + 3 * size)

    assert [len(batch) for batch in batches] == [3, 3, 3, 1]


def test_disabled_event_starts_no_poller(harness: Harness) -> None:
    source = harness.source("Batched")

    source.start()

    assert source.stats()["batches"] == 0
    assert not source._threads
    source.stop()


def test_event_without_a_local_queue_is_refused(harness: Harness) -> None:
    event = harness.template.function("Worker").events[0]

    with pytest.raises(EventSourceError, match="no local queue"):
        config_from_event("Worker", event, {})


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"BatchSize": 11}, "needs MaximumBatchingWindowInSeconds"),
        ({"ScalingConfig": {"MaximumConcurrency": 1}}, "between 2 and 1000"),
        ({"MaximumBatchingWindowInSeconds": 301}, "0 to 300"),
    ],
)
def test_settings_lambda_refuses_are_refused(
    harness: Harness, changes: dict[str, Any], problem: str
) -> None:
    event = harness.template.function("Worker").events[0]
    changed = dataclasses.replace(event, properties={**event.properties, **changes})
    queue = harness.resources["WorkQueue"]

    with pytest.raises(EventSourceError, match=problem):
        config_from_event("Worker", changed, {queue.arn: queue.ref})


def test_visibility_timeout_below_the_function_timeout_is_refused(
    harness: Harness,
) -> None:
    config = harness.source("Work").config

    with pytest.raises(EventSourceError, match="less than the function timeout"):
        check_visibility_timeout(config, 2, harness.sqs())


def test_duplicate_deliveries_hand_each_message_over_twice_and_no_more(
    harness: Harness,
) -> None:
    send(harness, "WorkQueue", "ok-a", "ok-b", "ok-c")
    source = harness.source("Work", max_concurrency=1)
    source.duplicate_deliveries(1.0, seed=7)

    with source:
        wait_until(
            lambda: len(harness.seen()) >= 6 and harness.depth("WorkQueue") == 0,
            "every message and its copy handled",
        )

    assert sorted(harness.seen()) == ["ok-a", "ok-a", "ok-b", "ok-b", "ok-c", "ok-c"]
    assert source.stats()["duplicated"] == 3


def test_duplicate_deliveries_are_refused_on_a_fifo_queue(harness: Harness) -> None:
    source = harness.source("Ordered")

    with pytest.raises(EventSourceError, match="standard queue"):
        source.duplicate_deliveries(0.5)
