"""Synchronous inference over HTTP, as a client of the running offline stack sees it."""

import hashlib
import http.client
import json
import urllib.parse
from dataclasses import dataclass

import pytest
from sklearn.datasets import load_breast_cancer

pytestmark = pytest.mark.stack

DATA = load_breast_cancer()


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def post(stack, endpoint: str, body: bytes, **headers: str) -> Answer:
    url = urllib.parse.urlsplit(stack.stage_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        connection.request(
            "POST",
            f"{url.path}/endpoints/{endpoint}/invocations",
            body=body,
            headers={k.replace("_", "-"): v for k, v in headers.items()},
        )
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def csv_row(index: int) -> str:
    return ",".join(f"{v:g}" for v in DATA.data[index])


def test_real_rows_get_probabilities_that_agree_with_their_labels(offline_stack):
    rows = [0, 19, 20, 37, 46, 1, 2, 3, 25, 100]
    body = "\n".join(csv_row(i) for i in rows).encode()

    answer = post(offline_stack, "breast-cancer-xgb", body, Content_Type="text/csv")

    scores = [float(line) for line in answer.body.decode().splitlines()]
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/csv"
    assert answer.headers["X-Amzn-Invoked-Production-Variant"] == "AllTraffic"
    assert len(scores) == 10
    assert [int(s > 0.5) for s in scores] == [int(DATA.target[i]) for i in rows]


def test_json_accept_gives_one_prediction_per_row(offline_stack):
    body = f"{csv_row(19)}\n{csv_row(0)}\n".encode()

    answer = post(
        offline_stack,
        "breast-cancer-xgb",
        body,
        Content_Type="text/csv",
        Accept="application/json",
    )

    predictions = answer.json()["predictions"]
    assert [p["score"] > 0.5 for p in predictions] == [True, False]


def test_png_body_reaches_the_model_and_returns_byte_for_byte(offline_stack, model_log):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64

    answer = post(
        offline_stack,
        "echo",
        png,
        Content_Type="image/png",
        X_Amzn_SageMaker_Custom_Attributes="tag=e2e-png",
    )

    assert answer.status == 200
    assert answer.body == png
    assert (
        model_log.tagged("tag=e2e-png")[-1]["sha256"] == hashlib.sha256(png).hexdigest()
    )


def test_crlf_csv_with_trailing_blank_lines_reaches_the_model_clean(offline_stack):
    answer = post(
        offline_stack, "echo", b"1,2\r\n3,4\r\n\r\n\r\n", Content_Type="text/csv"
    )

    assert answer.body == b"1,2\n3,4\n"


def test_throttling_gives_429_with_retry_after(offline_stack):
    answer = post(
        offline_stack,
        "echo",
        b"{}",
        Content_Type="application/json",
        X_Amzn_SageMaker_Custom_Attributes="fault=throttle",
    )

    assert answer.status == 429
    assert answer.headers["Retry-After"] == "1"
    assert answer.json()["code"] == "ThrottlingException"


def test_model_not_ready_gives_429_with_retry_after(offline_stack):
    answer = post(
        offline_stack,
        "echo",
        b"{}",
        Content_Type="application/json",
        X_Amzn_SageMaker_Custom_Attributes="fault=not-ready",
    )

    assert answer.status == 429
    assert answer.headers["Retry-After"] is not None


@pytest.mark.parametrize(("fault", "status"), [("unavailable", 503), ("internal", 502)])
def test_sagemaker_failures_give_5xx_that_say_retry(offline_stack, fault, status):
    answer = post(
        offline_stack,
        "echo",
        b"{}",
        Content_Type="application/json",
        X_Amzn_SageMaker_Custom_Attributes=f"fault={fault}",
    )

    assert answer.status == status
    assert "Retry later" in answer.json()["message"]


def test_model_error_gives_424_without_internal_details(offline_stack):
    answer = post(offline_stack, "breast-cancer-xgb", b"a,b,c\n", Content_Type="text/csv")

    error = answer.json()
    assert answer.status == 424
    assert error["code"] == "ModelError"
    assert error["originalStatusCode"] == 400
    assert "123456789012" not in answer.body.decode()
    assert "arn:" not in answer.body.decode()
    assert "LogStream" not in answer.body.decode()


def test_hung_model_gives_504_after_exactly_one_request(offline_stack, model_log):
    answer = post(
        offline_stack,
        "echo",
        b"{}",
        Content_Type="application/json",
        X_Amzn_SageMaker_Custom_Attributes="delay_ms=60000;tag=e2e-hung",
    )

    assert answer.status == 504
    assert "async-invocations" in answer.json()["message"]
    assert len(model_log.tagged("tag=e2e-hung")) == 1


def test_body_one_byte_over_the_sync_limit_gives_413_and_no_model_call(
    offline_stack, model_log
):
    before = model_log.count()

    answer = post(offline_stack, "echo", b"\0" * 6_291_457, Content_Type="image/png")

    assert answer.status == 413
    assert model_log.count() == before


def test_endpoint_outside_the_allowlist_gives_404_and_no_model_call(
    offline_stack, model_log
):
    before = model_log.count()

    answer = post(
        offline_stack, "not-allowed", csv_row(0).encode(), Content_Type="text/csv"
    )

    assert answer.status == 404
    assert answer.json()["code"] == "EndpointNotFound"
    assert model_log.count() == before


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Amzn-SageMaker-Custom-Attributes", "caf\u00e9"),
        ("X-Amzn-SageMaker-Inference-Id", "x" * 65),
    ],
)
def test_header_sagemaker_would_reject_gives_400_naming_it(offline_stack, header, value):
    # A leading blank cannot cross HTTP (it is stripped as whitespace); the unit
    # tests cover it on the event itself.
    answer = post(
        offline_stack,
        "echo",
        b"{}",
        Content_Type="application/json",
        **{header.replace("-", "_"): value},
    )

    assert answer.status == 400
    assert answer.json()["message"].startswith(f"{header}:")
