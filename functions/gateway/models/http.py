"""The HTTP boundary: request headers and error bodies, in SageMaker Runtime's words."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gateway.models.inference import (
    AsciiText,
    ComponentName,
    ExplanationsFilter,
    InvocationRequest,
    PrintableId,
    ResourceName,
    SessionId,
    TargetModel,
)

S3Uri = Annotated[
    str, Field(max_length=1024, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,62}/.+")
]
CallbackUrl = Annotated[str, Field(min_length=1, max_length=2048)]


class SageMakerHeaders(BaseModel):
    """Headers both invocation routes share."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    content_type: AsciiText | None = Field(default=None, alias="Content-Type")
    accept: AsciiText | None = Field(default=None, alias="Accept")
    custom_attributes: AsciiText | None = Field(
        default=None, alias="X-Amzn-SageMaker-Custom-Attributes"
    )
    inference_id: PrintableId | None = Field(
        default=None, alias="X-Amzn-SageMaker-Inference-Id"
    )


class InvocationHeaders(SageMakerHeaders):
    """Headers of ``POST /endpoints/{endpoint}/invocations`` that SageMaker defines."""

    target_model: TargetModel | None = Field(
        default=None, alias="X-Amzn-SageMaker-Target-Model"
    )
    target_variant: ResourceName | None = Field(
        default=None, alias="X-Amzn-SageMaker-Target-Variant"
    )
    target_container_hostname: ResourceName | None = Field(
        default=None, alias="X-Amzn-SageMaker-Target-Container-Hostname"
    )
    enable_explanations: ExplanationsFilter | None = Field(
        default=None, alias="X-Amzn-SageMaker-Enable-Explanations"
    )
    inference_component: ComponentName | None = Field(
        default=None, alias="X-Amzn-SageMaker-Inference-Component"
    )
    session_id: SessionId | None = Field(
        default=None, alias="X-Amzn-SageMaker-Session-Id"
    )

    def to_request(self, endpoint: str, body: bytes) -> InvocationRequest:
        """Combine the headers with the endpoint and body into one invocation."""
        return InvocationRequest(endpoint=endpoint, body=body, **self.model_dump())


class AsyncInvocationHeaders(SageMakerHeaders):
    """Headers of ``POST /endpoints/{endpoint}/async-invocations``."""

    # SageMaker's async route names these two its own way; both spellings work here.
    sagemaker_content_type: AsciiText | None = Field(
        default=None, alias="X-Amzn-SageMaker-Content-Type"
    )
    sagemaker_accept: AsciiText | None = Field(
        default=None, alias="X-Amzn-SageMaker-Accept"
    )
    input_location: S3Uri | None = Field(
        default=None, alias="X-Amzn-SageMaker-InputLocation"
    )
    request_ttl_seconds: int | None = Field(
        default=None, ge=60, le=21_600, alias="X-Amzn-SageMaker-RequestTTLSeconds"
    )
    invocation_timeout_seconds: int | None = Field(
        default=None, ge=1, le=3_600, alias="X-Amzn-SageMaker-InvocationTimeoutSeconds"
    )
    callback_url: CallbackUrl | None = Field(default=None, alias="X-Callback-Url")
    reply_queue_url: CallbackUrl | None = Field(default=None, alias="X-Reply-Queue-Url")


class AsyncAccepted(BaseModel):
    """The 202 answer of the async route, shaped like SageMaker's own."""

    model_config = ConfigDict(serialize_by_alias=True)

    inference_id: str = Field(serialization_alias="InferenceId")
    status_url: str = Field(serialization_alias="statusUrl")


class InferenceStatus(BaseModel):
    """What ``GET /inferences/{inferenceId}`` answers."""

    model_config = ConfigDict(
        alias_generator=to_camel, serialize_by_alias=True, validate_by_name=True
    )

    inference_id: str
    endpoint: str
    status: str = Field(description="pending, completed, failed or expired")
    created_at: str
    updated_at: str
    completed_at: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    content_type: str | None = None
    size: int | None = None
    result_url: str | None = Field(default=None, description="Short-lived presigned URL.")
    result: str | None = Field(default=None, description="The result, with ?inline=true.")
    failure_reason: str | None = None

    def to_json(self) -> str:
        """Serialise without the fields that do not apply."""
        return self.model_dump_json(exclude_none=True)


def iso_time(epoch_ms: int | None) -> str | None:
    """Format epoch milliseconds as an ISO 8601 UTC time."""
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ErrorBody(BaseModel):
    """What every error answer carries."""

    code: str = Field(description="Stable machine-readable error code.")
    message: str = Field(description="What went wrong, for a person.")
    original_status_code: int | None = Field(
        default=None,
        serialization_alias="originalStatusCode",
        description="HTTP status the model answered with (ModelError only).",
    )
    original_message: str | None = Field(
        default=None,
        serialization_alias="originalMessage",
        description="What the model answered (ModelError only).",
    )
