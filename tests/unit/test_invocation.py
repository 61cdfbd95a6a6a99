"""The core's rules for a synchronous invocation, with a fake SageMaker."""

import pytest

from gateway.core.errors import EndpointNotAllowedError, PayloadTooLargeError
from gateway.core.invocation import invoke_sync, is_csv, normalise_csv
from gateway.models import settings
from gateway.models.http import InvocationHeaders
from gateway.models.inference import (
    InvocationOptions,
    InvocationRequest,
    InvocationResult,
)


class RecordingRuntime:
    def __init__(self) -> None:
        self.requests: list[InvocationRequest] = []

    def invoke(self, request: InvocationRequest) -> InvocationResult:
        self.requests.append(request)
        return InvocationResult(body=b"ok")


SETTINGS = settings.Settings(allowed_endpoints=frozenset({"echo"}))


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (b"1,2\r\n3,4\r\n", b"1,2\n3,4\n"),
        (b"1,2\r3,4", b"1,2\n3,4\n"),
        (b"1,2\n\n \n\r\n", b"1,2\n"),
        (b"1,2\n\n3,4\n", b"1,2\n\n3,4\n"),
        (b"\r\n\r\n", b""),
        (b"1,2\n", b"1,2\n"),
        (b"1,2\n \n", b"1,2\n"),
        (b"1,2\n3,4 \n", b"1,2\n3,4 \n"),
        (b"\n", b""),
    ],
)
def test_csv_rows_end_in_newline_without_trailing_blanks(raw, clean):
    assert normalise_csv(raw) == clean


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/csv", True),
        ("Text/CSV; charset=utf-8", True),
        ("text/plain", False),
        (None, False),
    ],
)
def test_csv_is_recognised_by_media_type(content_type, expected):
    assert is_csv(content_type) is expected


def test_binary_body_is_passed_unchanged():
    runtime = RecordingRuntime()
    body = bytes(range(256)) + b"\r\n"

    invoke_sync(
        InvocationRequest("echo", body, InvocationOptions(content_type="image/png")),
        runtime,
        SETTINGS,
    )

    assert runtime.requests[0].body == body


def test_endpoint_outside_allowlist_never_reaches_sagemaker():
    runtime = RecordingRuntime()

    with pytest.raises(EndpointNotAllowedError):
        invoke_sync(InvocationRequest("other", b"x"), runtime, SETTINGS)

    assert runtime.requests == []


def test_payload_over_limit_never_reaches_sagemaker():
    runtime = RecordingRuntime()

    with pytest.raises(PayloadTooLargeError) as raised:
        invoke_sync(InvocationRequest("echo", b"x" * 6_291_457), runtime, SETTINGS)

    assert raised.value.limit == 6_291_456
    assert runtime.requests == []


def test_settings_read_allowlist_and_timeout_from_environment(monkeypatch):
    monkeypatch.setenv("ALLOWED_ENDPOINTS", " a , b,,")
    monkeypatch.setenv("SYNC_TIMEOUT_SECONDS", "3")
    settings.get_settings.cache_clear()
    try:
        loaded = settings.get_settings()
    finally:
        settings.get_settings.cache_clear()

    assert loaded.allowed_endpoints == {"a", "b"}
    assert loaded.sync_timeout_seconds == 3


def test_headers_become_invocation_options_field_for_field():
    values = {name: f"value-of-{name}" for name in InvocationHeaders.model_fields}
    headers = InvocationHeaders.model_construct(**values)

    assert headers.options._asdict() == values


def test_csv_is_measured_as_sent_after_its_last_row_is_ended():
    runtime = RecordingRuntime()
    row = b"1" * 6_291_456  # at the limit, but its row ends with one more byte

    with pytest.raises(PayloadTooLargeError):
        invoke_sync(
            InvocationRequest("echo", row, InvocationOptions(content_type="text/csv")),
            runtime,
            SETTINGS,
        )

    assert runtime.requests == []
