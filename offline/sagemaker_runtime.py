"""Local stand-in for the Amazon SageMaker Runtime API (InvokeEndpoint, InvokeEndpointAsync).

Run as ``python -m offline.sagemaker_runtime --port 8080 --endpoint NAME=http://127.0.0.1:N``.
Routes, header names, limits and error shapes follow the botocore sagemaker-runtime model
(API version 2017-05-13) so that boto3 raises its modelled exceptions against it.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import itertools
import logging
import os
import re
import signal
import sys
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config

from offline.containers import (
    CUSTOM_ATTRIBUTES,
    FAULT_HEADER,
    LOOPBACK,
    TEXT,
    BaseHandler,
    LoopbackHTTPServer,
)

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
MAX_BODY = 6_291_456
MAX_ASYNC_BODY = 128_000
MAX_MESSAGE = 2048
DEFAULT_VARIANT = "AllTraffic"
CONTAINER_HOSTNAME = "primary"
SESSION_TTL = timedelta(minutes=20)
# Fresh connections tried after pooled ones a container closed while idle.
STALE_RETRIES = 2
DEFAULT_INVOCATION_TIMEOUT = 900
# Bounds memory when the stand-in serves long benchmark runs.
REQUEST_LOG_LIMIT = 100_000
ASYNC_WORKERS = 16
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DUMMY_CREDENTIALS = ("testing", "testing")

NEW_SESSION = "NEW_SESSION"
SESSION_HEADER = "X-Amzn-SageMaker-Session-Id"
NEW_SESSION_HEADER = "X-Amzn-SageMaker-New-Session-Id"
CLOSED_SESSION_HEADER = "X-Amzn-SageMaker-Closed-Session-Id"
VARIANT_HEADER = "x-Amzn-Invoked-Production-Variant"
OUTPUT_LOCATION_HEADER = "X-Amzn-SageMaker-OutputLocation"
FAILURE_LOCATION_HEADER = "X-Amzn-SageMaker-FailureLocation"

# SageMaker strips every other request header before calling the container.
FORWARDED_HEADERS = (
    "Content-Type",
    "Accept",
    CUSTOM_ATTRIBUTES,
    "X-Amzn-SageMaker-Target-Model",
    "X-Amzn-SageMaker-Inference-Id",
    "X-Amzn-SageMaker-Enable-Explanations",
    SESSION_HEADER,
)

# HTTP status per error code, from the "error" traits of the service model.
ERROR_STATUS = {
    "ValidationError": 400,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "InternalDependencyException": 530,
    # Not modelled by sagemaker-runtime; AWS sends it as the common error with status 400.
    "ThrottlingException": 400,
    "UnknownOperationException": 404,
}

# Service-level errors a container may request through the X-Offline-Fault header.
FAULT_MESSAGES = {
    "ThrottlingException": "Rate exceeded",
    "ModelNotReadyException": "Model is not ready to serve requests yet. Retry the request later.",
    "ServiceUnavailable": "Service is temporarily unavailable. Retry the request.",
    "InternalFailure": "An internal failure occurred.",
    "InternalDependencyException": "An internal dependency failed while serving the request.",
}

TIMEOUT_MESSAGE = (
    "Your invocation timed out while waiting for a response from container "
    f"{CONTAINER_HOSTNAME}. Review the latency metrics for each container in Amazon "
    "CloudWatch, resolve the issue, and try again."
)

log = logging.getLogger("offline.sagemaker_runtime")


class ApiError(Exception):
    """An error answered in the rest-json shape botocore parses."""

    def __init__(
        self, code: str, message: str, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = ERROR_STATUS[code]
        self.message = message[:MAX_MESSAGE]
        self.extra = extra or {}

    def payload(self) -> dict[str, Any]:
        """JSON body for the error response."""
        return {"message": self.message, **self.extra}


# Java's \A\S[\p{Print}]*\z: a non-space first character, then printable ASCII.
_ID_REGEX = r"[^ \t\n\x0b\f\r][\x20-\x7e]*"
_ID_PATTERN = r"\A\S[\p{Print}]*\z"
_NAME_REGEX = r"[a-zA-Z0-9](-*[a-zA-Z0-9])*"
_NAME_PATTERN = "^[a-zA-Z0-9](-*[a-zA-Z0-9])*"


@dataclass(frozen=True)
class Rule:
    """Constraints of one input member, as in the service model."""

    field: str
    header: str = ""
    max_len: int | None = None
    min_len: int = 0
    regex: str | None = None
    pattern: str | None = None
    pattern_text: str | None = None
    sensitive: bool = False
    integer: bool = False
    minimum: int | None = None
    maximum: int | None = None

    def check(self, raw: str) -> tuple[str | int | None, str | None]:
        """Return (value, None) when raw is valid, else (None, problem)."""
        shown = "" if self.sensitive else f" '{raw}'"
        subject = f"Value{shown} at '{self.field}'"
        prefix = f"{subject} failed to satisfy constraint: Member must"
        if self.integer:
            try:
                number = int(raw.strip())
            except ValueError:
                return None, f"{prefix} be an integer"
            if self.minimum is not None and number < self.minimum:
                return (
                    None,
                    f"{prefix} have value greater than or equal to {self.minimum}",
                )
            if self.maximum is not None and number > self.maximum:
                return None, f"{prefix} have value less than or equal to {self.maximum}"
            return number, None
        if len(raw) < self.min_len:
            return None, f"{prefix} have length greater than or equal to {self.min_len}"
        if self.max_len is not None and len(raw) > self.max_len:
            return None, f"{prefix} have length less than or equal to {self.max_len}"
        if self.regex is not None and not re.fullmatch(self.regex, raw):
            if self.pattern_text:
                return None, f"{prefix} {self.pattern_text}"
            return None, f"{prefix} satisfy regular expression pattern: {self.pattern}"
        return raw, None


def _header_rule(header: str, field: str) -> Rule:
    return Rule(field, header, max_len=1024, regex=r"[\x00-\x7f]*", pattern=r"\p{ASCII}*")


def _id_rule(header: str, field: str, max_len: int) -> Rule:
    return Rule(field, header, max_len, 1, _ID_REGEX, _ID_PATTERN)


def _name_rule(header: str, field: str) -> Rule:
    return Rule(field, header, 63, regex=_NAME_REGEX, pattern=_NAME_PATTERN)


ENDPOINT_NAME_RULE = Rule(
    "endpointName", max_len=63, regex=_NAME_REGEX, pattern=_NAME_PATTERN
)
CUSTOM_ATTRIBUTES_RULE = Rule(
    "customAttributes",
    CUSTOM_ATTRIBUTES,
    max_len=1024,
    regex=r"[\x20-\x7e\t]*",
    pattern_text="consist of visible US-ASCII characters",
    sensitive=True,
)
INFERENCE_ID_RULE = _id_rule("X-Amzn-SageMaker-Inference-Id", "inferenceId", 64)

SYNC_RULES = (
    _header_rule("Content-Type", "contentType"),
    _header_rule("Accept", "accept"),
    CUSTOM_ATTRIBUTES_RULE,
    _id_rule("X-Amzn-SageMaker-Target-Model", "targetModel", 1024),
    _name_rule("X-Amzn-SageMaker-Target-Variant", "targetVariant"),
    _name_rule("X-Amzn-SageMaker-Target-Container-Hostname", "targetContainerHostname"),
    INFERENCE_ID_RULE,
    Rule("enableExplanations", "X-Amzn-SageMaker-Enable-Explanations", 64, 1, ".*", ".*"),
    Rule(
        "inferenceComponentName",
        "X-Amzn-SageMaker-Inference-Component",
        63,
        regex=r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?",
        pattern=r"^[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?$",
    ),
    Rule(
        "sessionId",
        SESSION_HEADER,
        256,
        regex=f"{NEW_SESSION}|{_NAME_REGEX}",
        pattern="^(NEW_SESSION)$|^[a-zA-Z0-9](-*[a-zA-Z0-9])*$",
    ),
    _id_rule("X-Amzn-SageMaker-Prefix-Aware-Id", "prefixAwareId", 64),
)

ASYNC_RULES = (
    _header_rule("X-Amzn-SageMaker-Content-Type", "contentType"),
    _header_rule("X-Amzn-SageMaker-Accept", "accept"),
    CUSTOM_ATTRIBUTES_RULE,
    INFERENCE_ID_RULE,
    Rule(
        "inputLocation",
        "X-Amzn-SageMaker-InputLocation",
        1024,
        1,
        r"(https|s3)://([^/]+)/?(.*)",
        "^(https|s3)://([^/]+)/?(.*)$",
    ),
    Rule(
        "s3OutputPathExtension",
        "X-Amzn-SageMaker-S3OutputPathExtension",
        512,
        1,
        r"(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+",
        r"^(?!s3:|https:)[a-zA-Z0-9!_.*'()/-]+$",
    ),
    Rule(
        "filename",
        "X-Amzn-SageMaker-Filename",
        32,
        1,
        r"(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*",
        r"^(?!.*\..*\.)[a-zA-Z0-9][a-zA-Z0-9-_\.]*$",
    ),
    Rule(
        "requestTTLSeconds",
        "X-Amzn-SageMaker-RequestTTLSeconds",
        integer=True,
        minimum=60,
        maximum=21600,
    ),
    Rule(
        "invocationTimeoutSeconds",
        "X-Amzn-SageMaker-InvocationTimeoutSeconds",
        integer=True,
        minimum=1,
        maximum=3600,
    ),
)


def validate(
    endpoint: str, rules: tuple[Rule, ...], headers: Message
) -> tuple[dict[str, Any], list[str]]:
    """Check the endpoint name and headers; return parsed values and problems."""
    problems: list[str] = []
    _, problem = ENDPOINT_NAME_RULE.check(endpoint)
    if problem:
        problems.append(problem)
    values: dict[str, Any] = {}
    for rule in rules:
        raw = headers.get(rule.header)
        if raw is None:
            continue
        value, problem = rule.check(raw)
        if problem:
            problems.append(problem)
        else:
            values[rule.field] = value
    return values, problems


def body_problem(limit: int) -> str:
    """Problem text for a body over the limit."""
    return (
        "Value at 'body' failed to satisfy constraint: "
        f"Member must have length less than or equal to {limit}"
    )


def validation_error(problems: list[str]) -> ApiError:
    """Build a ValidationError listing every problem, like the service does."""
    count = len(problems)
    plural = "error" if count == 1 else "errors"
    message = f"{count} validation {plural} detected: " + "; ".join(problems)
    return ApiError("ValidationError", message)


def log_group(endpoint: str) -> str:
    """CloudWatch log group of an endpoint."""
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def log_group_arn(endpoint: str) -> str:
    """ARN of an endpoint's log group, as ModelError reports it."""
    return f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{log_group(endpoint)}"


