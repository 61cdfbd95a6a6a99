"""The AWS clients and core services each function uses, built once per container.

Each is built the first time a path needs it, so a path never pays for a client it
does not use.
"""

from functools import cache

from aws_lambda_powertools.utilities import parameters

from gateway.aws import queues, records, sagemaker, storage
from gateway.core.async_jobs import AsyncServices
from gateway.core.delivery import Deliverer
from gateway.core.results import ResultServices
from gateway.core.webhooks import CallbackPolicy, WebhookSender
from gateway.models.settings import get_settings

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
def async_services() -> AsyncServices:
    """What submitting and reading async inferences needs."""
    settings = get_settings()
    return AsyncServices(
        sagemaker=sagemaker_runtime(),
        records=records.InferenceRecords(
            records.create_client(),
            settings.inference_table,
            settings.result_retention_days,
        ),
        store=storage.ObjectStore(storage.create_client(), settings.gateway_bucket),
        queues=queues.MessageQueues(queues.create_client()),
    )


@cache
def result_services() -> ResultServices:
    """What finishing and delivering async results needs."""
    settings = get_settings()
    shared = async_services()
    sender = WebhookSender(
        webhook_secret,
        policy=CallbackPolicy(allow_loopback=settings.allow_loopback_callbacks),
    )
    deliverer = Deliverer(sender, shared.queues, settings.delivery_dlq_url)
    return ResultServices(async_services=shared, deliverer=deliverer)


def webhook_secret() -> str:
    """The key webhooks are signed with, cached for a few minutes."""
    secret = parameters.get_secret(
        get_settings().webhook_secret_arn, max_age=SECRET_MAX_AGE_SECONDS
    )
    return str(secret)
