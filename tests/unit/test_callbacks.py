"""Which reply queues a deployment may send to."""

import pytest

from gateway.core.callbacks import check_callback, queue_arn
from gateway.core.errors import CallbackRefusedError
from gateway.models.records import Callback, CallbackKind
from gateway.models.settings import Settings

ALLOWED = "arn:aws:sqs:eu-west-1:123456789012:replies"


@pytest.mark.parametrize(
    ("url", "arn"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/replies", ALLOWED),
        ("https://eu-west-1.queue.amazonaws.com/123456789012/replies", ALLOWED),
        (
            "https://queue.amazonaws.com/123456789012/r",
            "arn:aws:sqs:us-east-1:123456789012:r",
        ),
        ("https://sqs.cn-north-1.amazonaws.com.cn/1/r", "arn:aws-cn:sqs:cn-north-1:1:r"),
        ("http://sqs.eu-west-1.amazonaws.com/123456789012/replies", None),
        ("https://sqs.eu-west-1.example.com/123456789012/replies", None),
        ("https://sqs.eu-west-1.amazonaws.com/replies", None),
    ],
)
def test_queue_url_names_its_arn_or_nothing(url, arn):
    assert queue_arn(url) == arn


@pytest.mark.parametrize(
    ("url", "loopback_allowed", "refused"),
    [
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/replies", False, False),
        ("https://sqs.eu-west-1.amazonaws.com/123456789012/other", False, True),
        ("http://127.0.0.1:5000/123456789012/replies", False, True),
        ("http://127.0.0.1:5000/123456789012/replies", True, False),
        ("http://user:pw@127.0.0.1:5000/123456789012/replies", True, True),
        ("https://localhost/123456789012/replies", True, True),
        ("http://[::1]:5000/123456789012/replies", True, True),
        ("http://127.0.0.1:5000/hooks", True, True),
    ],
)
def test_reply_queue_is_refused_unless_allowed(url, loopback_allowed, refused):
    settings = Settings(
        allowed_reply_queues=frozenset({ALLOWED}),
        allow_loopback_callbacks=loopback_allowed,
    )
    callback = Callback(CallbackKind.QUEUE, url)

    if refused:
        with pytest.raises(CallbackRefusedError):
            check_callback(callback, settings)
    else:
        check_callback(callback, settings)
