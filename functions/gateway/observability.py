"""Figures about endpoints and deliveries, in CloudWatch's embedded metric format.

Each write is one record on standard output, where Lambda's log stream takes it, so
the requests of a batch, which run side by side, never mix their figures. Records
carry the ``service`` dimension (``POWERTOOLS_SERVICE_NAME``) and, for figures about
one endpoint, ``endpoint``; the namespace is ``POWERTOOLS_METRICS_NAMESPACE``.

A kind of record (:class:`Figures`) names its figures and units once; all but the
timestamp and the values is put together the first time an endpoint needs it.
Powertools' metric manager spent about 40 µs on each record (name and unit checks,
debug messages formatted and dropped, two writes), a sixth of what the sync route
added to a model call (``make bench``).
"""

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Literal

from aws_lambda_powertools import Logger

logger = Logger(child=True)

type Unit = Literal["Count", "Milliseconds"]
COUNT: Unit = "Count"
MILLISECONDS: Unit = "Milliseconds"
# More endpoints than a deployment allows; beyond it the lines start again.
_MAX_LINES = 256
# A record's text from its timestamp and its values.
type Line = Callable[..., str]


class Figures:
    """One kind of record: one or two figures and their units, in the order values
    come."""

    def __init__(self, *figures: tuple[str, Unit]) -> None:
        if len(figures) not in (1, 2):
            raise ValueError("a record holds one or two figures")
        self._figures = figures
        self._lines: dict[str | None, Line] = {}

    def emit(self, *values: float, endpoint: str | None = None) -> None:
        """Write one record; a failure to write never fails a request."""
        try:
            line = self._lines.get(endpoint) or self._line(endpoint)
            sys.stdout.write(line(time.time_ns() // 1_000_000, *values))
        except Exception:  # figures are never worth a request
            logger.warning("metrics not written", exc_info=True)

    def _line(self, endpoint: str | None) -> Line:
        if len(self._lines) >= _MAX_LINES:
            self._lines.clear()
        namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "InferenceGateway")
        service = os.environ.get("POWERTOOLS_SERVICE_NAME", "")
        dimensions = {"service": service} if service else {}
        if endpoint is not None:
            dimensions["endpoint"] = endpoint
        directive = {
            "Namespace": namespace,
            "Dimensions": [list(dimensions)],
            "Metrics": [{"Name": name, "Unit": unit} for name, unit in self._figures],
        }
        head = json.dumps({"CloudWatchMetrics": [directive]}, separators=(",", ":"))
        # The directive closes "_aws"; the dimensions follow as top-level keys.
        fixed = head[1:] + "".join(
            f",{json.dumps(key)}:{json.dumps(value)}" for key, value in dimensions.items()
        )
        names = [json.dumps(name) for name, _ in self._figures]
        separators = [f",{fixed},{names[0]}:["] + [f"],{name}:[" for name in names[1:]]
        line = _line('{"_aws":{"Timestamp":', separators, "]}\n")
        self._lines[endpoint] = line
        return line


def _line(head: str, separators: list[str], tail: str) -> Line:
    """A record's text from its timestamp and values, as one f-string.

    Filling a template with % cost about 10 µs more of a request in front of a model
    call, where little of the interpreter is in the processor's caches (``make
    bench``): an f-string is put together by the same code as the rest of the
    request's strings.
    """
    if len(separators) == 1:
        (first,) = separators
        return lambda timestamp, a: f"{head}{timestamp}{first}{a!r}{tail}"
    first, second = separators
    return lambda timestamp, a, b: f"{head}{timestamp}{first}{a!r}{second}{b!r}{tail}"


INVOKED = Figures(("Invocations", COUNT), ("ModelLatency", MILLISECONDS))
THROTTLED = Figures(("Invocations", COUNT), ("Throttles", COUNT))
MODEL_FAILED = Figures(("Invocations", COUNT), ("ModelErrors", COUNT))
INVOCATION_FAILED = Figures(("Invocations", COUNT), ("InvocationFailures", COUNT))
# Written without an endpoint: alarms watch these across all of them.
THROTTLES = Figures(("Throttles", COUNT))
DELIVERY_FAILED = Figures(("DeliveryFailures", COUNT))
ASYNC_SUBMITTED = Figures(("AsyncSubmitted", COUNT))
ASYNC_COMPLETED = Figures(("AsyncCompleted", COUNT))
ASYNC_FAILED = Figures(("AsyncFailed", COUNT))
