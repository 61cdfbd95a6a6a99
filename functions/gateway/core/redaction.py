"""What a caller may read of SageMaker's messages: no account ids, no ARNs."""

import re

_ACCOUNT_DETAILS = re.compile(r"arn:aws[\w-]*:\S+|\b\d{12}\b|https://\S*console\.aws\S*")


def redact(message: str) -> str:
    """Drop account ids, ARNs and console links from a message bound for a caller."""
    return _ACCOUNT_DETAILS.sub("<redacted>", message)
