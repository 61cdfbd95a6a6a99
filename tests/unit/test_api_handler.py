"""The HTTP API function on the sample events, with SageMaker stubbed at the client."""

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import (
    ConnectionClosedError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.response import StreamingBody
from botocore.stub import Stubber

from gateway.handlers import api
from gateway.handlers.request_keys import RequestKeys
from tests.conftest import load_event

LOG_STREAM_ARN = (
    "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x"
)


@pytest.fixture
def sagemaker() -> Iterator[Stubber]:
    with Stubber(api.sagemaker.client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def answer(body: bytes, content_type: str, **extra: Any) -> dict[str, Any]:
    return {
        "Body": StreamingBody(io.BytesIO(body), len(body)),
        "ContentType": content_type,
        "InvokedProductionVariant": "AllTraffic",
        **extra,
    }


def body_of(response: dict[str, Any]) -> bytes:
    if response["isBase64Encoded"]:
        return base64.b64decode(response["body"])
    return str(response["body"]).encode()


def header(response: dict[str, Any], name: str) -> str | None:
    if name in (response.get("headers") or {}):
        return str(response["headers"][name])
    values = (response.get("multiValueHeaders") or {}).get(name)
    return values[0] if values else None


def test_csv_row_reaches_model_and_its_answer_comes_back(sagemaker, lambda_context):
    event = load_event("api-invoke-csv")
    row = base64.b64decode(event["body"])
    sagemaker.add_response(
        "invoke_endpoint",
        answer(b"0.0213\n", "text/csv", CustomAttributes="model=v3"),
        {
            "EndpointName": "breast-cancer-xgb",
            "Body": row,
            "ContentType": "text/csv",
            "Accept": "text/csv",
        },
    )

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 200
    assert body_of(response) == b"0.0213\n"
    assert header(response, "Content-Type") == "text/csv"
    assert header(response, "X-Amzn-Invoked-Production-Variant") == "AllTraffic"
    assert header(response, "X-Amzn-SageMaker-Custom-Attributes") == "model=v3"


def test_every_sagemaker_header_maps_onto_its_parameter(sagemaker, lambda_context):
    event = load_event("api-invoke-png")
    headers = {
        "X-Amzn-SageMaker-Custom-Attributes": "trace=1",
        "X-Amzn-SageMaker-Target-Model": "model-a.tar.gz",
        "X-Amzn-SageMaker-Target-Variant": "blue",
        "X-Amzn-SageMaker-Target-Container-Hostname": "container-1",
        "X-Amzn-SageMaker-Inference-Id": "req-42",
        "X-Amzn-SageMaker-Enable-Explanations": "`true`",
        "X-Amzn-SageMaker-Inference-Component": "component-1",
        "X-Amzn-SageMaker-Session-Id": "NEW_SESSION",
    }
    event["headers"].update(headers)
    event["multiValueHeaders"].update({k: [v] for k, v in headers.items()})
    sagemaker.add_response(
        "invoke_endpoint",
        answer(b"ok", "text/plain", NewSessionId="s-1; Expires=2026-12-04T13:00:00Z"),
        {
            "EndpointName": "echo",
            "Body": base64.b64decode(event["body"]),
            "ContentType": "image/png",
            "Accept": "image/png",
            "CustomAttributes": "trace=1",
            "TargetModel": "model-a.tar.gz",
            "TargetVariant": "blue",
            "TargetContainerHostname": "container-1",
            "InferenceId": "req-42",
            "EnableExplanations": "`true`",
            "InferenceComponentName": "component-1",
            "SessionId": "NEW_SESSION",
        },
    )

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 200
    assert header(response, "X-Amzn-SageMaker-New-Session-Id") == (
        "s-1; Expires=2026-12-04T13:00:00Z"
    )


def test_binary_answer_leaves_byte_for_byte(sagemaker, lambda_context):
    event = load_event("api-invoke-png")
    png = base64.b64decode(event["body"])
    sagemaker.add_response("invoke_endpoint", answer(png, "image/png"))

    response = api.handler(event, lambda_context)

    assert response["isBase64Encoded"] is True
    assert body_of(response) == png


def test_csv_line_endings_are_normalised_before_the_model(sagemaker, lambda_context):
    event = load_event("api-invoke-csv-crlf")
    sagemaker.add_response(
        "invoke_endpoint",
        answer(b"1,2,3\n4,5,6\n", "text/csv"),
        {"EndpointName": "echo", "Body": b"1,2,3\n4,5,6\n", "ContentType": "text/csv"},
    )

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 200


@pytest.mark.parametrize(
    ("code", "status", "http_status", "retry_after"),
    [
        ("ThrottlingException", 400, 429, "1"),
        ("ModelNotReadyException", 429, 429, "5"),
        ("ServiceUnavailable", 503, 503, None),
        ("InternalFailure", 500, 502, None),
        ("InternalDependencyException", 530, 502, None),
    ],
)
def test_sagemaker_service_errors_keep_their_meaning(
    sagemaker, lambda_context, code, status, http_status, retry_after
):
    sagemaker.add_client_error("invoke_endpoint", code, "no", http_status_code=status)

    response = api.handler(load_event("api-invoke-throttled"), lambda_context)

    assert response["statusCode"] == http_status
    assert json.loads(response["body"])["code"] == code.replace(
        "InternalDependencyException", "InternalFailure"
    )
    assert header(response, "Retry-After") == retry_after


def test_model_error_gives_424_with_the_models_words_only(sagemaker, lambda_context):
    sagemaker.add_client_error(
        "invoke_endpoint",
        "ModelError",
        'Received client error (400) from primary with message "bad row". See '
        "https://console in account 123456789012 for more information.",
        http_status_code=424,
        modeled_fields={
            "OriginalStatusCode": 400,
            "OriginalMessage": "bad row",
            "LogStreamArn": LOG_STREAM_ARN,
        },
    )

    response = api.handler(load_event("api-invoke-model-error"), lambda_context)

    assert response["statusCode"] == 424
    assert json.loads(response["body"]) == {
        "code": "ModelError",
        "message": "The model answered with an error.",
        "originalStatusCode": 400,
        "originalMessage": "bad row",
    }
    assert "123456789012" not in response["body"]


def test_unknown_endpoint_at_sagemaker_is_404_without_account(sagemaker, lambda_context):
    sagemaker.add_client_error(
        "invoke_endpoint",
        "ValidationError",
        "Endpoint echo of account 123456789012 not found.",
        http_status_code=400,
    )

    response = api.handler(load_event("api-invoke-throttled"), lambda_context)

    assert response["statusCode"] == 404
    assert "123456789012" not in response["body"]


def test_endpoint_outside_allowlist_is_404_and_never_invoked(sagemaker, lambda_context):
    response = api.handler(load_event("api-invoke-not-allowed"), lambda_context)

    assert response["statusCode"] == 404
    assert json.loads(response["body"])["code"] == "EndpointNotFound"


def test_body_over_sync_limit_is_413_and_never_invoked(sagemaker, lambda_context):
    event = load_event("api-invoke-png")
    event["body"] = base64.b64encode(b"\0" * 6_291_457).decode()

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 413
    assert json.loads(response["body"])["code"] == "PayloadTooLarge"


def test_body_at_sync_limit_is_invoked(sagemaker, lambda_context):
    event = load_event("api-invoke-png")
    event["body"] = base64.b64encode(b"\0" * 6_291_456).decode()
    sagemaker.add_response("invoke_endpoint", answer(b"ok", "text/plain"))

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Amzn-SageMaker-Inference-Id", "x" * 65),
        ("X-Amzn-SageMaker-Inference-Id", " leading-blank"),
        ("X-Amzn-SageMaker-Custom-Attributes", "caf\u00e9=1"),
        ("X-Amzn-SageMaker-Target-Variant", "not a variant"),
        ("X-Amzn-SageMaker-Session-Id", "bad session"),
    ],
)
def test_header_sagemaker_would_reject_is_400_naming_it(
    sagemaker, lambda_context, name, value
):
    event = load_event("api-invoke-throttled")
    event["headers"][name] = value
    event["multiValueHeaders"][name] = [value]

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 400
    error = json.loads(response["body"])
    assert error["code"] == "ValidationError"
    assert error["message"].startswith(f"{name}:")


