"""Requests generated from the API's OpenAPI document, against the offline stack.

The document is fetched from the running API, as a client would. Every answer must
keep to the document (status, content type, headers, body schema), invalid requests
must be refused, and a 5xx is allowed only as a mapped model or upstream failure:
the code the document names for that status, never InternalFailure at 500 and never
API Gateway's own answer to a failed function.
"""

import json
import urllib.request
from typing import Any

import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
)

from fuzz.conftest import ANSWERS
from offline.stack import OfflineStack

# The stack's allowlist; any other name is refused before a model is called.
KNOWN_ENDPOINTS = ("echo", "breast-cancer-xgb")
EXAMPLES = 300
# Ids the async route answered with; the status route is asked about them.
SUBMITTED: list[str] = []
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
# `echo`'s fault directives; 2.5 s is past the stack's 2 s sync limit.
ECHO_FAULTS = (
    "fault=throttle",
    "fault=not-ready",
    "fault=unavailable",
    "fault=internal",
    "fault=dependency",
    "status=500",
    "status=503",
    "status=400",
    "delay_ms=2500",
)
# Answers a valid request may get: no such endpoint or inference, an id in use, a
# body over the limit, the model's own refusal (424), throttling.
SERVED_REFUSALS = frozenset({404, 409, 413, 424, 429})
# Rules the document states in words that a schema cannot: the deployment's
# allowlists, a body or an input location, one callback, a public https webhook.
RULE_CODES = frozenset({"CallbackRefused", "InputLocationNotAllowed"})
RULE_FIELDS = frozenset(
    {"X-Callback-Url", "X-Reply-Queue-Url", "X-Amzn-SageMaker-InputLocation", "body"}
)

OPERATIONS = (
    ("POST", "/endpoints/{endpoint}/invocations"),
    ("POST", "/endpoints/{endpoint}/async-invocations"),
    ("GET", "/inferences/{inferenceId}"),
)


@pytest.fixture(scope="session")
def api_schema(offline_stack: OfflineStack) -> Any:
    url = f"{offline_stack.stage_url}/openapi.json"
    with urllib.request.urlopen(url, timeout=30) as answer:
        document = json.load(answer)
    # Like `sam local`, the offline API does not check SigV4: IAM is AWS's part.
    del document["security"]
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=offline_stack.stage_url)
    return schema


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    # Mostly endpoints the stack allows, so requests reach the models, and ids of
    # inferences submitted earlier in the run, so status answers are not all 404.
    for name, known in (("endpoint", KNOWN_ENDPOINTS), ("inferenceId", SUBMITTED)):
        if name in path_parameters and known:
            pick = st.sampled_from(known)
            value = st.one_of(pick, pick, pick, st.just(path_parameters[name]))
            return value.map(lambda chosen, n=name: {**path_parameters, n: chosen})
    return st.just(path_parameters)


@schemathesis.hook
def flatmap_headers(context: Any, headers: dict[str, Any] | None) -> Any:
    # Where a request names no custom attributes, it may ask `echo` for a fault, so
    # the model's errors, throttling and timeouts meet the gateway's mapping. Only
    # an absent header is filled: a case made invalid elsewhere stays invalid.
    headers = headers or {}
    if CUSTOM_ATTRIBUTES in headers or context.operation.method.upper() != "POST":
        return st.just(headers)
    directive = st.one_of(st.none(), st.sampled_from(ECHO_FAULTS))
    return directive.map(
        lambda value: headers if value is None else {**headers, CUSTOM_ATTRIBUTES: value}
    )


def error_code(response: Any) -> tuple[str | None, str]:
    """The code and message of an error answer, if it has the gateway's shape."""
    try:
        body = json.loads(response.content)
        return str(body["code"]), str(body.get("message", ""))
    except (ValueError, KeyError, TypeError):
        return None, ""


def mapped_5xx_only(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 5xx must carry a code the document names for that status, and not be a 500."""
    if response.status_code < 500:
        return None
    status = str(response.status_code)
    documented = case.operation.definition.raw["responses"].get(status, {})
    code, _ = error_code(response)
    if response.status_code == 500 or not code or code not in documented["description"]:
        raise AssertionError(f"unmapped {status} answer: {response.content[:300]!r}")
    return True


def answer_matches_its_schema(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema conformance, but for a model's answer: its bytes are the model's own."""
    model_answer = case.operation.definition.raw.get("operationId") == "InvokeEndpoint"
    if model_answer and response.status_code == 200:
        return None
    return response_schema_conformance(ctx, response, case)


def valid_request_is_served(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request the document allows is served, or refused for a reason it gives."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 300 or status >= 500 or status in SERVED_REFUSALS:
        return None
    code, message = error_code(response)
    if code in RULE_CODES or message.split(":")[0] in RULE_FIELDS:
        return None
    raise AssertionError(f"valid request refused: {status} {response.content[:300]!r}")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_answers_keep_to_the_document(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES)
    def answer_keeps_to_the_document(case: Any) -> None:
        response = case.call_and_validate(
            excluded_checks=[
                not_a_server_error,
                positive_data_acceptance,
                response_schema_conformance,
            ],
            additional_checks=[
                mapped_5xx_only,
                valid_request_is_served,
                answer_matches_its_schema,
            ],
            timeout=30,
        )
        ANSWERS[f"{method} {path} {mode.value}"][response.status_code] += 1
        if response.status_code == 202:
            SUBMITTED.append(json.loads(response.content)["InferenceId"])

    answer_keeps_to_the_document()
