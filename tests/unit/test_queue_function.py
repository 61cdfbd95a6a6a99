"""The queue function on the files in events/: per-item outcomes, retries,
idempotency and FIFO order. AWS is moto in-process; SageMaker is a fake that
answers by the request's custom attributes; nothing leaves the process."""

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from gateway.aws import claims, clients, queues, records, storage
from gateway.core import errors
from gateway.core.async_jobs import AsyncServices
from gateway.core.clock import now_ms
from gateway.core.delivery import Deliverer
from gateway.core.once import fingerprint
from gateway.core.queue_requests import QueueServices, Replier
from gateway.core.webhooks import Timeouts, WebhookResponse, WebhookSender, WebhookTarget
from gateway.handlers import queue, services
from gateway.models.inference import (
    AsyncSubmission,
    InvocationRequest,
    InvocationResult,
)
from gateway.models.settings import get_settings
from gateway.models.sqs import SqsRecord
from tests.conftest import load_event

SETTINGS = get_settings()
REPLIES = "client-replies"


@dataclass
class FakeSageMaker:
    """Answers with the body; throttles or fails when the attributes say so."""

    calls: list[InvocationRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Calls still to be throttled, whatever they ask.
    throttle_next: int = 0

    def invoke(self, request: InvocationRequest) -> InvocationResult:
        with self.lock:
            self.calls.append(request)
            throttled, self.throttle_next = self.throttle_next > 0, self.throttle_next - 1
        attributes = request.options.custom_attributes or ""
        if throttled or "fault=throttle" in attributes:
            raise errors.ThrottledError()
        if "status=400" in attributes:
            raise errors.ModelError(400, "bad input")
        return InvocationResult(body=request.body, content_type="text/plain")

    def submit(self, request: Any) -> Any:
        raise AssertionError("sync requests only")

    def bodies(self) -> list[bytes]:
        return [call.body for call in self.calls]


def failing_receiver(
    target: WebhookTarget, headers: Any, body: bytes, timeouts: Timeouts
) -> WebhookResponse:
    return WebhookResponse(500, {})


@dataclass
class Harness:
    sagemaker: FakeSageMaker
    sqs: Any
    dynamodb: Any
    claims: claims.RequestClaims

    def replies(self) -> list[dict[str, Any]]:
        url = self.sqs.get_queue_url(QueueName=REPLIES)["QueueUrl"]
        found: list[dict[str, Any]] = []
        while messages := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10
        ).get("Messages"):
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"]
                )
        return found

    def dead_letters(self, url: str = SETTINGS.request_dlq_url) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        return response.get("Messages", [])


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with mock_aws():
        # Clients made from a session that predates the mock would miss it.
        clients.reset()
        sqs = boto3.client("sqs")
        for name in (REPLIES, "requests", "requests-dlq", "delivery-dlq", "results"):
            sqs.create_queue(QueueName=name)
        dynamodb = boto3.client("dynamodb")
        for table, key in (
            (SETTINGS.idempotency_table, "id"),
            (SETTINGS.inference_table, "pk"),
        ):
            dynamodb.create_table(
                TableName=table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            )
        boto3.client("s3").create_bucket(Bucket=SETTINGS.gateway_bucket)

        sagemaker = FakeSageMaker()
        shared = AsyncServices(
            sagemaker=sagemaker,
            records=records.InferenceRecords(dynamodb, SETTINGS.inference_table, 30),
            store=storage.ObjectStore(storage.create_client(), SETTINGS.gateway_bucket),
            queues=queues.MessageQueues(sqs),
        )
        sender = WebhookSender(
            lambda: "unit-test-secret",
            transport=failing_receiver,
            resolve=lambda host, port: ["93.184.216.34"],
            sleep=lambda seconds: None,
        )
        replier = Replier(
            Deliverer(sender, shared.queues, SETTINGS.delivery_dlq_url),
            shared.queues,
            shared.store,
            request_dlq_url=SETTINGS.request_dlq_url,
            url_expiry_seconds=900,
        )
        request_claims = claims.RequestClaims(
            dynamodb, SETTINGS.idempotency_table, services.REQUEST_MEMORY_SECONDS
        )
        queue_services = QueueServices(sagemaker, shared, replier, request_claims)
        monkeypatch.setattr(services, "queue_services", lambda: queue_services)
        yield Harness(sagemaker, sqs, dynamodb, request_claims)


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_mixed_batch_reports_each_outcome_and_calls_the_model_once(
    harness, lambda_context
):
    event = load_event("queue-batch-mixed")

    response = queue.handler(event, lambda_context)

    replies = {reply["requestId"]: reply for reply in harness.replies()}
    [dead] = harness.dead_letters()
    assert failed_ids(response) == []
    assert len(harness.sagemaker.calls) == 1
    assert replies["order-1001"]["status"] == "completed"
    assert replies["order-1003"]["status"] == "failed"
    assert replies["order-1003"]["error"]["message"].startswith("endpoint:")
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "the message is not JSON"
    assert dead["Body"] == event["Records"][1]["body"]


