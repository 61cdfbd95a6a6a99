"""Shared test helpers: the sample events in events/ and a clean AWS environment."""

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from offline.stack import OfflineStack

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

# Nothing in the tests may reach a real AWS account or a metadata address.
os.environ.update(
    AWS_EC2_METADATA_DISABLED="true",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="InferenceGatewayTests",
)


def load_event(name: str) -> dict[str, Any]:
    """Load one of the sample events that `sam local invoke -e` would take."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


@pytest.fixture
def lambda_context() -> Any:
    """A Lambda context with what Powertools reads from it."""

    class Context:
        function_name = "ApiFunction"
        function_version = "$LATEST"
        memory_limit_in_mb = 512
        invoked_function_arn = (
            "arn:aws:lambda:us-east-1:123456789012:function:ApiFunction"
        )
        aws_request_id = "4a3f3c1e-2b0d-4b7e-9f5e-0c1d2e3f4a5b"
        log_group_name = "/aws/lambda/ApiFunction"
        log_stream_name = "2026/12/04/[$LATEST]0123456789abcdef"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 29_000

    return Context()


@pytest.fixture(scope="session")
def offline_stack() -> Iterator[OfflineStack]:
    """The whole offline stack on free loopback ports, shared by the tests that need it."""
    # A short sync limit keeps the hung-model tests quick; the rule they check is the same.
    with OfflineStack(parameter_overrides={"SyncTimeoutSeconds": "2"}) as stack:
        yield stack


class ModelLog:
    """What the SageMaker stand-in forwarded to the model containers."""

    def __init__(self, stack: OfflineStack) -> None:
        self._url = f"{stack.sagemaker_url}/offline/requests"

    def requests(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(self._url, timeout=10) as response:
            entries: list[dict[str, Any]] = json.load(response)
        return entries

    def count(self) -> int:
        return len(self.requests())

    def tagged(self, tag: str) -> list[dict[str, Any]]:
        return [r for r in self.requests() if tag in (r.get("customAttributes") or "")]


@pytest.fixture
def model_log(offline_stack: OfflineStack) -> ModelLog:
    return ModelLog(offline_stack)
