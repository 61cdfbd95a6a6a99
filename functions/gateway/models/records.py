"""The inference record: what the gateway keeps about one async inference."""

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Where an inference stands."""

    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"


class Delivery(StrEnum):
    """Where the delivery of a finished inference to its caller stands."""

    NONE = "none"
    PENDING = "pending"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    DEAD_LETTERED = "deadLettered"


class CallbackKind(StrEnum):
    """How a caller wants to hear about its result."""

    WEBHOOK = "webhook"
    QUEUE = "queue"


@dataclass(frozen=True, slots=True)
class Callback:
    """Where the result of an inference goes when it is ready."""

    kind: CallbackKind
    target: str


@dataclass(frozen=True, slots=True)
class InferenceRecord:
    """One async inference, from submission to delivery. Times are epoch ms."""

    inference_id: str
    endpoint: str
    status: Status
    created_at: int
    updated_at: int
    request_ttl_seconds: int
    invocation_timeout_seconds: int
    # None when the payload travelled inline in the SageMaker call.
    input_location: str | None = None
    callback: Callback | None = None
    request_id: str | None = None
    output_location: str | None = None
    failure_location: str | None = None
    completed_at: int | None = None
    result_location: str | None = None
    result_content_type: str | None = None
    result_size: int | None = None
    failure_reason: str | None = None
    delivery: Delivery = Delivery.NONE
    # The principal that submitted it (see core.async_jobs.principal), when known.
    owner: str | None = None

    def deadline(self) -> int:
        """When SageMaker will have given up on this inference, in epoch ms."""
        budget = self.request_ttl_seconds + self.invocation_timeout_seconds
        return self.created_at + budget * 1000

    def status_at(self, now_ms: int) -> Status:
        """The status a caller sees: pending past its deadline reads as expired."""
        if self.status is Status.PENDING and now_ms > self.deadline():
            return Status.EXPIRED
        return self.status