def test_throttled_item_is_retried_while_the_others_are_not(harness, lambda_context):
    event = load_event("queue-batch-throttled")

    response = queue.handler(event, lambda_context)

    assert failed_ids(response) == [event["Records"][1]["messageId"]]
    assert sorted(r["requestId"] for r in harness.replies()) == ["t-1", "t-3"]


def test_redelivered_message_invokes_once_and_replies_once(harness, lambda_context):
    event = load_event("queue-message-sync")

    queue.handler(event, lambda_context)
    queue.handler(event, lambda_context)

    assert len(harness.sagemaker.calls) == 1
    assert len(harness.replies()) == 1


def test_resend_with_same_request_id_in_another_layout_invokes_once(
    harness, lambda_context
):
    event = load_event("queue-message-sync")
    again = load_event("queue-message-sync")
    record = again["Records"][0]
    body = json.loads(record["body"])
    record["body"] = json.dumps(dict(reversed(list(body.items()))), indent=4)
    record["messageId"] = "b7c1e0a2-9999-4d3e-9f10-000000009999"

    queue.handler(event, lambda_context)
    queue.handler(again, lambda_context)

    assert len(harness.sagemaker.calls) == 1
    assert len(harness.replies()) == 1


def test_same_request_id_for_a_different_request_is_answered_as_failed(
    harness, lambda_context
):
    queue.handler(load_event("queue-message-sync"), lambda_context)
    other = load_event("queue-message-sync")
    body = json.loads(other["Records"][0]["body"])
    other["Records"][0]["body"] = json.dumps({**body, "body": "1,2,3\n"})

    queue.handler(other, lambda_context)

    statuses = sorted(reply["status"] for reply in harness.replies())
    assert statuses == ["completed", "failed"]
    assert len(harness.sagemaker.calls) == 1


def test_model_4xx_is_answered_not_retried(harness, lambda_context):
    event = load_event("queue-message-sync")
    body = json.loads(event["Records"][0]["body"])
    event["Records"][0]["body"] = json.dumps({**body, "customAttributes": "status=400"})

    response = queue.handler(event, lambda_context)

    [reply] = harness.replies()
    assert failed_ids(response) == []
    assert reply["error"]["code"] == "ModelError"


def test_fifo_group_stops_at_its_first_failure(harness, lambda_context):
    event = load_event("queue-batch-fifo")
    ids = [record["messageId"] for record in event["Records"]]

    response = queue.handler(event, lambda_context)

    assert sorted(failed_ids(response)) == sorted([ids[1], ids[3]])
    assert harness.sagemaker.bodies() == [b"step-1", b"step-2", b"other-1", b"other-2"]


