"""The one place that turns gateway errors into HTTP answers."""

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response, content_types

from gateway.core import errors
from gateway.models.http import ErrorBody

logger = Logger(child=True)

_STATUS: dict[type[errors.GatewayError], int] = {
    errors.RequestValidationError: 400,
    errors.CallbackRefusedError: 400,
    errors.InputLocationNotAllowedError: 403,
    errors.EndpointNotAllowedError: 404,
    errors.RouteNotFoundError: 404,
    errors.InferenceNotFoundError: 404,
    errors.InferenceIdConflictError: 409,
    errors.PayloadTooLargeError: 413,
    errors.ModelError: 424,
    errors.ThrottledError: 429,
    errors.ModelNotReadyError: 429,
    errors.UpstreamFailureError: 502,
    errors.AnswerTooLargeError: 502,
    errors.ServiceUnavailableError: 503,
    errors.ModelTimeoutError: 504,
}
_INTERNAL = ErrorBody(code="InternalFailure", message="The gateway failed to answer.")


def error_response(error: errors.GatewayError) -> Response[str]:
    """Answer a gateway error with its status, code and public message."""
    status = _STATUS.get(type(error), 500)
    body = ErrorBody(code=error.code, message=error.message)
    headers: dict[str, str] = {}

    if isinstance(error, errors.ModelError):
        body.original_status_code = error.original_status
        body.original_message = error.original_message
    if isinstance(error, errors.ThrottledError | errors.ModelNotReadyError):
        headers["Retry-After"] = str(error.retry_after_seconds)

    if status < 500:
        logger.info("request refused", status=status, code=error.code)
    else:
        logger.warning("request failed upstream", status=status, code=error.code)
    return _json(status, body, headers)


def validation_response(problems: Sequence[Any]) -> Response[str]:
    """Answer a request whose path, headers or body break the API's models."""
    first = problems[0] if problems else {}
    where = first.get("loc", ("request",))[-1]
    reason = str(first.get("msg", "is not valid")).removeprefix("Value error, ")
    error = errors.RequestValidationError(str(where), reason)
    return error_response(error)


def internal_error_response(error: Exception) -> Response[str]:
    """Answer an unexpected failure without showing its details."""
    logger.error("request failed in the gateway", exc_info=error)
    return _json(500, _INTERNAL, {})


def _json(status: int, body: ErrorBody, headers: dict[str, str]) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(by_alias=True, exclude_none=True),
        headers=headers,
    )
