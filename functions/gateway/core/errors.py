"""Errors the core raises, in the gateway's own terms.

Each error carries a stable ``code`` and says whether the same request may succeed
later (``retryable``). How an error is shown to a caller is decided at the edge.
"""


class GatewayError(Exception):
    """Base of every error the gateway reports to its callers."""

    code = "InternalFailure"
    retryable = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestValidationError(GatewayError):
    """The request breaks a rule SageMaker or the gateway enforces."""

    code = "ValidationError"
    retryable = False

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


class EndpointNotAllowedError(GatewayError):
    """The endpoint is not one this deployment may invoke."""

    code = "EndpointNotFound"
    retryable = False

    def __init__(self, endpoint: str) -> None:
        # Endpoint names have at most 63 characters; a longer one is not echoed back.
        shown = endpoint if len(endpoint) <= 63 else f"{endpoint[:63]}..."
        super().__init__(f"Endpoint {shown} is not served by this gateway.")
        self.endpoint = endpoint


class PayloadTooLargeError(GatewayError):
    """The payload exceeds what a synchronous invocation accepts."""

    code = "PayloadTooLarge"
    retryable = False

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"The payload has {size} bytes; a synchronous invocation takes at most "
            f"{limit}. Use the async route for larger payloads."
        )
        self.size = size
        self.limit = limit


class ModelError(GatewayError):
    """The model container answered with an error status."""

    code = "ModelError"
    retryable = False

    def __init__(self, original_status: int | None, original_message: str) -> None:
        super().__init__("The model answered with an error.")
        self.original_status = original_status
        self.original_message = original_message


class ThrottledError(GatewayError):
    """SageMaker refused the call for now; it may be sent again later."""

    code = "ThrottlingException"
    retry_after_seconds = 1

    def __init__(self) -> None:
        super().__init__("The endpoint is throttling requests. Retry later.")


class ModelNotReadyError(GatewayError):
    """The model is not ready to serve yet."""

    code = "ModelNotReadyException"
    retry_after_seconds = 5

    def __init__(self) -> None:
        super().__init__("The model is not ready yet. Retry later.")


class ServiceUnavailableError(GatewayError):
    """SageMaker is unavailable or could not be reached."""

    code = "ServiceUnavailable"

    def __init__(self) -> None:
        super().__init__("SageMaker is unavailable. Retry later.")


class UpstreamFailureError(GatewayError):
    """SageMaker failed internally."""

    code = "InternalFailure"

    def __init__(self) -> None:
        super().__init__("SageMaker failed to process the request. Retry later.")


class GatewayFailureError(GatewayError):
    """The gateway itself failed (its table, bucket or queues): worth a retry."""

    code = "InternalFailure"

    def __init__(self) -> None:
        super().__init__("The gateway failed to process the request. Retry later.")


class ModelTimeoutError(GatewayError):
    """The model did not answer within the time the synchronous path allows."""

    code = "ModelTimeout"

    def __init__(self, timeout_seconds: float, endpoint: str) -> None:
        super().__init__(
            f"The model did not answer within {timeout_seconds:g} s. Use "
            f"POST /endpoints/{endpoint}/async-invocations for slow models."
        )
        self.timeout_seconds = timeout_seconds


class CallbackRefusedError(GatewayError):
    """The callback URL points somewhere the gateway must not deliver to."""

    code = "CallbackRefused"
    retryable = False

    def __init__(self, reason: str) -> None:
        super().__init__(f"The callback URL was refused: {reason}.")
        self.reason = reason


class CallbackUnresolvedError(GatewayError):
    """The callback URL's host name did not resolve; it may later."""

    code = "CallbackUnresolved"

    def __init__(self) -> None:
        super().__init__("The callback URL's host name did not resolve.")


class AnswerTooLargeError(GatewayError):
    """The model's answer is larger than the synchronous route can return."""

    code = "ModelResponseTooLarge"
    retryable = False

    def __init__(self, size: int, limit: int, endpoint: str) -> None:
        super().__init__(
            f"The model answered {size} bytes; this route returns at most {limit}. "
            f"Use POST /endpoints/{endpoint}/async-invocations for large answers."
        )
        self.size = size
        self.limit = limit


class InferenceIdConflictError(GatewayError):
    """An inference with this id already exists."""

    code = "InferenceIdInUse"
    retryable = False

    def __init__(self, inference_id: str) -> None:
        super().__init__(f"Inference {inference_id} already exists; choose another id.")
        self.inference_id = inference_id


class InferenceNotFoundError(GatewayError):
    """No inference with this id is known."""

    code = "InferenceNotFound"
    retryable = False

    def __init__(self, inference_id: str) -> None:
        shown = inference_id if len(inference_id) <= 64 else f"{inference_id[:64]}..."
        super().__init__(f"Inference {shown} is not known to this gateway.")
        self.inference_id = inference_id


class InputLocationNotAllowedError(GatewayError):
    """The caller named an input location outside the deployment's allowed prefixes."""

    code = "InputLocationNotAllowed"
    retryable = False

    def __init__(self) -> None:
        super().__init__("The input location is not one this gateway may read from.")


class RouteNotFoundError(GatewayError):
    """No route of the API matches the request's path and method."""

    code = "NotFound"
    retryable = False

    def __init__(self) -> None:
        super().__init__("No route of this API matches the method and path.")