def test_every_item_failing_keeps_its_own_outcome(harness, lambda_context):
    event = load_event("queue-batch-throttled")
    for record in event["Records"]:
        body = json.loads(record["body"])
        record["body"] = json.dumps({**body, "customAttributes": "fault=throttle"})

    response = queue.handler(event, lambda_context)

    assert sorted(failed_ids(response)) == sorted(
        r["messageId"] for r in event["Records"]
    )


def with_reply_to(event: dict[str, Any], reply_to: dict[str, str]) -> dict[str, Any]:
    record = event["Records"][0]
    record["body"] = json.dumps({**json.loads(record["body"]), "replyTo": reply_to})
    return event


def test_refused_reply_queue_is_never_sent_to_and_the_request_is_kept(
    harness, lambda_context
):
    harness.sqs.create_queue(QueueName="not-allowed")
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/not-allowed"
    event = with_reply_to(load_event("queue-message-sync"), {"queueUrl": url})

    response = queue.handler(event, lambda_context)

    [kept] = harness.dead_letters()
    queued = harness.sqs.receive_message(
        QueueUrl=harness.sqs.get_queue_url(QueueName="not-allowed")["QueueUrl"]
    )
    assert failed_ids(response) == []
    assert harness.sagemaker.calls == []
    assert "Messages" not in queued
    kept_as = {k: v["StringValue"] for k, v in kept["MessageAttributes"].items()}
    assert "reply queue" in kept_as["reason"]
    # The message it came in, and the request it carried.
    assert kept_as["sourceMessageId"] == event["Records"][0]["messageId"]
    assert kept_as["requestId"] == json.loads(event["Records"][0]["body"])["requestId"]


def test_reply_queue_that_refuses_the_reply_keeps_it_in_the_delivery_dlq(
    harness, lambda_context
):
    url = harness.sqs.get_queue_url(QueueName=REPLIES)["QueueUrl"]
    harness.sqs.delete_queue(QueueUrl=url)

    response = queue.handler(load_event("queue-message-sync"), lambda_context)

    [kept] = harness.dead_letters(SETTINGS.delivery_dlq_url)
    assert failed_ids(response) == []
    assert len(harness.sagemaker.calls) == 1
    assert kept["MessageAttributes"]["reason"]["StringValue"].startswith(
        "reply queue refused"
    )


def test_webhook_reply_that_keeps_failing_is_dead_lettered_not_retried(
    harness, lambda_context, monkeypatch
):
    public = [(2, 1, 6, "", ("93.184.216.34", 443))]
    monkeypatch.setattr("socket.getaddrinfo", lambda *args, **kwargs: public)
    event = with_reply_to(
        load_event("queue-message-sync"), {"webhookUrl": "https://hooks.example.com/r"}
    )

    response = queue.handler(event, lambda_context)
    queue.handler(event, lambda_context)

    [kept] = harness.dead_letters(SETTINGS.delivery_dlq_url)
    assert failed_ids(response) == []
    assert len(harness.sagemaker.calls) == 1
    assert kept["MessageAttributes"]["reason"]["StringValue"] == "HTTP 500"


def test_no_payload_or_result_reaches_the_logs(harness, lambda_context, monkeypatch):
    logs_written = io.StringIO()
    monkeypatch.setattr(queue.logger.registered_handler, "stream", logs_written)
    marker = "QUEUE-PAYLOAD-9e8d7c"
    event = load_event("queue-message-sync")
    record = event["Records"][0]
    record["body"] = json.dumps({**json.loads(record["body"]), "body": marker})

    queue.handler(event, lambda_context)

    logs = logs_written.getvalue()
    assert harness.replies()[0]["body"].strip() == marker
    assert record["messageId"] in logs
    assert marker not in logs


def claim_of(event: dict[str, Any]) -> tuple[str, str]:
    """The requestId and fingerprint the event's first message is claimed under."""
    request = queue.read_request(SqsRecord.model_validate(event["Records"][0]))
    assert isinstance(request, queue.Request)
    return request.request_id, fingerprint(request.document)


