"""Async inference and queue requests on the running offline stack, as callers see them:
over HTTP and SQS, with real models, real S3 notifications and a local webhook receiver."""

import http.client
import json
import time
import urllib.parse
import uuid
from collections import Counter
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer

from gateway.core.async_jobs import replay_event
from tests.conftest import load_event

pytestmark = pytest.mark.stack

DATA = load_breast_cancer()
WAIT_SECONDS = 60


def row(index: int) -> str:
    return ",".join(f"{v:g}" for v in DATA.data[index])


def request(stack, method: str, path: str, body: bytes = b"", **headers: str):
    url = urllib.parse.urlsplit(stack.stage_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        connection.request(
            method,
            f"{url.path}{path}",
            body=body,
            headers={k.replace("_", "-"): v for k, v in headers.items()},
        )
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def submit(stack, endpoint: str, body: bytes, **headers: str) -> dict[str, Any]:
    status, answer_headers, answer = request(
        stack, "POST", f"/endpoints/{endpoint}/async-invocations", body, **headers
    )
    assert status == 202, answer
    accepted: dict[str, Any] = json.loads(answer)
    accepted["outputLocation"] = answer_headers["X-Amzn-SageMaker-OutputLocation"]
    return accepted


def hook(stack) -> tuple[str, str]:
    path = f"/hooks/{uuid.uuid4()}"
    return path, f"{stack.webhook_url}{path}"


def test_async_rows_get_one_signed_callback_each_and_status_agrees(offline_stack):
    receiver = offline_stack.webhook_receiver
    rows = [0, 19, 1, 20, 37]
    submitted = []
    for index in rows:
        path, url = hook(offline_stack)
        accepted = submit(
            offline_stack,
            "breast-cancer-xgb",
            f"{row(index)}\n".encode(),
            Content_Type="text/csv",
            X_Callback_Url=url,
        )
        submitted.append((index, path, accepted))

    for index, path, accepted in submitted:
        [delivery] = receiver.wait_for(path, 1, timeout=WAIT_SECONDS)
        envelope = delivery["body"]
        assert delivery["signatureValid"] is True
        assert envelope["inferenceId"] == accepted["InferenceId"]
        assert envelope["status"] == "completed"
        assert int(float(envelope["result"]) > 0.5) == DATA.target[index]
        status_path = urllib.parse.urlsplit(accepted["statusUrl"]).path.removeprefix(
            "/v1"
        )
        code, _, body = request(offline_stack, "GET", f"{status_path}?inline=true")
        status = json.loads(body)
        assert code == 200
        assert status["status"] == "completed"
        assert status["result"] == envelope["result"]
        assert status["resultUrl"].startswith(offline_stack.moto_url)

    assert len(receiver.deliveries()) >= len(rows)


def test_failing_model_gives_a_failed_callback_and_status(offline_stack):
    receiver = offline_stack.webhook_receiver
    path, url = hook(offline_stack)

    accepted = submit(
        offline_stack,
        "echo",
        b"{}",
        Content_Type="application/json",
        X_Amzn_SageMaker_Custom_Attributes="status=500",
        X_Callback_Url=url,
    )

    [delivery] = receiver.wait_for(path, 1, timeout=WAIT_SECONDS)
    envelope = delivery["body"]
    assert envelope["status"] == "failed"
    assert envelope["failureReason"]
    _, _, body = request(offline_stack, "GET", f"/inferences/{accepted['InferenceId']}")
    assert json.loads(body)["status"] == "failed"


def test_duplicate_notification_never_gives_a_second_callback(offline_stack):
    receiver = offline_stack.webhook_receiver
    path, url = hook(offline_stack)
    accepted = submit(
        offline_stack, "echo", b"dup", Content_Type="text/plain", X_Callback_Url=url
    )
    receiver.wait_for(path, 1, timeout=WAIT_SECONDS)
    event = load_event("results-output-put")
    event["Records"][0]["body"] = replay_event(accepted["outputLocation"])

    result = offline_stack.invoke("ResultsFunction", event)

    assert result.payload == {"batchItemFailures": []}
    assert len(receiver.deliveries(path)) == 1


def test_receiver_failing_twice_gets_exactly_one_accepted_delivery(offline_stack):
    receiver = offline_stack.webhook_receiver
    path, url = hook(offline_stack)

    submit(
        offline_stack,
        "echo",
        b"retry me",
        Content_Type="text/plain",
        X_Callback_Url=f"{url}?fail_first=2",
    )

    [delivery] = receiver.wait_for(path, 1, timeout=WAIT_SECONDS)
    attempts = receiver.deliveries(path)
    assert [d["status"] for d in attempts] == [503, 503, 200]
    assert {d["idempotencyKey"] for d in attempts} == {delivery["body"]["inferenceId"]}
    assert delivery["signatureValid"] is True


def test_async_result_goes_to_a_reply_queue(offline_stack):
    sqs = offline_stack.sqs_client()
    queue_url = sqs.create_queue(QueueName=f"replies-{uuid.uuid4().hex[:8]}")["QueueUrl"]

    accepted = submit(
        offline_stack,
        "echo",
        b"to the queue",
        Content_Type="text/plain",
        X_Reply_Queue_Url=queue_url,
    )

    [message] = receive(sqs, queue_url, 1)
    assert message["inferenceId"] == accepted["InferenceId"]
    assert message["result"] == "to the queue"


def receive(
    sqs, queue_url: str, count: int, wait: float = WAIT_SECONDS
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while len(found) < count and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        )
        for message in response.get("Messages", []):
            body = json.loads(message["Body"]) if message["Body"].startswith("{") else {}
            found.append(
                {
                    **body,
                    "_attributes": message.get("MessageAttributes", {}),
                    "_raw": message["Body"],
                }
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


def send_requests(offline_stack, messages: list[dict[str, Any] | str]) -> None:
    sqs = offline_stack.sqs_client()
    queue_url = offline_stack.resources["RequestQueue"]
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(i), "MessageBody": m if isinstance(m, str) else json.dumps(m)}
            for i, m in enumerate(messages[start : start + 10])
        ]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def test_queued_rows_get_one_correct_reply_each(offline_stack):
    sqs = offline_stack.sqs_client()
    replies = sqs.create_queue(QueueName=f"replies-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    indices = list(range(0, 120))
    messages = [
        {
            "endpoint": "breast-cancer-xgb",
            "body": f"{row(i)}\n",
            "contentType": "text/csv",
            "requestId": f"row-{i}",
            "replyTo": {"queueUrl": replies},
        }
        for i in indices
    ]

    send_requests(offline_stack, messages)

    answers = receive(sqs, replies, len(indices))
    by_id = {answer["requestId"]: answer for answer in answers}
    assert len(answers) == len(by_id) == len(indices)
    for i in indices:
        assert by_id[f"row-{i}"]["status"] == "completed"
        assert int(float(by_id[f"row-{i}"]["body"]) > 0.5) == DATA.target[i]


def test_throttling_a_fifth_of_calls_still_gives_exactly_one_reply_each(offline_stack):
    sqs = offline_stack.sqs_client()
    replies = sqs.create_queue(QueueName=f"replies-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    messages = [
        {
            "endpoint": "echo",
            "body": f"message {i}",
            "customAttributes": "fault=throttle;fault_rate=0.2",
            "requestId": f"throttled-{i}",
            "replyTo": {"queueUrl": replies},
        }
        for i in range(40)
    ]

    send_requests(offline_stack, messages)

    answers = receive(sqs, replies, 40)
    counts = Counter(a["requestId"] for a in answers)
    expected = {f"throttled-{i}" for i in range(40)}
    missing = expected - set(counts)
    twice = {request_id for request_id, n in counts.items() if n > 1}
    assert (missing, twice) == (set(), set())
    assert {a["status"] for a in answers} == {"completed"}
    # A second reply would follow its retry within the back-off; none comes.
    assert receive(sqs, replies, 1, wait=5) == []


def test_poison_messages_end_as_error_replies_or_dead_letters_with_reasons(offline_stack):
    sqs = offline_stack.sqs_client()
    replies = sqs.create_queue(QueueName=f"replies-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    dead_letters = offline_stack.resources["RequestDeadLetterQueue"]
    marker = uuid.uuid4().hex

    send_requests(
        offline_stack,
        [
            f"not json {marker}",
            {
                "body": "x",
                "requestId": f"no-endpoint-{marker}",
                "replyTo": {"queueUrl": replies},
            },
            {
                "endpoint": "echo",
                "body": "x",
                "mode": "later",
                "requestId": f"bad-{marker}",
            },
        ],
    )

    [answer] = receive(sqs, replies, 1)
    assert answer["status"] == "failed"
    assert answer["error"]["message"].startswith("endpoint:")
    kept = [m for m in receive(sqs, dead_letters, 2) if marker in m["_raw"]]
    reasons = sorted(m["_attributes"]["reason"]["StringValue"] for m in kept)
    assert reasons[0].startswith("mode:")
    assert reasons[1] == "the message is not JSON"


def test_ten_queued_requests_reach_the_model_at_the_same_time(offline_stack):
    echo = urllib.parse.urlsplit(offline_stack.endpoints["echo"])
    stats = http.client.HTTPConnection(echo.hostname, echo.port, timeout=10)
    stats.request("DELETE", "/offline/stats")
    stats.getresponse().read()
    stats.request("GET", "/offline/stats")
    # A hung request of an earlier test may still be in flight.
    already = json.loads(stats.getresponse().read())["inFlight"]
    event = load_event("queue-batch-throttled")
    template = event["Records"][0]
    event["Records"] = [
        {
            **template,
            "messageId": str(uuid.uuid4()),
            "body": json.dumps(
                {"endpoint": "echo", "body": f"{i}", "customAttributes": "delay_ms=100"}
            ),
        }
        for i in range(10)
    ]

    result = offline_stack.invoke("QueueFunction", event)

    stats.request("GET", "/offline/stats")
    seen = json.loads(stats.getresponse().read())
    assert result.payload == {"batchItemFailures": []}
    assert seen["requests"] == 10
    assert seen["maxInFlight"] - already == 10
