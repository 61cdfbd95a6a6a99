"""Partial batch responses for the queue-fed functions.

Powertools' batch utility would do this, but importing it imports every parser model
(about 80 ms and 7 MiB of each cold start, measured by ``make bench``); the loop it
would run is short.
"""

from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, TypedDict

from aws_lambda_powertools import Logger

from gateway.models.sqs import SqsEvent, SqsRecord

if TYPE_CHECKING:
    from concurrent.futures import Executor

logger = Logger(child=True)


class ItemFailure(TypedDict):
    itemIdentifier: str


class BatchResponse(TypedDict):
    batchItemFailures: list[ItemFailure]


def process_batch(
    batch: SqsEvent,
    handle: Callable[[SqsRecord], None],
    threads: int = 1,
    expected: tuple[type[Exception], ...] = (),
) -> BatchResponse:
    """Handle every record; a record whose handler raises is reported for retry.

    With several threads the records run side by side; a batch of one runs in the
    caller's thread. In a FIFO batch they run in order, and after a failure the rest
    of that message group is reported without running.
    """
    if batch.is_fifo or threads < 2 or len(batch.records) < 2:
        failed = _in_order(
            batch.records, handle, expected, keep_group_order=batch.is_fifo
        )
    else:
        outcomes = thread_pool(threads).map(
            lambda record: _succeeds(record, handle, expected), batch.records
        )
        failed = [
            r.message_id for r, ok in zip(batch.records, outcomes, strict=True) if not ok
        ]
    return {
        "batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]
    }


@cache
def thread_pool(threads: int) -> "Executor":
    """The threads batches run on, made for the first batch of several records.

    A function whose first batch holds one record starts without importing them
    (``concurrent.futures``, about 4 ms).
    """
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415 - see above

    return ThreadPoolExecutor(max_workers=threads)


def _in_order(
    records: Iterable[SqsRecord],
    handle: Callable[[SqsRecord], None],
    expected: tuple[type[Exception], ...],
    keep_group_order: bool,
) -> list[str]:
    failed: list[str] = []
    stopped_groups: set[str | None] = set()
    for record in records:
        group = record.attributes.message_group_id
        if keep_group_order and group in stopped_groups:
            failed.append(record.message_id)
            continue
        if not _succeeds(record, handle, expected):
            failed.append(record.message_id)
            stopped_groups.add(group)
    return failed


def _succeeds(
    record: SqsRecord,
    handle: Callable[[SqsRecord], None],
    expected: tuple[type[Exception], ...],
) -> bool:
    """Handle one record. Its log keys (``message_id``, and what the handler adds)
    are this thread's own, and end with it: the records of a batch run side by side."""
    logger.thread_safe_append_keys(message_id=record.message_id)
    try:
        handle(record)
    except expected as error:
        # Foreseen (throttling, a duplicate in flight): the handler said why.
        logger.info("message will be retried", error_type=type(error).__name__)
        return False
    except Exception:
        logger.exception("message failed; it will be retried")
        return False
    finally:
        logger.thread_safe_clear_keys()
    return True