def test_claim_left_by_a_function_that_stopped_is_taken_over(harness, lambda_context):
    event = load_event("queue-message-sync")
    a_minute_ago = now_ms() - 60_000
    harness.claims.claim([claim_of(event)], now_ms=a_minute_ago, until_ms=a_minute_ago)

    response = queue.handler(event, lambda_context)

    assert failed_ids(response) == []
    assert len(harness.sagemaker.calls) == 1
    assert len(harness.replies()) == 1


def test_request_claimed_elsewhere_is_retried_later_not_run(harness, lambda_context):
    event = load_event("queue-message-sync")
    harness.claims.claim([claim_of(event)], now_ms=now_ms(), until_ms=now_ms() + 60_000)

    response = queue.handler(event, lambda_context)

    assert failed_ids(response) == [event["Records"][0]["messageId"]]
    assert harness.sagemaker.calls == []
    assert harness.replies() == []


def test_throttled_request_gives_up_its_claim_so_its_retry_runs(harness, lambda_context):
    event = load_event("queue-message-sync")
    harness.sagemaker.throttle_next = 1

    first = queue.handler(event, lambda_context)
    second = queue.handler(event, lambda_context)

    assert failed_ids(first) == [event["Records"][0]["messageId"]]
    assert failed_ids(second) == []
    assert len(harness.sagemaker.calls) == 2
    assert [reply["status"] for reply in harness.replies()] == ["completed"]


def test_same_request_twice_in_one_batch_runs_once(harness, lambda_context):
    event = load_event("queue-message-sync")
    again = {**event["Records"][0], "messageId": "b7c1e0a2-9999-4d3e-9f10-00000000aaaa"}
    event["Records"].append(again)

    response = queue.handler(event, lambda_context)

    assert failed_ids(response) == [again["messageId"]]
    assert len(harness.sagemaker.calls) == 1
    assert len(harness.replies()) == 1


def test_fifo_messages_held_back_run_when_redelivered(harness, lambda_context):
    event = load_event("queue-batch-fifo")
    held_back = event["Records"][3]
    queue.handler(event, lambda_context)

    response = queue.handler({"Records": [held_back]}, lambda_context)

    assert failed_ids(response) == []
    assert harness.sagemaker.bodies()[-1] == b"step-3"


def test_a_batch_claims_all_its_requests_in_one_write(harness, lambda_context):
    writes: list[dict[str, Any]] = []
    harness.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.*",
        lambda params, model, **kwargs: writes.append({"op": model.name, **params}),
    )
    event = load_event("queue-message-sync")
    template = event["Records"][0]
    body = json.loads(template["body"])
    event["Records"] = [
        {
            **template,
            "messageId": f"b7c1e0a2-0000-4d3e-9f10-{i:012d}",
            "body": json.dumps({**body, "requestId": f"many-{i}"}),
        }
        for i in range(10)
    ]

    response = queue.handler(event, lambda_context)

    claimed = [
        w
        for w in writes
        if w["op"] == "TransactWriteItems"
        and "ConditionExpression" in w["TransactItems"][0].get("Put", {})
    ]
    stored = harness.dynamodb.scan(TableName=SETTINGS.idempotency_table)["Items"]
    assert failed_ids(response) == []
    assert [len(w["TransactItems"]) for w in claimed] == [10]
    assert len(harness.sagemaker.calls) == 10
    assert sorted(item["status"]["S"] for item in stored) == ["completed"] * 10


def test_message_nested_too_deeply_is_refused_and_the_batch_goes_on(
    harness, lambda_context
):
    event = load_event("queue-message-sync")
    deep = {
        **event["Records"][0],
        "messageId": "deep-0001",
        "body": "[" * 100_000 + "]" * 100_000,
    }
    event["Records"].append(deep)

    response = queue.handler(event, lambda_context)

    [dead] = harness.dead_letters()
    assert failed_ids(response) == []
    assert [reply["status"] for reply in harness.replies()] == ["completed"]
    reason = dead["MessageAttributes"]["reason"]["StringValue"]
    assert reason == "the message nests too deeply"


