"""A local API Gateway REST API (Lambda proxy integration) for the offline stack.

It serves exactly the routes of the template's Api events, on 127.0.0.1, both at
the root (like ``sam local start-api``) and under ``/<StageName>/`` (like the
deployed URL). Each request becomes a REST v1 proxy event; the function's proxy
response becomes the HTTP response. API Gateway's own answers are mirrored, each
with its gateway response type:

- a request body over 10 MB: 413 ``REQUEST_TOO_LARGE`` (also when the event
  exceeds Lambda's 6 MB invoke limit, as API Gateway reports it);
- no resource for the path, or no method on it (TRACE, CONNECT and unknown methods
  included): 403 ``MISSING_AUTHENTICATION_TOKEN``;
- a function error or a malformed proxy response: 502 (``DEFAULT_5XX``);
- a rejected invoke: 500 ``INTEGRATION_FAILURE``;
- no answer within the integration timeout (29 s): 504 ``INTEGRATION_TIMEOUT``.

These errors are rendered from the API's ``GatewayResponses`` as the template
declares them: the response type's own entry, else ``DEFAULT_4XX``/``DEFAULT_5XX``,
else API Gateway's plain ``{"message": ...}``. The templates may use
``$context.error.responseType``, ``$context.error.message`` and
``$context.error.messageString``; ``StatusCode`` and literal or
``method.request.header.*`` response headers are honoured too.

Malformed HTTP (bad chunk sizes, conflicting Content-Length headers, header lines
without a colon, bare CRs, NUL bytes) is answered 400 and the connection closed, as
API Gateway's front end refuses it; over-long request lines (414) and headers (431)
likewise. Those answers are JSON too, rendered through ``DEFAULT_4XX``. Other
control characters in header values reach the function, which judges them.

With ``BinaryMediaTypes`` covering every type (``*~1*``), every non-empty body
reaches the function base64-encoded and a base64 response leaves byte for byte.

IAM authorization (``Auth: DefaultAuthorizer: AWS_IAM``) is not checked locally,
as under ``sam local``: any request is let through, signed or not. A SigV4
``Authorization`` header only fills ``requestContext.identity.accessKey``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import hashlib
import http.client
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
# http.server's limits: one request or header line, and the number of headers.
_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_CHUNK_LINE = 1024
# After an error answer that closes, read what the client still sends for this long
# (and at most this much) so that closing does not reset the answer away.
_LINGER_SECONDS = 1.0
_LINGER_BYTES = 8 * 1024 * 1024
# RFC 9110 tokens (methods, header names), hex chunk sizes and decimal lengths.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_BYTES = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DIGITS = re.compile(r"[0-9]{1,18}")
_HTTP_VERSION = re.compile(r"HTTP/([0-9])\.([0-9])")
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
# The methods API Gateway serves; ANY stands for exactly these.
HTTP_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})
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


# Gateway response types of the errors the local API answers itself.
MISSING_AUTHENTICATION_TOKEN = "MISSING_AUTHENTICATION_TOKEN"  # noqa: S105 - a type name
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
INTEGRATION_FAILURE = "INTEGRATION_FAILURE"
INTEGRATION_TIMEOUT = "INTEGRATION_TIMEOUT"
DEFAULT_4XX = "DEFAULT_4XX"
DEFAULT_5XX = "DEFAULT_5XX"
# What a declared gateway response without ResponseTemplates renders.
_DEFAULT_TEMPLATE = '{"message":$context.error.messageString}'
_CONTEXT_ERROR = re.compile(
    r"\$(\{)?context\.error\.(messageString|message|responseType)\b(?(1)\})"
)
_LITERAL_PARAMETER = re.compile(r"'(.*)'", re.DOTALL)
_REQUEST_HEADER_PARAMETER = "method.request.header."


@dataclass(frozen=True)
class GatewayError:
    """One of API Gateway's own errors, before GatewayResponses shape it."""

    response_type: str
    status: int
    message: str
    error_type: str | None = None
    # API Gateway writes some plain bodies without a space after the colon.
    compact: bool = False

    def plain(self) -> GatewayResponse:
        """Render the error as API Gateway does when no gateway response applies."""
        headers = [("Content-Type", "application/json")]
        if self.error_type:
            headers.append(("x-amzn-ErrorType", self.error_type))
        separators = (",", ":") if self.compact else None
        body = json.dumps({"message": self.message}, separators=separators).encode()
        return GatewayResponse(self.status, headers, body)


def too_long() -> GatewayError:
    """413 for a payload over API Gateway's or Lambda's limit."""
    return GatewayError(REQUEST_TOO_LARGE, 413, "Request Too Long", "BadRequestException")


