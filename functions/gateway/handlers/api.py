"""HTTP API function: SageMaker Runtime's routes, served through API Gateway."""

import base64
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from gateway.aws.sagemaker import SageMakerRuntime, create_client
from gateway.core.errors import AnswerTooLargeError, GatewayError
from gateway.core.invocation import invoke_sync
from gateway.handlers.http_errors import (
    error_response,
    internal_error_response,
    validation_response,
)
from gateway.models.http import InvocationHeaders
from gateway.models.inference import InvocationResult
from gateway.models.settings import get_settings

# Lambda returns at most 6 MB of JSON, and base64 makes a body a third larger.
MAX_ANSWER_BYTES = (6_291_456 - 16_384) * 3 // 4

logger = Logger()
tracer = Tracer()
app = APIGatewayRestResolver(enable_validation=True)

settings = get_settings()
sagemaker = SageMakerRuntime(
    create_client(settings.sync_timeout_seconds, settings.connect_timeout_seconds),
    read_timeout=settings.sync_timeout_seconds,
)


@app.post("/endpoints/<endpoint>/invocations")
def invoke_endpoint(
    endpoint: str, headers: Annotated[InvocationHeaders, Header()]
) -> Response[str]:
    """Invoke a model and answer with its output, as SageMaker Runtime does."""
    logger.append_keys(endpoint=endpoint, inference_id=headers.inference_id)
    request = headers.to_request(endpoint, request_body(app.current_event))

    result = invoke_sync(request, sagemaker, settings)
    if len(result.body) > MAX_ANSWER_BYTES:
        raise AnswerTooLargeError(len(result.body), MAX_ANSWER_BYTES)

    return binary_response(
        result.body,
        content_type=result.content_type or "application/octet-stream",
        headers=answer_headers(result),
    )


@app.exception_handler(GatewayError)
def handle_gateway_error(error: GatewayError) -> Response[str]:
    return error_response(error)


@app.exception_handler(RequestValidationError)
def handle_invalid_request(error: RequestValidationError) -> Response[str]:
    return validation_response(error.errors())


@app.exception_handler(Exception)
def handle_unexpected_error(error: Exception) -> Response[str]:
    return internal_error_response()


def request_body(event: APIGatewayProxyEvent) -> bytes:
    """Return the request body as the client sent it, byte for byte."""
    body = event.body or ""
    if event.is_base64_encoded:
        return base64.b64decode(body)
    return body.encode()


def binary_response(
    body: bytes, content_type: str, headers: dict[str, str]
) -> Response[str]:
    """Answer with bytes that leave byte for byte, whatever their content type."""
    # Encoded here, not by the resolver, which would re-serialise a JSON answer.
    response: Response[str] = Response(
        status_code=200,
        content_type=content_type,
        body=base64.b64encode(body).decode(),
        headers=headers,
    )
    response.base64_encoded = True
    return response


def answer_headers(result: InvocationResult) -> dict[str, str]:
    """SageMaker's answer headers that the model's caller may rely on."""
    headers = {
        "X-Amzn-Invoked-Production-Variant": result.invoked_variant,
        "X-Amzn-SageMaker-Custom-Attributes": result.custom_attributes,
        "X-Amzn-SageMaker-New-Session-Id": result.new_session_id,
        "X-Amzn-SageMaker-Closed-Session-Id": result.closed_session_id,
    }
    return {name: value for name, value in headers.items() if value is not None}


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point of the HTTP API function."""
    return app.resolve(event, context)