def test_same_message_twice_in_one_batch_runs_once(harness, lambda_context):
    event = load_event("queue-message-sync")
    event["Records"].append(dict(event["Records"][0]))

    response = queue.handler(event, lambda_context)
    queue.handler({"Records": event["Records"][1:]}, lambda_context)

    assert len(failed_ids(response)) == 1
    assert len(harness.sagemaker.calls) == 1
    assert len(harness.replies()) == 1


def test_malformed_reply_queue_url_is_refused_not_retried(harness, lambda_context):
    event = load_event("queue-message-sync")
    body = json.loads(event["Records"][0]["body"])
    body["replyTo"] = {"queueUrl": "http://[::1"}
    event["Records"][0]["body"] = json.dumps(body)

    response = queue.handler(event, lambda_context)

    [dead] = harness.dead_letters()
    assert failed_ids(response) == []
    assert harness.sagemaker.calls == []
    assert dead["MessageAttributes"]["code"]["StringValue"] == "CallbackRefused"


@pytest.mark.parametrize("request_id", ["order 1001", "order-\u00e9", "tab\there"])
def test_request_id_that_cannot_key_a_reply_is_refused_by_message_id(
    harness, lambda_context, request_id
):
    event = load_event("queue-message-sync")
    body = json.loads(event["Records"][0]["body"])
    event["Records"][0]["body"] = json.dumps({**body, "requestId": request_id})

    response = queue.handler(event, lambda_context)

    [reply] = harness.replies()
    assert failed_ids(response) == []
    assert harness.sagemaker.calls == []
    assert reply["requestId"] == event["Records"][0]["messageId"]
    assert reply["error"]["message"].startswith("requestId:")


def test_reused_request_id_reply_reaches_a_fifo_reply_queue_beside_the_answer(
    harness, lambda_context, monkeypatch
):
    fifo = harness.sqs.create_queue(
        QueueName="client-replies.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    allowed = SETTINGS.allowed_reply_queues | {
        "arn:aws:sqs:us-east-1:123456789012:client-replies.fifo"
    }
    monkeypatch.setattr(
        queue, "settings", SETTINGS.model_copy(update={"allowed_reply_queues": allowed})
    )
    event = load_event("queue-message-sync")
    body = {**json.loads(event["Records"][0]["body"]), "replyTo": {"queueUrl": fifo}}
    event["Records"][0]["body"] = json.dumps(body)
    other = load_event("queue-message-sync")
    other["Records"][0]["messageId"] = "b7c1e0a2-9999-4d3e-9f10-00000000bbbb"
    other["Records"][0]["body"] = json.dumps({**body, "body": "1,2,3\n"})

    queue.handler(event, lambda_context)
    queue.handler(other, lambda_context)

    received = harness.sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=10)
    statuses = sorted(json.loads(m["Body"])["status"] for m in received["Messages"])
    assert statuses == ["completed", "failed"]


def test_request_throttled_on_its_last_receive_is_answered_not_dropped(
    harness, lambda_context
):
    event = load_event("queue-message-sync")
    record = event["Records"][0]
    record["attributes"]["ApproximateReceiveCount"] = str(
        SETTINGS.request_max_receive_count
    )
    harness.sagemaker.throttle_next = 1

    response = queue.handler(event, lambda_context)

    [reply] = harness.replies()
    assert failed_ids(response) == []
    assert reply["status"] == "failed"
    assert reply["error"]["code"] == "ThrottlingException"


def unresolved(*args: Any, **kwargs: Any) -> Any:
    raise OSError("name does not resolve")


def on_last_receive(event: dict[str, Any]) -> dict[str, Any]:
    count = str(SETTINGS.request_max_receive_count)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = count
    return event


