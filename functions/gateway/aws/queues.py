"""SQS: replies to callers, dead letters, and results replayed to the results queue."""

import re
from typing import TYPE_CHECKING, cast

from botocore.config import Config

from gateway.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def create_client() -> "SQSClient":
    """Create an SQS client with botocore's standard retries."""
    return cast("SQSClient", clients.create("sqs", Config(retries={"mode": "standard"})))


class MessageQueues:
    """Sends messages to SQS queues."""

    def __init__(self, client: "SQSClient") -> None:
        self.client = client

    def send(
        self,
        queue_url: str,
        body: str,
        attributes: dict[str, str] | None = None,
        deduplication_id: str | None = None,
    ) -> str:
        """Send one message and return its id; FIFO queues get one group per sender."""
        message_attributes = {
            name: {"DataType": "String", "StringValue": _sqs_text(value)}
            for name, value in (attributes or {}).items()
            if value
        }
        params = {"QueueUrl": queue_url, "MessageBody": body}
        if message_attributes:
            params["MessageAttributes"] = message_attributes  # type: ignore[assignment]
        if queue_url.endswith(".fifo"):
            params["MessageGroupId"] = "inference-gateway"
            if deduplication_id:
                params["MessageDeduplicationId"] = deduplication_id
        return self.client.send_message(**params)["MessageId"]  # type: ignore[arg-type]

    def delay(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after ``seconds``."""
        self.client.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


# What SQS takes in a message or an attribute: XML's characters (its documented rule).
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _sqs_text(value: str) -> str:
    """An attribute value SQS accepts: what it refuses becomes U+FFFD."""
    return _NOT_SQS_TEXT.sub("\ufffd", value)
