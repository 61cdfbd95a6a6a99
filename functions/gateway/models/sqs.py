"""The SQS event that Lambda's event source hands the queue-fed functions."""

from pydantic import BaseModel, ConfigDict, Field


class SqsAttributes(BaseModel):
    """The system attributes the gateway reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    approximate_receive_count: int = Field(default=1, alias="ApproximateReceiveCount")
    message_group_id: str | None = Field(default=None, alias="MessageGroupId")
    # The sender's IAM id: a user's, or a role's with its session ("AROA…:session").
    sender_id: str | None = Field(default=None, alias="SenderId")


class SqsRecord(BaseModel):
    """One message of a batch."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: str = Field(alias="messageId", min_length=1)
    receipt_handle: str = Field(alias="receiptHandle")
    body: str
    attributes: SqsAttributes = Field(default_factory=SqsAttributes)
    event_source_arn: str = Field(default="", alias="eventSourceARN")


class SqsEvent(BaseModel):
    """A batch of messages."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    records: list[SqsRecord] = Field(alias="Records")

    @property
    def is_fifo(self) -> bool:
        """FIFO queues' names end in .fifo."""
        return bool(self.records) and self.records[0].event_source_arn.endswith(".fifo")
