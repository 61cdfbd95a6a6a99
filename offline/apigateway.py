"""A local API Gateway REST API (Lambda proxy integration) for the offline stack.

It serves exactly the routes of the template's Api events, on 127.0.0.1, both at
the root (like ``sam local start-api``) and under ``/<StageName>/`` (like the
deployed URL). Each request becomes a REST v1 proxy event; the function's proxy
response becomes the HTTP response. API Gateway's own answers are mirrored:

- a request body over 10 MB: 413 ``Request Too Long`` (also when the event
  exceeds Lambda's 6 MB invoke limit, as API Gateway reports it);
- no resource for the path, or no method on it: 403 ``Missing Authentication Token``;
- a function error or a malformed proxy response: 502 ``Internal server error``;
- no answer within the integration timeout (29 s): 504 ``Endpoint request timed out``.

With ``BinaryMediaTypes`` covering every type (``*~1*``), every non-empty body
reaches the function base64-encoded and a base64 response leaves byte for byte.

IAM authorization (``Auth: DefaultAuthorizer: AWS_IAM``) is not checked locally,
as under ``sam local``: any request is let through, signed or not. A SigV4
``Authorization`` header only fills ``requestContext.identity.accessKey``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import logging
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from offline.lambda_runtime import InvokeResult
from offline.template import ACCOUNT_ID, ApiSpec, Route, SamTemplate

log = logging.getLogger(__name__)

DEFAULT_PORT = 3000
INTEGRATION_TIMEOUT_SECONDS = 29.0
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# Past this, an oversized body is not read to the end: the connection is closed instead.
_DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
_PROXY_KEYS = frozenset(
    {"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"}
)
# Response headers API Gateway will not pass through as they are.
_REMAPPED_HEADERS = frozenset(
    {
        "authorization",
        "connection",
        "content-length",
        "date",
        "server",
        "transfer-encoding",
        "www-authenticate",
    }
)
_SIGV4_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Invoker(Protocol):
    """Something that runs a function on an event, like FunctionPool."""

    def invoke(
        self, event: Any, *, request_id: str | None = None, trace_id: str | None = None
    ) -> InvokeResult:
        """Run the function on one event."""
        ...


@dataclass(frozen=True)
class GatewayResponse:
    """An HTTP response as API Gateway would send it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _gateway_error(status: int, message: str, error_type: str | None) -> GatewayResponse:
    """Build one of API Gateway's own error responses."""
    headers = [("Content-Type", "application/json")]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    body = json.dumps({"message": message}).encode()
    return GatewayResponse(status, headers, body)


def too_long() -> GatewayResponse:
    """413 for a payload over API Gateway's or Lambda's limit."""
    return _gateway_error(413, "Request Too Long", "BadRequestException")


def missing_token() -> GatewayResponse:
    """403 that REST APIs answer for a path or method they do not have."""
    response = _gateway_error(
        403, "Missing Authentication Token", "MissingAuthenticationTokenException"
    )
    # API Gateway writes this one without a space after the colon.
    return GatewayResponse(
        response.status,
        response.headers,
        b'{"message":"Missing Authentication Token"}',
    )


def internal_error(status: int = 502) -> GatewayResponse:
    """502 (function error, bad proxy response) or 500 (invoke failure)."""
    return _gateway_error(status, "Internal server error", "InternalServerErrorException")


def integration_timeout() -> GatewayResponse:
    """504 when the integration does not answer in time."""
    return _gateway_error(504, "Endpoint request timed out", None)


@dataclass(frozen=True)
class _CompiledRoute:
    """A route with its path template turned into a matcher."""

    route: Route
    api: ApiSpec
    pattern: re.Pattern[str]
    rank: tuple[int, ...]


def _compile(route: Route, api: ApiSpec) -> _CompiledRoute:
    """Turn a path like /a/{b}/{proxy+} into a regular expression and a precedence."""
    parts: list[str] = []
    rank: list[int] = []
    for segment in route.path.strip("/").split("/"):
        if not segment:
            continue
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"(?P<{segment[1:-2]}>.+)")
            rank.append(2)
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
            rank.append(1)
        else:
            parts.append(re.escape(segment))
            rank.append(0)
    pattern = re.compile("/" + "/".join(parts))
    return _CompiledRoute(route, api, pattern, tuple(rank))


