"""Delivery of a finished inference to its caller: webhook, reply queue, or nothing.

A delivery that cannot be made ends in the delivery dead-letter queue with its
envelope and reason, never in silence.
"""

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from gateway.aws.queues import MessageQueues
from gateway.models.records import Callback, CallbackKind, Delivery, InferenceRecord
from gateway.observability import DELIVERY_FAILED

if TYPE_CHECKING:
    from gateway.core.webhooks import WebhookSender

# An SQS message holds 1 MiB, attributes included; payloads stay under this.
MAX_PAYLOAD_BYTES = 1_000_000
logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What a caller receives about a finished inference."""

    record: InferenceRecord
    result_url: str | None
    result: str | None

    def to_json(self) -> str:
        """The envelope as the JSON a caller receives, in camelCase."""
        record = self.record
        body: dict[str, Any] = {
            "inferenceId": record.inference_id,
            "endpoint": record.endpoint,
            "status": record.status.value,
            "contentType": record.result_content_type,
            "size": record.result_size,
            "resultUrl": self.result_url,
            "result": self.result,
            "failureReason": record.failure_reason,
        }
        if record.request_id is not None:
            body["requestId"] = record.request_id
        payload = json.dumps(body, separators=(",", ":"))
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            # Escaped, the inline result outgrew a queue message: the URL remains.
            body["result"] = None
            payload = json.dumps(body, separators=(",", ":"))
        return payload


class Deliverer:
    """Sends payloads to callbacks, or to the dead-letter queue when that fails."""

    def __init__(
        self, webhooks: "WebhookSender", queues: MessageQueues, dead_letter_url: str
    ) -> None:
        self._webhooks = webhooks
        self._queues = queues
        self._dead_letter_url = dead_letter_url

    def deliver(self, envelope: Envelope) -> Delivery:
        """Deliver a finished inference to its callback, if it has one."""
        record = envelope.record
        if record.callback is None:
            return Delivery.NONE
        return self.send(
            record.callback,
            envelope.to_json(),
            key=record.inference_id,
            attributes={"inferenceId": record.inference_id},
        )

    def send(
        self, callback: Callback, payload: str, *, key: str, attributes: dict[str, str]
    ) -> Delivery:
        """Deliver once, with the webhook's bounded retries; say how it ended.

        ``key`` lets a receiver drop a duplicate; a payload that cannot be delivered
        is kept in the dead-letter queue with ``attributes`` and the reason.
        """
        if callback.kind is CallbackKind.QUEUE:
            reason = self._to_queue(callback.target, payload, key)
        else:
            result = self._webhooks.send(
                callback.target, payload.encode(), idempotency_key=key
            )
            reason = None if result.delivered else (result.error or "not delivered")

        if reason is None:
            logger.info("result delivered", callback_kind=callback.kind.value)
            return Delivery.DELIVERED

        logger.warning(
            "delivery failed", callback_kind=callback.kind.value, reason=reason
        )
        DELIVERY_FAILED.emit(1)
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            # Kept without the payload rather than not at all; the ids say whose.
            payload = json.dumps({"payloadOmitted": True, "size": len(payload.encode())})
        self._queues.send(
            self._dead_letter_url,
            payload,
            attributes={
                **attributes,
                "reason": reason,
                "callbackKind": callback.kind.value,
                "callbackTarget": callback.target,
            },
            deduplication_id=key,
        )
        return Delivery.DEAD_LETTERED

    def _to_queue(self, queue_url: str, payload: str, key: str) -> str | None:
        try:
            self._queues.send(queue_url, payload, deduplication_id=key)
        except Exception as error:  # any refusal ends in the dead letters, with its name
            logger.warning(
                "reply queue refused the result", error_type=type(error).__name__
            )
            return f"reply queue refused the result ({_error_code(error)})"
        return None


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or type(error).__name__)
    return type(error).__name__
