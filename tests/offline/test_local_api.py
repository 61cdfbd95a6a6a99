"""Tests of the offline stack's template loader, Lambda runtime and local REST API.

The API tests run a small handler from a temporary directory behind a small
template: no moto, containers or network beyond 127.0.0.1.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import os
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from offline.apigateway import LocalApi, missing_token
from offline.lambda_runtime import FunctionPool, InvokeResult
from offline.template import (
    DEFAULT_TEMPLATE,
    LocalResource,
    SamTemplate,
    TemplateError,
    load_template,
    parse_parameter_overrides,
)

# Template loader, on the project's template ---------------------------------------


def test_api_function_environment_is_resolved() -> None:
    function = load_template().function("ApiFunction")

    assert function.handler == "gateway.handlers.api.handler"
    assert function.code_uri == DEFAULT_TEMPLATE.parent / "functions"
    assert (function.runtime, function.timeout, function.memory_size) == (
        "python3.13",
        29,
        512,
    )
    # Globals and the function's own variables, parameters resolved (the resource
    # names are checked with the provisioner's tests).
    expected = {
        "POWERTOOLS_SERVICE_NAME": "inference-gateway",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_METRICS_NAMESPACE": "InferenceGateway",
        "ALLOWED_ENDPOINTS": "breast-cancer-xgb,echo",
        "SYNC_TIMEOUT_SECONDS": "25",
        "GATEWAY_BUCKET": "inference-gateway-local-gatewaybucket",
    }
    assert expected.items() <= function.environment.items()
    # LoggingConfig.LogGroup is a !Ref to the log group resource.
    assert function.log_group_name == "inference-gateway-local-ApiFunctionLogGroup"


def test_every_notification_of_a_results_batch_has_a_thread() -> None:
    from gateway.handlers.results import RESULTS_BATCH_SIZE  # noqa: PLC0415

    [event] = load_template().function("ResultsFunction").events

    assert event.properties["BatchSize"] == RESULTS_BATCH_SIZE


def test_api_route_and_stage() -> None:
    template = load_template()

    [route] = [r for r in template.routes() if r.event_name == "InvokeEndpoint"]
    [api] = template.apis()

    assert (route.method, route.path, route.function_logical_id) == (
        "POST",
        "/endpoints/{endpoint}/invocations",
        "ApiFunction",
    )
    assert route.api_logical_id == "GatewayApi"
    assert api.stage_name == "v1"
    assert api.binary_media_types == ("*/*",)


def test_parameter_overrides_reach_environment_and_stage() -> None:
    overrides = parse_parameter_overrides(
        ["AllowedEndpoints=a,b", "ParameterKey=StageName,ParameterValue=prod"]
    )
    template = load_template(parameter_overrides=overrides)

    assert template.parameters["AllowedEndpoints"] == ["a", "b"]
    assert template.function("ApiFunction").environment["ALLOWED_ENDPOINTS"] == "a,b"
    assert template.apis()[0].stage_name == "prod"


@pytest.mark.parametrize(
    "override",
    ["SyncTimeoutSeconds=28", "LogLevel=TRACE", "StageName=no-dashes", "Unknown=1"],
)
def test_parameter_constraints_are_enforced(override: str) -> None:
    with pytest.raises(TemplateError):
        load_template(parameter_overrides=parse_parameter_overrides([override]))


def test_nested_split_join_in_policy() -> None:
    template = load_template()
    policy = template.resolve(
        template.resources["InvokeAllowedEndpointsPolicy"]["Properties"]
    )

    assert policy["PolicyDocument"]["Statement"][0]["Resource"] == [
        "arn:aws:sagemaker:*:*:endpoint/breast-cancer-xgb",
        "arn:aws:sagemaker:*:*:endpoint/echo",
    ]


def test_outputs_use_local_physical_names() -> None:
    template = load_template(resources={"GatewayApi": LocalResource(ref="abcdefghij")})

    outputs = template.outputs()

    assert (
        outputs["ApiUrl"] == "https://abcdefghij.execute-api.us-east-1.amazonaws.com/v1"
    )
    assert outputs["ApiFunctionName"] == "ApiFunction"
    assert (
        outputs["AsyncOutputPath"] == "s3://inference-gateway-local-gatewaybucket/outputs"
    )


def test_short_tags_conditions_and_local_resources(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        textwrap.dedent(
            """\
            AWSTemplateFormatVersion: 2010-09-09
            Parameters:
              Env: {Type: String, Default: dev}
            Conditions:
              IsProd: !Equals [!Ref Env, prod]
              NotProd: !Not [!Condition IsProd]
            Mappings:
              Sizes: {dev: {Memory: 256}}
            Resources:
              Bucket:
                Type: AWS::S3::Bucket
              Fn:
                Type: AWS::Serverless::Function
                Properties:
                  CodeUri: src/
                  Handler: app.handler
                  Environment:
                    Variables:
                      BUCKET: !Ref Bucket
                      BUCKET_ARN: !GetAtt Bucket.Arn
                      LITERAL: !Sub "${!NotAVariable}-${AWS::Region}"
                      PICK: !Select [1, !Split ["/", "a/b/c"]]
                      SIZE: !FindInMap [Sizes, !Ref Env, Memory]
                      MODE: !If [IsProd, strict, !If [NotProd, relaxed, never]]
                      ENCODED: !Base64 hi
                      BOTH: !Join ["", [!Ref Env, !GetAtt [Bucket, Arn]]]
                  Tags:
                    Drop: !Ref AWS::NoValue
            """
        )
    )
    template = load_template(
        tmp_path / "template.yaml",
        resources={"Bucket": LocalResource("local-bucket", {"Arn": "arn:local"})},
    )

    function = template.function("Fn")

    assert template.document["AWSTemplateFormatVersion"] == "2010-09-09"
    assert function.code_uri == tmp_path / "src"
    assert function.environment == {
        "BUCKET": "local-bucket",
        "BUCKET_ARN": "arn:local",
        "LITERAL": "${NotAVariable}-us-east-1",
        "PICK": "b",
        "SIZE": "256",
        "MODE": "relaxed",
        "ENCODED": "aGk=",
        "BOTH": "devarn:local",
    }
    assert template.resolve(template.resources["Fn"]["Properties"]["Tags"]) == {}


# Local API with a throwaway handler -----------------------------------------------

HANDLER = """
import json
import os
import time


