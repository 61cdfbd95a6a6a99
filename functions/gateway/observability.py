"""Figures about endpoints and deliveries, in CloudWatch's embedded metric format.

Each write is one record on standard output, where Lambda's log stream takes it, so
the requests of a batch, which run side by side, never mix their figures. Records
carry the ``service`` dimension (``POWERTOOLS_SERVICE_NAME``) and, for figures about
one endpoint, ``endpoint``; the namespace is ``POWERTOOLS_METRICS_NAMESPACE``.

A kind of record (:class:`Figures`) names its figures and units once; all but the
timestamp and the values is written into a template the first time an endpoint
needs it. Powertools' metric manager spent about 40 µs on each record (name and unit
checks, debug messages formatted and dropped, two writes), a sixth of what the sync
route added to a model call (``make bench``).
"""

import json
import os
import sys
import time
from typing import Literal

from aws_lambda_powertools import Logger

logger = Logger(child=True)

type Unit = Literal["Count", "Milliseconds"]
COUNT: Unit = "Count"
MILLISECONDS: Unit = "Milliseconds"
# More endpoints than a deployment allows; beyond it the templates start again.
_MAX_TEMPLATES = 256


class Figures:
    """One kind of record: its figures and their units, in the order values come."""

    def __init__(self, *figures: tuple[str, Unit]) -> None:
        self._figures = figures
        self._templates: dict[str | None, str] = {}

    def emit(self, *values: float, endpoint: str | None = None) -> None:
        """Write one record; a failure to write never fails a request."""
        try:
            template = self._templates.get(endpoint) or self._template(endpoint)
            timestamp = time.time_ns() // 1_000_000
            sys.stdout.write(template % (timestamp, *values))
        except Exception:  # figures are never worth a request
            logger.warning("metrics not written", exc_info=True)

    def _template(self, endpoint: str | None) -> str:
        if len(self._templates) >= _MAX_TEMPLATES:
            self._templates.clear()
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
        values = "".join(f',"{name}":[%r]' for name, _ in self._figures)
        # Only the timestamp and the values are placeholders: a % of a name is text.
        template = '{"_aws":{"Timestamp":%d,' + fixed.replace("%", "%%") + values + "}\n"
        self._templates[endpoint] = template
        return template


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
