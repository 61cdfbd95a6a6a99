"""Requests from the request queue: invoke, then answer the caller once.

Errors SageMaker may not repeat (throttling, 5xx, timeouts) raise
:class:`RetryLaterError`, so the message returns to the queue. Every other outcome is
final: a reply to the caller, or, when there is no one to reply to, the request
dead-letter queue with the reason.
"""

import base64
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from gateway.aws.claims import RequestClaims
from gateway.core import errors
from gateway.core.callbacks import check_callback
from gateway.core.content import is_text
from gateway.core.invocation import ModelRuntime, invoke_sync
from gateway.models.inference import (
    InvocationOptions,
    InvocationRequest,
    InvocationResult,
)
from gateway.models.messages import QueueMessage, Reply, ReplyError, ReplyTo
from gateway.models.records import Callback, CallbackKind
from gateway.models.settings import Settings

if TYPE_CHECKING:
    from gateway.aws.queues import MessageQueues
    from gateway.aws.storage import ObjectStore
    from gateway.core.async_jobs import AsyncServices
    from gateway.core.delivery import Deliverer

logger = Logger(child=True)

# SQS takes messages of up to 1 MiB; larger results are stored and linked instead.
MAX_INLINE_REPLY_BYTES = 1_000_000


class RetryLaterError(Exception):
    """The request may succeed later: the message goes back to the queue."""

    def __init__(self, cause: errors.GatewayError) -> None:
        super().__init__(cause.code)
        self.cause = cause


@dataclass(frozen=True, slots=True)
class QueueServices:
    """What answering queue requests needs."""

    sagemaker: ModelRuntime
    async_services: "AsyncServices"
    replier: "Replier"
    claims: RequestClaims