def missing_token() -> GatewayError:
    """403 that REST APIs answer for a path or method they do not have."""
    return GatewayError(
        MISSING_AUTHENTICATION_TOKEN,
        403,
        "Missing Authentication Token",
        "MissingAuthenticationTokenException",
        compact=True,
    )


def internal_error(status: int = 502) -> GatewayError:
    """502 (function error, bad proxy response) or 500 (invoke failure)."""
    response_type = INTEGRATION_FAILURE if status == 500 else DEFAULT_5XX
    return GatewayError(
        response_type, status, "Internal server error", "InternalServerErrorException"
    )


def integration_timeout() -> GatewayError:
    """504 when the integration does not answer in time."""
    return GatewayError(INTEGRATION_TIMEOUT, 504, "Endpoint request timed out")


def bad_request(status: int = 400, message: str = "Bad Request") -> GatewayError:
    """A request the front end refuses before routing (bad framing, limits)."""
    error_type = "BadRequestException" if status == 400 else None
    family = DEFAULT_4XX if status < 500 else DEFAULT_5XX
    return GatewayError(family, status, message, error_type)


def _status_code(value: Any) -> int | None:
    """Read a gateway response's StatusCode, or None when it sets none."""
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() and 100 <= int(text) <= 599 else None


def _pick_template(templates: Mapping[str, Any], accept: str | None) -> tuple[str, str]:
    """Choose a response template: the Accept type's, else JSON's, else the first."""
    wanted = _media_type(accept)
    by_type = {
        str(key).lower(): (str(key), str(value)) for key, value in templates.items()
    }
    for media_type in (wanted, "application/json"):
        if media_type in by_type:
            return by_type[media_type]
    return next(iter(by_type.values()))


def _render_template(template: str, error: GatewayError) -> str:
    """Substitute the $context.error variables API Gateway offers gateway responses."""
    values = {
        "responseType": error.response_type,
        "message": error.message,
        # The quoted message, so a template can place it as a JSON string.
        "messageString": json.dumps(error.message),
    }
    return _CONTEXT_ERROR.sub(lambda found: values[found.group(2)], template)


