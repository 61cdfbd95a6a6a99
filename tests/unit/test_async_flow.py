"""The async flow on the files in events/: submit, results from S3 notifications,
delivery. AWS is moto in-process, SageMaker a fake that names the result objects, and
webhooks go to a recording transport behind a stubbed resolver: nothing is sent."""

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from moto import mock_aws

from gateway.aws import clients, queues, records, storage
from gateway.core import errors
from gateway.core import results as core_results
from gateway.core.async_jobs import AsyncServices
from gateway.core.delivery import Deliverer
from gateway.core.results import ResultServices
from gateway.core.webhooks import (
    CallbackPolicy,
    Timeouts,
    WebhookResponse,
    WebhookSender,
    WebhookTarget,
    verify_signature,
)
from gateway.handlers import api, results, services
from gateway.models.inference import AsyncInvocationRequest, AsyncSubmission
from gateway.models.records import Status
from gateway.models.settings import get_settings
from tests.conftest import load_event

SECRET = "unit-test-webhook-secret"
PUBLIC_ADDRESS = "93.184.216.34"
SETTINGS = get_settings()
BUCKET = SETTINGS.gateway_bucket


@dataclass
class FakeSageMaker:
    """Accepts async work and names its result objects as SageMaker would."""

    names: list[str] = field(default_factory=list)
    submitted: list[AsyncInvocationRequest] = field(default_factory=list)

    def invoke(self, request: Any) -> Any:
        raise AssertionError("the async flow never calls invoke_endpoint")

    def submit(self, request: AsyncInvocationRequest) -> AsyncSubmission:
        self.submitted.append(request)
        name = self.names.pop(0)
        return AsyncSubmission(
            inference_id=request.inference_id,
            output_location=f"s3://{BUCKET}/outputs/{name}.out",
            failure_location=f"s3://{BUCKET}/failures/{name}-error.out",
        )


@dataclass
class Receiver:
    """A webhook receiver that answers the statuses it is given, then 200."""

    statuses: list[int] = field(default_factory=list)
    calls: list[tuple[WebhookTarget, dict[str, str], bytes]] = field(default_factory=list)
    # When set, a delivery is answered only once all the meeting's parties are waiting:
    # deliveries made one after another never meet, and their wait breaks.
    meeting: threading.Barrier | None = None

    def __call__(
        self, target: WebhookTarget, headers: Any, body: bytes, timeouts: Timeouts
    ) -> WebhookResponse:
        if self.meeting is not None:
            self.meeting.wait()
        self.calls.append((target, dict(headers), body))
        status = self.statuses.pop(0) if self.statuses else 200
        return WebhookResponse(status, {})

    def delivered(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body in self.calls]


@dataclass
class Flow:
    sagemaker: FakeSageMaker
    receiver: Receiver
    services: ResultServices
    s3: Any
    sqs: Any

    def put_result(self, name: str, body: bytes, content_type: str) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=name, Body=body, ContentType=content_type)

    def queued(self, queue_url: str) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        return messages.get("Messages", [])


def public_resolver(host: str, port: int) -> list[str]:
    return [PUBLIC_ADDRESS]


@pytest.fixture
def flow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Flow]:
    with mock_aws():
        # Clients made from a session that predates the mock would miss it.
        clients.reset()
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs")
        for url in (SETTINGS.results_queue_url, SETTINGS.delivery_dlq_url):
            sqs.create_queue(QueueName=url.rsplit("/", 1)[1])
        sqs.create_queue(QueueName="client-replies")
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=SETTINGS.inference_table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )

        sagemaker = FakeSageMaker()
        receiver = Receiver()
        shared = AsyncServices(
            sagemaker=sagemaker,
            records=records.InferenceRecords(dynamodb, SETTINGS.inference_table, 30),
            store=storage.ObjectStore(storage.create_client(), BUCKET),
            queues=queues.MessageQueues(sqs),
        )
        sender = WebhookSender(
            lambda: SECRET,
            policy=CallbackPolicy(),
            transport=receiver,
            resolve=public_resolver,
            sleep=lambda seconds: None,
        )
        result_services = ResultServices(
            shared.records,
            shared.store,
            Deliverer(sender, shared.queues, SETTINGS.delivery_dlq_url),
        )
        monkeypatch.setattr(services, "async_services", lambda: shared)
        monkeypatch.setattr(services, "result_services", lambda: result_services)
        monkeypatch.setattr("socket.getaddrinfo", _stub_getaddrinfo)
        yield Flow(sagemaker, receiver, result_services, s3, sqs)


