"""Clients and services made on first use, so a path never pays for one it does not
call (the webhook sender, a queue function's replier and async services, too)."""

import threading
from collections.abc import Callable
from typing import Any, cast


class _Lazy:
    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._made: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._made is None:
            with self._lock:
                if self._made is None:
                    self._made = self._factory()
        return getattr(self._made, name)


def lazy[Made](factory: Callable[[], Made]) -> Made:
    """Stand in for what ``factory`` makes, making it on first use."""
    return cast(Made, _Lazy(factory))