def test_request_whose_webhook_name_does_not_resolve_comes_back_later(
    harness, lambda_context, monkeypatch
):
    monkeypatch.setattr("socket.getaddrinfo", unresolved)
    event = with_reply_to(
        load_event("queue-message-sync"), {"webhookUrl": "https://hooks.example.com/r"}
    )

    response = queue.handler(event, lambda_context)

    assert failed_ids(response) == [event["Records"][0]["messageId"]]
    assert harness.sagemaker.calls == []
    assert harness.dead_letters() == []


def test_request_whose_webhook_name_does_not_resolve_is_kept_on_its_last_receive(
    harness, lambda_context, monkeypatch
):
    monkeypatch.setattr("socket.getaddrinfo", unresolved)
    event = with_reply_to(
        load_event("queue-message-sync"), {"webhookUrl": "https://hooks.example.com/r"}
    )

    response = queue.handler(on_last_receive(event), lambda_context)

    [kept] = harness.dead_letters()
    assert failed_ids(response) == []
    assert harness.sagemaker.calls == []
    assert kept["MessageAttributes"]["code"]["StringValue"] == "CallbackUnresolved"


def test_refusal_whose_webhook_name_does_not_resolve_is_kept_on_its_last_receive(
    harness, lambda_context, monkeypatch
):
    monkeypatch.setattr("socket.getaddrinfo", unresolved)
    event = with_reply_to(
        load_event("queue-message-sync"), {"webhookUrl": "https://hooks.example.com/r"}
    )
    body = json.loads(event["Records"][0]["body"])
    event["Records"][0]["body"] = json.dumps({**body, "endpoint": ""})

    response = queue.handler(on_last_receive(event), lambda_context)

    [kept] = harness.dead_letters()
    assert failed_ids(response) == []
    assert kept["MessageAttributes"]["code"]["StringValue"] == "ValidationError"


def test_fifo_message_behind_a_request_sent_twice_runs_on_its_last_receive(
    harness, lambda_context
):
    event = load_event("queue-batch-fifo")
    first, behind = event["Records"][0], event["Records"][3]
    body = json.loads(first["body"])
    again = {
        **first,
        "messageId": "b7c1e0a2-9999-4d3e-9f10-000000009999",
        "body": json.dumps(dict(reversed(list(body.items())))),
    }
    event["Records"] = [first, again, behind]
    for record in event["Records"]:
        on_last_receive({"Records": [record]})

    response = queue.handler(event, lambda_context)

    [kept] = harness.dead_letters()
    assert failed_ids(response) == []
    assert harness.sagemaker.bodies() == [b"step-1", b"step-3"]
    assert sorted(reply["requestId"] for reply in harness.replies()) == [
        "fifo-0",
        "fifo-3",
    ]
    assert kept["MessageAttributes"]["code"]["StringValue"] == "RequestInProgress"


def test_an_async_request_belongs_to_the_role_that_sent_it(
    harness, lambda_context, monkeypatch
):
    submitted: list[Any] = []

    def submit(request: Any) -> AsyncSubmission:
        submitted.append(request)
        outputs = f"s3://{SETTINGS.gateway_bucket}"
        return AsyncSubmission(
            request.inference_id, f"{outputs}/outputs/a.out", f"{outputs}/failures/a.out"
        )

    monkeypatch.setattr(harness.sagemaker, "submit", submit)
    event = load_event("queue-message-async")
    event["Records"][0]["attributes"]["SenderId"] = "AROAEXAMPLEROLE:queue-worker"

    response = queue.handler(event, lambda_context)

    assert failed_ids(response) == []
    [request] = submitted
    inferences = records.InferenceRecords(harness.dynamodb, SETTINGS.inference_table, 30)
    record = inferences.get(request.inference_id)
    assert record is not None
    assert record.owner == "AROAEXAMPLEROLE"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("enableExplanations", "`true`\r\nX-Injected: 1"),
        ("enableExplanations", "`true`\x00"),
        ("inputLocation", f"s3://{SETTINGS.gateway_bucket}/inputs/a\nb"),
    ],
)
def test_a_field_sent_as_a_header_with_a_line_break_is_refused_not_retried(
    harness, lambda_context, field, value
):
    event = load_event("queue-message-async")
    record = event["Records"][0]
    message = json.loads(record["body"])
    if field == "inputLocation":
        del message["body"]
    record["body"] = json.dumps({**message, field: value})

    response = queue.handler(event, lambda_context)

    [reply] = harness.replies()
    assert failed_ids(response) == []
    assert reply["status"] == "failed"
    assert reply["error"]["code"] == "ValidationError"
    assert reply["error"]["message"].startswith(f"{field}:")