def _stub_getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
    if host == "unknown.example.com":
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    address = {"private.example.com": "10.1.2.3"}.get(host, PUBLIC_ADDRESS)
    return [(2, 1, 6, "", (address, port or 443))]


def submit(flow: Flow, name: str, lambda_context: Any, **headers: str) -> dict[str, Any]:
    event = load_event(name)
    event["headers"].update(headers)
    event["multiValueHeaders"].update({k: [v] for k, v in headers.items()})
    response: dict[str, Any] = api.handler(event, lambda_context)
    return response


def notify(event_name: str, lambda_context: Any) -> dict[str, Any]:
    response: dict[str, Any] = results.handler(load_event(event_name), lambda_context)
    return response


def key_of(event_name: str) -> str:
    body = json.loads(load_event(event_name)["Records"][0]["body"])
    return unquote_plus(body["Records"][0]["s3"]["object"]["key"])


def name_of(event_name: str) -> str:
    return key_of(event_name).removeprefix("outputs/").removesuffix(".out")


def status_of(inference_id: str, lambda_context: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(describe(inference_id, lambda_context)["body"])
    return body


def describe(
    inference_id: str, lambda_context: Any, caller: str | None = "AIDAEXAMPLECALLER"
) -> dict[str, Any]:
    """GET /inferences/{id}, signed by ``caller`` (the sample events' own by default)."""
    event = load_event("api-get-inference")
    event["path"] = f"/inferences/{inference_id}"
    event["pathParameters"] = {"inferenceId": inference_id}
    event["requestContext"]["identity"]["caller"] = caller
    response: dict[str, Any] = api.handler(event, lambda_context)
    return response


def submitted_by(flow: Flow, caller: str | None, lambda_context: Any) -> str:
    """Submit the sample async request signed by ``caller``; its inference id."""
    event = load_event("api-async-invoke")
    event["requestContext"]["identity"]["caller"] = caller
    response = api.handler(event, lambda_context)
    assert response["statusCode"] == 202
    inference_id: str = json.loads(response["body"])["InferenceId"]
    return inference_id


def test_submit_records_the_inference_and_answers_202_like_sagemaker(
    flow, lambda_context
):
    flow.sagemaker.names.append(name_of("results-output-put"))

    response = submit(flow, "api-async-invoke", lambda_context)

    body = json.loads(response["body"])
    headers = response["multiValueHeaders"]
    request = flow.sagemaker.submitted[0]
    output = f"s3://{BUCKET}/{key_of('results-output-put')}"
    assert response["statusCode"] == 202
    assert request.inference_id == body["InferenceId"]
    assert body["statusUrl"].endswith(f"/v1/inferences/{body['InferenceId']}")
    assert headers["X-Amzn-SageMaker-OutputLocation"] == [output]
    assert status_of(body["InferenceId"], lambda_context)["status"] == "pending"


def test_small_payload_travels_inline_and_large_one_is_stored_first(flow, lambda_context):
    flow.sagemaker.names.extend(["small", "large"])
    small = base64.b64decode(load_event("api-async-invoke")["body"])
    large_event = load_event("api-async-invoke")
    large = b"1,2,3\n" * 30_000
    large_event["body"] = base64.b64encode(large).decode()

    submit(flow, "api-async-invoke", lambda_context)
    api.handler(large_event, lambda_context)

    inline, stored = flow.sagemaker.submitted
    assert (inline.body, inline.input_location) == (small, None)
    assert stored.body is None
    key = stored.input_location.removeprefix(f"s3://{BUCKET}/")
    assert key.startswith("inputs/")
    assert flow.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == large


def test_sagemaker_async_content_headers_are_honoured(flow, lambda_context):
    flow.sagemaker.names.append("named")

    submit(
        flow,
        "api-async-invoke",
        lambda_context,
        **{
            "X-Amzn-SageMaker-Content-Type": "application/x-npy",
            "X-Amzn-SageMaker-Accept": "text/csv",
        },
    )

    request = flow.sagemaker.submitted[0]
    assert (request.content_type, request.accept) == ("application/x-npy", "text/csv")


def test_result_is_delivered_once_signed_and_status_agrees(flow, lambda_context):
    flow.sagemaker.names.append(name_of("results-output-put"))
    inference_id = json.loads(submit(flow, "api-async-invoke", lambda_context)["body"])[
        "InferenceId"
    ]
    flow.put_result(
        key_of("results-output-put"), b'{"predictions":[]}', "application/json"
    )

    outcome = notify("results-output-put", lambda_context)

    assert outcome == {"batchItemFailures": []}
    [(target, headers, payload)] = flow.receiver.calls
    envelope = json.loads(payload)
    assert target.host == "hooks.example.com"
    assert verify_signature(SECRET, headers["X-Signature"], payload, now=_now())
    assert envelope["inferenceId"] == inference_id
    assert envelope["status"] == "completed"
    assert envelope["result"] == '{"predictions":[]}'
    assert envelope["resultUrl"].startswith("https://")
    status = status_of(inference_id, lambda_context)
    assert status["status"] == "completed"
    assert status["result"] == '{"predictions":[]}'


def test_duplicate_notification_gives_one_delivery(flow, lambda_context):
    flow.sagemaker.names.append(name_of("results-output-put"))
    submit(flow, "api-async-invoke", lambda_context)
    flow.put_result(key_of("results-output-put"), b"0.5\n", "text/csv")

    notify("results-output-put", lambda_context)
    notify("results-output-put", lambda_context)

    assert len(flow.receiver.calls) == 1


def test_failure_object_gives_failed_status_and_error_callback(flow, lambda_context):
    flow.sagemaker.names.append(name_of("results-output-put"))
    inference_id = json.loads(submit(flow, "api-async-invoke", lambda_context)["body"])[
        "InferenceId"
    ]
    flow.put_result(key_of("results-failure-put"), b"model raised: bad row", "text/plain")

    notify("results-failure-put", lambda_context)

    [envelope] = flow.receiver.delivered()
    assert envelope["status"] == "failed"
    assert envelope["failureReason"] == "model raised: bad row"
    assert envelope["resultUrl"] is None
    assert status_of(inference_id, lambda_context)["status"] == "failed"


def test_failure_reason_loses_account_ids_and_console_links(flow, lambda_context):
    flow.sagemaker.names.append(name_of("results-output-put"))
    submit(flow, "api-async-invoke", lambda_context)
    reason = (
        'Received server error (500) from primary with message "boom". See '
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home#logs in account "
        "123456789012 for more information."
    )
    flow.put_result(key_of("results-failure-put"), reason.encode(), "text/plain")

    notify("results-failure-put", lambda_context)

    [envelope] = flow.receiver.delivered()
    assert "123456789012" not in envelope["failureReason"]
    assert "console.aws" not in envelope["failureReason"]
    assert "boom" in envelope["failureReason"]


@pytest.mark.parametrize("inference_id", ["../../etc", "a b", "a%20b", "x/y"])
def test_async_inference_id_that_cannot_name_a_url_is_400(
    flow, lambda_context, inference_id
):
    response = submit(
        flow,
        "api-async-invoke",
        lambda_context,
        **{"X-Amzn-SageMaker-Inference-Id": inference_id},
    )

    assert response["statusCode"] == 400
    assert flow.sagemaker.submitted == []


def test_complete_multipart_upload_counts_as_a_result(flow, lambda_context):
    flow.sagemaker.names.append(name_of("results-complete-multipart"))
    submit(flow, "api-async-invoke", lambda_context)
    flow.put_result(
        key_of("results-complete-multipart"), b"\0" * 1024, "application/x-npy"
    )

    notify("results-complete-multipart", lambda_context)

    [envelope] = flow.receiver.delivered()
    assert envelope["status"] == "completed"
    assert envelope["size"] == 1024
    assert envelope["result"] is None


def test_key_with_spaces_plus_and_non_ascii_is_found(flow, lambda_context):
    flow.sagemaker.names.append(name_of("results-odd-key"))
    submit(flow, "api-async-invoke", lambda_context)
    flow.put_result(key_of("results-odd-key"), b"0.9\n", "text/csv")

    notify("results-odd-key", lambda_context)

    assert flow.receiver.delivered()[0]["result"] == "0.9\n"


def test_unknown_key_and_test_event_are_acknowledged_without_delivery(
    flow, lambda_context
):
    flow.put_result(key_of("results-unknown-key"), b"x", "text/plain")

    unknown = notify("results-unknown-key", lambda_context)
    test_event = notify("results-test-event", lambda_context)

    assert unknown == test_event == {"batchItemFailures": []}
    assert flow.receiver.calls == []


def test_result_that_lands_before_its_link_is_replayed_and_delivered_once(
    flow, lambda_context
):
    flow.put_result(key_of("results-output-put"), b"0.1\n", "text/csv")
    notify("results-output-put", lambda_context)
    flow.sagemaker.names.append(name_of("results-output-put"))

    submit(flow, "api-async-invoke", lambda_context)
    [replayed] = flow.queued(SETTINGS.results_queue_url)
    event = load_event("results-output-put")
    event["Records"][0]["body"] = replayed["Body"]
    results.handler(event, lambda_context)

    assert len(flow.receiver.calls) == 1
    assert flow.receiver.delivered()[0]["result"] == "0.1\n"


def test_receiver_failing_twice_then_answering_gets_exactly_one_delivery(
    flow, lambda_context
):
    flow.receiver.statuses.extend([503, 500])
    flow.sagemaker.names.append(name_of("results-output-put"))
    submit(flow, "api-async-invoke", lambda_context)
    flow.put_result(key_of("results-output-put"), b"0.2\n", "text/csv")

    notify("results-output-put", lambda_context)
    notify("results-output-put", lambda_context)

    assert len(flow.receiver.calls) == 3
    keys = {headers["X-Idempotency-Key"] for _, headers, _ in flow.receiver.calls}
    assert len(keys) == 1
    assert flow.queued(SETTINGS.delivery_dlq_url) == []


def test_delivery_that_keeps_failing_ends_in_the_dead_letter_queue(flow, lambda_context):
    flow.receiver.statuses.extend([503] * 10)
    flow.sagemaker.names.append(name_of("results-output-put"))
    inference_id = json.loads(submit(flow, "api-async-invoke", lambda_context)["body"])[
        "InferenceId"
    ]
    flow.put_result(key_of("results-output-put"), b"0.3\n", "text/csv")

    notify("results-output-put", lambda_context)

    [dead] = flow.queued(SETTINGS.delivery_dlq_url)
    assert json.loads(dead["Body"])["inferenceId"] == inference_id
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "HTTP 503"


def test_reply_queue_gets_the_same_envelope(flow, lambda_context):
    queue_url = flow.sqs.get_queue_url(QueueName="client-replies")["QueueUrl"]
    allowed_url = "https://sqs.us-east-1.amazonaws.com/123456789012/client-replies"
    flow.sagemaker.names.append(name_of("results-odd-key"))
    response = submit(
        flow,
        "api-async-invoke-reply-queue",
        lambda_context,
        **{"X-Reply-Queue-Url": allowed_url},
    )
    flow.put_result(key_of("results-odd-key"), b"0.4\n", "text/csv")

    notify("results-odd-key", lambda_context)

    assert response["statusCode"] == 202
    [reply] = flow.queued(queue_url)
    assert json.loads(reply["Body"])["result"] == "0.4\n"
    assert flow.receiver.calls == []


def test_reply_queue_outside_the_allowlist_is_400(flow, lambda_context):
    response = submit(flow, "api-async-invoke-reply-queue", lambda_context)

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["code"] == "CallbackRefused"


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/hook",
        "https://172.16.0.1/hook",
        "https://192.168.1.1/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://2130706433/hook",
        "https://0x7f000001/hook",
        "https://private.example.com/hook",
        "http://hooks.example.com/hook",
    ],
)
def test_callback_to_a_refused_address_is_400_at_submit_and_nothing_is_stored(
    flow, lambda_context, url
):
    response = submit(flow, "api-async-invoke", lambda_context, **{"X-Callback-Url": url})

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["code"] == "CallbackRefused"
    assert flow.sagemaker.submitted == []
    assert flow.receiver.calls == []
    assert "Contents" not in flow.s3.list_objects_v2(Bucket=BUCKET)


