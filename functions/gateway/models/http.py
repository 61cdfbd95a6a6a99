"""The HTTP boundary of the sync route: headers and error bodies, in SageMaker's words.

The async routes' models are in ``async_http``, imported only where they are served.
"""

from functools import cached_property
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from gateway.models.inference import (
    AsciiText,
    ComponentName,
    ExplanationsFilter,
    InvocationOptions,
    PrintableId,
    ResourceName,
    SessionId,
    TargetModel,
)

# Sent as a header: printable ASCII to the end, as SageMaker's pattern has it.
S3Uri = Annotated[
    str, Field(max_length=1024, pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,62}/[\x20-\x7e]+$")
]
CallbackUrl = Annotated[str, Field(min_length=1, max_length=2048)]


class SageMakerHeaders(BaseModel):
    """Headers both invocation routes share."""

    # Built when first used: only its subclasses validate anything.
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)
    # Each model's header names, lower case to as SageMaker spells them.
    names: ClassVar[dict[str, str]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        spelt = [field.alias or name for name, field in cls.model_fields.items()]
        cls.names = {name.lower(): name for name in spelt}

    content_type: AsciiText | None = Field(default=None, alias="Content-Type")
    accept: AsciiText | None = Field(default=None, alias="Accept")
    custom_attributes: AsciiText | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Custom-Attributes",
        description="Opaque text passed to the model as is.",
    )
    inference_id: PrintableId | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Inference-Id",
        description="The caller's id of this inference, passed to the model.",
    )


class InvocationHeaders(SageMakerHeaders):
    """Headers of ``POST /endpoints/{endpoint}/invocations`` that SageMaker defines."""

    target_model: TargetModel | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Target-Model",
        description="The model of a multi-model endpoint to invoke.",
    )
    target_variant: ResourceName | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Target-Variant",
        description="The production variant to invoke, whatever the traffic split.",
    )
    target_container_hostname: ResourceName | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Target-Container-Hostname",
        description="The container of a direct-invocation endpoint to invoke.",
    )
    enable_explanations: ExplanationsFilter | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Enable-Explanations",
        description="A JMESPath expression choosing the records to explain.",
    )
    inference_component: ComponentName | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Inference-Component",
        description="The inference component of the endpoint to invoke.",
    )
    session_id: SessionId | None = Field(
        default=None,
        alias="X-Amzn-SageMaker-Session-Id",
        description="A stateful session's id, or NEW_SESSION to open one.",
    )

    @cached_property
    def options(self) -> InvocationOptions:
        """The invocation options these headers give (worked out once: the model is
        frozen, and the sync route serves one instance to every request sending the
        same headers). A ``model_copy(update=...)`` would keep the original's options:
        validate new headers instead."""
        return InvocationOptions(
            content_type=self.content_type,
            accept=self.accept,
            custom_attributes=self.custom_attributes,
            target_model=self.target_model,
            target_variant=self.target_variant,
            target_container_hostname=self.target_container_hostname,
            inference_id=self.inference_id,
            enable_explanations=self.enable_explanations,
            inference_component=self.inference_component,
            session_id=self.session_id,
        )


class ErrorBody(BaseModel):
    """What every error answer carries."""

    # Built on the first error, not at every cold start.
    model_config = ConfigDict(defer_build=True)

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
