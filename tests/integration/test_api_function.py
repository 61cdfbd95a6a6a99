"""The HTTP API function on the files in events/, run by the offline stack's Lambda
runner with the template's environment, against the SageMaker stand-in and real models."""

import base64
import hashlib
import json
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer

from tests.conftest import load_event

pytestmark = pytest.mark.stack


def invoke(stack: Any, name: str, **changes: Any) -> dict[str, Any]:
    event = load_event(name)
    event.update(changes)
    result = stack.invoke("ApiFunction", event)
    assert result.ok, result.payload
    response: dict[str, Any] = result.payload
    return response


def body_of(response: dict[str, Any]) -> bytes:
    if response["isBase64Encoded"]:
        return base64.b64decode(response["body"])
    return str(response["body"]).encode()


def test_real_row_gets_probability_that_agrees_with_its_label(offline_stack):
    response = invoke(offline_stack, "api-invoke-csv")

    assert response["statusCode"] == 200
    assert float(body_of(response)) < 0.5  # row 0 of the data set is malignant (0)


def test_ten_rows_get_ten_scores_that_agree_with_their_labels(offline_stack):
    event = load_event("api-invoke-csv-ten-rows")
    rows = base64.b64decode(event["body"]).decode().splitlines()
    data = load_breast_cancer()
    labels = {
        ",".join(f"{v:g}" for v in x): int(y)
        for x, y in zip(data.data, data.target, strict=True)
    }

    response = invoke(offline_stack, "api-invoke-csv-ten-rows")

    scores = [p["score"] for p in json.loads(body_of(response))["predictions"]]
    assert len(scores) == 10
    assert [int(s > 0.5) for s in scores] == [labels[row] for row in rows]


def test_png_reaches_the_model_byte_for_byte(offline_stack, model_log):
    event = load_event("api-invoke-png")
    png = base64.b64decode(event["body"])

    response = invoke(offline_stack, "api-invoke-png")

    forwarded = model_log.tagged("trace=png-roundtrip")[-1]
    assert forwarded["sha256"] == hashlib.sha256(png).hexdigest()
    assert body_of(response) == png


def test_crlf_csv_reaches_the_model_as_clean_rows(offline_stack):
    response = invoke(offline_stack, "api-invoke-csv-crlf")

    assert response["statusCode"] == 200
    assert body_of(response) == b"1,2,3\n4,5,6\n"


def test_throttled_endpoint_gives_429_with_retry_after(offline_stack):
    response = invoke(offline_stack, "api-invoke-throttled")

    assert response["statusCode"] == 429
    assert response["headers"]["Retry-After"] == "1"


def test_model_error_gives_424_with_the_models_status(offline_stack):
    response = invoke(offline_stack, "api-invoke-model-error")

    error = json.loads(response["body"])
    assert response["statusCode"] == 424
    assert error["originalStatusCode"] == 400
    assert "account" not in response["body"]
    assert "arn:" not in response["body"]


def test_endpoint_outside_allowlist_gives_404_and_no_model_call(offline_stack, model_log):
    before = model_log.count()

    response = invoke(offline_stack, "api-invoke-not-allowed")

    assert response["statusCode"] == 404
    assert model_log.count() == before


def test_too_long_inference_id_gives_400_naming_the_header(offline_stack):
    response = invoke(offline_stack, "api-invoke-bad-inference-id")

    assert response["statusCode"] == 400
    assert "X-Amzn-SageMaker-Inference-Id" in json.loads(response["body"])["message"]


def test_hung_model_gives_504_after_exactly_one_request(offline_stack, model_log):
    event = load_event("api-invoke-hung-model")
    tag = "tag=hung-integration"
    event["headers"]["X-Amzn-SageMaker-Custom-Attributes"] += f";{tag}"
    event["multiValueHeaders"]["X-Amzn-SageMaker-Custom-Attributes"] = [
        event["headers"]["X-Amzn-SageMaker-Custom-Attributes"]
    ]

    result = offline_stack.invoke("ApiFunction", event)

    assert result.payload["statusCode"] == 504
    assert "async-invocations" in json.loads(result.payload["body"])["message"]
    assert len(model_log.tagged(tag)) == 1
