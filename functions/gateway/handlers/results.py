"""Results function: S3 notifications of async results, read from the results queue.

Each queue message holds one S3 notification. A message that cannot be handled now
(the table or S3 failing) is reported as a batch item failure and comes back later;
after the queue's maxReceiveCount it moves to the results dead-letter queue.

The notifications of a batch are handled side by side: a delivery waits on the
caller's webhook, up to four attempts of ten seconds for one that never answers, and
one after another three such deliveries outlasted the function's 90 s, so the whole
batch came back minutes later.
"""

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from gateway.core.results import handle_result_object
from gateway.handlers import ends_start, services
from gateway.handlers.batches import BatchResponse, process_batch
from gateway.handlers.tracing import traced
from gateway.models.notifications import S3Notification
from gateway.models.settings import get_settings
from gateway.models.sqs import SqsEvent, SqsRecord

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# The results queue's batch size (template.yaml): every notification has a thread.
RESULTS_BATCH_SIZE = 10

logger = Logger()
settings = get_settings()


def handle_message(record: SqsRecord) -> None:
    """Handle every object-created record of one S3 notification."""
    try:
        notification = S3Notification.model_validate_json(record.body)
    except ValidationError:
        # Not an S3 notification: retrying cannot fix it.
        logger.warning("message is not an S3 notification; dropped")
        return
    if notification.is_test_event:
        logger.info("S3 test event skipped")
        return

    for s3_record in notification.records:
        if not s3_record.is_object_created:
            logger.info("S3 event skipped", event_name=s3_record.event_name)
            continue
        outcome = handle_result_object(
            s3_record.location, services.result_services(), settings
        )
        logger.info("result object handled", outcome=outcome.value)


@ends_start
@logger.inject_lambda_context(clear_state=True)
@traced
def handler(event: dict[str, Any], context: "LambdaContext") -> BatchResponse:
    """Entry point of the results function: the batch's notifications side by side."""
    batch = SqsEvent.model_validate(event)
    services.result_services()  # made once, before any thread needs it
    return process_batch(batch, handle_message, RESULTS_BATCH_SIZE)