def test_callback_host_that_does_not_resolve_is_400_not_500(flow, lambda_context):
    url = "https://unknown.example.com/hook"

    response = submit(flow, "api-async-invoke", lambda_context, **{"X-Callback-Url": url})

    body = json.loads(response["body"])
    assert response["statusCode"] == 400
    assert body["code"] == "CallbackRefused"
    assert "does not resolve" in body["message"]
    assert flow.sagemaker.submitted == []


def test_input_location_outside_the_allowed_prefixes_is_403(flow, lambda_context):
    response = submit(flow, "api-async-input-location", lambda_context)

    assert response["statusCode"] == 403
    assert flow.sagemaker.submitted == []


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Amzn-SageMaker-RequestTTLSeconds", "59"),
        ("X-Amzn-SageMaker-RequestTTLSeconds", "21601"),
        ("X-Amzn-SageMaker-InvocationTimeoutSeconds", "0"),
        ("X-Amzn-SageMaker-InvocationTimeoutSeconds", "3601"),
    ],
)
def test_async_timing_headers_out_of_range_are_400_naming_them(
    flow, lambda_context, header, value
):
    response = submit(flow, "api-async-invoke", lambda_context, **{header: value})

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["message"].startswith(f"{header}:")


def test_reused_inference_id_is_409(flow, lambda_context):
    flow.sagemaker.names.extend(["first", "second"])
    headers = {"X-Amzn-SageMaker-Inference-Id": "client-chosen-1"}
    submit(flow, "api-async-invoke", lambda_context, **headers)

    response = submit(flow, "api-async-invoke", lambda_context, **headers)

    assert response["statusCode"] == 409


