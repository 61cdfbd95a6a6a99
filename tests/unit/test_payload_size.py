"""Replies and callbacks always fit an SQS message, however the JSON escapes them."""

import base64
import json
from typing import Any

from gateway.core.delivery import MAX_PAYLOAD_BYTES, Deliverer, Envelope
from gateway.core.queue_requests import Replier
from gateway.models.inference import InvocationResult
from gateway.models.records import Callback, CallbackKind, InferenceRecord, Status

# Control characters: one byte each, six once JSON escapes them (\u0001).
CONTROL_TEXT = b"\x01" * 700_000


class Queues:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def send(self, url: str, body: str, attributes: Any = None, **kwargs: Any) -> str:
        if len(body.encode()) > 1_048_576:
            raise ValueError("Message must be shorter than 1048576 bytes")
        self.sent.append((url, body, attributes or {}))
        return "message-id"


def test_text_reply_that_escapes_past_a_message_travels_as_base64():
    replier = Replier(None, None, None, request_dlq_url="", url_expiry_seconds=900)  # type: ignore[arg-type]
    result = InvocationResult(body=CONTROL_TEXT, content_type="text/plain")

    reply = replier.completed("r-1", "echo", result)

    assert reply.body is None
    assert base64.b64decode(reply.body_base64 or "") == CONTROL_TEXT
    assert len(reply.to_json().encode()) <= MAX_PAYLOAD_BYTES


def record(**changes: Any) -> InferenceRecord:
    values: dict[str, Any] = {
        "inference_id": "inf-1",
        "endpoint": "echo",
        "status": Status.COMPLETED,
        "created_at": 1,
        "updated_at": 2,
        "request_ttl_seconds": 60,
        "invocation_timeout_seconds": 60,
        "callback": Callback(CallbackKind.QUEUE, "https://sqs.example/1/replies"),
    }
    return InferenceRecord(**{**values, **changes})


def test_envelope_leaves_out_an_inline_result_that_escapes_past_a_message():
    text = CONTROL_TEXT[:200_000].decode()
    envelope = Envelope(record(), "https://bucket.example/result", text)

    payload = envelope.to_json()

    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    assert json.loads(payload)["result"] is None
    assert json.loads(payload)["resultUrl"] == "https://bucket.example/result"


def test_undeliverable_payload_too_large_is_dead_lettered_without_it():
    queues = Queues()
    deliverer = Deliverer(None, queues, "https://sqs.example/1/delivery-dlq")  # type: ignore[arg-type]
    payload = json.dumps({"result": "x" * 1_100_000})

    deliverer.send(
        Callback(CallbackKind.QUEUE, "https://sqs.example/1/replies"),
        payload,
        key="inf-1",
        attributes={"inferenceId": "inf-1"},
    )

    [(url, body, attributes)] = queues.sent
    assert url.endswith("delivery-dlq")
    assert json.loads(body)["payloadOmitted"] is True
    assert attributes["inferenceId"] == "inf-1"
    assert attributes["reason"].startswith("reply queue refused the result")
