"""The one place that turns gateway errors into HTTP answers."""

from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger

from gateway.core import errors
from gateway.handlers.http_io import HttpAnswer, json_answer
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


def status_of(error_type: type[errors.GatewayError]) -> int:
    """The HTTP status a gateway error is answered with."""
    return _STATUS.get(error_type, 500)


def error_answer(error: errors.GatewayError) -> HttpAnswer:
    """Answer a gateway error with its status, code and public message."""
    status = status_of(type(error))
    body = ErrorBody(code=error.code, message=error.message)
    headers: dict[str, str] = {}

    if isinstance(error, errors.ModelError):
        body = body.model_copy(
            update={
                "original_status_code": error.original_status,
                "original_message": error.original_message,
            }
        )
    if isinstance(error, errors.ThrottledError | errors.ModelNotReadyError):
        headers["Retry-After"] = str(error.retry_after_seconds)

    if status < 500:
        logger.info("request refused", status=status, code=error.code)
    else:
        logger.warning("request failed upstream", status=status, code=error.code)
    return json_answer(
        body.model_dump_json(by_alias=True, exclude_none=True), status, headers
    )


def validation_answer(problems: Sequence[Any]) -> HttpAnswer:
    """Answer a request whose path, headers or body break the API's models."""
    first = problems[0] if problems else {}
    where = (first.get("loc") or ("request",))[-1]
    reason = str(first.get("msg", "is not valid")).removeprefix("Value error, ")
    return error_answer(errors.RequestValidationError(str(where), reason))


def internal_error_answer(error: Exception) -> HttpAnswer:
    """Answer an unexpected failure without showing its details."""
    logger.error("request failed in the gateway", exc_info=error)
    return json_answer(_INTERNAL.model_dump_json(exclude_none=True), 500)
