"""The HTTP boundary: request headers and error bodies, in SageMaker Runtime's words."""

from pydantic import BaseModel, ConfigDict, Field

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


class InvocationHeaders(BaseModel):
    """Headers of ``POST /endpoints/{endpoint}/invocations`` that SageMaker defines."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    content_type: AsciiText | None = Field(default=None, alias="Content-Type")
    accept: AsciiText | None = Field(default=None, alias="Accept")
    custom_attributes: AsciiText | None = Field(
        default=None, alias="X-Amzn-SageMaker-Custom-Attributes"
    )
    target_model: TargetModel | None = Field(
        default=None, alias="X-Amzn-SageMaker-Target-Model"
    )
    target_variant: ResourceName | None = Field(
        default=None, alias="X-Amzn-SageMaker-Target-Variant"
    )
    target_container_hostname: ResourceName | None = Field(
        default=None, alias="X-Amzn-SageMaker-Target-Container-Hostname"
    )
    inference_id: PrintableId | None = Field(
        default=None, alias="X-Amzn-SageMaker-Inference-Id"
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
