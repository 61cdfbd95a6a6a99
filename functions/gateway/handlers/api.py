"""HTTP API function: SageMaker Runtime's routes, served through API Gateway.

The synchronous invocation route is the hot path: it is served straight from the proxy
event, validated by the same models. Every other route goes through Powertools' REST
resolver (``api_routes``), imported on the first such request. The resolver's
validation and routing cost about 0.2 ms a request and its import 70 ms of a cold
start (measured by ``make bench``), too much for a route whose budget is a tenth of a
model call.
"""

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from gateway.core import errors
from gateway.core.invocation import invoke_sync
from gateway.handlers import ends_start, services
from gateway.handlers.http_errors import (
    error_answer,
    internal_error_answer,
    validation_answer,
)
from gateway.handlers.http_io import (
    HttpAnswer,
    api_request_id,
    invocation_answer,
    read_headers,
    request_body,
)
from gateway.handlers.request_keys import RequestKeys
from gateway.handlers.tracing import traced
from gateway.models.http import InvocationHeaders
from gateway.models.inference import InvocationRequest
from gateway.models.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

INVOKE_RESOURCE = "/endpoints/{endpoint}/invocations"
# Lambda returns at most 6 MB of JSON, and base64 makes a body a third larger.
MAX_ANSWER_BYTES = (6_291_456 - 16_384) * 3 // 4

logger = Logger()
request_keys = RequestKeys()
request_keys.install(logger)
settings = get_settings()
sagemaker = services.sagemaker_runtime()


def invoke_endpoint(endpoint: str, headers: InvocationHeaders, body: bytes) -> HttpAnswer:
    """Invoke a model and answer with its output, as SageMaker Runtime does."""
    request = InvocationRequest(endpoint, body, headers.options)

    result = invoke_sync(request, sagemaker, settings)
    if len(result.body) > MAX_ANSWER_BYTES:
        raise errors.AnswerTooLargeError(len(result.body), MAX_ANSWER_BYTES, endpoint)
    return invocation_answer(result)


def serve_invocation(
    event: dict[str, Any], context: "LambdaContext", cold_start: bool = False
) -> HttpAnswer:
    """The sync route, straight from the proxy event."""
    endpoint = (event.get("pathParameters") or {}).get("endpoint") or ""
    request_keys.note(event, context, endpoint, cold_start)
    try:
        headers = read_headers(event, InvocationHeaders)
        request_keys.inference_id = headers.inference_id
        return invoke_endpoint(endpoint, headers, request_body(event))
    except ValidationError as error:
        return validation_answer(error.errors())
    except errors.GatewayError as error:
        return error_answer(error)
    # Answered, never a Lambda error: API Gateway would say 502.
    except Exception as error:
        return internal_error_answer(error)
    finally:
        request_keys.forget()


@ends_start
@traced
def handler(event: dict[str, Any], context: "LambdaContext") -> dict[str, Any]:
    """Entry point of the HTTP API function."""
    cold_start = request_keys.cold_start()
    if event.get("resource") == INVOKE_RESOURCE and event.get("httpMethod") == "POST":
        return serve_invocation(event, context, cold_start).to_proxy()
    return resolve(event, context, cold_start)


@logger.inject_lambda_context(clear_state=True)
def resolve(
    event: dict[str, Any], context: "LambdaContext", cold_start: bool = False
) -> dict[str, Any]:
    """Every route but the sync one, through Powertools' resolver."""
    # Powertools counts the events of its decorated handlers only: the process's is ours.
    logger.append_keys(cold_start=cold_start)
    logger.set_correlation_id(api_request_id(event))

    from gateway.handlers import api_routes  # noqa: PLC0415 - see the module docstring

    answer: dict[str, Any] = api_routes.app.resolve(event, context)
    return answer