class Replier:
    """Builds replies and sends them; keeps what it cannot send."""

    def __init__(
        self,
        deliverer: "Deliverer",
        queues: "MessageQueues",
        store: "ObjectStore",
        *,
        request_dlq_url: str,
        url_expiry_seconds: int,
    ) -> None:
        self._deliverer = deliverer
        self._queues = queues
        self._store = store
        self._request_dlq_url = request_dlq_url
        self._url_expiry_seconds = url_expiry_seconds

    def completed(
        self, request_id: str, endpoint: str, result: InvocationResult
    ) -> Reply:
        """A reply carrying the model's answer, inline when it fits a message."""
        reply = Reply(
            request_id=request_id,
            endpoint=endpoint,
            status="completed",
            content_type=result.content_type,
        )
        # Measured as sent: JSON escapes can make text six times longer.
        text = _text(result)
        if text is not None and len(text) <= MAX_INLINE_REPLY_BYTES:
            inline = reply.model_copy(update={"body": text})
            if fits_a_message(inline.to_json()):
                return inline
        if len(result.body) * 4 // 3 <= MAX_INLINE_REPLY_BYTES:
            encoded = base64.b64encode(result.body).decode()
            return reply.model_copy(update={"body_base64": encoded})

        location = self._store.put_reply(
            str(uuid.uuid4()), result.body, result.content_type
        )
        url = self._store.presign(location, self._url_expiry_seconds)
        return reply.model_copy(update={"result_url": url})

    def send(self, reply: Reply, reply_to: ReplyTo, *, key: str | None = None) -> None:
        """Deliver a reply once; one that cannot be delivered goes to the dead letters.

        ``key`` (the request id unless given) lets the receiver, or a FIFO queue,
        drop a copy: replies that differ under one request id need keys that differ.
        """
        self._deliverer.send(
            callback_of(reply_to),
            reply.to_json(),
            key=key or reply.request_id,
            attributes={"requestId": reply.request_id},
        )

    def delay(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        """Make a received request visible again after ``seconds``."""
        self._queues.delay(queue_url, receipt_handle, seconds)

    def dead_letter(
        self,
        body: str,
        *,
        reason: str,
        code: str,
        message_id: str,
        request_id: str | None = None,
    ) -> None:
        """Keep a request no one can be told about, with why it failed, the id of
        the message that carried it and, when it has one, its request id."""
        from gateway.core.delivery import MAX_PAYLOAD_BYTES  # noqa: PLC0415 - rare path

        size = len(body.encode())
        if size > MAX_PAYLOAD_BYTES:
            # With its attributes it would not fit a message: kept without the body.
            body = json.dumps({"bodyOmitted": True, "size": size})
        attributes = {"reason": reason, "code": code, "sourceMessageId": message_id}
        if request_id is not None:
            attributes["requestId"] = request_id
        self._queues.send(
            self._request_dlq_url,
            body,
            attributes=attributes,
            deduplication_id=message_id,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """How a request ended, and the reply to send (None: nothing to send).

    ``reply_to`` None with a failed reply: no one may be told, the request is kept.
    """

    outcome: str
    reply: Reply | None = None
    reply_to: ReplyTo | None = None


def answer_request(
    message: QueueMessage,
    request_id: str,
    services: QueueServices,
    settings: Settings,
    sender: str | None = None,
) -> Answer:
    """Run one request; an async one is answered later, by the results function.

    ``sender`` is the IAM id of the message's sender: the principal that may read an
    async inference's status over HTTP.
    """
    reply_to = message.reply_to
    if reply_to is not None:
        try:
            check_callback(callback_of(reply_to), settings)
        except errors.CallbackRefusedError as error:
            # Never tell a refused target, not even that it was refused.
            reply = failed_reply(request_id, message.endpoint, error)
            return Answer("failed", reply)
        except OSError as error:  # the webhook's name does not resolve, for now
            raise RetryLaterError(errors.CallbackUnresolvedError()) from error

    try:
        if message.mode == "async":
            _submit(message, request_id, services, settings, sender)
            return Answer("submitted")
        result = invoke_sync(_request(message), services.sagemaker, settings)
    except errors.GatewayError as error:
        if error.retryable:
            raise RetryLaterError(error) from error
        reply = failed_reply(request_id, message.endpoint, error)
        return Answer("failed", reply, reply_to)
    except Exception as error:
        # The gateway's own services failed (its table throttled, say): retried with
        # backoff like SageMaker's throttling, and answered on the last receive.
        logger.exception("request failed in the gateway")
        raise RetryLaterError(errors.GatewayFailureError()) from error

    if reply_to is None:
        # No one to tell: a completed request is only recorded.
        return Answer("completed")
    reply = services.replier.completed(request_id, message.endpoint, result)
    return Answer("completed", reply, reply_to)


def callback_of(reply_to: ReplyTo) -> Callback:
    """The callback a reply target names."""
    if reply_to.queue_url is not None:
        return Callback(CallbackKind.QUEUE, reply_to.queue_url)
    return Callback(CallbackKind.WEBHOOK, reply_to.webhook_url or "")


def refusal(reply_to: ReplyTo, settings: Settings) -> str | None:
    """Why a reply target may not be used, or None when it may."""
    try:
        check_callback(callback_of(reply_to), settings)
    except errors.CallbackRefusedError as error:
        return error.message
    return None


def fits_a_message(payload: str) -> bool:
    """Tell whether a payload, encoded, fits an SQS message beside its attributes."""
    return len(payload.encode()) <= MAX_INLINE_REPLY_BYTES


def failed_reply(request_id: str, endpoint: str, error: errors.GatewayError) -> Reply:
    """A reply that says why a request failed."""
    message = error.message
    if isinstance(error, errors.ModelError):
        message = f"The model answered {error.original_status}: {error.original_message}"
    return Reply(
        request_id=request_id,
        endpoint=endpoint,
        status="failed",
        error=ReplyError(code=error.code, message=message),
    )


def _request(message: QueueMessage) -> InvocationRequest:
    options = InvocationOptions(
        content_type=message.content_type,
        accept=message.accept,
        custom_attributes=message.custom_attributes,
        target_model=message.target_model,
        target_variant=message.target_variant,
        target_container_hostname=message.target_container_hostname,
        inference_id=message.inference_id,
        enable_explanations=message.enable_explanations,
        inference_component=message.inference_component_name,
        session_id=message.session_id,
    )
    return InvocationRequest(message.endpoint, message.payload() or b"", options)


def _submit(
    message: QueueMessage,
    request_id: str,
    services: QueueServices,
    settings: Settings,
    sender: str | None,
) -> None:
    # The async flow is imported where a request asks for it (2 ms of a start).
    from gateway.core.async_jobs import AsyncJob, principal, submit_async  # noqa: PLC0415

    reply_to = message.reply_to
    job = AsyncJob(
        endpoint=message.endpoint,
        body=message.payload(),
        input_location=message.input_location,
        inference_id=message.inference_id,
        content_type=message.content_type,
        accept=message.accept,
        custom_attributes=message.custom_attributes,
        callback=callback_of(reply_to) if reply_to is not None else None,
        request_id=request_id,
        owner=principal(sender),
    )
    submit_async(job, services.async_services, settings)


def _text(result: InvocationResult) -> str | None:
    if not is_text(result.content_type):
        return None
    try:
        return result.body.decode("utf-8")
    except UnicodeDecodeError:
        return None