def test_header_names_match_in_any_case(sagemaker, lambda_context):
    event = load_event("api-invoke-bad-inference-id")
    event["headers"] = {k.lower(): v for k, v in event["headers"].items()}
    event["multiValueHeaders"] = {
        k.lower(): v for k, v in event["multiValueHeaders"].items()
    }

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 400
    assert "Inference-Id" in json.loads(response["body"])["message"]


def test_empty_body_is_400(sagemaker, lambda_context):
    event = load_event("api-invoke-csv-crlf")
    event["body"] = base64.b64encode(b"\r\n\r\n").decode()

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 400


def test_model_slower_than_sync_limit_is_504_with_async_hint(lambda_context, monkeypatch):
    def hang(**params: Any) -> None:
        raise ReadTimeoutError(endpoint_url="http://sagemaker/invocations")

    monkeypatch.setattr(api.sagemaker.client, "invoke_endpoint", hang)

    response = api.handler(load_event("api-invoke-hung-model"), lambda_context)

    assert response["statusCode"] == 504
    error = json.loads(response["body"])
    assert error["code"] == "ModelTimeout"
    assert "async-invocations" in error["message"]


def test_unexpected_failure_is_500_without_details(lambda_context, monkeypatch):
    def explode(**params: Any) -> None:
        raise KeyError("secret internal detail")

    monkeypatch.setattr(api.sagemaker.client, "invoke_endpoint", explode)

    response = api.handler(load_event("api-invoke-throttled"), lambda_context)

    assert response["statusCode"] == 500
    assert "secret" not in response["body"]