def model_error(endpoint: str, status: int, body: bytes) -> ApiError:
    """ModelError for a container that answered a non-2xx status."""
    original = body.decode("utf-8", "replace")
    kind = "server" if status >= 500 else "client"
    head = f'Received {kind} error ({status}) from {CONTAINER_HOSTNAME} with message "'
    tail = (
        f'". See https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}'
        f"#logEventViewer:group={log_group(endpoint)} in account {ACCOUNT_ID}"
        " for more information."
    )
    room = max(MAX_MESSAGE - len(head) - len(tail), 0)
    extra = {
        "OriginalStatusCode": status,
        "OriginalMessage": original[:MAX_MESSAGE],
        "LogStreamArn": log_group_arn(endpoint),
    }
    return ApiError("ModelError", head + original[:room] + tail, extra)


def require_loopback_url(url: str, what: str) -> None:
    """Refuse any URL that does not point at the loopback interface."""
    parts = urlsplit(url)
    if (
        parts.scheme != "http"
        or parts.hostname not in LOOPBACK_HOSTS
        or parts.port is None
    ):
        raise ValueError(f"{what} must be http://127.0.0.1:PORT, got {url!r}")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Split s3://bucket/key into (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


class ContainerClient:
    """Pooled keep-alive HTTP connections to one model container."""

    def __init__(self, url: str, max_idle: int = 32) -> None:
        require_loopback_url(url, "container URL")
        parts = urlsplit(url)
        self.host = parts.hostname or LOOPBACK
        self.port = int(parts.port or 0)
        self.base_path = parts.path.rstrip("/")
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._max_idle = max_idle

    def post(
        self, path: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[int, Message, bytes]:
        """POST and return (status, headers, body); raises OSError/HTTPException."""
        for attempt in itertools.count():
            conn, reused = self._acquire(timeout)
            try:
                conn.request("POST", self.base_path + path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except ConnectionError:
                conn.close()
                # A pooled connection the container closed while idle, and so, most
                # likely, every older one: the pool is emptied and a fresh one tried.
                if reused and attempt < STALE_RETRIES:
                    self.close()
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            if response.will_close:
                conn.close()
            else:
                self._release(conn)
            return response.status, response.headers, data

    def _acquire(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            return http.client.HTTPConnection(
                self.host, self.port, timeout=timeout
            ), False
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class RequestLog:
    """What was forwarded to containers, for tests to inspect."""

    def __init__(self, limit: int = REQUEST_LOG_LIMIT) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def add(
        self, endpoint: str, route: str, headers: Mapping[str, str], body: bytes
    ) -> None:
        """Record one forwarded request (no body, only its size and hash)."""
        entry = {
            "endpoint": endpoint,
            "route": route,
            "inferenceId": headers.get("X-Amzn-SageMaker-Inference-Id"),
            "customAttributes": headers.get(CUSTOM_ATTRIBUTES),
            "contentType": headers.get("Content-Type"),
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        """All recorded requests, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self._entries.clear()


@dataclass
class AsyncJob:
    """One accepted InvokeEndpointAsync request."""

    endpoint: str
    input_location: str | None
    body: bytes
    headers: dict[str, str]
    timeout: float
    output_location: str
    failure_location: str


class Runtime:
    """Endpoint table, container calls and async processing."""

    def __init__(
        self,
        endpoints: Mapping[str, str],
        container_timeout: float = 60.0,
        s3_endpoint: str | None = None,
        async_output: str | None = None,
        async_failure: str | None = None,
    ) -> None:
        if bool(async_output) != bool(async_failure):
            raise ValueError("async output and failure locations go together")
        if async_output and async_failure:
            if not s3_endpoint:
                raise ValueError("async inference needs an S3 endpoint")
            split_s3_uri(async_output)
            split_s3_uri(async_failure)
        if s3_endpoint:
            require_loopback_url(s3_endpoint, "S3 endpoint")
        self.containers = {name: ContainerClient(url) for name, url in endpoints.items()}
        self.container_timeout = container_timeout
        self.async_output = async_output.rstrip("/") if async_output else None
        self.async_failure = async_failure.rstrip("/") if async_failure else None
        self.requests = RequestLog()
        self._s3 = make_s3_client(s3_endpoint) if s3_endpoint else None
        self._executor = ThreadPoolExecutor(
            ASYNC_WORKERS, thread_name_prefix="async-invoke"
        )

    def require_endpoint(self, endpoint: str) -> None:
        """Raise the service's not-found ValidationError for unknown endpoints."""
        if endpoint not in self.containers:
            raise ApiError(
                "ValidationError",
                f"Endpoint {endpoint} of account {ACCOUNT_ID} not found.",
            )

    def call_container(
        self, endpoint: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> tuple[Message, bytes]:
        """Invoke a container; map failures to the errors SageMaker answers."""
        try:
            status, reply_headers, data = self.containers[endpoint].post(
                "/invocations", body, headers, timeout
            )
        except ConnectionRefusedError:
            raise ApiError(
                "ServiceUnavailable",
                f"Endpoint {endpoint} has no container accepting requests. Try again later.",
            ) from None
        except TimeoutError:
            arn = {"LogStreamArn": log_group_arn(endpoint)}
            raise ApiError("ModelError", TIMEOUT_MESSAGE, arn) from None
        except (OSError, http.client.HTTPException):
            message = (
                f"An error occurred while communicating with container {CONTAINER_HOSTNAME}: "
                "the connection closed before a complete response was received."
            )
            arn = {"LogStreamArn": log_group_arn(endpoint)}
            raise ApiError("ModelError", message, arn) from None
        if 200 <= status < 300:
            return reply_headers, data
        fault = reply_headers.get(FAULT_HEADER)
        if fault in FAULT_MESSAGES:
            raise ApiError(fault, FAULT_MESSAGES[fault])
        raise model_error(endpoint, status, data)

    @property
    def async_enabled(self) -> bool:
        """Whether async output locations are configured."""
        return self._s3 is not None and bool(self.async_output)

    def locations(self, extension: str | None, filename: str | None) -> tuple[str, str]:
        """Output and failure URIs; named by a fresh UUID, not the inference id."""
        token = str(uuid.uuid4())
        suffix = f"/{extension.strip('/')}" if extension and extension.strip("/") else ""
        output = f"{self.async_output}{suffix}/{filename or token + '.out'}"
        failure = f"{self.async_failure}{suffix}/{token}-error.out"
        return output, failure

    def submit(self, job: AsyncJob) -> None:
        """Queue an async job."""
        self._executor.submit(self._run, job)

    def _run(self, job: AsyncJob) -> None:
        try:
            location = job.input_location
            payload = job.body if location is None else self._read_s3(location)
            self.requests.add(job.endpoint, "async", job.headers, payload)
            reply_headers, data = self.call_container(
                job.endpoint, payload, job.headers, job.timeout
            )
            content_type = reply_headers.get("Content-Type") or "application/octet-stream"
            self._write_s3(job.output_location, data, content_type)
        except ApiError as err:
            log.info("async inference failed endpoint=%s code=%s", job.endpoint, err.code)
            self._write_failure(job, err.message)
        except Exception as exc:
            log.warning("async inference failed endpoint=%s error=%s", job.endpoint, exc)
            self._write_failure(
                job, f"The inference request could not be processed: {exc}"
            )

    def _s3_client(self) -> Any:
        if self._s3 is None:
            raise RuntimeError("no S3 endpoint configured")
        return self._s3

    def _read_s3(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        response = self._s3_client().get_object(Bucket=bucket, Key=key)
        data: bytes = response["Body"].read()
        return data

    def _write_s3(self, uri: str, data: bytes, content_type: str) -> None:
        bucket, key = split_s3_uri(uri)
        self._s3_client().put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=content_type
        )

    def _write_failure(self, job: AsyncJob, message: str) -> None:
        try:
            self._write_s3(job.failure_location, message.encode(), "text/plain")
        except Exception as exc:
            log.error(
                "async failure object not written endpoint=%s error=%s", job.endpoint, exc
            )

    def close(self) -> None:
        """Stop async workers and drop pooled connections."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        for client in self.containers.values():
            client.close()


def make_s3_client(endpoint: str) -> Any:
    """S3 client for the local S3 server only (dummy credentials, no metadata lookups)."""
    require_loopback_url(endpoint, "S3 endpoint")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    session = boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS[0],
        aws_secret_access_key=DUMMY_CREDENTIALS[1],
        region_name=REGION,
    )
    config = Config(
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
    )
    return session.client("s3", endpoint_url=endpoint, config=config)


_ENDPOINT_ROUTE = re.compile(r"/endpoints/([^/]*)/([a-z-]+)")
# Errors writing to (or reading from) a client that closed its connection.
_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class RuntimeHandler(BaseHandler):
    """HTTP side of the SageMaker Runtime stand-in."""

    server: RuntimeServer
    log_requests = True
    logger = log

    def route(self, method: str, path: str) -> None:
        """Serve the runtime API and the /offline inspection routes."""
        try:
            try:
                self._route(method, path)
            except ApiError as err:
                self.send_error_shape(err)
        except _CLIENT_GONE:
            # The caller gave up (its read timeout) before a slow model answered:
            # nothing is wrong here, and nobody is left to tell.
            self.close_connection = True
            log.info("client left before the answer: %s %s", method, path)

    def _route(self, method: str, path: str) -> None:
        runtime = self.server.runtime
        match = _ENDPOINT_ROUTE.fullmatch(path)
        if match and method == "POST":
            endpoint, action = unquote(match.group(1)), match.group(2)
            if action == "invocations":
                self._invoke(endpoint)
                return
            if action == "async-invocations":
                self._invoke_async(endpoint)
                return
            if action == "invocations-response-stream":
                self.read_body(0)
                raise ApiError(
                    "ValidationError",
                    "InvokeEndpointWithResponseStream is not supported by the offline stand-in.",
                )
        if path == "/ping" and method == "GET":
            self.send(200, b"", None)
        elif path == "/offline/requests" and method == "GET":
            self.send_json(200, runtime.requests.entries())
        elif path == "/offline/requests" and method == "DELETE":
            runtime.requests.clear()
            self.send(204, b"", None)
        else:
            self.read_body(0)
            raise ApiError(
                "UnknownOperationException", f"Unknown operation {method} {path}"
            )

    def _invoke(self, endpoint: str) -> None:
        runtime = self.server.runtime
        body = self.read_body(MAX_BODY)
        values, problems = validate(endpoint, SYNC_RULES, self.headers)
        if body is None:
            problems.append(body_problem(MAX_BODY))
        if problems or body is None:
            raise validation_error(problems)
        runtime.require_endpoint(endpoint)
        forward = {
            name: self.headers[name] for name in FORWARDED_HEADERS if name in self.headers
        }
        runtime.requests.add(endpoint, "sync", forward, body)
        reply_headers, data = runtime.call_container(
            endpoint, body, forward, runtime.container_timeout
        )
        headers = {VARIANT_HEADER: values.get("targetVariant") or DEFAULT_VARIANT}
        for name in (CUSTOM_ATTRIBUTES, CLOSED_SESSION_HEADER, NEW_SESSION_HEADER):
            if name in reply_headers:
                headers[name] = reply_headers[name]
        if values.get("sessionId") == NEW_SESSION and NEW_SESSION_HEADER not in headers:
            # Stateful containers name the session themselves; otherwise hand out one here.
            expires = (datetime.now(UTC) + SESSION_TTL).strftime("%Y-%m-%dT%H:%M:%SZ")
            headers[NEW_SESSION_HEADER] = f"{uuid.uuid4()}; Expires={expires}"
        content_type = reply_headers.get("Content-Type") or "application/octet-stream"
        self.send(200, data, content_type, headers)

    def _invoke_async(self, endpoint: str) -> None:
        runtime = self.server.runtime
        body = self.read_body(MAX_ASYNC_BODY)
        values, problems = validate(endpoint, ASYNC_RULES, self.headers)
        if body is None:
            problems.append(body_problem(MAX_ASYNC_BODY))
        if problems or body is None:
            raise validation_error(problems)
        runtime.require_endpoint(endpoint)
        if not runtime.async_enabled:
            raise ApiError(
                "ValidationError",
                f"Endpoint {endpoint} of account {ACCOUNT_ID} is not configured for "
                "asynchronous inference.",
            )
        location = values.get("inputLocation")
        if bool(location) == bool(body):
            raise ApiError(
                "ValidationError", "Provide exactly one of InputLocation and Body."
            )
        if location and not location.startswith("s3://"):
            raise ApiError(
                "ValidationError",
                "The offline stand-in reads input only from s3:// locations.",
            )
        inference_id = values.get("inferenceId") or str(uuid.uuid4())
        forward = {"X-Amzn-SageMaker-Inference-Id": inference_id}
        for source, target in (
            ("X-Amzn-SageMaker-Content-Type", "Content-Type"),
            ("X-Amzn-SageMaker-Accept", "Accept"),
            (CUSTOM_ATTRIBUTES, CUSTOM_ATTRIBUTES),
        ):
            if source in self.headers:
                forward[target] = self.headers[source]
        output, failure = runtime.locations(
            values.get("s3OutputPathExtension"), values.get("filename")
        )
        timeout = values.get("invocationTimeoutSeconds") or DEFAULT_INVOCATION_TIMEOUT
        runtime.submit(
            AsyncJob(endpoint, location, body, forward, float(timeout), output, failure)
        )
        headers = {OUTPUT_LOCATION_HEADER: output, FAILURE_LOCATION_HEADER: failure}
        self.send_json(202, {"InferenceId": inference_id}, headers)

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str | None = TEXT,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send a response carrying a request id, as every AWS answer does."""
        merged = {"x-amzn-RequestId": str(uuid.uuid4()), **(headers or {})}
        super().send(status, body, content_type, merged)

    def send_error_shape(self, err: ApiError) -> None:
        """Answer an ApiError the way rest-json services do."""
        self.send_json(err.status, err.payload(), {"x-amzn-ErrorType": err.code})

    def internal_error(self) -> None:
        """Unexpected failures surface as InternalFailure."""
        self.send_error_shape(
            ApiError("InternalFailure", FAULT_MESSAGES["InternalFailure"])
        )


class RuntimeServer(LoopbackHTTPServer):
    """The SageMaker Runtime stand-in listening on 127.0.0.1."""

    def __init__(self, port: int, runtime: Runtime) -> None:
        self.runtime = runtime
        super().__init__(port, RuntimeHandler)

    def stop(self) -> None:
        """Stop serving and release workers and connections."""
        super().stop()
        self.runtime.close()


def build_server(
    port: int,
    endpoints: Mapping[str, str],
    *,
    container_timeout: float = 60.0,
    s3_endpoint: str | None = None,
    async_output: str | None = None,
    async_failure: str | None = None,
) -> RuntimeServer:
    """Create (but do not start) the stand-in; port 0 picks a free port."""
    runtime = Runtime(
        endpoints, container_timeout, s3_endpoint, async_output, async_failure
    )
    return RuntimeServer(port, runtime)


def serve(
    port: int,
    endpoints: Mapping[str, str],
    *,
    container_timeout: float = 60.0,
    s3_endpoint: str | None = None,
    async_output: str | None = None,
    async_failure: str | None = None,
) -> RuntimeServer:
    """Start the stand-in on a daemon thread; call .stop() on the result to end it."""
    server = build_server(
        port,
        endpoints,
        container_timeout=container_timeout,
        s3_endpoint=s3_endpoint,
        async_output=async_output,
        async_failure=async_failure,
    )
    server.start()
    return server


def _endpoint_arg(value: str) -> tuple[str, str]:
    name, sep, url = value.partition("=")
    if not sep or not name or not url:
        raise argparse.ArgumentTypeError("expected NAME=http://127.0.0.1:PORT")
    try:
        require_loopback_url(url, "endpoint URL")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, url


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--endpoint",
        type=_endpoint_arg,
        action="append",
        required=True,
        metavar="NAME=URL",
        help="endpoint name and its container's base URL (repeatable)",
    )
    parser.add_argument(
        "--container-timeout", type=float, default=60.0, metavar="SECONDS"
    )
    parser.add_argument("--s3-endpoint", metavar="URL", help="local S3 server, e.g. moto")
    parser.add_argument("--async-output", metavar="S3_URI")
    parser.add_argument("--async-failure", metavar="S3_URI")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        server = build_server(
            args.port,
            dict(args.endpoint),
            container_timeout=args.container_timeout,
            s3_endpoint=args.s3_endpoint,
            async_output=args.async_output,
            async_failure=args.async_failure,
        )
    except ValueError as exc:
        parser.error(str(exc))
    log.info("sagemaker runtime stand-in listening on %s:%d", LOOPBACK, server.port)
    # Runners stop servers with SIGTERM; exit through the cleanup below.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.runtime.close()
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    sys.exit(0)


if __name__ == "__main__":
    sys.exit(main())
