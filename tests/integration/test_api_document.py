"""The API's OpenAPI document and Swagger UI, served by the HTTP API function."""

import gzip
import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from gateway.models.async_http import AsyncInvocationHeaders
from gateway.models.http import InvocationHeaders
from tests.integration.test_api_function import body_of, invoke

pytestmark = pytest.mark.stack

INVOKE = "/endpoints/{endpoint}/invocations"
INVOKE_ASYNC = "/endpoints/{endpoint}/async-invocations"


@pytest.fixture(scope="module")
def document(offline_stack) -> dict[str, Any]:
    response = invoke(offline_stack, "api-get-openapi")
    assert response["statusCode"] == 200
    spec: dict[str, Any] = json.loads(body_of(response))
    return spec


def test_document_is_valid_openapi_served_at_the_callers_stage(document):
    validate(document)

    assert document["servers"] == [
        {"url": "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1"}
    ]
    assert set(document["paths"]) == {INVOKE, INVOKE_ASYNC, "/inferences/{inferenceId}"}


@pytest.mark.parametrize(
    ("path", "model"),
    [(INVOKE, InvocationHeaders), (INVOKE_ASYNC, AsyncInvocationHeaders)],
)
def test_every_sagemaker_header_a_route_reads_is_documented(document, path, model):
    operation = document["paths"][path]["post"]
    documented = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    read = {field.alias for field in model.model_fields.values()}

    # OpenAPI says Content-Type and Accept through the media types instead.
    assert documented == read - {"Content-Type", "Accept"}
    assert operation["requestBody"]["content"]["*/*"]["schema"]["format"] == "binary"


def test_sync_answer_is_documented_as_binary_with_sagemakers_headers(document):
    answer = document["paths"][INVOKE]["post"]["responses"]["200"]

    assert answer["content"]["*/*"]["schema"]["format"] == "binary"
    assert "X-Amzn-Invoked-Production-Variant" in answer["headers"]


@pytest.mark.parametrize(
    ("event", "path"),
    [
        ("api-invoke-not-allowed", INVOKE),
        ("api-invoke-throttled", INVOKE),
        ("api-invoke-model-error", INVOKE),
        ("api-invoke-bad-inference-id", INVOKE),
        ("api-get-inference", "/inferences/{inferenceId}"),
    ],
)
def test_error_a_route_answers_is_documented_with_its_code(
    offline_stack, document, event, path
):
    response = invoke(offline_stack, event)
    method = "get" if path.startswith("/inferences") else "post"
    documented = document["paths"][path][method]["responses"]

    status = str(response["statusCode"])
    assert status in documented
    code = json.loads(body_of(response))["code"]
    assert code in documented[status]["description"]
    schema = documented[status]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorBody"}


def test_swagger_ui_is_served_with_the_document_inline(offline_stack):
    response = invoke(offline_stack, "api-get-swagger")

    assert response["statusCode"] == 200
    page = gzip.decompress(body_of(response)).decode()
    assert "SwaggerUIBundle" in page
    assert '"operationId": "InvokeEndpointAsync"' in page or "InvokeEndpointAsync" in page
    assert "<script src=" not in page  # nothing to fetch from elsewhere
