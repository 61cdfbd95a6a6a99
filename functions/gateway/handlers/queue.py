"""Queue function: inference requests from the request queue, in batches.

Requests of a batch run side by side (they wait on the network), each at most once per
requestId: the batch claims them all in one write before it runs any
(:mod:`gateway.core.once`), so a redelivered message or a re-sent ``requestId`` finds
its claim or its stored outcome instead of invoking the model again. A FIFO batch runs
in order, and a failure holds back the rest of its message group.
"""

import json
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from gateway.core import errors
from gateway.core.clock import now_ms
from gateway.core.once import (
    BatchClaims,
    Claim,
    RequestInProgressError,
    Standing,
    claim_batch,
    fingerprint,
)
from gateway.core.queue_requests import (
    RetryLaterError,
    answer_request,
    failed_reply,
    refusal,
)
from gateway.handlers import ends_start, services
from gateway.handlers.batches import BatchResponse, process_batch
from gateway.handlers.tracing import traced
from gateway.models.messages import QueueMessage, Reply, ReplyError, ReplyTo
from gateway.models.settings import get_settings
from gateway.models.sqs import SqsEvent, SqsRecord

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

MAX_BACKOFF_SECONDS = 60

# What a reply may carry as a request id (QueueMessage.request_id's rule).
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
logger = Logger()
settings = get_settings()


class TooDeepError(ValueError):
    """A message whose JSON nests deeper than the parser goes."""


@dataclass(frozen=True, slots=True)
class Request:
    """A valid request message and the id it is answered once under."""

    message: QueueMessage
    request_id: str
    # The message as validated: its fingerprint, and what a dead letter keeps.
    document: dict[str, Any]


@ends_start
@logger.inject_lambda_context(clear_state=True)
@traced
def handler(event: dict[str, Any], context: "LambdaContext") -> BatchResponse:
    """Entry point of the queue function."""
    batch = SqsEvent.model_validate(event)
    # By record, not message id: SQS may hand the same message over twice in a batch.
    requests = {id(record): read_request(record) for record in batch.records}
    valid = {
        key: request for key, request in requests.items() if isinstance(request, Request)
    }
    claims = claim_batch(
        [(r.request_id, fingerprint(r.document)) for r in valid.values()],
        services.queue_services().claims,
        deadline_ms=now_ms() + context.get_remaining_time_in_millis(),
        clock=now_ms,
    )
    claim_of = dict(zip(valid, claims.claims, strict=True))

    def handle(record: SqsRecord) -> None:
        request = requests[id(record)]
        if isinstance(request, Request):
            handle_request(record, request, claim_of[id(record)], claims)
        else:
            refuse(record, request)

    try:
        return process_batch(
            batch,
            handle,
            settings.queue_concurrency,
            expected=(RetryLaterError, RequestInProgressError),
        )
    finally:
        claims.close()


def read_request(record: SqsRecord) -> Request | Exception:
    """Validate a message; what makes it invalid is returned, not raised."""
    try:
        message = QueueMessage.model_validate(json.loads(record.body))
    except (ValueError, ValidationError) as error:
        return error
    except RecursionError:
        return TooDeepError()
    document = message.model_dump(mode="json", by_alias=True, exclude_none=True)
    return Request(message, message.request_id or record.message_id, document)


def handle_request(
    record: SqsRecord, request: Request, claim: Claim, claims: BatchClaims
) -> None:
    """Handle one valid request as its claim allows; raise to have it retried later."""
    outcome: str | None
    if claim.standing is Standing.NEW:
        outcome = run(record, request, claim, claims)
    elif claim.standing is Standing.ANSWERED:
        outcome = claim.outcome
    elif claim.standing is Standing.REUSED:
        answer_reused(record, request)
        return
    elif is_last_receive(record):
        keep_in_progress(record, request)
        return
    else:
        logger.info("request will be retried", reason=claim.standing.value)
        back_off(record)
        raise RequestInProgressError(claim.request_id)
    logger.info("request answered", outcome=outcome)


