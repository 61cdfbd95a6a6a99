"""The local webhook receiver: signature checks, recording and failures on request."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.core.webhooks import CallbackPolicy, WebhookSender, sign
from offline.webhook_receiver import WebhookReceiver

SECRET = "receiver-test-secret"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A receiver on a free loopback port."""
    with WebhookReceiver(secret=SECRET) as started:
        yield started


def call(
    receiver: WebhookReceiver,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One request to the receiver; return the status and the decoded JSON answer."""
    connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        connection.close()


def deliver(
    receiver: WebhookReceiver, path: str, payload: dict[str, Any], secret: str = SECRET
) -> int:
    """POST a payload signed like the gateway signs it; return the status."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Signature": sign(secret, int(time.time()), body),
        "X-Idempotency-Key": "inf-1",
    }
    status, _ = call(receiver, "POST", path, body, headers)
    return status


def test_signed_delivery_is_recorded_and_accepted(receiver: WebhookReceiver) -> None:
    assert deliver(receiver, "/hooks/a", {"inferenceId": "inf-1"}) == 200

    [record] = receiver.deliveries("/hooks/a")
    assert record["signatureValid"] is True
    assert record["idempotencyKey"] == "inf-1"
    assert record["body"] == {"inferenceId": "inf-1"}
    assert record["status"] == 200
    assert record["receivedAt"] == pytest.approx(time.time(), abs=5)


def test_wrong_secret_or_no_signature_is_refused(receiver: WebhookReceiver) -> None:
    assert deliver(receiver, "/hooks/b", {"x": 1}, secret="not-the-secret") == 401
    status, _ = call(receiver, "POST", "/hooks/b", b"{}")

    assert status == 401
    assert [r["signatureValid"] for r in receiver.deliveries("/hooks/b")] == [
        False,
        False,
    ]
    assert receiver.accepted("/hooks/b") == []


def test_fail_first_fails_that_many_requests_per_path(receiver: WebhookReceiver) -> None:
    statuses = [deliver(receiver, "/hooks/c?fail_first=2", {"n": n}) for n in range(3)]
    other = deliver(receiver, "/hooks/d?fail_first=1", {"n": 0})

    assert statuses == [503, 503, 200]
    assert other == 503
    [accepted] = receiver.wait_for("/hooks/c", count=1, timeout=1)
    assert accepted["attempt"] == 3
    assert accepted["body"] == {"n": 2}


def test_status_and_fail_rate_options(receiver: WebhookReceiver) -> None:
    assert deliver(receiver, "/hooks/e?status=410", {}) == 410
    assert deliver(receiver, "/hooks/e?fail_rate=1", {}) == 503
    assert deliver(receiver, "/hooks/e?fail_rate=0", {}) == 200


def test_deliveries_can_be_listed_and_cleared_over_http(
    receiver: WebhookReceiver,
) -> None:
    deliver(receiver, "/hooks/f", {"n": 1})
    deliver(receiver, "/hooks/g", {"n": 2})

    status, only_f = call(receiver, "GET", "/deliveries?path=/hooks/f")
    _, everything = call(receiver, "GET", "/deliveries")
    cleared, _ = call(receiver, "DELETE", "/deliveries")

    assert status == 200
    assert [record["body"] for record in only_f] == [{"n": 1}]
    assert len(everything) == 2
    assert cleared == 204
    assert receiver.deliveries() == []


def test_wait_for_times_out_with_a_clear_message(receiver: WebhookReceiver) -> None:
    with pytest.raises(TimeoutError, match="0 of 1 deliveries to /never"):
        receiver.wait_for("/never", count=1, timeout=0.2)


def test_gateway_sender_retries_until_the_receiver_accepts(
    receiver: WebhookReceiver,
) -> None:
    sender = WebhookSender(
        lambda: SECRET,
        policy=CallbackPolicy(allow_loopback=True),
        sleep=lambda _: None,
    )

    result = sender.send(
        f"{receiver.url}/hooks/h?fail_first=2", b'{"ok": true}', idempotency_key="k-1"
    )

    assert (result.delivered, result.attempts) == (True, 3)
    records = receiver.deliveries("/hooks/h")
    assert [r["status"] for r in records] == [503, 503, 200]
    assert {r["idempotencyKey"] for r in records} == {"k-1"}
    assert all(r["signatureValid"] for r in records)