def _media_type(value: str | None) -> str:
    """Return the bare media type of a Content-Type or the first range of an Accept."""
    if not value:
        return ""
    return value.split(",", 1)[0].split(";", 1)[0].strip().lower()


def _is_binary(media_type: str, binary_types: Sequence[str]) -> bool:
    """Tell whether a media type matches one of the API's binary media types."""
    for candidate in binary_types:
        if candidate == "*/*":
            return True
        if not media_type:
            continue
        major, _, minor = candidate.lower().partition("/")
        got_major, _, got_minor = media_type.partition("/")
        if major in ("*", got_major) and minor in ("*", got_minor):
            return True
    return False


def _header_text(value: Any) -> str | None:
    """Render a proxy response header value, or None when it is not a scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def proxy_response(
    payload: Any, accept: str | None, binary_types: Sequence[str]
) -> GatewayResponse | None:
    """Turn a Lambda proxy response into HTTP; None when it is malformed."""
    if not isinstance(payload, dict) or not set(payload) <= _PROXY_KEYS:
        return None
    status = payload.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if (
        not isinstance(status, int)
        or isinstance(status, bool)
        or not 100 <= status <= 599
    ):
        return None
    headers: list[tuple[str, str]] = []
    multi = payload.get("multiValueHeaders") or {}
    single = payload.get("headers") or {}
    if not isinstance(multi, dict) or not isinstance(single, dict):
        return None
    # Both maps are merged; for a name in both, multiValueHeaders wins.
    multi_names = {name.lower() for name in multi}
    for name, values in multi.items():
        if not isinstance(values, list):
            return None
        for value in values:
            text = _header_text(value)
            if text is None:
                return None
            headers.append((name, text))
    for name, value in single.items():
        if name.lower() in multi_names:
            continue
        text = _header_text(value)
        if text is None:
            return None
        headers.append((name, text))
    headers = [
        (f"x-amzn-Remapped-{name}" if name.lower() in _REMAPPED_HEADERS else name, value)
        for name, value in headers
    ]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body_value = payload.get("body")
    if body_value is None:
        body = b""
    elif isinstance(body_value, str):
        body = body_value.encode()
    else:
        return None
    if payload.get("isBase64Encoded") and body:
        response_type = _media_type(accept) or _media_type(
            next((value for name, value in headers if name.lower() == "content-type"), "")
        )
        # Without a matching binary media type API Gateway passes the base64 text on.
        if _is_binary(response_type, binary_types):
            try:
                body = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                return None
    return GatewayResponse(status, headers, body)


class _BodyTooLargeError(Exception):
    """The request body is over the payload limit."""


class _BadRequestError(Exception):
    """The request body cannot be read (bad framing)."""


class LocalApi:
    """The local REST API: routes, stages and the functions behind them."""

    def __init__(
        self,
        routes: Sequence[Route],
        apis: Sequence[ApiSpec],
        functions: Mapping[str, Invoker],
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        api_ids: Mapping[str, str] | None = None,
    ) -> None:
        if host not in _LOOPBACK_HOSTS:
            raise ValueError(f"the local API only listens on loopback, not {host!r}")
        by_id = {api.logical_id: api for api in apis}
        missing = sorted({route.function_logical_id for route in routes} - set(functions))
        if missing:
            raise ValueError(f"no function runner for {', '.join(missing)}")
        self.routes = list(routes)
        self.apis = list(apis)
        self.functions = dict(functions)
        self.integration_timeout = integration_timeout
        self.max_payload_bytes = max_payload_bytes
        self.api_ids = {
            api.logical_id: (api_ids or {}).get(api.logical_id)
            or hashlib.sha256(api.logical_id.encode()).hexdigest()[:10]
            for api in apis
        }
        self._compiled = sorted(
            (_compile(route, by_id[route.api_logical_id]) for route in routes),
            key=lambda compiled: compiled.rank,
        )
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_template(
        cls, template: SamTemplate, functions: Mapping[str, Invoker], **options: Any
    ) -> LocalApi:
        """Build the API of a template's Api events (Ref of each API as its id)."""
        apis = template.apis()
        api_ids = {api.logical_id: template.physical_name(api.logical_id) for api in apis}
        api_ids = {
            logical_id: api_id
            for logical_id, api_id in api_ids.items()
            if logical_id in template.resources
        }
        return cls(template.routes(), apis, functions, api_ids=api_ids, **options)

    # Lifecycle ----------------------------------------------------------------

    def start(self) -> LocalApi:
        """Bind the port and serve in a background thread."""
        server = _Server((self._host, self._port), _Handler)
        server.local_api = self
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, name="local-api", daemon=True
        )
        self._thread.start()
        log.info("local API listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """Return the port served (the bound one once started)."""
        return self._port

    @property
    def url(self) -> str:
        """Return the root URL, like sam local start-api's."""
        return f"http://127.0.0.1:{self._port}"

    def stage_url(self, api_logical_id: str | None = None) -> str:
        """Return the URL under an API's stage, shaped like the deployed one."""
        api = next(
            (api for api in self.apis if api_logical_id in (None, api.logical_id)), None
        )
        if api is None:
            raise KeyError(api_logical_id)
        return f"{self.url}/{api.stage_name}"

    # Routing ------------------------------------------------------------------

    def match(
        self, path: str, method: str
    ) -> tuple[_CompiledRoute, dict[str, str], str] | None:
        """Find the route of a request; return it, its parameters and the stage-less path."""
        trimmed = path.rstrip("/") or "/"
        candidates: list[tuple[str, str | None]] = []
        for api in self.apis:
            prefix = f"/{api.stage_name}"
            if trimmed == prefix or trimmed.startswith(prefix + "/"):
                candidates.append((trimmed[len(prefix) :] or "/", api.logical_id))
        candidates.append((trimmed, None))
        for candidate, api_id in candidates:
            found = self._match_path(candidate, method, api_id)
            if found is not None:
                route, parameters = found
                return route, parameters, candidate
        return None

    def _match_path(
        self, path: str, method: str, api_id: str | None
    ) -> tuple[_CompiledRoute, dict[str, str]] | None:
        """Match a stage-less path against the routes of one API (or of all)."""
        any_method: tuple[_CompiledRoute, dict[str, str]] | None = None
        matched_rank: tuple[int, ...] | None = None
        for compiled in self._compiled:
            if api_id is not None and compiled.api.logical_id != api_id:
                continue
            if matched_rank is not None and compiled.rank != matched_rank:
                break
            found = compiled.pattern.fullmatch(path)
            if found is None:
                continue
            # The most specific resource wins; its methods decide, ANY last.
            matched_rank = compiled.rank
            parameters = {key: unquote(value) for key, value in found.groupdict().items()}
            if compiled.route.method == method:
                return compiled, parameters
            if compiled.route.method == "ANY" and any_method is None:
                any_method = (compiled, parameters)
        return any_method

    # Requests -----------------------------------------------------------------

    def handle(
        self,
        method: str,
        raw_path: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        client_ip: str,
    ) -> tuple[GatewayResponse, str]:
        """Serve one request; return the response and the request id."""
        request_id = str(uuid.uuid4())
        split = urlsplit(raw_path)
        # Match on the raw path so an encoded "/" stays inside a path parameter.
        found = self.match(split.path or "/", method)
        if found is None:
            return missing_token(), request_id
        compiled, parameters, stage_path = found
        trace_id = _header(headers, "X-Amzn-Trace-Id") or _trace_header()
        event = self._event(
            compiled,
            parameters,
            method,
            unquote(stage_path),
            split.query,
            headers,
            body,
            client_ip,
            request_id,
            trace_id,
        )
        invoker = self.functions[compiled.route.function_logical_id]
        result = self._invoke(invoker, event, request_id, trace_id)
        if result is None:
            log.warning("integration timed out after %.0f s", self.integration_timeout)
            return integration_timeout(), request_id
        if result.status_code == 413:
            return too_long(), request_id
        if result.status_code != 200:
            log.warning("function invoke failed with status %d", result.status_code)
            return internal_error(500), request_id
        if result.function_error:
            log.warning(
                "function error: %s",
                result.payload_bytes[:2000].decode("utf-8", "replace"),
            )
            return internal_error(), request_id
        try:
            payload = result.payload
        except ValueError:
            payload = None
        response = proxy_response(
            payload, _header(headers, "Accept"), compiled.api.binary_media_types
        )
        if response is None:
            log.warning(
                "malformed Lambda proxy response from %s",
                compiled.route.function_logical_id,
            )
            return internal_error(), request_id
        return response, request_id

    def _invoke(
        self, invoker: Invoker, event: dict[str, Any], request_id: str, trace_id: str
    ) -> InvokeResult | None:
        """Invoke in a helper thread so the integration timeout can give up on it."""
        outcome: list[InvokeResult | BaseException] = []
        done = threading.Event()

        def run() -> None:
            """Run the invoke and hand over its outcome."""
            try:
                outcome.append(
                    # Lambda gives the invocation its own id, not API Gateway's.
                    invoker.invoke(event, trace_id=trace_id)
                )
            except BaseException as error:
                outcome.append(error)
            finally:
                done.set()

        # The invoke goes on after a 504, as the function does behind API Gateway.
        threading.Thread(target=run, name=f"invoke-{request_id[:8]}", daemon=True).start()
        if not done.wait(self.integration_timeout):
            return None
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _event(
        self,
        compiled: _CompiledRoute,
        parameters: dict[str, str],
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        client_ip: str,
        request_id: str,
        trace_id: str,
    ) -> dict[str, Any]:
        """Build the REST v1 proxy event for one request (path is without the stage)."""
        api = compiled.api
        api_id = self.api_ids[api.logical_id]
        headers = _with_forwarding_headers(headers, client_ip, self._port, trace_id)
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        names: dict[str, str] = {}
        for name, value in headers:
            # A repeated header keeps the spelling of its first occurrence.
            key = names.setdefault(name.lower(), name)
            multi.setdefault(key, []).append(value)
            single[key] = value
        pairs = parse_qsl(query, keep_blank_values=True)
        query_single: dict[str, str] = {}
        query_multi: dict[str, list[str]] = {}
        for key, value in pairs:
            query_multi.setdefault(key, []).append(value)
            query_single[key] = value
        content_type = _media_type(_header(headers, "Content-Type"))
        is_binary = bool(body) and _is_binary(content_type, api.binary_media_types)
        body_text: str | None
        if not body:
            body_text = None
        elif is_binary:
            body_text = base64.b64encode(body).decode()
        else:
            body_text = body.decode("utf-8", "replace")
        now = datetime.datetime.now(datetime.UTC)
        host = _header(headers, "Host") or f"127.0.0.1:{self._port}"
        domain = host.split(":", 1)[0] if host.count(":") == 1 else host
        first_label = domain.split(".", 1)[0]
        identity: dict[str, Any] = {
            "cognitoIdentityPoolId": None,
            "accountId": None,
            "cognitoIdentityId": None,
            "caller": None,
            "sourceIp": client_ip,
            "principalOrgId": None,
            "accessKey": None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": None,
            "userAgent": _header(headers, "User-Agent"),
            "user": None,
        }
        credential = _SIGV4_CREDENTIAL.search(_header(headers, "Authorization") or "")
        if credential:
            identity["accessKey"] = credential.group(1)
            identity["accountId"] = ACCOUNT_ID
        return {
            "resource": compiled.route.path,
            "path": path,
            "httpMethod": method,
            "headers": single,
            "multiValueHeaders": multi,
            "queryStringParameters": query_single or None,
            "multiValueQueryStringParameters": query_multi or None,
            "pathParameters": parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": hashlib.sha256(compiled.route.path.encode()).hexdigest()[
                    :6
                ],
                "resourcePath": compiled.route.path,
                "httpMethod": method,
                "extendedRequestId": base64.b64encode(secrets.token_bytes(11)).decode(),
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{api.stage_name}{path}",
                "accountId": ACCOUNT_ID,
                "protocol": "HTTP/1.1",
                "stage": api.stage_name,
                "domainPrefix": api_id if first_label.isdigit() else first_label,
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": identity,
                "domainName": domain,
                "apiId": api_id,
            },
            "body": body_text,
            "isBase64Encoded": is_binary,
        }


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """Return the last value of a header (case-insensitive), as API Gateway's map keeps."""
    wanted = name.lower()
    found: str | None = None
    for key, value in headers:
        if key.lower() == wanted:
            found = value
    return found


