"""X-Ray tracing through Powertools' Tracer, imported only where it will trace.

Importing the Tracer imports the X-Ray SDK (about 25 ms of a cold start, measured by
``make bench``); where tracing is off (``POWERTOOLS_TRACE_DISABLED``, or under a local
SAM runner, as Powertools itself decides) the handler goes untraced and skips it.
"""

import os
from collections.abc import Callable
from typing import Any


def tracing_enabled() -> bool:
    """Tell whether this environment traces, by Powertools' own rules."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in {"1", "true"}
    local = bool(os.environ.get("AWS_SAM_LOCAL"))
    in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    return in_lambda and not disabled and not local


def traced[Handler: Callable[..., Any]](handler: Handler) -> Handler:
    """Trace a Lambda handler, never capturing its response (it may hold results)."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer  # noqa: PLC0415 - only where tracing is on

    traced_handler: Handler = Tracer().capture_lambda_handler(capture_response=False)(
        handler
    )
    return traced_handler
