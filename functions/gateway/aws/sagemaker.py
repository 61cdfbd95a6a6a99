"""SageMaker Runtime behind one small class that speaks the gateway's errors."""

import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, cast

from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionError,
    ConnectTimeoutError,
    HTTPClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from gateway.aws import clients
from gateway.core import errors
from gateway.core.redaction import redact
from gateway.models.inference import (
    AsyncInvocationRequest,
    AsyncSubmission,
    InvocationOptions,
    InvocationRequest,
    InvocationResult,
)

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

# Parameter names of InvokeEndpoint, by field of InvocationOptions.
_PARAMETERS = {
    "content_type": "ContentType",
    "accept": "Accept",
    "custom_attributes": "CustomAttributes",
    "target_model": "TargetModel",
    "target_variant": "TargetVariant",
    "target_container_hostname": "TargetContainerHostname",
    "inference_id": "InferenceId",
    "enable_explanations": "EnableExplanations",
    "inference_component": "InferenceComponentName",
    "session_id": "SessionId",
}
# The same names in the order of the options' fields (a field left out of
# _PARAMETERS fails here, as the module loads).
_PARAMETER_ORDER = tuple(_PARAMETERS[field] for field in InvocationOptions._fields)
_ASYNC_PARAMETERS = {
    "content_type": "ContentType",
    "accept": "Accept",
    "custom_attributes": "CustomAttributes",
    "request_ttl_seconds": "RequestTTLSeconds",
    "invocation_timeout_seconds": "InvocationTimeoutSeconds",
}
_SERVICE_ERRORS: dict[str, Callable[[], errors.GatewayError]] = {
    "ThrottlingException": errors.ThrottledError,
    "ModelNotReadyException": errors.ModelNotReadyError,
    "ServiceUnavailable": errors.ServiceUnavailableError,
}
# NOTE: SageMaker reports a missing endpoint only as a ValidationError whose
# message says so; this pattern is the one signal there is.
_ENDPOINT_NOT_FOUND = re.compile(r"^Endpoint \S+ of account \S+ not found")


def create_client(
    read_timeout: float, connect_timeout: float
) -> "SageMakerRuntimeClient":
    """Create a client that tries once: a retried slow model runs twice.

    Every parameter it is given has passed the gateway's models, which hold
    SageMaker's documented constraints, so botocore does not check them again; nor
    does it look for checksums, which no SageMaker Runtime operation asks for. Both
    ran on every call: about 40 µs of CPU of a sync request (``make bench``).
    """
    config = Config(
        read_timeout=read_timeout,
        connect_timeout=connect_timeout,
        retries={"mode": "standard", "total_max_attempts": 1},
        tcp_keepalive=True,
        parameter_validation=False,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return cast("SageMakerRuntimeClient", clients.create("sagemaker-runtime", config))


class SageMakerRuntime:
    """Invokes endpoints and turns botocore's errors into the gateway's."""

    def __init__(self, client: "SageMakerRuntimeClient", read_timeout: float) -> None:
        self.client = client
        self._read_timeout = read_timeout

    def invoke(self, request: InvocationRequest) -> InvocationResult:
        """Call InvokeEndpoint once and return the model's answer."""
        try:
            response = self.client.invoke_endpoint(
                EndpointName=request.endpoint,
                Body=request.body,
                **_parameters(request.options),
            )
            body = response["Body"].read()
        except ClientError as error:
            raise _translate(error, request.endpoint) from error
        except ReadTimeoutError as error:
            raise errors.ModelTimeoutError(
                self._read_timeout, request.endpoint
            ) from error
        except (ResponseStreamingError, IncompleteReadError) as error:
            # The model answered; its answer broke off on the way.
            raise errors.UpstreamFailureError() from error
        except (ConnectTimeoutError, ConnectionError, HTTPClientError) as error:
            # Not connected, or the connection closed under the request (a pooled
            # one SageMaker closed as it was reused): the caller may try again.
            raise errors.ServiceUnavailableError() from error

        return InvocationResult(
            body=body,
            content_type=response.get("ContentType"),
            invoked_variant=response.get("InvokedProductionVariant"),
            custom_attributes=response.get("CustomAttributes"),
            new_session_id=response.get("NewSessionId"),
            closed_session_id=response.get("ClosedSessionId"),
        )

    def submit(self, request: AsyncInvocationRequest) -> AsyncSubmission:
        """Call InvokeEndpointAsync once; SageMaker only queues the work."""
        params: dict[str, Any] = {
            "EndpointName": request.endpoint,
            "InferenceId": request.inference_id,
        }
        if request.body is not None:
            params["Body"] = request.body
        else:
            params["InputLocation"] = request.input_location
        for field, name in _ASYNC_PARAMETERS.items():
            value = getattr(request, field)
            if value is not None:
                params[name] = value

        try:
            response = self.client.invoke_endpoint_async(**params)
        except ClientError as error:
            raise _translate(error, request.endpoint) from error
        except ReadTimeoutError as error:
            raise errors.UpstreamFailureError() from error
        except (ConnectTimeoutError, ConnectionError, HTTPClientError) as error:
            raise errors.ServiceUnavailableError() from error

        return AsyncSubmission(
            inference_id=response.get("InferenceId") or request.inference_id,
            output_location=response["OutputLocation"],
            failure_location=response["FailureLocation"],
        )


@lru_cache(maxsize=256)
def _parameters(options: InvocationOptions) -> dict[str, str]:
    """InvokeEndpoint's parameters for the options given (once per distinct options).

    Shared by every request with the same options, so only ever unpacked (``**``
    copies it), never changed; a plain dict unpacks in half the time of a read-only
    view.
    """
    return {
        name: value
        for name, value in zip(_PARAMETER_ORDER, options, strict=True)
        if value is not None
    }


def _translate(error: ClientError, endpoint: str) -> errors.GatewayError:
    details: Any = error.response
    code = details.get("Error", {}).get("Code", "")
    message = details.get("Error", {}).get("Message", "")

    if code == "ModelError":
        return errors.ModelError(
            original_status=details.get("OriginalStatusCode"),
            original_message=redact(details.get("OriginalMessage", "")),
        )
    if code == "ValidationError":
        if _ENDPOINT_NOT_FOUND.match(message):
            return errors.EndpointNotAllowedError(endpoint)
        return errors.RequestValidationError("request", redact(message))
    if code in _SERVICE_ERRORS:
        return _SERVICE_ERRORS[code]()
    return errors.UpstreamFailureError()
