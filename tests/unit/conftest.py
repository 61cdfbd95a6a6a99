"""Unit tests run without a network: any connection attempt fails the test."""

import os
import socket

import pytest

# The handler module builds its client at import; it must never be used for real here.
os.environ.update(
    ALLOWED_ENDPOINTS="breast-cancer-xgb,echo",
    AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME="http://127.0.0.1:9",
    GATEWAY_BUCKET="inference-gateway-local-gatewaybucket",
    INFERENCE_TABLE="inference-gateway-local-inferencetable",
    RESULTS_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/results",
    DELIVERY_DLQ_URL="https://sqs.us-east-1.amazonaws.com/123456789012/delivery-dlq",
    WEBHOOK_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:webhook",
    ALLOWED_REPLY_QUEUES="arn:aws:sqs:us-east-1:123456789012:client-replies",
    REQUEST_QUEUE_URL="https://sqs.us-east-1.amazonaws.com/123456789012/requests",
    REQUEST_DLQ_URL="https://sqs.us-east-1.amazonaws.com/123456789012/requests-dlq",
    IDEMPOTENCY_TABLE="inference-gateway-local-idempotencytable",
)


class NetworkBlockedError(RuntimeError):
    """A unit test tried to open a connection."""


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise NetworkBlockedError(f"unit tests must not connect: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
