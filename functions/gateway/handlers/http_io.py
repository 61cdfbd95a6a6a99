"""Reading API Gateway proxy requests and writing their answers.

Answers are built as :class:`HttpAnswer`, which becomes a proxy response directly (the
hot sync route) or a Powertools ``Response`` (routes served by the resolver).
"""

import binascii
from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from gateway.core import errors
from gateway.models.inference import InvocationResult

if TYPE_CHECKING:
    from gateway.models.http import SageMakerHeaders

JSON = "application/json"


class HttpAnswer(NamedTuple):
    """Status, headers and body of an answer, body already encoded (a named tuple,
    like the invocation values: one is made for every request)."""

    status: int
    content_type: str
    body: str
    headers: Mapping[str, str] = MappingProxyType({})
    base64_encoded: bool = False

    def to_proxy(self) -> dict[str, Any]:
        """The answer as an API Gateway proxy integration response."""
        headers = {"Content-Type": self.content_type, **self.headers}
        return {
            "statusCode": self.status,
            "headers": headers,
            "body": self.body,
            "isBase64Encoded": self.base64_encoded,
        }

    def to_response(self) -> Any:
        """The answer as a Powertools ``Response`` for the resolver's routes."""
        from aws_lambda_powertools.event_handler import Response  # noqa: PLC0415

        response: Any = Response(
            status_code=self.status,
            content_type=self.content_type,
            body=self.body,
            headers=dict(self.headers),
        )
        # Encoded here, not by the resolver, which would re-serialise a JSON answer.
        response.base64_encoded = self.base64_encoded
        return response


def json_answer(
    body: str, status: int = 200, headers: dict[str, str] | None = None
) -> HttpAnswer:
    """Answer with a JSON document already serialised."""
    return HttpAnswer(status, JSON, body, headers or {})


def request_body(event: dict[str, Any]) -> bytes:
    """Return the request body as the client sent it, byte for byte."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return binascii.a2b_base64(body)
    return str(body).encode()


def read_headers[Headers: SageMakerHeaders](
    event: dict[str, Any], model: type[Headers]
) -> Headers:
    """Validate the SageMaker headers of a request; one sent twice, in any case, is
    refused."""
    sent = event.get("multiValueHeaders") or _as_lists(event.get("headers") or {})
    if not isinstance(sent, dict):
        raise errors.RequestValidationError("headers", "must map names to values")
    found: dict[str, str] = {}
    for name, proper in _recognised(model, tuple(sent)):
        values = sent[name]
        if not values:
            continue
        # API Gateway sends text in lists; a hand-made event may not.
        if not isinstance(values, list):
            raise errors.RequestValidationError(proper, "must be text")
        if len(values) > 1 or proper in found:
            raise errors.RequestValidationError(proper, "given more than once")
        if not isinstance(values[0], str):
            raise errors.RequestValidationError(proper, "must be text")
        found[proper] = values[0]
    headers: Headers = _validated(model, tuple(found.items()))
    return headers


@lru_cache(maxsize=256)
def _validated[Headers: SageMakerHeaders](
    model: type[Headers], values: tuple[tuple[str, str], ...]
) -> Headers:
    """Validate headers once for all the requests that send the same ones.

    A client sends the same Content-Type and Accept on every call; validating them
    again costs about 35 µs of a sync request (``make bench``). The models are frozen,
    so one instance serves every such request; refusals are not kept.
    """
    return model.model_validate(dict(values))


def _as_lists(headers: object) -> object:
    """Single-valued headers as API Gateway's multi-valued ones (name to a list)."""
    if not isinstance(headers, dict):
        return headers
    return {name: [value] for name, value in headers.items()}


@lru_cache(maxsize=256)
def _recognised(
    model: "type[SageMakerHeaders]", sent: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """The names among ``sent`` that ``model`` reads, each with its proper spelling.

    Worked out once per set of names: a client sends the same ones every time, and
    most are not SageMaker's (Host, Authorization, X-Forwarded-For...). API Gateway
    takes at most 10 KB of headers, so the sets kept stay small. Header names are
    ASCII; other text is no header of SageMaker's, whatever its lower case.
    """
    names = model.names
    return tuple(
        (name, names[name.lower()])
        for name in sent
        if isinstance(name, str) and name.isascii() and name.lower() in names
    )


def api_request_id(event: dict[str, Any]) -> str | None:
    """API Gateway's id of the request, the correlation id of its logs."""
    request_id = (event.get("requestContext") or {}).get("requestId")
    return str(request_id) if request_id is not None else None


def base_url(event: dict[str, Any]) -> str:
    """The URL the client called the API at, stage or base path included."""
    headers = {
        name.lower(): value for name, value in (event.get("headers") or {}).items()
    }
    context = event.get("requestContext") or {}
    host = headers.get("host") or context.get("domainName", "")
    scheme = headers.get("x-forwarded-proto", "https")
    path = str(event.get("path") or "")
    called = str(context.get("path") or path)
    prefix = called[: len(called) - len(path)] if called.endswith(path) else ""
    return f"{scheme}://{host}{prefix}"


def invocation_answer(result: InvocationResult) -> HttpAnswer:
    """The model's output byte for byte, whatever its content type, with SageMaker's
    answer headers that the model's caller may rely on."""
    headers: dict[str, str] = {}
    if result.invoked_variant is not None:
        headers["X-Amzn-Invoked-Production-Variant"] = result.invoked_variant
    if result.custom_attributes is not None:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = result.custom_attributes
    if result.new_session_id is not None:
        headers["X-Amzn-SageMaker-New-Session-Id"] = result.new_session_id
    if result.closed_session_id is not None:
        headers["X-Amzn-SageMaker-Closed-Session-Id"] = result.closed_session_id
    return HttpAnswer(
        200,
        result.content_type or "application/octet-stream",
        binascii.b2a_base64(result.body, newline=False).decode(),
        headers,
        base64_encoded=True,
    )