class GatewayResponses:
    """An API's declared GatewayResponses: how it renders its own errors."""

    def __init__(self, declared: Any) -> None:
        entries = declared.items() if isinstance(declared, Mapping) else ()
        self.declared: dict[str, Mapping[str, Any]] = {
            str(name): value for name, value in entries if isinstance(value, Mapping)
        }

    def render(
        self, error: GatewayError, request_headers: Sequence[tuple[str, str]] = ()
    ) -> GatewayResponse:
        """Render an error through its type's response, else the family default."""
        family = DEFAULT_4XX if error.status < 500 else DEFAULT_5XX
        specific = self.declared.get(error.response_type)
        fallback = self.declared.get(family)
        chosen = specific or fallback
        if chosen is None:
            return error.plain()
        # The family default's StatusCode applies to every type that sets none.
        status = (
            _status_code(chosen.get("StatusCode"))
            or _status_code((fallback or {}).get("StatusCode"))
            or error.status
        )
        templates = chosen.get("ResponseTemplates")
        if not isinstance(templates, Mapping) or not templates:
            templates = {"application/json": _DEFAULT_TEMPLATE}
        content_type, template = _pick_template(
            templates, _header(request_headers, "Accept")
        )
        headers = [("Content-Type", content_type)]
        if error.error_type:
            headers.append(("x-amzn-ErrorType", error.error_type))
        headers += self._headers(chosen, request_headers)
        body = _render_template(template, error).encode()
        return GatewayResponse(status, headers, body)

    @staticmethod
    def _headers(
        declared: Mapping[str, Any], request_headers: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """Evaluate ResponseParameters.Headers: literals and request headers."""
        parameters = declared.get("ResponseParameters")
        if not isinstance(parameters, Mapping):
            return []
        mapped = parameters.get("Headers")
        if not isinstance(mapped, Mapping):
            return []
        headers: list[tuple[str, str]] = []
        for name, expression in mapped.items():
            text = str(expression)
            literal = _LITERAL_PARAMETER.fullmatch(text)
            if literal:
                headers.append((str(name), literal.group(1)))
            elif text.startswith(_REQUEST_HEADER_PARAMETER):
                value = _header(
                    request_headers, text.removeprefix(_REQUEST_HEADER_PARAMETER)
                )
                if value is not None:
                    headers.append((str(name), value))
        return headers


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


class _ClientGoneError(Exception):
    """The client closed the connection mid-request: nobody is left to answer."""


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
        self.gateway_responses = {
            api.logical_id: GatewayResponses(api.properties.get("GatewayResponses"))
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
            if (
                compiled.route.method == "ANY"
                and method in HTTP_METHODS
                and any_method is None
            ):
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
            return self.error_response(missing_token(), raw_path, headers), request_id
        compiled, parameters, stage_path = found
        responses = self.gateway_responses[compiled.api.logical_id]
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
            return responses.render(integration_timeout(), headers), request_id
        if result.status_code == 413:
            return responses.render(too_long(), headers), request_id
        if result.status_code != 200:
            log.warning("function invoke failed with status %d", result.status_code)
            return responses.render(internal_error(500), headers), request_id
        if result.function_error:
            log.warning(
                "function error: %s",
                result.payload_bytes[:2000].decode("utf-8", "replace"),
            )
            return responses.render(internal_error(), headers), request_id
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
            return responses.render(internal_error(), headers), request_id
        return response, request_id

    def error_response(
        self,
        error: GatewayError,
        raw_path: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> GatewayResponse:
        """Render an error with the GatewayResponses of the API a path belongs to."""
        api = self._api_of(urlsplit(raw_path or "/").path or "/")
        if api is None:
            return error.plain()
        return self.gateway_responses[api.logical_id].render(error, headers)

    def _api_of(self, path: str) -> ApiSpec | None:
        """Return the API whose stage prefixes a path; at the root, the first API."""
        for api in self.apis:
            prefix = f"/{api.stage_name}"
            if path == prefix or path.startswith(prefix + "/"):
                return api
        return self.apis[0] if self.apis else None

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
    # Set when an error answer closes the connection with request bytes maybe unread.
    _linger = False

    def setup(self) -> None:
        """Disable Nagle on the accepted socket: responses are small and latency matters."""
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def finish(self) -> None:
        """Close gently after a refusal: unread request bytes would reset the answer."""
        super().finish()
        if not self._linger:
            return
        connection: socket.socket = self.connection
        deadline = time.monotonic() + _LINGER_SECONDS
        drained = 0
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_WR)
            while drained < _LINGER_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                connection.settimeout(remaining)
                chunk = connection.recv(_READ_CHUNK)
                if not chunk:
                    break
                drained += len(chunk)

    def handle_one_request(self) -> None:
        """Read one request and answer it; every method reaches the route table."""
        self.command = ""
        self.path = ""
        self.request_version = self.protocol_version
        self.requestline = ""
        try:
            self.raw_requestline = self.rfile.readline(_MAX_LINE + 1)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > _MAX_LINE:
                self._refuse(bad_request(414, "Request-URI Too Long"))
                return
            if not self.parse_request():
                return
            self._serve()
        except TimeoutError:
            # An idle keep-alive connection or a client that stopped sending.
            self.close_connection = True
        except _ClientGoneError:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            log.info("client left before the answer: %s %s", self.command, self.path)
            self.close_connection = True

    def parse_request(self) -> bool:
        """Parse the request line and headers strictly; refuse what API Gateway would."""
        self.close_connection = True
        line = self.raw_requestline
        if not line.endswith(b"\n"):
            raise _ClientGoneError
        text = _strip_eol(line)
        self.requestline = text.decode("iso-8859-1")
        words = self.requestline.split(" ")
        version = _HTTP_VERSION.fullmatch(words[-1]) if len(words) == 3 else None
        if version is None or not _TOKEN.fullmatch(words[0]) or _bad_bytes(text):
            self._refuse(bad_request())
            return False
        if version.group(1) != "1":
            self._refuse(bad_request(505, "HTTP Version Not Supported"))
            return False
        self.command, self.path, self.request_version = words
        headers = self._read_headers()
        if headers is None:
            return False
        self.headers = headers
        tokens = {
            token.strip().lower()
            for value in headers.get_all("Connection") or []
            for token in value.split(",")
        }
        if "close" not in tokens and (
            self.request_version == "HTTP/1.1" or "keep-alive" in tokens
        ):
            self.close_connection = False
        expect = (headers.get("Expect") or "").strip().lower()
        if expect == "100-continue" and self.request_version == "HTTP/1.1":
            return self.handle_expect_100()
        return True

    def _read_headers(self) -> http.client.HTTPMessage | None:
        """Read the header block; None once a refusal has been sent."""
        headers = http.client.HTTPMessage()
        for _ in range(_MAX_HEADERS + 1):
            line = self.rfile.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                self._refuse(bad_request(431, "Request Header Fields Too Large"))
                return None
            if line in (b"\r\n", b"\n"):
                return headers
            if not line.endswith(b"\n"):
                raise _ClientGoneError
            text = _strip_eol(line)
            name, colon, value = text.partition(b":")
            # No colon, a folded line, space before the colon, a bare CR or a NUL:
            # email's parser would silently cut the headers short there.
            if not colon or not _TOKEN_BYTES.fullmatch(name) or _bad_bytes(value):
                self._refuse(bad_request())
                return None
            headers[name.decode("ascii")] = value.strip(b" \t").decode("iso-8859-1")
        self._refuse(bad_request(431, "Request Header Fields Too Large"))
        return None

    def _serve(self) -> None:
        """Read the request, hand it to the API and write the response."""
        api = self.server.local_api
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        header_list = list(self.headers.items())
        try:
            body = self._read_body(api.max_payload_bytes)
        except _BodyTooLargeError:
            response = api.error_response(too_long(), self.path, header_list)
        except _BadRequestError:
            self.close_connection = True
            response = api.error_response(bad_request(), self.path, header_list)
        else:
            try:
                response, request_id = api.handle(
                    self.command,
                    self.path,
                    header_list,
                    body,
                    self.client_address[0],
                )
            except Exception:
                log.exception("local API failed to serve a request")
                response = api.error_response(internal_error(500), self.path, header_list)
        self._write(response, request_id)
        log.info(
            "api request %s %s -> %d in %.1f ms",
            self.command,
            self.path,
            response.status,
            (time.perf_counter() - started) * 1000,
        )

    def _refuse(self, error: GatewayError) -> None:
        """Answer a request that cannot be framed, then close the connection."""
        self.close_connection = True
        response = self.server.local_api.error_response(error, self.path or None)
        self._write(response, str(uuid.uuid4()))

    def _read_body(self, limit: int) -> bytes:
        """Read the body (Content-Length or chunked), refusing more than limit bytes."""
        length = self._body_length()
        if length is None:
            return self._read_chunked(limit)
        if length > limit:
            self._discard(length)
            raise _BodyTooLargeError
        return self._read_exact(length)

    def _body_length(self) -> int | None:
        """Return the declared length, or None for chunked; raise on bad framing."""
        encodings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if encodings:
            codings = [
                coding.strip().lower()
                for value in encodings
                for coding in value.split(",")
            ]
            # Both headers at once is the shape of request smuggling: refuse it.
            if lengths or codings != ["chunked"]:
                raise _BadRequestError
            return None
        # Repeats of one value are allowed (RFC 9112, 6.3); different values are not.
        values = {item.strip() for value in lengths for item in value.split(",")}
        if not values:
            return 0
        if len(values) > 1:
            raise _BadRequestError
        value = values.pop()
        if not _DIGITS.fullmatch(value):
            raise _BadRequestError
        return int(value)

    def _read_chunked(self, limit: int) -> bytes:
        """Read a chunked body strictly: hex sizes, CRLF after each chunk, trailers."""
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
            if not line.endswith(b"\n"):
                raise _BadRequestError
            size_text = _strip_eol(line).split(b";", 1)[0].strip(b" \t")
            # int() would also take "-1", "+5", "0x10" and "1_0": only hex digits.
            if not _HEX.fullmatch(size_text):
                raise _BadRequestError
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > limit:
                # The rest of the body is not worth reading: close after answering.
                self.close_connection = True
                raise _BodyTooLargeError
            parts.append(self._read_exact(size))
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadRequestError
        for _ in range(_MAX_HEADERS + 1):
            trailer = self.rfile.readline(_MAX_LINE + 1)
            if trailer in (b"\r\n", b"\n"):
                return b"".join(parts)
            if not trailer.endswith(b"\n"):
                raise _BadRequestError
        raise _BadRequestError

    def _read_exact(self, size: int) -> bytes:
        """Read exactly size bytes; a shorter read means the client went away."""
        data = self.rfile.read(size) if size else b""
        if len(data) < size:
            raise _ClientGoneError
        return data

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
            self._linger = response.status >= 400
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def send_error(
        self, code: int, message: str | None = None, explain: Any = None
    ) -> None:
        """Answer http.server's own errors as JSON too, then close."""
        self._refuse(bad_request(code, message or "Bad Request"))

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own access log; _serve logs each request."""
        log.debug("http server message: %s", format % args)


def _strip_eol(line: bytes) -> bytes:
    """Drop a line's CRLF (or bare LF) ending."""
    return line[:-2] if line.endswith(b"\r\n") else line.rstrip(b"\n")


def _bad_bytes(text: bytes) -> bool:
    """Tell whether a request line or header value holds a bare CR, LF or NUL."""
    return b"\r" in text or b"\n" in text or b"\0" in text
