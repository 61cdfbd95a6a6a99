"""The AWS clients and core services each function uses, built once per container.

Each is built, and its modules imported, the first time a path needs it: a function
never pays at its cold start for a path it does not serve (the sync route needs only
SageMaker Runtime).
"""

# ruff: noqa: PLC0415 - imports stay inside the builders on purpose (see above)

from functools import cache
from typing import TYPE_CHECKING

from gateway.aws.lazy import lazy
from gateway.models.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from gateway.aws.queues import MessageQueues
    from gateway.aws.records import InferenceRecords
    from gateway.aws.sagemaker import SageMakerRuntime
    from gateway.aws.storage import ObjectStore
    from gateway.core.async_jobs import AsyncServices
    from gateway.core.delivery import Deliverer
    from gateway.core.queue_requests import QueueServices
    from gateway.core.results import ResultServices
    from gateway.core.webhooks import WebhookSender

# SageMaker's advice for a client of a model that may take its full 60 s.
QUEUE_READ_TIMEOUT_SECONDS = 70.0
# The webhook secret is re-read at most this often, so a rotation reaches warm containers.
SECRET_MAX_AGE_SECONDS = 300
# Longer than the request queue's retention (4 days) plus its dead-letter queue's
# (14 days), so no redelivery or redrive outlives the memory of its outcome.
REQUEST_MEMORY_SECONDS = 19 * 86_400


@cache
def sagemaker_runtime() -> "SageMakerRuntime":
    """SageMaker Runtime with the sync path's timeouts and a single attempt."""
    from gateway.aws import sagemaker

    settings = get_settings()
    client = sagemaker.create_client(
        settings.sync_timeout_seconds, settings.connect_timeout_seconds
    )
    return sagemaker.SageMakerRuntime(client, read_timeout=settings.sync_timeout_seconds)


@cache
def dynamodb() -> "DynamoDBClient":
    """The DynamoDB client every table of a function shares."""
    from gateway.aws import records

    return lazy(records.create_client)


@cache
def inference_records() -> "InferenceRecords":
    """The inference records and result locations in the gateway's table."""
    from gateway.aws.records import InferenceRecords

    settings = get_settings()
    return InferenceRecords(
        dynamodb(), settings.inference_table, settings.result_retention_days
    )


@cache
def object_store() -> "ObjectStore":
    """The gateway's bucket."""
    from gateway.aws import storage

    return storage.ObjectStore(lazy(storage.create_client), get_settings().gateway_bucket)


@cache
def message_queues() -> "MessageQueues":
    """Replies, dead letters and replayed results."""
    from gateway.aws import queues

    return queues.MessageQueues(lazy(queues.create_client))


@cache
def async_services() -> "AsyncServices":
    """What submitting and reading async inferences needs."""
    from gateway.aws import sagemaker
    from gateway.core.async_jobs import AsyncServices

    settings = get_settings()
    client = lazy(
        lambda: sagemaker.create_client(
            settings.sync_timeout_seconds, settings.connect_timeout_seconds
        )
    )
    return AsyncServices(
        sagemaker=sagemaker.SageMakerRuntime(client, settings.sync_timeout_seconds),
        records=inference_records(),
        store=object_store(),
        queues=message_queues(),
    )


@cache
def webhook_sender() -> "WebhookSender":
    """Signed webhooks under the deployment's callback policy."""
    from gateway.core.webhooks import CallbackPolicy, WebhookSender

    policy = CallbackPolicy(allow_loopback=get_settings().allow_loopback_callbacks)
    return WebhookSender(webhook_secret, policy=policy)


def deliverer() -> "Deliverer":
    """Deliveries to callbacks; the webhook sender is made for the first webhook."""
    from gateway.core.delivery import Deliverer

    return Deliverer(
        lazy(webhook_sender), message_queues(), get_settings().delivery_dlq_url
    )


@cache
def result_services() -> "ResultServices":
    """What finishing and delivering async results needs."""
    from gateway.core.results import ResultServices

    return ResultServices(inference_records(), object_store(), deliverer())


@cache
def queue_services() -> "QueueServices":
    """What answering queue requests needs; the model may take its full minute."""
    from gateway.aws import sagemaker
    from gateway.aws.claims import RequestClaims
    from gateway.core.queue_requests import QueueServices, Replier

    settings = get_settings()
    client = lazy(
        lambda: sagemaker.create_client(
            QUEUE_READ_TIMEOUT_SECONDS, settings.connect_timeout_seconds
        )
    )
    # Built for the first reply or dead letter: a request may have neither.
    replier = lazy(
        lambda: Replier(
            deliverer(),
            message_queues(),
            object_store(),
            request_dlq_url=settings.request_dlq_url,
            url_expiry_seconds=settings.result_url_expiry_seconds,
        )
    )
    return QueueServices(
        sagemaker=sagemaker.SageMakerRuntime(
            client, read_timeout=QUEUE_READ_TIMEOUT_SECONDS
        ),
        # Built for the first async request: most are sync.
        async_services=lazy(async_services),
        replier=replier,
        claims=RequestClaims(
            dynamodb(), settings.idempotency_table, REQUEST_MEMORY_SECONDS
        ),
    )


def webhook_secret() -> str:
    """The key webhooks are signed with, cached for a few minutes."""
    from aws_lambda_powertools.utilities import parameters

    secret = parameters.get_secret(
        get_settings().webhook_secret_arn, max_age=SECRET_MAX_AGE_SECONDS
    )
    return str(secret)
