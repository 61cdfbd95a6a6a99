"""The queue boundary: request messages clients send, and the replies they get."""

import base64
import binascii
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gateway.models.http import S3Uri
from gateway.models.inference import (
    AsciiText,
    AsyncInferenceId,
    ComponentName,
    ExplanationsFilter,
    PrintableId,
    ResourceName,
    SessionId,
    TargetModel,
)

# Visible ASCII, as SQS's own ids: it keys replies, webhooks and FIFO deduplication.
RequestId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Url = Annotated[str, Field(min_length=1, max_length=2048)]


class _Message(BaseModel):
    # A typo in a field name would silently change what is asked: refuse it.
    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, extra="forbid", frozen=True
    )


class ReplyTo(_Message):
    """Where the reply goes: a queue or a webhook, exactly one."""

    queue_url: Url | None = None
    webhook_url: Url | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.queue_url is None) == (self.webhook_url is None):
            raise ValueError("replyTo names exactly one of queueUrl and webhookUrl")
        return self


class QueueMessage(_Message):
    """One inference request sent through the request queue."""

    endpoint: Annotated[ResourceName, Field(min_length=1)]
    body: str | None = None
    body_base64: str | None = None
    input_location: S3Uri | None = None
    content_type: AsciiText | None = None
    accept: AsciiText | None = None
    custom_attributes: AsciiText | None = None
    target_model: TargetModel | None = None
    target_variant: ResourceName | None = None
    target_container_hostname: ResourceName | None = None
    inference_component_name: ComponentName | None = None
    enable_explanations: ExplanationsFilter | None = None
    session_id: SessionId | None = None
    inference_id: PrintableId | None = None
    mode: Literal["sync", "async"] = "sync"
    request_id: RequestId | None = None
    reply_to: ReplyTo | None = None

    @field_validator("body")
    @classmethod
    def _unicode_text(cls, body: str | None) -> str | None:
        # JSON can spell a lone surrogate ("\ud800"), which has no UTF-8 bytes to send.
        if body is not None:
            try:
                body.encode()
            except UnicodeEncodeError as error:
                raise ValueError("body is not valid Unicode text") from error
        return body

    @model_validator(mode="after")
    def _one_payload(self) -> Self:
        given = [self.body, self.body_base64, self.input_location]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of body, bodyBase64 and inputLocation")
        if self.input_location is not None and self.mode == "sync":
            raise ValueError("inputLocation needs mode async")
        if self.mode == "async" and self.inference_id is not None:
            TypeAdapter(AsyncInferenceId).validate_python(self.inference_id)
        if self.body_base64 is not None:
            try:
                base64.b64decode(self.body_base64, validate=True)
            except binascii.Error as error:
                raise ValueError("bodyBase64 is not valid base64") from error
        return self

    def payload(self) -> bytes | None:
        """The payload bytes, or None when SageMaker reads them from S3."""
        if self.body is not None:
            return self.body.encode()
        if self.body_base64 is not None:
            return base64.b64decode(self.body_base64)
        return None


class ReplyError(BaseModel):
    """Why a request failed."""

    # Built at the first reply: most requests have no one to reply to.
    model_config = ConfigDict(defer_build=True)

    code: str
    message: str


class Reply(BaseModel):
    """What a queue request's caller receives, in the gateway's camelCase."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        serialize_by_alias=True,
        validate_by_name=True,
        defer_build=True,
    )

    request_id: str
    endpoint: str
    status: Literal["completed", "failed"]
    content_type: str | None = None
    body: str | None = None
    body_base64: str | None = None
    result_url: str | None = None
    error: ReplyError | None = None

    def to_json(self) -> str:
        """Serialise without the fields that do not apply."""
        return self.model_dump_json(exclude_none=True)
