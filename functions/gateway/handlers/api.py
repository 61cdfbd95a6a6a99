"""HTTP API function: SageMaker Runtime's routes, served through API Gateway."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from gateway.core import errors
from gateway.core.async_jobs import AsyncJob, get_inference, submit_async
from gateway.core.invocation import invoke_sync
from gateway.handlers import services
from gateway.handlers.http_errors import (
    error_response,
    internal_error_response,
    validation_response,
)
from gateway.handlers.http_io import (
    answer_headers,
    base_url,
    binary_response,
    json_response,
    repeated_header,
    request_body,
)
from gateway.models.http import (
    AsyncAccepted,
    AsyncInvocationHeaders,
    InferenceStatus,
    InvocationHeaders,
    SageMakerHeaders,
    iso_time,
)
from gateway.models.records import Callback, CallbackKind
from gateway.models.settings import get_settings

# Lambda returns at most 6 MB of JSON, and base64 makes a body a third larger.
MAX_ANSWER_BYTES = (6_291_456 - 16_384) * 3 // 4

logger = Logger()
tracer = Tracer()
app = APIGatewayRestResolver(enable_validation=True)
settings = get_settings()
sagemaker = services.sagemaker_runtime()


@app.post("/endpoints/<endpoint>/invocations")
def invoke_endpoint(
    endpoint: str, headers: Annotated[InvocationHeaders, Header()]
) -> Response[str]:
    """Invoke a model and answer with its output, as SageMaker Runtime does."""
    logger.append_keys(endpoint=endpoint, inference_id=headers.inference_id)
    refuse_repeated(InvocationHeaders)
    request = headers.to_request(endpoint, request_body(app.current_event))

    result = invoke_sync(request, sagemaker, settings)
    if len(result.body) > MAX_ANSWER_BYTES:
        raise errors.AnswerTooLargeError(len(result.body), MAX_ANSWER_BYTES, endpoint)

    return binary_response(
        result.body,
        content_type=result.content_type or "application/octet-stream",
        headers=answer_headers(result),
    )


@app.post("/endpoints/<endpoint>/async-invocations")
def invoke_endpoint_async(
    endpoint: str, headers: Annotated[AsyncInvocationHeaders, Header()]
) -> Response[str]:
    """Queue an inference and answer 202 with where its result will appear."""
    logger.append_keys(endpoint=endpoint)
    refuse_repeated(AsyncInvocationHeaders)
    job = async_job(endpoint, headers, request_body(app.current_event))

    submission = submit_async(job, services.async_services(), settings)

    logger.append_keys(inference_id=submission.inference_id)
    status_url = f"{base_url(app.current_event)}/inferences/{submission.inference_id}"
    accepted = AsyncAccepted(inference_id=submission.inference_id, status_url=status_url)
    return json_response(
        accepted.model_dump_json(),
        status=202,
        headers={
            "X-Amzn-SageMaker-OutputLocation": submission.output_location,
            "X-Amzn-SageMaker-FailureLocation": submission.failure_location,
        },
    )


@app.get("/inferences/<inference_id>")
def describe_inference(
    inference_id: str, inline: Annotated[bool, Query()] = False
) -> Response[str]:
    """Answer where an async inference stands and where its result is."""
    logger.append_keys(inference_id=inference_id)

    view = get_inference(inference_id, services.async_services(), settings, inline=inline)

    record = view.record
    status = InferenceStatus(
        inference_id=record.inference_id,
        endpoint=record.endpoint,
        status=view.status.value,
        created_at=iso_time(record.created_at) or "",
        updated_at=iso_time(record.updated_at) or "",
        completed_at=iso_time(record.completed_at),
        output_location=record.output_location,
        failure_location=record.failure_location,
        content_type=record.result_content_type,
        size=record.result_size,
        result_url=view.result_url,
        result=view.result,
        failure_reason=record.failure_reason,
    )
    return json_response(status.to_json())


def refuse_repeated(model: type[SageMakerHeaders]) -> None:
    """Refuse a SageMaker header sent twice: which value was meant is unknowable."""
    names = [field.alias or name for name, field in model.model_fields.items()]
    repeated = repeated_header(app.current_event, names)
    if repeated is not None:
        raise errors.RequestValidationError(repeated, "given more than once")


def async_job(endpoint: str, headers: AsyncInvocationHeaders, body: bytes) -> AsyncJob:
    """Read an async request into a job, refusing what is ambiguous."""
    if headers.callback_url and headers.reply_queue_url:
        raise errors.RequestValidationError(
            "X-Callback-Url",
            "name a webhook or a reply queue (X-Reply-Queue-Url), not both",
        )
    if headers.input_location and body:
        raise errors.RequestValidationError(
            "X-Amzn-SageMaker-InputLocation", "send a body or an input location, not both"
        )
    if not headers.input_location and not body:
        raise errors.RequestValidationError("body", "must not be empty")

    callback = None
    if headers.callback_url:
        callback = Callback(CallbackKind.WEBHOOK, headers.callback_url)
    elif headers.reply_queue_url:
        callback = Callback(CallbackKind.QUEUE, headers.reply_queue_url)

    return AsyncJob(
        endpoint=endpoint,
        body=body or None,
        input_location=headers.input_location,
        inference_id=headers.inference_id,
        content_type=headers.sagemaker_content_type or headers.content_type,
        accept=headers.sagemaker_accept or headers.accept,
        custom_attributes=headers.custom_attributes,
        request_ttl_seconds=headers.request_ttl_seconds,
        invocation_timeout_seconds=headers.invocation_timeout_seconds,
        callback=callback,
    )


@app.exception_handler(errors.GatewayError)
def handle_gateway_error(error: errors.GatewayError) -> Response[str]:
    return error_response(error)


@app.exception_handler(RequestValidationError)
def handle_invalid_request(error: RequestValidationError) -> Response[str]:
    return validation_response(error.errors())


@app.not_found
def handle_unknown_route(error: Exception) -> Response[str]:
    # API Gateway routes only known paths here; an encoded "/" in a name lands here.
    return error_response(errors.RouteNotFoundError())


@app.exception_handler(Exception)
def handle_unexpected_error(error: Exception) -> Response[str]:
    return internal_error_response(error)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point of the HTTP API function."""
    return app.resolve(event, context)
