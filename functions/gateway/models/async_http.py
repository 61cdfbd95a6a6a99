"""The HTTP boundary of the async routes: submission headers, answers, status."""

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from gateway.models.http import CallbackUrl, S3Uri, SageMakerHeaders
from gateway.models.inference import AsciiText, AsyncInferenceId


class AsyncInvocationHeaders(SageMakerHeaders):
    """Headers of ``POST /endpoints/{endpoint}/async-invocations``."""

    inference_id: AsyncInferenceId | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Inference-Id",
        description="The caller's id of this inference (one is made otherwise); "
        "it names the status URL.",
    )
    # SageMaker's async route names these two its own way; both spellings work here.
    sagemaker_content_type: AsciiText | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Content-Type",
        description="The input's media type; wins over Content-Type.",
    )
    sagemaker_accept: AsciiText | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Accept",
        description="The media type asked of the result; wins over Accept.",
    )
    input_location: S3Uri | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-InputLocation",
        description="The input in S3, under a prefix the deployment allows, "
        "instead of a body.",
    )
    request_ttl_seconds: int | None = Field(
        default=None,
        ge=60,
        le=21_600,
        alias="X-Amzn-SageMaker-RequestTTLSeconds",
        description="How long the request may wait in the endpoint's queue.",
    )
    invocation_timeout_seconds: int | None = Field(
        default=None,
        ge=1,
        le=3_600,
        alias="X-Amzn-SageMaker-InvocationTimeoutSeconds",
        description="How long the model may take once it starts.",
    )
    callback_url: CallbackUrl | None = Field(
        default=None,
        alias="X-Callback-Url",
        description="A public https URL that receives the outcome, signed (X-Signature).",
    )
    reply_queue_url: CallbackUrl | None = Field(
        default=None,
        alias="X-Reply-Queue-Url",
        description="An SQS queue the deployment allows that receives the outcome.",
    )


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