def test_answer_too_large_for_lambda_gives_502_with_async_hint(sagemaker, lambda_context):
    big = b"\0" * (api.MAX_ANSWER_BYTES + 1)
    sagemaker.add_response("invoke_endpoint", answer(big, "application/octet-stream"))

    response = api.handler(load_event("api-invoke-png"), lambda_context)

    assert response["statusCode"] == 502
    assert json.loads(response["body"])["code"] == "ModelResponseTooLarge"


def test_json_answer_that_is_not_utf8_still_leaves_byte_for_byte(
    sagemaker, lambda_context
):
    raw = b'{"x": "\xff\xfe"}'
    sagemaker.add_response("invoke_endpoint", answer(raw, "application/json"))

    response = api.handler(load_event("api-invoke-throttled"), lambda_context)

    assert body_of(response) == raw


def test_endpoint_name_with_an_encoded_slash_is_404_not_500(sagemaker, lambda_context):
    event = load_event("api-invoke-throttled")
    event["path"] = "/endpoints/echo/../breast-cancer-xgb/invocations"
    event["pathParameters"] = {"endpoint": "echo/../breast-cancer-xgb"}

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 404
    assert json.loads(response["body"])["code"] == "EndpointNotFound"


def test_path_no_route_matches_is_404_not_500(lambda_context):
    event = load_event("api-get-inference")
    event["path"] = "/inferences/a/b"

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 404
    assert json.loads(response["body"])["code"] == "NotFound"


def test_model_error_message_loses_account_ids_and_arns(sagemaker, lambda_context):
    leaked = "denied for arn:aws:iam::987654321098:role/model in account 987654321098"
    sagemaker.add_client_error(
        "invoke_endpoint",
        "ModelError",
        "x",
        http_status_code=424,
        modeled_fields={"OriginalStatusCode": 500, "OriginalMessage": leaked},
    )

    response = api.handler(load_event("api-invoke-throttled"), lambda_context)

    assert "987654321098" not in response["body"]
    assert "arn:" not in response["body"]


def test_sagemaker_header_sent_twice_is_400_naming_it(sagemaker, lambda_context):
    event = load_event("api-invoke-throttled")
    event["multiValueHeaders"]["Content-Type"] = ["text/csv", "application/json"]

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["message"] == "Content-Type: given more than once"