def test_an_inference_id_whose_submission_failed_may_be_used_again(
    flow, lambda_context, monkeypatch
):
    flow.sagemaker.names.append("after-throttling")
    accept = flow.sagemaker.submit
    refusals = [errors.ThrottledError()]

    def throttle_first(request: AsyncInvocationRequest) -> AsyncSubmission:
        if refusals:
            raise refusals.pop()
        return accept(request)

    monkeypatch.setattr(flow.sagemaker, "submit", throttle_first)
    headers = {"X-Amzn-SageMaker-Inference-Id": "client-chosen-2"}

    throttled = submit(flow, "api-async-invoke", lambda_context, **headers)
    failed = status_of("client-chosen-2", lambda_context)
    retried = submit(flow, "api-async-invoke", lambda_context, **headers)
    again = submit(flow, "api-async-invoke", lambda_context, **headers)

    assert throttled["statusCode"] == 429
    assert (failed["status"], failed["failureReason"]) == (
        "failed",
        "ThrottlingException",
    )
    assert retried["statusCode"] == 202
    assert status_of("client-chosen-2", lambda_context)["status"] == "pending"
    assert again["statusCode"] == 409


def test_unknown_inference_is_404(flow, lambda_context):
    response = api.handler(load_event("api-get-inference"), lambda_context)

    assert response["statusCode"] == 404


