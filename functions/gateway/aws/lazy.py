"""Clients made on first use, so a path never pays for a client it does not call."""

import threading
from collections.abc import Callable
from typing import Any, cast


class _LazyClient:
    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
        return getattr(self._client, name)


def lazy_client[Client](factory: Callable[[], Client]) -> Client:
    """Stand in for the client ``factory`` makes, making it on first use."""
    return cast(Client, _LazyClient(factory))