def run(record: SqsRecord, request: Request, claim: Claim, claims: BatchClaims) -> str:
    """Run a claimed request, reply to its caller and keep its outcome."""
    claims.start(claim)
    try:
        answer = answer_request(
            request.message,
            claim.request_id,
            services.queue_services(),
            settings,
            sender=record.attributes.sender_id,
        )
        if answer.reply is not None:
            send_or_keep(
                answer.reply,
                answer.reply_to,
                body=record.body,
                message_id=record.message_id,
            )
    except RetryLaterError as error:
        if is_last_receive(record):
            # The queue would move it to its dead letters untold: answer it instead.
            logger.warning("request gave up after retries", reason=error.cause.code)
            reply = failed_reply(claim.request_id, request.message.endpoint, error.cause)
            reply_to = _usable(request.message.reply_to, record)
            send_or_keep(reply, reply_to, body=record.body, message_id=record.message_id)
            claims.settle(claim, "failed")
            return "failed"
        claims.release(claim)
        logger.info("request will be retried", reason=error.cause.code)
        back_off(record)
        raise
    except Exception:
        claims.release(claim)
        raise

    claims.settle(claim, answer.outcome)
    return answer.outcome


def answer_reused(record: SqsRecord, request: Request) -> None:
    """Refuse a requestId sent again for a different request."""
    reply = failed_reply(
        request.request_id,
        request.message.endpoint,
        errors.RequestValidationError(
            "requestId", "already used for a different request"
        ),
    )
    send_or_keep(
        reply,
        _usable(request.message.reply_to, record),
        body=record.body,
        message_id=record.message_id,
        key="reused:"
        + fingerprint({"requestId": request.request_id, **request.document}),
    )


def keep_in_progress(record: SqsRecord, request: Request) -> None:
    """Keep a message whose request is in progress elsewhere on its last receive.

    Handed back, it would reach the dead letters untold, and in a FIFO group it would
    hold back the messages behind it until they went the same way.
    """
    logger.warning("request kept: in progress elsewhere on its last receive")
    services.queue_services().replier.dead_letter(
        record.body,
        reason="the request was in progress elsewhere on its last receive",
        code="RequestInProgress",
        message_id=record.message_id,
        request_id=request.request_id,
    )


def send_or_keep(
    reply: Reply,
    reply_to: ReplyTo | None,
    *,
    body: str,
    message_id: str,
    key: str | None = None,
) -> None:
    """Reply to the caller; a failure no one can be told about goes to the DLQ.

    ``key`` tells this reply from the request's own answer (see ``Replier.send``).
    """
    replier = services.queue_services().replier
    if reply_to is not None:
        replier.send(reply, reply_to, key=key)
    elif reply.status == "failed" and reply.error is not None:
        replier.dead_letter(
            body,
            reason=reply.error.message,
            code=reply.error.code,
            message_id=message_id,
            request_id=reply.request_id,
        )


def refuse(record: SqsRecord, error: Exception) -> None:
    """Answer a message that is not a valid request; it will never become one."""
    reason = _validation_reason(error)
    logger.info("request refused", reason=reason)
    raw = _json_object(record.body)
    request_id = raw.get("requestId")
    endpoint = raw.get("endpoint")
    reply = Reply(
        request_id=request_id if _is_request_id(request_id) else record.message_id,
        endpoint=endpoint if isinstance(endpoint, str) and endpoint.isprintable() else "",
        status="failed",
        error=ReplyError(code="ValidationError", message=reason),
    )
    send_or_keep(
        reply,
        _usable(_reply_to(raw), record),
        body=record.body,
        message_id=record.message_id,
        key=f"refused:{record.message_id}",
    )


def is_last_receive(record: SqsRecord) -> bool:
    """Tell whether a failure now sends the message to the dead letters (redrive)."""
    received = record.attributes.approximate_receive_count
    return received >= settings.request_max_receive_count


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


def _reply_to(raw: dict[str, Any]) -> ReplyTo | None:
    try:
        return ReplyTo.model_validate(raw.get("replyTo"))
    except ValidationError:
        return None


def _usable(reply_to: ReplyTo | None, record: SqsRecord) -> ReplyTo | None:
    """The reply target, unless the deployment refuses it (it is then never told).

    A webhook whose name does not resolve may resolve later, so the message comes
    back (OSError); on its last receive, no one can be told and it is kept instead.
    """
    if reply_to is None:
        return None
    try:
        refused = refusal(reply_to, settings)
    except OSError:
        if is_last_receive(record):
            return None
        raise
    return None if refused is not None else reply_to


def _is_request_id(value: object) -> bool:
    return isinstance(value, str) and _REQUEST_ID.fullmatch(value) is not None


def _json_object(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _validation_reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "message"
        return f"{where}: {str(first['msg']).removeprefix('Value error, ')}"
    if isinstance(error, TooDeepError):
        return "the message nests too deeply"
    return "the message is not JSON"