def _now() -> int:
    return int(time.time())


def test_pending_inference_past_its_ttl_and_timeout_reads_as_expired(
    flow, lambda_context
):
    flow.sagemaker.names.append("never-answered")
    headers = {
        "X-Amzn-SageMaker-RequestTTLSeconds": "60",
        "X-Amzn-SageMaker-InvocationTimeoutSeconds": "1",
    }
    inference_id = json.loads(
        submit(flow, "api-async-invoke", lambda_context, **headers)["body"]
    )["InferenceId"]
    record = services.async_services().records.get(inference_id)

    assert record.status_at(record.created_at + 61_000) == Status.PENDING
    assert record.status_at(record.created_at + 61_001) == Status.EXPIRED
    assert status_of(inference_id, lambda_context)["status"] == "pending"


def test_no_payload_result_secret_or_presigned_url_reaches_the_logs(
    flow, lambda_context, monkeypatch
):
    logs_written = io.StringIO()
    monkeypatch.setattr(api.logger.registered_handler, "stream", logs_written)
    payload_marker = "PAYLOAD-7f3a9c"
    result_marker = "RESULT-4b1d2e"
    flow.sagemaker.names.append(name_of("results-output-put"))
    event = load_event("api-async-invoke")
    event["body"] = base64.b64encode(f"{payload_marker}\n".encode()).decode()
    response = api.handler(event, lambda_context)
    inference_id = json.loads(response["body"])["InferenceId"]
    flow.put_result(key_of("results-output-put"), result_marker.encode(), "text/plain")
    notify("results-output-put", lambda_context)
    status = status_of(inference_id, lambda_context)

    logs = logs_written.getvalue()

    assert status["result"] == result_marker
    assert flow.receiver.delivered()[0]["result"] == result_marker
    assert inference_id in logs
    for secret in (
        payload_marker,
        result_marker,
        SECRET,
        "X-Amz-Signature",
        "X-Signature",
    ):
        assert secret not in logs


