"""Lambda entry points, one module per function, and what a function does as it starts.

A function's start is the import of its handler module and its first event, when its
clients are made. Meanwhile the cyclic garbage collector waits: what is made then
(modules, models, clients) lives as long as the process, so collections during the
start only walk it again and again (about 20 ms of a cold start, measured by
``make bench``). When the first event is served, what exists is left out of every
later collection (``gc.freeze``), which keeps those short too, and collection resumes.
Outside Lambda (tests, tools) nothing waits.

The functions use no pydantic plugins, so pydantic is told not to look for any: it
would read the metadata of every installed distribution at the first model.
"""

import functools
import gc
import os
from collections.abc import Callable
from typing import Any, cast

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "1")
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    gc.disable()


def ends_start[Handler: Callable[..., Any]](handler: Handler) -> Handler:
    """Make the handler's first event, however it ends, end the function's start."""

    @functools.wraps(handler)
    def handle(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        finally:
            if not gc.isenabled():
                gc.freeze()
                gc.enable()

    return cast(Handler, handle)