def test_a_request_kept_in_the_dead_letters_is_the_message_as_sent(
    harness, lambda_context
):
    event = load_event("queue-message-sync")
    message = json.loads(event["Records"][0]["body"])
    del message["replyTo"]
    # Sent as UTF-8; escaped again as JSON it would be larger than the message.
    message.update(body="推論" * 1000, customAttributes="status=400")
    event["Records"][0]["body"] = json.dumps(message, ensure_ascii=False)

    response = queue.handler(event, lambda_context)

    [kept] = harness.dead_letters()
    assert failed_ids(response) == []
    assert kept["Body"] == event["Records"][0]["body"]
    assert kept["MessageAttributes"]["code"]["StringValue"] == "ModelError"


def test_a_reason_sqs_could_not_carry_is_kept_all_the_same(
    harness, lambda_context, monkeypatch
):
    event = load_event("queue-message-sync")
    message = json.loads(event["Records"][0]["body"])
    del message["replyTo"]
    event["Records"][0]["body"] = json.dumps({**message, "\x01odd": 1})
    send = harness.sqs.send_message

    def send_as_sqs_would(**params: Any) -> Any:
        # SQS refuses characters outside XML's in attribute values; moto does not.
        values = [a["StringValue"] for a in params.get("MessageAttributes", {}).values()]
        if any("\x01" in value for value in values):
            raise AssertionError(f"SQS would refuse {values}")
        return send(**params)

    monkeypatch.setattr(harness.sqs, "send_message", send_as_sqs_would)

    response = queue.handler(event, lambda_context)

    [kept] = harness.dead_letters()
    assert failed_ids(response) == []
    assert kept["MessageAttributes"]["code"]["StringValue"] == "ValidationError"
    assert "\ufffdodd" in kept["MessageAttributes"]["reason"]["StringValue"]


def test_a_message_handed_back_is_logged_with_its_id(
    harness, lambda_context, monkeypatch
):
    logs_written = io.StringIO()
    monkeypatch.setattr(queue.logger.registered_handler, "stream", logs_written)
    event = load_event("queue-batch-throttled")

    response = queue.handler(event, lambda_context)

    retried = [
        json.loads(line)
        for line in logs_written.getvalue().splitlines()
        if '"message will be retried"' in line
    ]
    assert [line.get("message_id") for line in retried] == failed_ids(response) != []


def test_a_failure_of_the_gateways_own_services_is_retried_then_answered(
    harness, lambda_context, monkeypatch
):
    def throttled(record: Any) -> None:
        error = {"Error": {"Code": "ProvisionedThroughputExceededException"}}
        raise ClientError(error, "PutItem")

    inferences = services.queue_services().async_services.records
    monkeypatch.setattr(inferences, "create", throttled)
    first = load_event("queue-message-async")
    last = load_event("queue-message-async")
    last["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(
        SETTINGS.request_max_receive_count
    )

    handed_back = queue.handler(first, lambda_context)
    answered = queue.handler(last, lambda_context)

    [reply] = harness.replies()
    assert failed_ids(handed_back) == [first["Records"][0]["messageId"]]
    assert failed_ids(answered) == []
    assert (reply["status"], reply["error"]["code"]) == ("failed", "InternalFailure")