def test_finished_and_undeliverable_results_are_counted(flow, lambda_context, capsys):
    flow.receiver.statuses.extend([503] * 10)
    flow.sagemaker.names.append(name_of("results-output-put"))
    submit(flow, "api-async-invoke", lambda_context)
    flow.put_result(key_of("results-output-put"), b"0.3\n", "text/csv")

    notify("results-output-put", lambda_context)

    lines = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"_aws"' in line
    ]
    names = [
        m["Name"]
        for line in lines
        for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    ]
    assert names.count("AsyncSubmitted") == 1
    assert names.count("AsyncCompleted") == 1
    assert names.count("DeliveryFailures") == 1


def batch_of_results(names: list[str]) -> dict[str, Any]:
    """One SQS event with a notification per result object, as the results queue sends."""
    template = load_event("results-output-put")["Records"][0]
    records = []
    for index, name in enumerate(names):
        notification = json.loads(template["body"])
        notification["Records"][0]["s3"]["object"]["key"] = f"outputs/{name}.out"
        records.append(
            {
                **template,
                "messageId": f"message-{index}",
                "body": json.dumps(notification),
            }
        )
    return {"Records": records}


def test_a_batch_of_results_is_delivered_side_by_side_each_logged_as_its_own(
    flow, lambda_context, monkeypatch
):
    names = [f"side-by-side-{index}" for index in range(3)]
    flow.sagemaker.names.extend(names)
    inference_ids = [
        json.loads(submit(flow, "api-async-invoke", lambda_context)["body"])[
            "InferenceId"
        ]
        for _ in names
    ]
    for name in names:
        flow.put_result(f"outputs/{name}.out", name.encode(), "text/plain")
    flow.receiver.meeting = threading.Barrier(len(names), timeout=10)
    logs_written = io.StringIO()
    monkeypatch.setattr(results.logger.registered_handler, "stream", logs_written)

    outcome = results.handler(batch_of_results(names), lambda_context)

    assert outcome == {"batchItemFailures": []}
    delivered = {
        entry["inferenceId"]: entry["result"] for entry in flow.receiver.delivered()
    }
    assert delivered == dict(zip(inference_ids, names, strict=True))
    handled = [
        json.loads(line)
        for line in logs_written.getvalue().splitlines()
        if '"result object handled"' in line
    ]
    assert sorted((line["message_id"], line["inference_id"]) for line in handled) == [
        (f"message-{index}", inference_id)
        for index, inference_id in enumerate(inference_ids)
    ]