def handler(event, context):
    name = (event.get("pathParameters") or {}).get("name", "")
    if name == "boom":
        raise ValueError("boom")
    if name == "malformed":
        return {"statusCode": 200, "body": "x", "unexpected": True}
    if name in ("slow", "nap"):
        time.sleep({"slow": 5, "nap": 0.4}[name])
    if name in ("event", "nap") or (event.get("queryStringParameters") or {}).get("show"):
        return {
            "statusCode": 200,
            "body": json.dumps({
                "event": event,
                "pid": os.getpid(),
                "env": dict(os.environ),
                "context": {
                    "function_name": context.function_name,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "remaining": context.get_remaining_time_in_millis(),
                    "arn": context.invoked_function_arn,
                    "request_id": context.aws_request_id,
                },
            }),
        }
    return {
        "statusCode": 201,
        "headers": {"Content-Type": "application/octet-stream", "X-One": "1"},
        "multiValueHeaders": {"X-Many": ["a", "b"]},
        "body": event["body"] or "",
        "isBase64Encoded": event["isBase64Encoded"],
    }


def crash(event, context):
    os._exit(3)


def sleepy(event, context):
    time.sleep(3)
    return {"statusCode": 200, "body": "late"}
"""

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: code/
    Runtime: python3.13
    Timeout: 1
    Environment:
      Variables:
        GREETING: !Sub "hello from ${AWS::StackName}"
Resources:
  Api:
    Type: AWS::Serverless::Api
    Properties:
      StageName: test
      BinaryMediaTypes: ["*~1*"]
  Things:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      Events:
        Any:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: "/things/{name}", Method: ANY}
  Sleepy:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.sleepy
      Timeout: 10
      Events:
        Post:
          Type: Api
          Properties: {RestApiId: !Ref Api, Path: /sleep, Method: POST}
"""

