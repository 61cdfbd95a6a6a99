"""Queue function: inference requests from the request queue, in batches.

Requests of a batch run side by side (they wait on the network), each at most once:
a redelivered message or a re-sent ``requestId`` replays the stored outcome instead of
invoking the model again. A FIFO batch runs in order, and a failure holds back the
rest of its message group.
"""

import json
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from gateway.aws import records
from gateway.core import errors
from gateway.core.queue_requests import (
    RetryLaterError,
    answer_request,
    failed_reply,
    refusal,
)
from gateway.handlers import services
from gateway.handlers.batches import BatchResponse, process_batch
from gateway.handlers.tracing import traced
from gateway.models.messages import QueueMessage, Reply, ReplyError, ReplyTo
from gateway.models.settings import get_settings
from gateway.models.sqs import SqsRecord

# Longer than the request queue's retention (4 days) plus its dead-letter queue's
# (14 days), so no redelivery or redrive outlives the memory of its outcome.
IDEMPOTENCY_SECONDS = 19 * 86_400
MAX_BACKOFF_SECONDS = 60

logger = Logger()
settings = get_settings()
idempotency = IdempotencyConfig(
    event_key_jmespath="requestId",
    payload_validation_jmespath="message",
    expires_after_seconds=IDEMPOTENCY_SECONDS,
    raise_on_no_idempotency_key=True,
)
# Its client comes from the functions' shared session, not a boto3 session of its own.
persistence = DynamoDBPersistenceLayer(
    table_name=settings.idempotency_table, boto3_client=records.create_client()
)
executor = ThreadPoolExecutor(max_workers=settings.queue_concurrency)


@idempotent_function(
    data_keyword_argument="request", config=idempotency, persistence_store=persistence
)
def answer_once(request: dict[str, Any]) -> dict[str, str]:
    """Run a request and reply to its caller, once per requestId."""
    message = QueueMessage.model_validate(request["message"])
    answer = answer_request(
        message, request["requestId"], services.queue_services(), settings
    )
    if answer.reply is None:
        return {"outcome": "submitted"}
    send_or_keep(answer.reply, answer.reply_to, body=json.dumps(request["message"]))
    return {"outcome": answer.reply.status}


def handle_record(record: SqsRecord) -> None:
    """Handle one queue message; raise to have it retried later."""
    logger.thread_safe_append_keys(message_id=record.message_id)
    try:
        raw = json.loads(record.body)
        message = QueueMessage.model_validate(raw)
    except (ValueError, ValidationError) as error:
        refuse(record, error)
        return

    request_id = message.request_id or record.message_id
    request = {
        "requestId": request_id,
        "message": message.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    try:
        outcome = answer_once(request=request)
    except (RetryLaterError, IdempotencyAlreadyInProgressError) as error:
        logger.info("request will be retried", reason=_reason(error))
        back_off(record)
        raise
    except IdempotencyValidationError:
        reply = failed_reply(
            request_id,
            message.endpoint,
            errors.RequestValidationError(
                "requestId", "already used for a different request"
            ),
        )
        send_or_keep(
            reply,
            _usable(message.reply_to),
            body=record.body,
            message_id=record.message_id,
        )
        return
    logger.info("request answered", outcome=outcome.get("outcome") if outcome else None)


def send_or_keep(
    reply: Reply, reply_to: ReplyTo | None, *, body: str, message_id: str = ""
) -> None:
    """Reply to the caller; a failure no one can be told about goes to the DLQ."""
    replier = services.queue_services().replier
    if reply_to is not None:
        replier.send(reply, reply_to)
    elif reply.status == "failed" and reply.error is not None:
        replier.dead_letter(
            body,
            reason=reply.error.message,
            code=reply.error.code,
            message_id=message_id or reply.request_id,
        )


def refuse(record: SqsRecord, error: Exception) -> None:
    """Answer a message that is not a valid request; it will never become one."""
    reason = _validation_reason(error)
    logger.info("request refused", reason=reason)
    raw = _json_object(record.body)
    request_id = raw.get("requestId")
    endpoint = raw.get("endpoint")
    reply = Reply(
        request_id=request_id if isinstance(request_id, str) else record.message_id,
        endpoint=endpoint if isinstance(endpoint, str) else "",
        status="failed",
        error=ReplyError(code="ValidationError", message=reason),
    )
    send_or_keep(
        reply, _usable(_reply_to(raw)), body=record.body, message_id=record.message_id
    )


def back_off(record: SqsRecord) -> None:
    """Bring a failed message back sooner than the queue's visibility timeout."""
    if not settings.request_queue_url or record.event_source_arn.endswith(".fifo"):
        return
    attempt = record.attributes.approximate_receive_count
    delay = min(2**attempt, MAX_BACKOFF_SECONDS)
    seconds = random.randint(delay // 2, delay)  # noqa: S311 - jitter, not security
    try:
        services.queue_services().replier.delay(
            settings.request_queue_url, record.receipt_handle, seconds
        )
    except Exception:  # the queue's own visibility timeout still applies
        logger.warning("could not shorten the retry delay")


@logger.inject_lambda_context(clear_state=True)
@traced
def handler(event: dict[str, Any], context: LambdaContext) -> BatchResponse:
    """Entry point of the queue function."""
    idempotency.register_lambda_context(context)
    return process_batch(
        event,
        handle_record,
        executor,
        expected=(RetryLaterError, IdempotencyAlreadyInProgressError),
    )


def _reply_to(raw: dict[str, Any]) -> ReplyTo | None:
    try:
        return ReplyTo.model_validate(raw.get("replyTo"))
    except ValidationError:
        return None


def _usable(reply_to: ReplyTo | None) -> ReplyTo | None:
    """The reply target, unless the deployment refuses it (it is then never told)."""
    if reply_to is None or refusal(reply_to, settings) is not None:
        return None
    return reply_to


def _json_object(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _validation_reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "message"
        return f"{where}: {str(first['msg']).removeprefix('Value error, ')}"
    return "the message is not JSON"


def _reason(error: Exception) -> str:
    if isinstance(error, RetryLaterError):
        return error.cause.code
    return "in progress elsewhere"