def test_control_character_in_custom_attributes_is_400_naming_it(
    sagemaker, lambda_context
):
    event = load_event("api-invoke-throttled")
    name = "X-Amzn-SageMaker-Custom-Attributes"
    event["headers"][name] = event["multiValueHeaders"][name][0] = "a\x01b"

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["message"].startswith(f"{name}:")


def test_timeout_hint_names_the_async_route_of_the_endpoint(lambda_context, monkeypatch):
    def hang(**params: Any) -> None:
        raise ReadTimeoutError(endpoint_url="http://sagemaker/invocations")

    monkeypatch.setattr(api.sagemaker.client, "invoke_endpoint", hang)

    response = api.handler(load_event("api-invoke-hung-model"), lambda_context)

    assert (
        "POST /endpoints/echo/async-invocations"
        in json.loads(response["body"])["message"]
    )


def emf_records(output: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    return [r for r in records if "CloudWatchMetrics" in r["_aws"]]


def test_each_invocation_writes_its_figures_per_endpoint(
    sagemaker, lambda_context, capsys
):
    sagemaker.add_response("invoke_endpoint", answer(b"ok", "text/plain"))
    sagemaker.add_client_error("invoke_endpoint", "ThrottlingException", "no", 400)

    api.handler(load_event("api-invoke-throttled"), lambda_context)
    api.handler(load_event("api-invoke-throttled"), lambda_context)

    records = emf_records(capsys.readouterr().out)
    served, throttled, all_throttles = records
    assert served["endpoint"] == "echo"
    assert served["Invocations"] == [1.0]
    assert served["ModelLatency"][0] > 0
    assert throttled["Throttles"] == [1.0]
    assert throttled["endpoint"] == "echo"
    assert "endpoint" not in all_throttles
    assert all_throttles["Throttles"] == [1.0]


def test_each_request_is_sent_with_its_own_headers(sagemaker, lambda_context):
    first = load_event("api-invoke-csv")
    second = load_event("api-invoke-csv")
    second["headers"]["Accept"] = "application/json"
    second["multiValueHeaders"]["Accept"] = ["application/json"]
    for event, accept in (
        (first, "text/csv"),
        (second, "application/json"),
        (first, "text/csv"),
    ):
        sagemaker.add_response(
            "invoke_endpoint",
            answer(b"0.5\n", accept),
            {
                "EndpointName": "breast-cancer-xgb",
                "Body": base64.b64decode(event["body"]),
                "ContentType": "text/csv",
                "Accept": accept,
            },
        )

        assert api.handler(event, lambda_context)["statusCode"] == 200


def test_a_refused_header_is_refused_every_time(sagemaker, lambda_context):
    event = load_event("api-invoke-csv")
    event["multiValueHeaders"]["Accept"] = ["text/csv\x07"]

    for _ in range(2):
        response = api.handler(event, lambda_context)

        assert response["statusCode"] == 400
        assert json.loads(response["body"])["message"].startswith("Accept: ")


@pytest.fixture
def logs(monkeypatch) -> io.StringIO:
    written = io.StringIO()
    monkeypatch.setattr(api.logger.registered_handler, "stream", written)
    return written


def log_lines(logs: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    logs.seek(0)
    logs.truncate()
    return lines


def test_a_failed_request_logs_with_its_own_keys_and_none_of_the_last(
    sagemaker, lambda_context, logs
):
    first = load_event("api-invoke-throttled")
    first["multiValueHeaders"]["X-Amzn-SageMaker-Inference-Id"] = ["req-1"]
    first["requestContext"]["requestId"] = "api-request-1"
    second = load_event("api-invoke-throttled")
    second["requestContext"]["requestId"] = "api-request-2"
    for _ in range(2):
        sagemaker.add_client_error("invoke_endpoint", "ThrottlingException", "no", 400)

    api.handler(first, lambda_context)
    api.handler(second, lambda_context)

    one, two = log_lines(logs)
    assert one["message"] == two["message"] == "request refused"
    assert one["function_request_id"] == lambda_context.aws_request_id
    assert one["function_name"] == "ApiFunction"
    assert one["function_arn"] == lambda_context.invoked_function_arn
    assert one["function_memory_size"] == 512
    assert (one["correlation_id"], two["correlation_id"]) == (
        "api-request-1",
        "api-request-2",
    )
    assert one["endpoint"] == two["endpoint"] == "echo"
    assert one["inference_id"] == "req-1"
    assert "inference_id" not in two
    assert two["cold_start"] is False


def test_logs_outside_a_request_carry_none_of_its_keys(sagemaker, lambda_context, logs):
    api.logger.clear_state()
    sagemaker.add_client_error("invoke_endpoint", "ThrottlingException", "no", 400)
    api.handler(load_event("api-invoke-throttled"), lambda_context)
    log_lines(logs)

    api.logger.info("between requests")

    (line,) = log_lines(logs)
    assert "endpoint" not in line
    assert "function_request_id" not in line


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (
            ConnectionClosedError(endpoint_url="https://runtime"),
            503,
            "ServiceUnavailable",
        ),
        (ResponseStreamingError(error="reset"), 502, "InternalFailure"),
    ],
)
def test_a_connection_that_breaks_is_answered_as_sagemaker_would(
    lambda_context, monkeypatch, failure, status, code
):
    def broken(**params: Any) -> Any:
        raise failure

    monkeypatch.setattr(api.sagemaker.client, "invoke_endpoint", broken)

    response = api.handler(load_event("api-invoke-csv"), lambda_context)

    assert response["statusCode"] == status
    assert json.loads(response["body"])["code"] == code