INTEGRATION_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def app_template(tmp_path_factory: pytest.TempPathFactory) -> SamTemplate:
    root = tmp_path_factory.mktemp("app")
    (root / "code").mkdir()
    (root / "code" / "app.py").write_text(HANDLER)
    (root / "template.yaml").write_text(TEMPLATE)
    return load_template(root / "template.yaml")


@pytest.fixture(scope="module")
def pools(
    app_template: SamTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FunctionPool]]:
    log_path = tmp_path_factory.mktemp("logs") / "functions.log"
    with log_path.open("ab") as log_file:
        created = {
            function.logical_id: FunctionPool(
                function, {"EXTRA": "yes"}, stdout=log_file, stderr=log_file
            )
            for function in app_template.functions()
        }
        yield created
        for pool in created.values():
            pool.close()


@pytest.fixture(scope="module")
def api(app_template: SamTemplate, pools: dict[str, FunctionPool]) -> Iterator[LocalApi]:
    with LocalApi.from_template(
        app_template, pools, port=0, integration_timeout=INTEGRATION_TIMEOUT
    ) as local_api:
        yield local_api


def request(
    api: LocalApi,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
    try:
        connection.putrequest(method, path)
        for name, value in headers or []:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body or b"")))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def test_binary_round_trip_is_byte_for_byte(api: LocalApi) -> None:
    payload = bytes(range(256)) * 64 + os.urandom(200_000)

    for prefix in ("", "/test"):
        status, headers, body = request(
            api, "POST", f"{prefix}/things/blob", payload, [("Content-Type", "image/png")]
        )

        assert status == 201
        assert body == payload
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers.get_all("X-Many") == ["a", "b"]
        assert headers["X-One"] == "1"
        assert headers["x-amzn-RequestId"]


def test_proxy_event_shape(api: LocalApi) -> None:
    status, _, body = request(
        api,
        "PUT",
        "/test/things/event?a=1&a=2&b=",
        b'{"x": 1}',
        [("Content-Type", "application/json"), ("X-Dup", "one"), ("X-Dup", "two")],
    )

    assert status == 200
    event = json.loads(body)["event"]
    assert event["resource"] == "/things/{name}"
    assert event["path"] == "/things/event"
    assert event["httpMethod"] == "PUT"
    assert event["pathParameters"] == {"name": "event"}
    assert event["queryStringParameters"] == {"a": "2", "b": ""}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert event["stageVariables"] is None
    assert event["headers"]["X-Dup"] == "two"
    assert event["multiValueHeaders"]["X-Dup"] == ["one", "two"]
    # BinaryMediaTypes */*: even JSON arrives base64-encoded.
    assert event["isBase64Encoded"] is True
    assert event["body"] == "eyJ4IjogMX0="
    context = event["requestContext"]
    assert context["path"] == "/test/things/event"
    assert context["stage"] == "test"
    assert context["resourcePath"] == "/things/{name}"
    assert context["accountId"] == "123456789012"
    assert context["identity"]["sourceIp"] == "127.0.0.1"


def test_empty_request_has_null_body_and_query(api: LocalApi) -> None:
    _, _, body = request(api, "GET", "/things/event")

    event = json.loads(body)["event"]
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_function_sees_lambda_environment_and_context(api: LocalApi) -> None:
    _, headers, body = request(api, "GET", "/things/event")

    answer = json.loads(body)
    env, context = answer["env"], answer["context"]
    assert env["GREETING"] == "hello from inference-gateway-local"
    assert env["EXTRA"] == "yes"
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"].startswith("http://127.0.0.1:")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "Things"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert env["_HANDLER"] == "app.handler"
    assert context["function_name"] == "Things"
    assert context["memory_limit_in_mb"] == "128"
    assert 0 < context["remaining"] <= 1000
    # API Gateway and Lambda each have their own request id.
    assert answer["event"]["requestContext"]["requestId"] == headers["x-amzn-RequestId"]
    assert context["request_id"] not in ("", headers["x-amzn-RequestId"])


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nowhere"), ("GET", "/things"), ("GET", "/things/a/b"), ("GET", "/sleep")],
)
def test_unknown_route_or_method_is_403(api: LocalApi, method: str, path: str) -> None:
    status, headers, body = request(api, method, path)

    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_payload_over_10_mb_is_413(api: LocalApi) -> None:
    status, _, body = request(api, "POST", "/things/blob", b"x" * (10 * 1024 * 1024 + 1))

    assert status == 413
    assert json.loads(body) == {"message": "Request Too Long"}


