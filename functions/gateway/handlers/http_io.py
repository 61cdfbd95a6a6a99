"""Reading API Gateway proxy requests and writing their answers."""

import base64

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from gateway.models.inference import InvocationResult


def request_body(event: APIGatewayProxyEvent) -> bytes:
    """Return the request body as the client sent it, byte for byte."""
    body = event.body or ""
    if event.is_base64_encoded:
        return base64.b64decode(body)
    return body.encode()


def repeated_header(event: APIGatewayProxyEvent, names: list[str]) -> str | None:
    """The first of ``names`` the client sent more than once, if any."""
    sent = event.multi_value_headers or {}
    return next((name for name in names if len(sent.get(name) or ()) > 1), None)


def base_url(event: APIGatewayProxyEvent) -> str:
    """The URL the client called the API at, stage or base path included."""
    headers = event.headers
    host = headers.get("Host") or event.request_context.domain_name
    scheme = headers.get("X-Forwarded-Proto", "https")
    called = event.request_context.path or event.path
    prefix = (
        called[: len(called) - len(event.path)] if called.endswith(event.path) else ""
    )
    return f"{scheme}://{host}{prefix}"


def binary_response(
    body: bytes, content_type: str, headers: dict[str, str], status: int = 200
) -> Response[str]:
    """Answer with bytes that leave byte for byte, whatever their content type."""
    # Encoded here, not by the resolver, which would re-serialise a JSON answer.
    response: Response[str] = Response(
        status_code=status,
        content_type=content_type,
        body=base64.b64encode(body).decode(),
        headers=headers,
    )
    response.base64_encoded = True
    return response


def json_response(
    body: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response[str]:
    """Answer with a JSON document already serialised."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers=headers or {},
    )


def answer_headers(result: InvocationResult) -> dict[str, str]:
    """SageMaker's answer headers that the model's caller may rely on."""
    headers = {
        "X-Amzn-Invoked-Production-Variant": result.invoked_variant,
        "X-Amzn-SageMaker-Custom-Attributes": result.custom_attributes,
        "X-Amzn-SageMaker-New-Session-Id": result.new_session_id,
        "X-Amzn-SageMaker-Closed-Session-Id": result.closed_session_id,
    }
    return {name: value for name, value in headers.items() if value is not None}