def test_a_header_that_is_not_text_is_400_naming_it(sagemaker, lambda_context):
    event = load_event("api-invoke-csv")
    del event["multiValueHeaders"]
    event["headers"]["Accept"] = ["text/csv"]

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["message"] == "Accept: must be text"


@pytest.mark.parametrize("key", ["multiValueHeaders", "headers"])
def test_headers_that_are_not_a_map_are_400(sagemaker, lambda_context, key):
    event = load_event("api-invoke-csv")
    event.pop("multiValueHeaders")
    event[key] = "Accept"

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["message"] == "headers: must map names to values"


def test_a_header_name_that_lowers_to_a_sagemakers_is_not_one(sagemaker, lambda_context):
    event = load_event("api-invoke-bad-inference-id")  # its id would be refused
    for key in ("headers", "multiValueHeaders"):
        event[key] = {
            name.replace("SageMaker", "SageMa\u212aer"): value  # KELVIN SIGN
            for name, value in event[key].items()
        }
    sagemaker.add_response("invoke_endpoint", answer(b"0.9\n", "text/csv"))

    response = api.handler(event, lambda_context)

    assert response["statusCode"] == 200
    sagemaker.assert_no_pending_responses()


def test_only_the_first_event_of_a_process_is_logged_as_its_cold_start(
    sagemaker, lambda_context, logs, monkeypatch
):
    # A process that has served nothing yet: its keys filter, in place of the one in use.
    fresh = RequestKeys()
    handler = api.logger.registered_handler
    handler.removeFilter(api.request_keys)
    fresh.install(api.logger)
    monkeypatch.setattr(api, "request_keys", fresh)
    try:
        elsewhere = load_event("api-get-inference")  # a resolver route, unknown
        elsewhere["path"] = elsewhere["resource"] = "/nowhere"
        unknown = api.handler(elsewhere, lambda_context)
        sagemaker.add_client_error("invoke_endpoint", "ThrottlingException", "no", 400)
        throttled = api.handler(load_event("api-invoke-throttled"), lambda_context)
    finally:
        handler.removeFilter(fresh)
        handler.addFilter(api.request_keys)

    assert (unknown["statusCode"], throttled["statusCode"]) == (404, 429)
    first, second = [line for line in log_lines(logs) if "status" in line]
    assert (first["cold_start"], second["cold_start"]) == (True, False)