def test_event_over_lambda_limit_is_413(api: LocalApi) -> None:
    # 5 MB of body is 6.7 MB once base64-encoded: over Lambda's 6 MB invoke limit.
    status, _, body = request(api, "POST", "/things/blob", b"x" * (5 * 1024 * 1024))

    assert status == 413
    assert json.loads(body) == {"message": "Request Too Long"}


@pytest.mark.parametrize("name", ["boom", "malformed"])
def test_function_error_or_bad_response_is_502(api: LocalApi, name: str) -> None:
    status, _, body = request(api, "GET", f"/things/{name}")

    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}


def test_worker_timeout_is_killed_and_reported(
    api: LocalApi, pools: dict[str, FunctionPool]
) -> None:
    started = time.monotonic()
    status, _, _ = request(api, "GET", "/things/slow")

    assert status == 502
    assert time.monotonic() - started < 3
    result = pools["Things"].invoke({"pathParameters": {"name": "slow"}})
    assert result.timed_out
    assert result.function_error == "Unhandled"
    assert "Task timed out after 1.00 seconds" in result.payload["errorMessage"]
    # The next invoke gets a fresh worker.
    assert request(api, "GET", "/things/event")[0] == 200


def test_integration_timeout_is_504(api: LocalApi) -> None:
    started = time.monotonic()
    status, _, body = request(api, "POST", "/sleep", b"{}")

    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}
    assert INTEGRATION_TIMEOUT <= time.monotonic() - started < 2.9


def test_handler_exception_is_a_lambda_error_result(
    pools: dict[str, FunctionPool],
) -> None:
    result = pools["Things"].invoke({"pathParameters": {"name": "boom"}})

    error: dict[str, Any] = result.payload
    assert result.function_error == "Unhandled"
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "boom"
    assert any("app.py" in line for line in error["stackTrace"])


