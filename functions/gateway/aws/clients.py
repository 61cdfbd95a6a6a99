"""One botocore session per container, and the clients made from it.

The functions use botocore directly: boto3 adds resources and s3transfer, which they do
not use and whose import costs about 25 ms of every cold start (measured by
``make bench``). Endpoints, region and credentials come from the environment, as boto3's
would.
"""

import threading
from functools import cache
from typing import Any

import botocore.session
from botocore.config import Config

_creating = threading.Lock()


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


def reset() -> None:
    """Start a new session for the clients made from now on (tests use this)."""
    _session.cache_clear()


def create(service: str, config: Config) -> Any:
    """Create a client; a session may make only one client at a time."""
    with _creating:
        return _session().create_client(service, config=config)
