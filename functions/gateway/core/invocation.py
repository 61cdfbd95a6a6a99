"""Synchronous inference: the checks a request passes before it reaches a model."""

from dataclasses import replace
from typing import Protocol

from gateway.core.errors import (
    EndpointNotAllowedError,
    PayloadTooLargeError,
    RequestValidationError,
)
from gateway.models.inference import (
    MAX_SYNC_PAYLOAD_BYTES,
    InvocationRequest,
    InvocationResult,
)
from gateway.models.settings import Settings


class ModelRuntime(Protocol):
    """What the core needs from SageMaker Runtime."""

    def invoke(self, request: InvocationRequest) -> InvocationResult: ...


def invoke_sync(
    request: InvocationRequest, runtime: ModelRuntime, settings: Settings
) -> InvocationResult:
    """Invoke an allowed endpoint with a payload SageMaker will accept."""
    if not settings.allows(request.endpoint):
        raise EndpointNotAllowedError(request.endpoint)

    if len(request.body) > MAX_SYNC_PAYLOAD_BYTES:
        raise PayloadTooLargeError(len(request.body), MAX_SYNC_PAYLOAD_BYTES)

    if is_csv(request.content_type):
        request = replace(request, body=normalise_csv(request.body))

    if not request.body:
        raise RequestValidationError("body", "must not be empty")

    return runtime.invoke(request)


def is_csv(content_type: str | None) -> bool:
    """Tell whether a content type names CSV, parameters and case aside."""
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "text/csv"


def normalise_csv(body: bytes) -> bytes:
    """End every row with ``\\n`` and drop the blank lines at the end."""
    rows = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    while rows and not rows[-1].strip():
        rows.pop()
    return b"\n".join(rows) + b"\n" if rows else b""
