"""Async results: match an object SageMaker wrote to its inference, finish it once,
and deliver it once."""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from aws_lambda_powertools import Logger

from gateway.aws.records import InferenceRecords
from gateway.aws.storage import ObjectStore
from gateway.core.clock import now_ms
from gateway.core.content import INLINE_RESULT_LIMIT, inline_text
from gateway.core.delivery import Deliverer, Envelope
from gateway.core.redaction import redact
from gateway.models.records import Delivery, InferenceRecord, Status
from gateway.models.settings import Settings
from gateway.observability import ASYNC_COMPLETED, ASYNC_FAILED

logger = Logger(child=True)

# How much of a failure object becomes the failure reason a caller reads.
FAILURE_REASON_LIMIT = 2048
# Longer than a webhook's worst case (attempts, timeouts and backoff together).
DELIVERY_LEASE_MS = 120_000


class Outcome(StrEnum):
    """What became of one S3 object."""

    COMPLETED = "completed"
    FAILED = "failed"
    DUPLICATE = "duplicate"
    UNLINKED = "unlinked"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class ResultServices:
    """What finishing and delivering a result needs."""

    records: InferenceRecords
    store: ObjectStore
    deliverer: Deliverer


def handle_result_object(
    location: str,
    services: ResultServices,
    settings: Settings,
    clock: Callable[[], int] = now_ms,
) -> Outcome:
    """Finish the inference a result or failure object belongs to, then deliver it."""
    if location.startswith(settings.output_path + "/"):
        status = Status.COMPLETED
    elif location.startswith(settings.failure_path + "/"):
        status = Status.FAILED
    else:
        logger.info("object outside the result prefixes ignored")
        return Outcome.IGNORED

    records = services.records
    inference_id = records.record_arrival(location, clock())
    if inference_id is None:
        # Either not ours, or its submission has not linked it yet and will replay it.
        logger.info("result object not linked to an inference")
        return Outcome.UNLINKED
    # This thread's key: the notifications of a batch are handled side by side.
    logger.thread_safe_append_keys(inference_id=inference_id)

    record = records.get(inference_id)
    if record is None:
        logger.warning("linked inference has no record")
        return Outcome.UNLINKED

    envelope = _finish(
        record,
        location=location,
        status=status,
        services=services,
        settings=settings,
        clock=clock,
    )
    if envelope is None:
        logger.info("duplicate result notification acknowledged")
        return Outcome.DUPLICATE

    _deliver(envelope, services, clock)
    return Outcome(envelope.record.status.value)


def _finish(
    record: InferenceRecord,
    *,
    location: str,
    status: Status,
    services: ResultServices,
    settings: Settings,
    clock: Callable[[], int],
) -> Envelope | None:
    store = services.store
    records = services.records
    has_callback = record.callback is not None

    if status is Status.COMPLETED:
        stored = store.describe(location, read_up_to=INLINE_RESULT_LIMIT)
        text = inline_text(stored)
        failure_reason = None
    else:
        stored = store.describe(location)
        text = None
        raw = store.read_start(location, FAILURE_REASON_LIMIT) if stored.size else b""
        failure_reason = (
            redact(raw.decode("utf-8", "replace").strip()) or "the model failed"
        )

    won, finished = records.complete(
        record.inference_id,
        status=status,
        result_location=location,
        content_type=stored.content_type,
        size=stored.size,
        failure_reason=failure_reason,
        delivery=Delivery.PENDING if has_callback else Delivery.NONE,
        now=clock(),
    )
    if finished is None:
        return None
    if not won and finished.delivery not in (Delivery.PENDING, Delivery.DELIVERING):
        return None
    if won:
        logger.info("inference finished", status=status.value)
        figures = ASYNC_COMPLETED if status is Status.COMPLETED else ASYNC_FAILED
        figures.emit(1, endpoint=record.endpoint)

    # The other object finished it (a redelivery, or both handled side by side):
    # the record decides, and the text is the winner's.
    if finished.result_location != location:
        text = None
        if finished.status is Status.COMPLETED and finished.result_location:
            winner = store.describe(
                finished.result_location, read_up_to=INLINE_RESULT_LIMIT
            )
            text = inline_text(winner)
    url = None
    if finished.status is Status.COMPLETED and finished.result_location:
        url = store.presign(finished.result_location, settings.result_url_expiry_seconds)
    return Envelope(finished, url, text)


def _deliver(
    envelope: Envelope, services: ResultServices, clock: Callable[[], int]
) -> None:
    record = envelope.record
    if record.callback is None:
        return
    records = services.records
    if not records.claim_delivery(record.inference_id, clock(), DELIVERY_LEASE_MS):
        logger.info("delivery already claimed")
        return
    outcome = services.deliverer.deliver(envelope)
    records.finish_delivery(record.inference_id, outcome, clock())