def test_an_inference_is_shown_only_to_the_principal_that_submitted_it(
    flow, lambda_context
):
    flow.sagemaker.names.append(name_of("results-output-put"))
    inference_id = submitted_by(flow, "AIDAEXAMPLECALLER", lambda_context)
    unknown = describe("never-submitted", lambda_context)

    theirs = describe(inference_id, lambda_context, caller="AIDAEXAMPLECALLER")
    someone_else = describe(inference_id, lambda_context, caller="AIDAANOTHERCALLER")

    assert theirs["statusCode"] == 200
    assert someone_else["statusCode"] == unknown["statusCode"] == 404
    # Word for word what an id never submitted gets: nothing tells that it exists.
    assert json.loads(someone_else["body"]) == json.loads(
        unknown["body"].replace("never-submitted", inference_id)
    )


def test_every_session_of_the_submitting_role_sees_its_inference(flow, lambda_context):
    flow.sagemaker.names.append(name_of("results-output-put"))
    inference_id = submitted_by(flow, "AROAEXAMPLEROLE:worker-1", lambda_context)

    same_role = describe(inference_id, lambda_context, caller="AROAEXAMPLEROLE:worker-2")
    other_role = describe(inference_id, lambda_context, caller="AROAOTHERROLE:worker-1")

    assert same_role["statusCode"] == 200
    assert other_role["statusCode"] == 404


@pytest.mark.parametrize(
    ("submitter", "reader"),
    [
        ("123456789012:alice", "123456789012:mallory"),  # federated users
        ("123456789012:alice", "123456789012"),  # and their account's root
        ("AIDAEXAMPLECALLER", "AIDAEXAMPLECALLER:extra"),
    ],
)
def test_only_an_assumed_role_loses_its_session_name(
    flow, lambda_context, submitter, reader
):
    flow.sagemaker.names.append(name_of("results-output-put"))
    inference_id = submitted_by(flow, submitter, lambda_context)

    assert describe(inference_id, lambda_context, caller=reader)["statusCode"] == 404
    assert describe(inference_id, lambda_context, caller=submitter)["statusCode"] == 200


def test_an_inference_submitted_without_a_known_caller_is_shown_to_any(
    flow, lambda_context
):
    flow.sagemaker.names.append(name_of("results-output-put"))
    inference_id = submitted_by(flow, None, lambda_context)

    assert (
        describe(inference_id, lambda_context, caller="AIDAANYONE")["statusCode"] == 200
    )


def test_a_result_delivered_from_its_other_object_carries_the_winners_text(
    flow, lambda_context, monkeypatch
):
    name = name_of("results-output-put")
    flow.sagemaker.names.append(name)
    submit(flow, "api-async-invoke", lambda_context)
    flow.put_result(f"outputs/{name}.out", b"0.5\n", "text/csv")
    flow.put_result(f"failures/{name}-error.out", b"model failed", "text/plain")
    output = batch_of_results([name])
    failure = json.loads(json.dumps(output).replace(".out", "-error.out"))
    failure = json.loads(json.dumps(failure).replace("outputs/", "failures/"))

    def stop(*args: Any) -> None:
        raise RuntimeError("the function stopped before delivering")

    # The output finishes the inference; its function stops before delivering.
    with monkeypatch.context() as stopped:
        stopped.setattr(core_results, "_deliver", stop)
        handed_back = results.handler(output, lambda_context)
    told = results.handler(failure, lambda_context)

    assert handed_back["batchItemFailures"]
    assert told == {"batchItemFailures": []}
    [envelope] = flow.receiver.delivered()
    assert (envelope["status"], envelope["result"]) == ("completed", "0.5\n")
