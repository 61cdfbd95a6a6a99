"""The API's routes on Powertools' REST resolver, which also documents them (OpenAPI).

The sync invocation route is registered here too, for the document and for events
that reach the resolver; the function serves it first from the proxy event (``api``).
The document is at ``/openapi.json`` and Swagger UI, unless turned off, at ``/swagger``.
"""

from typing import Annotated
from urllib.parse import quote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import ValidationError

from gateway.core import errors
from gateway.core.async_jobs import AsyncJob, get_inference, principal, submit_async
from gateway.handlers import openapi, services
from gateway.handlers.api import invoke_endpoint, logger, settings
from gateway.handlers.http_errors import (
    error_answer,
    internal_error_answer,
    validation_answer,
)
from gateway.handlers.http_io import base_url, json_answer, read_headers, request_body
from gateway.models.async_http import (
    AsyncAccepted,
    AsyncInvocationHeaders,
    InferenceStatus,
    iso_time,
)
from gateway.models.http import InvocationHeaders
from gateway.models.records import Callback, CallbackKind

app = APIGatewayRestResolver(enable_validation=True)
ENDPOINT = "The SageMaker endpoint's name; the deployment must allow it."


@app.post(
    "/endpoints/<endpoint>/invocations",
    summary="Invoke a model (InvokeEndpoint)",
    operation_id="InvokeEndpoint",
)
def invoke(endpoint: Annotated[str, Path(description=ENDPOINT)]) -> Response[str]:
    """Invoke a model and answer with its output, as SageMaker Runtime does."""
    event = app.current_event.raw_event
    headers = read_headers(event, InvocationHeaders)
    logger.append_keys(endpoint=endpoint, inference_id=headers.inference_id)
    answer = invoke_endpoint(endpoint, headers, request_body(event))
    response: Response[str] = answer.to_response()
    return response


@app.post(
    "/endpoints/<endpoint>/async-invocations",
    summary="Queue an inference (InvokeEndpointAsync)",
    operation_id="InvokeEndpointAsync",
)
def invoke_async(endpoint: Annotated[str, Path(description=ENDPOINT)]) -> Response[str]:
    """Queue an inference and answer 202 with where its result will appear."""
    logger.append_keys(endpoint=endpoint)
    event = app.current_event.raw_event
    headers = read_headers(event, AsyncInvocationHeaders)
    job = async_job(endpoint, headers, request_body(event), owner=caller_principal())

    submission = submit_async(job, services.async_services(), settings)

    logger.append_keys(inference_id=submission.inference_id)
    status_url = f"{base_url(event)}/inferences/{quote(submission.inference_id, safe='')}"
    accepted = AsyncAccepted(inference_id=submission.inference_id, status_url=status_url)
    answer = json_answer(
        accepted.model_dump_json(),
        status=202,
        headers={
            "X-Amzn-SageMaker-OutputLocation": submission.output_location,
            "X-Amzn-SageMaker-FailureLocation": submission.failure_location,
        },
    )
    response: Response[str] = answer.to_response()
    return response


@app.get(
    "/inferences/<inferenceId>",
    summary="Describe an async inference",
    description="Only the IAM principal that submitted the inference sees it; "
    "to any other it is InferenceNotFound, as an id never submitted.",
    operation_id="DescribeInference",
)
def describe_inference(
    inference_id: Annotated[str, Path(alias="inferenceId")],
    inline: Annotated[
        bool, Query(description="Include the result when it is text of at most 256 KiB.")
    ] = False,
) -> Response[str]:
    """Answer where an async inference stands and where its result is."""
    logger.append_keys(inference_id=inference_id)

    view = get_inference(
        inference_id,
        services.async_services(),
        settings,
        caller=caller_principal(),
        inline=inline,
    )

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
    response: Response[str] = json_answer(status.to_json()).to_response()
    return response


@app.get("/openapi.json", include_in_schema=False)
def openapi_document() -> Response[str]:
    """The API's OpenAPI document."""
    document = openapi.document_json(app, base_url(app.current_event.raw_event))
    response: Response[str] = json_answer(document).to_response()
    return response


@app.get("/swagger", include_in_schema=False, compress=True)
def swagger() -> Response[str]:
    """Swagger UI on the document, unless the deployment turned it off."""
    if not settings.swagger_ui:
        raise errors.RouteNotFoundError
    document = openapi.document_json(app, base_url(app.current_event.raw_event))
    return Response(200, "text/html; charset=utf-8", openapi.swagger_page(document))


def async_job(
    endpoint: str,
    headers: AsyncInvocationHeaders,
    body: bytes,
    owner: str | None = None,
) -> AsyncJob:
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
        owner=owner,
    )


def caller_principal() -> str | None:
    """The principal that signed the request being served, as IAM names it."""
    return principal(app.current_event.request_context.identity.caller)


@app.not_found
def handle_unknown_route(error: Exception) -> Response[str]:
    # API Gateway routes only known paths here; an encoded "/" in a name lands here.
    response: Response[str] = error_answer(errors.RouteNotFoundError()).to_response()
    return response


@app.exception_handler(errors.GatewayError)
def handle_gateway_error(error: errors.GatewayError) -> Response[str]:
    response: Response[str] = error_answer(error).to_response()
    return response


@app.exception_handler(RequestValidationError)
def handle_invalid_request(error: RequestValidationError) -> Response[str]:
    response: Response[str] = validation_answer(error.errors()).to_response()
    return response


@app.exception_handler(Exception)
def handle_unexpected_error(error: Exception) -> Response[str]:
    if isinstance(error, ValidationError):
        response: Response[str] = validation_answer(error.errors()).to_response()
        return response
    response = internal_error_answer(error).to_response()
    return response
