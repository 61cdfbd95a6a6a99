"""Which callback targets a caller may name: public webhooks and allowed reply queues."""

from urllib.parse import urlsplit

from gateway.core.errors import CallbackRefusedError
from gateway.models.records import Callback, CallbackKind
from gateway.models.settings import Settings


def check_callback(callback: Callback, settings: Settings) -> None:
    """Refuse a callback the deployment does not allow, before any work is done."""
    if callback.kind is CallbackKind.WEBHOOK:
        # Imported where a webhook is named: most requests name none (3 ms a start).
        from gateway.core.webhooks import (  # noqa: PLC0415
            CallbackPolicy,
            check_webhook_url,
            resolve_host,
        )

        policy = CallbackPolicy(allow_loopback=settings.allow_loopback_callbacks)
        check_webhook_url(callback.target, policy, resolve_host)
        return

    if settings.allow_loopback_callbacks and _is_loopback_url(callback.target):
        return
    if queue_arn(callback.target) not in settings.allowed_reply_queues:
        raise CallbackRefusedError("the reply queue is not one this gateway may send to")


def queue_arn(url: str) -> str | None:
    """The ARN of the queue an SQS queue URL names, or None if it names none."""
    try:
        parts = urlsplit(url)
    except ValueError:  # such as an unclosed IPv6 bracket
        return None
    host = (parts.hostname or "").lower()
    path = parts.path.strip("/").split("/")
    if parts.scheme != "https" or len(path) != 2 or not path[0].isdigit():
        return None

    labels = host.split(".")
    if labels[0] == "sqs" and len(labels) >= 4:
        region, suffix = labels[1], ".".join(labels[2:])
    elif labels[1:2] == ["queue"] and len(labels) >= 4:
        region, suffix = labels[0], ".".join(labels[2:])
    elif host == "queue.amazonaws.com":
        region, suffix = "us-east-1", "amazonaws.com"
    else:
        return None

    partition = {"amazonaws.com": "aws", "amazonaws.com.cn": "aws-cn"}.get(suffix)
    if partition is None:
        return None
    account, name = path
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


def _is_loopback_url(url: str) -> bool:
    """A plain local queue URL: http(s), 127.0.0.1, no credentials, a queue path."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme not in {"http", "https"} or parts.username or parts.password:
        return False
    path = parts.path.strip("/").split("/")
    return parts.hostname == "127.0.0.1" and len(path) == 2 and path[0].isdigit()
