"""The AWS clients and core services each function uses, built once per container.

Each is built, and its modules imported, the first time a path needs it: a function
never pays at its cold start for a path it does not serve (the sync route needs only
SageMaker Runtime).
"""

# ruff: noqa: PLC0415 - imports stay inside the builders on purpose (see above)

from functools import cache
from typing import TYPE_CHECKING

from gateway.aws import sagemaker
from gateway.aws.lazy import lazy_client
from gateway.models.settings import get_settings

if TYPE_CHECKING:
    from gateway.core.async_jobs import AsyncServices
    from gateway.core.queue_requests import QueueServices
    from gateway.core.results import ResultServices
    from gateway.core.webhooks import WebhookSender

# SageMaker's advice for a client of a model that may take its full 60 s.
QUEUE_READ_TIMEOUT_SECONDS = 70.0
# The webhook secret is re-read at most this often, so a rotation reaches warm containers.
SECRET_MAX_AGE_SECONDS = 300


@cache
def sagemaker_runtime() -> sagemaker.SageMakerRuntime:
    """SageMaker Runtime with the sync path's timeouts and a single attempt."""
    settings = get_settings()
    client = sagemaker.create_client(
        settings.sync_timeout_seconds, settings.connect_timeout_seconds
    )
    return sagemaker.SageMakerRuntime(client, read_timeout=settings.sync_timeout_seconds)


@cache
def async_services() -> "AsyncServices":
    """What submitting and reading async inferences needs."""
    from gateway.aws import queues, records, storage
    from gateway.core.async_jobs import AsyncServices

    settings = get_settings()
    client = lazy_client(
        lambda: sagemaker.create_client(
            settings.sync_timeout_seconds, settings.connect_timeout_seconds
        )
    )
    return AsyncServices(
        sagemaker=sagemaker.SageMakerRuntime(client, settings.sync_timeout_seconds),
        records=records.InferenceRecords(
            lazy_client(records.create_client),
            settings.inference_table,
            settings.result_retention_days,
        ),
        store=storage.ObjectStore(
            lazy_client(storage.create_client), settings.gateway_bucket
        ),
        queues=queues.MessageQueues(lazy_client(queues.create_client)),
    )


@cache
def webhook_sender() -> "WebhookSender":
    """Signed webhooks under the deployment's callback policy."""
    from gateway.core.webhooks import CallbackPolicy, WebhookSender

    policy = CallbackPolicy(allow_loopback=get_settings().allow_loopback_callbacks)
    return WebhookSender(webhook_secret, policy=policy)


@cache
def result_services() -> "ResultServices":
    """What finishing and delivering async results needs."""
    from gateway.core.delivery import Deliverer
    from gateway.core.results import ResultServices

    shared = async_services()
    deliverer = Deliverer(
        webhook_sender(), shared.queues, get_settings().delivery_dlq_url
    )
    return ResultServices(async_services=shared, deliverer=deliverer)


@cache
def queue_services() -> "QueueServices":
    """What answering queue requests needs; the model may take its full minute."""
    from gateway.core.delivery import Deliverer
    from gateway.core.queue_requests import QueueServices, Replier

    settings = get_settings()
    client = lazy_client(
        lambda: sagemaker.create_client(
            QUEUE_READ_TIMEOUT_SECONDS, settings.connect_timeout_seconds
        )
    )
    shared = async_services()
    replier = Replier(
        Deliverer(webhook_sender(), shared.queues, settings.delivery_dlq_url),
        shared.queues,
        shared.store,
        request_dlq_url=settings.request_dlq_url,
        url_expiry_seconds=settings.result_url_expiry_seconds,
    )
    return QueueServices(
        sagemaker=sagemaker.SageMakerRuntime(
            client, read_timeout=QUEUE_READ_TIMEOUT_SECONDS
        ),
        async_services=shared,
        replier=replier,
    )


def webhook_secret() -> str:
    """The key webhooks are signed with, cached for a few minutes."""
    from aws_lambda_powertools.utilities import parameters

    secret = parameters.get_secret(
        get_settings().webhook_secret_arn, max_age=SECRET_MAX_AGE_SECONDS
    )
    return str(secret)