def test_concurrent_requests_use_distinct_workers(api: LocalApi) -> None:
    with ThreadPoolExecutor(max_workers=3) as executor:
        answers = list(
            executor.map(lambda _: request(api, "GET", "/things/nap"), range(3))
        )

    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert len({json.loads(body)["pid"] for _, _, body in answers}) == 3


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [
        ("missing_module.handler", "Runtime.ImportModuleError"),
        ("app.missing_function", "Runtime.HandlerNotFound"),
        ("app.crash", "Runtime.ExitError"),
    ],
)
def test_init_and_runtime_failures_are_reported(
    app_template: SamTemplate, handler: str, error_type: str
) -> None:
    spec = dataclasses.replace(app_template.function("Things"), handler=handler)

    with FunctionPool(spec, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as pool:
        result = pool.invoke(0)

        assert result.function_error == "Unhandled"
        assert result.payload["errorType"] == error_type
        assert pool.worker_count == 0


def test_path_parameters_are_decoded_once(api: LocalApi) -> None:
    status, _, body = request(api, "GET", "/test/things/a%2Fb%2520c?show=1")

    assert status == 200
    event = json.loads(body)["event"]
    assert event["pathParameters"] == {"name": "a/b%20c"}
    assert event["path"] == "/things/a/b%20c"


# Gateway responses ----------------------------------------------------------------

GATEWAY_TEMPLATE = (
    '{"code":"$context.error.responseType","message":$context.error.messageString}'
)
GATEWAY_RESPONSES = {
    "DEFAULT_4XX": {"ResponseTemplates": {"application/json": GATEWAY_TEMPLATE}},
    "DEFAULT_5XX": {"ResponseTemplates": {"application/json": GATEWAY_TEMPLATE}},
    "REQUEST_TOO_LARGE": {
        "StatusCode": "400",
        "ResponseParameters": {
            "Headers": {"X-Limit": "'10 MB'", "X-Echo": "method.request.header.X-Ask"}
        },
        "ResponseTemplates": {
            "application/json": '{"${context.error.responseType}":"$context.error.message"}',
            "text/plain": "too big: $context.error.message",
        },
    },
}


class NoFunction:
    """An invoker for API tests that never reach a function."""

    def invoke(
        self, event: Any, *, request_id: str | None = None, trace_id: str | None = None
    ) -> InvokeResult:
        """Fail: no request in these tests is routed."""
        raise AssertionError("no function should run")


@pytest.fixture(scope="module")
def shaped_api(
    app_template: SamTemplate, pools: dict[str, FunctionPool]
) -> Iterator[LocalApi]:
    """The test API with GatewayResponses like the project's template declares."""
    apis = [
        dataclasses.replace(
            api, properties={**api.properties, "GatewayResponses": GATEWAY_RESPONSES}
        )
        for api in app_template.apis()
    ]
    with LocalApi(
        app_template.routes(),
        apis,
        pools,
        port=0,
        integration_timeout=INTEGRATION_TIMEOUT,
        max_payload_bytes=1024,
    ) as local_api:
        yield local_api


def test_project_template_renders_its_gateway_responses() -> None:
    template = load_template()
    api = LocalApi.from_template(template, {"ApiFunction": NoFunction()})

    response = api.error_response(missing_token(), "/v1/nowhere")

    assert response.status == 403
    assert json.loads(response.body) == {
        "code": "MISSING_AUTHENTICATION_TOKEN",
        "message": "Missing Authentication Token",
    }
    assert ("Content-Type", "application/json") in response.headers


MISSING = ["MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token"]
FUNCTION_ERROR = ["DEFAULT_5XX", "Internal server error"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    [
        ("GET", "/test/nowhere", None, 403, MISSING),
        ("DELETE", "/sleep", None, 403, MISSING),
        ("GET", "/things/boom", None, 502, FUNCTION_ERROR),
        ("GET", "/things/malformed", None, 502, FUNCTION_ERROR),
        (
            "POST",
            "/sleep",
            b"{}",
            504,
            ["INTEGRATION_TIMEOUT", "Endpoint request timed out"],
        ),
    ],
)
def test_own_errors_render_the_gateway_responses(
    shaped_api: LocalApi,
    method: str,
    path: str,
    body: bytes | None,
    status: int,
    expected: list[str],
) -> None:
    got, headers, answer = request(shaped_api, method, path, body)

    assert got == status
    assert headers["Content-Type"] == "application/json"
    assert json.loads(answer) == dict(zip(["code", "message"], expected, strict=True))


def test_a_type_of_its_own_wins_with_status_headers_and_template(
    shaped_api: LocalApi,
) -> None:
    status, headers, body = request(
        shaped_api, "POST", "/things/blob", b"x" * 2000, [("X-Ask", "why")]
    )

    assert status == 400
    assert json.loads(body) == {"REQUEST_TOO_LARGE": "Request Too Long"}
    assert headers["X-Limit"] == "10 MB"
    assert headers["X-Echo"] == "why"

    _, headers, body = request(
        shaped_api, "POST", "/things/blob", b"x" * 2000, [("Accept", "text/plain")]
    )

    assert headers["Content-Type"] == "text/plain"
    assert body == b"too big: Request Too Long"


# Malformed HTTP ----------------------------------------------------------------------


def exchange(
    api: LocalApi, data: bytes
) -> tuple[int, http.client.HTTPMessage, bytes, bool]:
    """Send raw bytes; return the status, headers, body and whether the server closed."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=5) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        # After the answer a closed connection reads as EOF; an open one stays silent.
        sock.settimeout(0.5)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
    return response.status, response.headers, body, closed


GET_EVENT = b"GET /things/event HTTP/1.1\r\nHost: local\r\n"
POST_X = b"POST /things/x HTTP/1.1\r\nHost: local\r\n"
CHUNKED = POST_X + b"Transfer-Encoding: chunked\r\n"
TOO_LARGE = "Request Header Fields Too Large"


@pytest.mark.parametrize(
    "data",
    [
        CHUNKED + b"\r\n-1\r\nabc\r\n0\r\n\r\n",
        CHUNKED + b"\r\n0x3\r\nabc\r\n0\r\n\r\n",
        CHUNKED + b"\r\n3\r\nabcXY0\r\n\r\n",
        POST_X + b"Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde",
        POST_X + b"Content-Length: 3, 5\r\n\r\nabcde",
        POST_X + b"Content-Length: +3\r\n\r\nabc",
        CHUNKED + b"Content-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        GET_EVENT + b"BrokenHeader\r\nX-After: 1\r\n\r\n",
        GET_EVENT + b"X-A: 1\rX-B: 2\r\n\r\n",
        GET_EVENT + b"X-A: 1\r\n folded\r\n\r\n",
        GET_EVENT + b"X-A : 1\r\n\r\n",
        GET_EVENT + b"X-A: a\x00b\r\n\r\n",
        b"GET /things/event  HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /things/event HTTP/9.x\r\nHost: a\r\n\r\n",
    ],
    ids=[
        "negative-chunk", "0x-chunk", "no-crlf-after-chunk", "two-lengths", "length-list",
        "signed-length", "length-and-chunked", "no-colon", "bare-cr", "folded",
        "space-before-colon", "nul", "double-space", "bad-version",
    ],
)  # fmt: skip
def test_malformed_http_is_400_json_and_closed(api: LocalApi, data: bytes) -> None:
    status, headers, body, closed = exchange(api, data)

    assert status == 400
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"message": "Bad Request"}
    assert headers["Connection"] == "close"
    assert closed


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (
            b"GET /things/" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
            414,
            "Request-URI Too Long",
        ),
        (GET_EVENT + b"X-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431, TOO_LARGE),
        (
            GET_EVENT + b"".join(b"X-%d: 1\r\n" % n for n in range(101)) + b"\r\n",
            431,
            TOO_LARGE,
        ),
    ],
    ids=["long-url", "long-header", "too-many-headers"],
)
def test_over_long_requests_are_json_and_closed(
    api: LocalApi, data: bytes, status: int, message: str
) -> None:
    got, headers, body, closed = exchange(api, data)

    assert got == status
    assert json.loads(body) == {"message": message}
    assert headers["Connection"] == "close"
    assert closed


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "BREW"])
def test_methods_outside_the_route_table_are_403_json(api: LocalApi, method: str) -> None:
    # /things/{name} takes ANY, which stands only for the methods API Gateway serves.
    status, headers, body, closed = exchange(
        api, f"{method} /things/x HTTP/1.1\r\nHost: a\r\n\r\n".encode()
    )

    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert not closed


def test_framing_errors_render_the_gateway_responses(shaped_api: LocalApi) -> None:
    status, _, body, closed = exchange(
        shaped_api,
        b"POST /test/things/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    )

    assert status == 400
    assert json.loads(body) == {"code": "DEFAULT_4XX", "message": "Bad Request"}
    assert closed


def test_lenient_but_valid_framing_still_serves(api: LocalApi) -> None:
    chunked = (
        b"PUT /things/event HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    repeated = (
        b"PUT /things/event HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
        b"Content-Length: 2\r\nX-Ctl: a\x01b\r\n\r\nhi"
    )

    for data, expected in ((chunked, b"abcde"), (repeated, b"hi")):
        status, _, body, closed = exchange(api, data)

        assert status == 200
        event = json.loads(body)["event"]
        assert base64.b64decode(event["body"]) == expected
        assert not closed
    # Other control characters reach the function, which judges them itself.
    assert event["headers"]["X-Ctl"] == "a\x01b"
