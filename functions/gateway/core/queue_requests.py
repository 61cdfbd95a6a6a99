"""Requests from the request queue: invoke, then answer the caller once.

Errors SageMaker may not repeat (throttling, 5xx, timeouts) raise
:class:`RetryLaterError`, so the message returns to the queue. Every other outcome is
final: a reply to the caller, or, when there is no one to reply to, the request
dead-letter queue with the reason.
"""

import base64
import uuid
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from gateway.aws.queues import MessageQueues
from gateway.aws.storage import ObjectStore
from gateway.core import errors
from gateway.core.async_jobs import AsyncJob, AsyncServices, is_text, submit_async
from gateway.core.callbacks import check_callback
from gateway.core.delivery import Deliverer
from gateway.core.invocation import ModelRuntime, invoke_sync
from gateway.models.inference import InvocationRequest, InvocationResult
from gateway.models.messages import QueueMessage, Reply, ReplyError, ReplyTo
from gateway.models.records import Callback, CallbackKind
from gateway.models.settings import Settings

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
    async_services: AsyncServices
    replier: "Replier"


class Replier:
    """Builds replies and sends them; keeps what it cannot send."""

    def __init__(
        self,
        deliverer: Deliverer,
        queues: MessageQueues,
        store: ObjectStore,
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
        text = _text(result)
        if text is not None and len(text) <= MAX_INLINE_REPLY_BYTES:
            return reply.model_copy(update={"body": text})
        if len(result.body) * 4 // 3 <= MAX_INLINE_REPLY_BYTES:
            encoded = base64.b64encode(result.body).decode()
            return reply.model_copy(update={"body_base64": encoded})

        location = self._store.put_reply(
            str(uuid.uuid4()), result.body, result.content_type
        )
        url = self._store.presign(location, self._url_expiry_seconds)
        return reply.model_copy(update={"result_url": url})

    def send(self, reply: Reply, reply_to: ReplyTo) -> None:
        """Deliver a reply once; one that cannot be delivered goes to the dead letters."""
        self._deliverer.send(
            callback_of(reply_to),
            reply.to_json(),
            key=reply.request_id,
            attributes={"requestId": reply.request_id},
        )

    def delay(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        """Make a received request visible again after ``seconds``."""
        self._queues.delay(queue_url, receipt_handle, seconds)

    def dead_letter(self, body: str, *, reason: str, code: str, message_id: str) -> None:
        """Keep a request no one can be told about, with why it failed."""
        self._queues.send(
            self._request_dlq_url,
            body,
            attributes={"reason": reason, "code": code, "sourceMessageId": message_id},
            deduplication_id=message_id,
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """A request's reply, and who may receive it (None: no one; failures are kept)."""

    reply: Reply | None
    reply_to: ReplyTo | None


def answer_request(
    message: QueueMessage, request_id: str, services: QueueServices, settings: Settings
) -> Answer:
    """Run one request; its reply is None when the result comes later (async)."""
    reply_to = message.reply_to
    if reply_to is not None:
        try:
            check_callback(callback_of(reply_to), settings)
        except errors.CallbackRefusedError as error:
            # Never tell a refused target, not even that it was refused.
            return Answer(failed_reply(request_id, message.endpoint, error), None)

    callback = callback_of(reply_to) if reply_to is not None else None
    try:
        if message.mode == "async":
            job = _job(message, request_id, callback)
            submit_async(job, services.async_services, settings)
            return Answer(None, reply_to)
        result = invoke_sync(_request(message), services.sagemaker, settings)
    except errors.GatewayError as error:
        if error.retryable:
            raise RetryLaterError(error) from error
        return Answer(failed_reply(request_id, message.endpoint, error), reply_to)

    return Answer(
        services.replier.completed(request_id, message.endpoint, result), reply_to
    )


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
    return InvocationRequest(
        endpoint=message.endpoint,
        body=message.payload() or b"",
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


def _job(message: QueueMessage, request_id: str, callback: Callback | None) -> AsyncJob:
    return AsyncJob(
        endpoint=message.endpoint,
        body=message.payload(),
        input_location=message.input_location,
        inference_id=message.inference_id,
        content_type=message.content_type,
        accept=message.accept,
        custom_attributes=message.custom_attributes,
        callback=callback,
        request_id=request_id,
    )


def _text(result: InvocationResult) -> str | None:
    if not is_text(result.content_type):
        return None
    try:
        return result.body.decode("utf-8")
    except UnicodeDecodeError:
        return None
