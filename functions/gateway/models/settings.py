"""Settings of every function, read once from the environment the template sets."""

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

# SageMaker's defaults when a request names no RequestTTLSeconds or
# InvocationTimeoutSeconds (InvokeEndpointAsync reference).
DEFAULT_REQUEST_TTL_SECONDS = 21_600
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 900


class Settings(BaseModel):
    """Deployment settings; the template's parameters arrive here."""

    model_config = ConfigDict(frozen=True)

    allowed_endpoints: frozenset[str] = frozenset()
    # API Gateway's REST integration gives up at 29 s: the model gets less, so the
    # gateway can still say why it gave up.
    sync_timeout_seconds: float = Field(default=25.0, gt=0, le=27)
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    gateway_bucket: str = ""
    inference_table: str = ""
    results_queue_url: str = ""
    delivery_dlq_url: str = ""
    webhook_secret_arn: str = ""
    allowed_input_locations: tuple[str, ...] = ()
    allowed_reply_queues: frozenset[str] = frozenset()
    request_queue_url: str = ""
    request_dlq_url: str = ""
    idempotency_table: str = ""
    # Requests of one batch in flight at once: the work waits on the network.
    queue_concurrency: int = Field(default=10, ge=1, le=100)
    # The request queue's redrive limit: the last receive answers instead of retrying.
    request_max_receive_count: int = Field(default=5, ge=1)
    result_url_expiry_seconds: int = Field(default=900, ge=60, le=43_200)
    result_retention_days: int = Field(default=30, ge=1)
    swagger_ui: bool = True
    # Only the offline stack sets this: callbacks to 127.0.0.1 for local receivers.
    allow_loopback_callbacks: bool = False

    def allows(self, endpoint: str) -> bool:
        """Tell whether this deployment may invoke ``endpoint``."""
        return endpoint in self.allowed_endpoints

    def allows_input(self, location: str) -> bool:
        """Tell whether a caller may name ``location`` as an async input."""
        return any(location.startswith(prefix) for prefix in self.allowed_input_locations)

    @property
    def output_path(self) -> str:
        """Where SageMaker writes async results for this deployment."""
        return f"s3://{self.gateway_bucket}/outputs"

    @property
    def failure_path(self) -> str:
        """Where SageMaker writes async failures for this deployment."""
        return f"s3://{self.gateway_bucket}/failures"


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _prefixes(value: str) -> tuple[str, ...]:
    # A bucket named alone stands for all of it; a prefix ends where it says.
    return tuple(
        name if name.count("/") > 2 else name.rstrip("/") + "/" for name in _names(value)
    )


_TEXT = {
    "sync_timeout_seconds": "SYNC_TIMEOUT_SECONDS",
    "gateway_bucket": "GATEWAY_BUCKET",
    "inference_table": "INFERENCE_TABLE",
    "results_queue_url": "RESULTS_QUEUE_URL",
    "delivery_dlq_url": "DELIVERY_DLQ_URL",
    "webhook_secret_arn": "WEBHOOK_SECRET_ARN",
    "request_queue_url": "REQUEST_QUEUE_URL",
    "request_dlq_url": "REQUEST_DLQ_URL",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "queue_concurrency": "QUEUE_CONCURRENCY",
    "request_max_receive_count": "REQUEST_MAX_RECEIVE_COUNT",
    "result_url_expiry_seconds": "RESULT_URL_EXPIRY_SECONDS",
    "result_retention_days": "RESULT_RETENTION_DAYS",
    "allow_loopback_callbacks": "ALLOW_LOOPBACK_CALLBACKS",
    "swagger_ui": "SWAGGER_UI",
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings once per execution environment."""
    env = os.environ
    values: dict[str, object] = {
        "allowed_endpoints": frozenset(_names(env.get("ALLOWED_ENDPOINTS", ""))),
        "allowed_input_locations": _prefixes(env.get("ALLOWED_INPUT_LOCATIONS", "")),
        "allowed_reply_queues": frozenset(_names(env.get("ALLOWED_REPLY_QUEUES", ""))),
    }
    values.update({field: env[name] for field, name in _TEXT.items() if name in env})
    return Settings.model_validate(values)