def _trace_header() -> str:
    """Make an X-Ray trace id like the one API Gateway adds."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def _with_forwarding_headers(
    headers: Sequence[tuple[str, str]], client_ip: str, port: int, trace_id: str
) -> list[tuple[str, str]]:
    """Add the headers API Gateway's front end adds to every request."""
    result = [
        (name, value) for name, value in headers if name.lower() != "x-forwarded-for"
    ]
    forwarded = _header(headers, "X-Forwarded-For")
    result.append(
        ("X-Forwarded-For", f"{forwarded}, {client_ip}" if forwarded else client_ip)
    )
    if _header(headers, "X-Forwarded-Port") is None:
        result.append(("X-Forwarded-Port", str(port)))
    if _header(headers, "X-Forwarded-Proto") is None:
        result.append(("X-Forwarded-Proto", "http"))
    if _header(headers, "X-Amzn-Trace-Id") is None:
        result.append(("X-Amzn-Trace-Id", trace_id))
    return result


class _Server(ThreadingHTTPServer):
    """Threaded HTTP server that carries the LocalApi it serves."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    local_api: LocalApi


class _Handler(BaseHTTPRequestHandler):
    """HTTP front end: framing and limits here, API Gateway semantics in LocalApi."""

    protocol_version = "HTTP/1.1"
    server: _Server
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 300

    def setup(self) -> None:
        """Disable Nagle on the accepted socket: responses are small and latency matters."""
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def do_GET(self) -> None:
        """Serve GET."""
        self._serve()

    def do_POST(self) -> None:
        """Serve POST."""
        self._serve()

    def do_PUT(self) -> None:
        """Serve PUT."""
        self._serve()

    def do_PATCH(self) -> None:
        """Serve PATCH."""
        self._serve()

    def do_DELETE(self) -> None:
        """Serve DELETE."""
        self._serve()

    def do_HEAD(self) -> None:
        """Serve HEAD."""
        self._serve()

    def do_OPTIONS(self) -> None:
        """Serve OPTIONS."""
        self._serve()

    def _serve(self) -> None:
        """Read the request, hand it to the API and write the response."""
        api = self.server.local_api
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        try:
            body = self._read_body(api.max_payload_bytes)
        except _BodyTooLargeError:
            response = too_long()
        except _BadRequestError:
            self.close_connection = True
            response = _gateway_error(400, "Bad Request", "BadRequestException")
        else:
            try:
                response, request_id = api.handle(
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    self.client_address[0],
                )
            except Exception:
                log.exception("local API failed to serve a request")
                response = internal_error(500)
        self._write(response, request_id)
        log.info(
            "api request %s %s -> %d in %.1f ms",
            self.command,
            self.path,
            response.status,
            (time.perf_counter() - started) * 1000,
        )

    def _read_body(self, limit: int) -> bytes:
        """Read the body (Content-Length or chunked), refusing more than limit bytes."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        raw_length = self.headers.get("Content-Length")
        try:
            length = int(raw_length) if raw_length else 0
        except ValueError as error:
            raise _BadRequestError from error
        if length < 0:
            raise _BadRequestError
        if length > limit:
            self._discard(length)
            raise _BodyTooLargeError
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int) -> bytes:
        """Read a chunked body."""
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as error:
                raise _BadRequestError from error
            if size == 0:
                break
            total += size
            if total > limit:
                # The rest of the body is not worth reading: close after answering.
                self.close_connection = True
                raise _BodyTooLargeError
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)
        # Trailers end with an empty line.
        while self.rfile.readline(1024).strip():
            pass
        return b"".join(parts)

    def _discard(self, length: int) -> None:
        """Read and drop a refused body so the client sees the answer, not a reset."""
        if length > _DRAIN_LIMIT_BYTES:
            self.close_connection = True
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(_READ_CHUNK, remaining))
            if not chunk:
                self.close_connection = True
                return
            remaining -= len(chunk)

    def _write(self, response: GatewayResponse, request_id: str) -> None:
        """Write a response with the headers API Gateway adds."""
        self.send_response_only(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Date", self.date_time_string())
        self.send_header("x-amzn-RequestId", request_id)
        self.send_header(
            "x-amz-apigw-id", base64.b64encode(secrets.token_bytes(11)).decode()
        )
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own access log; _serve logs each request."""
        log.debug("http server message: %s", format % args)
