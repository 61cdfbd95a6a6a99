"""Asynchronous inference: submit, correlate SageMaker's locations, report status.

Payloads of up to 128,000 bytes travel inline in the InvokeEndpointAsync call; larger
ones are stored under ``inputs/`` first. The record is written before SageMaker is
called. SageMaker names its output object itself, so the gateway links each location
SageMaker returns to the inference; a result that lands before that link exists is
replayed to the results queue.
"""

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote_plus

from aws_lambda_powertools import Logger

from gateway.aws.queues import MessageQueues
from gateway.aws.records import InferenceRecords
from gateway.aws.storage import ObjectStore, split_location
from gateway.core import errors
from gateway.core.callbacks import check_callback
from gateway.core.clock import now_ms
from gateway.core.content import INLINE_RESULT_LIMIT, inline_text
from gateway.core.invocation import ModelRuntime
from gateway.models.inference import (
    MAX_INLINE_ASYNC_BYTES,
    AsyncInvocationRequest,
    AsyncSubmission,
)
from gateway.models.records import Callback, Delivery, InferenceRecord, Status
from gateway.models.settings import (
    DEFAULT_INVOCATION_TIMEOUT_SECONDS,
    DEFAULT_REQUEST_TTL_SECONDS,
    Settings,
)
from gateway.observability import ASYNC_SUBMITTED

logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class AsyncJob:
    """What a caller asks of an async inference, before the gateway stores anything."""

    endpoint: str
    body: bytes | None = None
    input_location: str | None = None
    inference_id: str | None = None
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    callback: Callback | None = None
    request_id: str | None = None
    # Who submits it (:func:`principal`); only they may read its status then.
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class AsyncServices:
    """The AWS services the async flow uses."""

    sagemaker: "AsyncRuntime"
    records: InferenceRecords
    store: ObjectStore
    queues: MessageQueues


class AsyncRuntime(ModelRuntime, Protocol):
    """What the async flow needs from SageMaker Runtime."""

    def submit(self, request: AsyncInvocationRequest) -> AsyncSubmission: ...


@dataclass(frozen=True, slots=True)
class InferenceView:
    """An inference as its caller sees it."""

    record: InferenceRecord
    status: Status
    result_url: str | None = None
    result: str | None = None


def submit_async(
    job: AsyncJob,
    services: AsyncServices,
    settings: Settings,
    clock: Callable[[], int] = now_ms,
) -> AsyncSubmission:
    """Record the inference, hand its input to SageMaker, and link its result paths."""
    if not settings.allows(job.endpoint):
        raise errors.EndpointNotAllowedError(job.endpoint)
    if job.input_location is not None and not settings.allows_input(job.input_location):
        raise errors.InputLocationNotAllowedError()
    if job.callback is not None:
        try:
            check_callback(job.callback, settings)
        except OSError as error:  # a name that does not resolve: the caller can fix it
            raise errors.CallbackRefusedError(
                "the callback URL's host name does not resolve"
            ) from error

    inference_id = job.inference_id or str(uuid.uuid4())
    inline = job.input_location is None and len(job.body or b"") <= MAX_INLINE_ASYNC_BYTES
    # Stored payloads are named by a fresh uuid: a caller's id may hold any character.
    input_key = str(uuid.uuid4())
    input_location = job.input_location
    if input_location is None and not inline:
        input_location = services.store.location_of_input(input_key)
    created = clock()
    services.records.create(
        InferenceRecord(
            inference_id=inference_id,
            endpoint=job.endpoint,
            status=Status.PENDING,
            created_at=created,
            updated_at=created,
            input_location=input_location,
            request_ttl_seconds=job.request_ttl_seconds or DEFAULT_REQUEST_TTL_SECONDS,
            invocation_timeout_seconds=(
                job.invocation_timeout_seconds or DEFAULT_INVOCATION_TIMEOUT_SECONDS
            ),
            callback=job.callback,
            request_id=job.request_id,
            delivery=Delivery.NONE,
            owner=job.owner,
        )
    )

    try:
        if input_location is not None and job.input_location is None:
            services.store.put_input(input_key, job.body or b"", job.content_type)
        submission = services.sagemaker.submit(
            AsyncInvocationRequest(
                endpoint=job.endpoint,
                inference_id=inference_id,
                input_location=input_location,
                body=job.body if inline else None,
                content_type=job.content_type,
                accept=job.accept,
                custom_attributes=job.custom_attributes,
                request_ttl_seconds=job.request_ttl_seconds,
                invocation_timeout_seconds=job.invocation_timeout_seconds,
            )
        )
    except errors.GatewayError as error:
        services.records.fail_submission(inference_id, error.code, clock(), created)
        raise
    except Exception:
        services.records.fail_submission(
            inference_id, "InternalFailure", clock(), created
        )
        raise

    _link(submission, services, settings, clock())
    logger.info("async inference submitted", inference_id=inference_id)
    ASYNC_SUBMITTED.emit(1, endpoint=job.endpoint)
    return submission


def _link(
    submission: AsyncSubmission, services: AsyncServices, settings: Settings, now: int
) -> None:
    early = services.records.link_submission(
        submission.inference_id,
        submission.output_location,
        submission.failure_location,
        now,
    )
    for location in early:
        # The object landed before the link: its notification found nothing to
        # complete, so it is sent to the results queue again.
        logger.info("result arrived before its link; replaying")
        services.queues.send(settings.results_queue_url, replay_event(location))


def replay_event(location: str) -> str:
    """An S3 notification for an object, shaped as S3 sends it to the results queue."""
    bucket, key = split_location(location)
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
    }
    return json.dumps({"Records": [record]})


def principal(caller_id: str | None) -> str | None:
    """The principal an AWS caller id names, the same whether a signed request or a
    queue message carries it: an assumed role's id without its session
    (``AROA…:session``); a user's, a federated user's (``account:name``) or an
    account's as it is. None when there is none."""
    if not caller_id:
        return None
    if caller_id.startswith("AROA"):
        return caller_id.split(":", 1)[0]
    return caller_id


def get_inference(
    inference_id: str,
    services: AsyncServices,
    settings: Settings,
    *,
    caller: str | None = None,
    inline: bool = False,
    clock: Callable[[], int] = now_ms,
) -> InferenceView:
    """Read an inference's status and, when it is done, where its result is.

    An inference submitted by a known principal is shown to that principal only: to
    anyone else it does not exist. Where IAM names no caller (it always does behind
    the API's IAM authorization; the offline stack checks none), nothing is compared.
    """
    record = services.records.get(inference_id)
    if record is None:
        raise errors.InferenceNotFoundError(inference_id)
    if record.owner is not None and caller is not None and record.owner != caller:
        raise errors.InferenceNotFoundError(inference_id)

    status = record.status_at(clock())
    if status is not Status.COMPLETED or record.result_location is None:
        return InferenceView(record, status)

    url = services.store.presign(
        record.result_location, settings.result_url_expiry_seconds
    )
    result = None
    if inline:
        stored = services.store.describe(
            record.result_location, read_up_to=INLINE_RESULT_LIMIT
        )
        result = inline_text(stored)
    return InferenceView(record, status, result_url=url, result=result)
