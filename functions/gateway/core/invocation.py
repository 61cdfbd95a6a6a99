"""Synchronous inference: the checks a request passes before it reaches a model."""

import time
from functools import lru_cache
from typing import Protocol

from gateway.core.errors import (
    EndpointNotAllowedError,
    GatewayError,
    ModelError,
    ModelNotReadyError,
    PayloadTooLargeError,
    RequestValidationError,
    ThrottledError,
)
from gateway.models.inference import (
    MAX_SYNC_PAYLOAD_BYTES,
    InvocationRequest,
    InvocationResult,
)
from gateway.models.settings import Settings
from gateway.observability import (
    INVOCATION_FAILED,
    INVOKED,
    MODEL_FAILED,
    THROTTLED,
    THROTTLES,
)


class ModelRuntime(Protocol):
    """What the core needs from SageMaker Runtime."""

    def invoke(self, request: InvocationRequest) -> InvocationResult: ...


def invoke_sync(
    request: InvocationRequest, runtime: ModelRuntime, settings: Settings
) -> InvocationResult:
    """Invoke an allowed endpoint with a payload SageMaker will accept."""
    if not settings.allows(request.endpoint):
        raise EndpointNotAllowedError(request.endpoint)

    if is_csv(request.options.content_type):
        body = normalise_csv(request.body)
        if body != request.body:
            request = request._replace(body=body)

    # Measured as sent: ending the last row may add a byte.
    if len(request.body) > MAX_SYNC_PAYLOAD_BYTES:
        raise PayloadTooLargeError(len(request.body), MAX_SYNC_PAYLOAD_BYTES)
    if not request.body:
        raise RequestValidationError("body", "must not be empty")

    started = time.perf_counter()
    try:
        result = runtime.invoke(request)
    except GatewayError as error:
        _count_failure(request.endpoint, error)
        raise
    latency = (time.perf_counter() - started) * 1000
    INVOKED.emit(1, latency, endpoint=request.endpoint)
    return result


def _count_failure(endpoint: str, error: GatewayError) -> None:
    """Count a call that reached SageMaker and failed, by how it failed."""
    if isinstance(error, ThrottledError | ModelNotReadyError):
        THROTTLED.emit(1, 1, endpoint=endpoint)
        # Without the endpoint too: the throttling alarm watches all of them at once.
        THROTTLES.emit(1)
    elif isinstance(error, ModelError):
        MODEL_FAILED.emit(1, 1, endpoint=endpoint)
    else:
        INVOCATION_FAILED.emit(1, 1, endpoint=endpoint)


@lru_cache(maxsize=64)
def is_csv(content_type: str | None) -> bool:
    """Tell whether a content type names CSV, parameters and case aside."""
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "text/csv"


def normalise_csv(body: bytes) -> bytes:
    """End every row with ``\\n`` and drop the blank lines at the end."""
    last_row = body.rfind(b"\n", 0, len(body) - 1) + 1
    if body.endswith(b"\n") and b"\r" not in body and body[last_row:-1].strip():
        return body  # already so, as most are: no copy
    rows = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    while rows and not rows[-1].strip():
        rows.pop()
    return b"\n".join(rows) + b"\n" if rows else b""
