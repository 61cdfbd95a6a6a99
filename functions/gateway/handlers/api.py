"""HTTP API function: SageMaker Runtime's routes, served through API Gateway.

The synchronous invocation route is the hot path: it is served straight from the proxy
event, validated by the same models. Every other route goes through Powertools' REST
resolver (``api_routes``), imported on the first such request. The resolver's
validation and routing cost about 0.2 ms a request and its import 70 ms of a cold
start (measured by ``make bench``), too much for a route whose budget is a tenth of a
model call.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from gateway.core import errors
from gateway.core.invocation import invoke_sync
from gateway.handlers import services
from gateway.handlers.http_errors import (
    error_answer,
    internal_error_answer,
    validation_answer,
)
from gateway.handlers.http_io import (
    HttpAnswer,
    answer_headers,
    binary_answer,
    header_values,
    request_body,
)
from gateway.handlers.tracing import traced
from gateway.models.http import InvocationHeaders, SageMakerHeaders
from gateway.models.settings import get_settings

INVOKE_RESOURCE = "/endpoints/{endpoint}/invocations"
# Lambda returns at most 6 MB of JSON, and base64 makes a body a third larger.
MAX_ANSWER_BYTES = (6_291_456 - 16_384) * 3 // 4

logger = Logger()
settings = get_settings()
sagemaker = services.sagemaker_runtime()


def invoke_endpoint(endpoint: str, headers: InvocationHeaders, body: bytes) -> HttpAnswer:
    """Invoke a model and answer with its output, as SageMaker Runtime does."""
    logger.append_keys(endpoint=endpoint, inference_id=headers.inference_id)
    request = headers.to_request(endpoint, body)

    result = invoke_sync(request, sagemaker, settings)
    if len(result.body) > MAX_ANSWER_BYTES:
        raise errors.AnswerTooLargeError(len(result.body), MAX_ANSWER_BYTES, endpoint)

    return binary_answer(
        result.body,
        content_type=result.content_type or "application/octet-stream",
        headers=answer_headers(result),
    )


def read_headers[Headers: SageMakerHeaders](
    event: dict[str, Any], model: type[Headers]
) -> Headers:
    """Validate the SageMaker headers of a request; one sent twice is refused."""
    values = header_values(event, _canonical_names(model))
    for name, sent in values.items():
        if len(sent) > 1:
            raise errors.RequestValidationError(name, "given more than once")
    return model.model_validate({name: sent[0] for name, sent in values.items()})


def serve_invocation(event: dict[str, Any]) -> HttpAnswer:
    """The sync route, straight from the proxy event."""
    endpoint = (event.get("pathParameters") or {}).get("endpoint") or ""
    try:
        headers = read_headers(event, InvocationHeaders)
        return invoke_endpoint(endpoint, headers, request_body(event))
    except ValidationError as error:
        return validation_answer(error.errors())
    except errors.GatewayError as error:
        return error_answer(error)
    except (
        Exception
    ) as error:  # answered, never a Lambda error: API Gateway would say 502
        return internal_error_answer(error)


@logger.inject_lambda_context(clear_state=True)
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point of the HTTP API function."""
    logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
    if event.get("resource") == INVOKE_RESOURCE and event.get("httpMethod") == "POST":
        return serve_invocation(event).to_proxy()

    from gateway.handlers import api_routes  # noqa: PLC0415 - see the module docstring

    answer: dict[str, Any] = api_routes.app.resolve(event, context)
    return answer


_NAMES: dict[type[SageMakerHeaders], dict[str, str]] = {}


def _canonical_names(model: type[SageMakerHeaders]) -> dict[str, str]:
    if model not in _NAMES:
        aliases = [field.alias or name for name, field in model.model_fields.items()]
        _NAMES[model] = {alias.lower(): alias for alias in aliases}
    return _NAMES[model]
