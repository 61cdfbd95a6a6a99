"""Figures about endpoints and deliveries, in CloudWatch's embedded metric format.

Each call writes one record to standard output, where Lambda's log stream takes it,
so the requests of a batch, which run side by side, never mix their figures. Records
carry the ``service`` dimension (``POWERTOOLS_SERVICE_NAME``) and, for figures about
one endpoint, ``endpoint``; the namespace is ``POWERTOOLS_METRICS_NAMESPACE``.

The record is written here rather than by Powertools' metric manager, which spent
about 40 µs on each one (name and unit checks, debug messages formatted and dropped,
two writes): a sixth of what the sync route added to a model call (``make bench``).
"""

import json
import os
import sys
import time
from functools import lru_cache
from typing import Literal

from aws_lambda_powertools import Logger

logger = Logger(child=True)

type Unit = Literal["Count", "Milliseconds"]
COUNT: Unit = "Count"
MILLISECONDS: Unit = "Milliseconds"


def emit(figures: dict[str, tuple[Unit, float]], endpoint: str | None = None) -> None:
    """Write figures as one record; a failure to write never fails a request."""
    values = ",".join(
        f'"{name}":[{float(value)!r}]' for name, (_, value) in figures.items()
    )
    units = tuple((name, unit) for name, (unit, _) in figures.items())
    try:
        record = _RECORD.format(
            timestamp=time.time_ns() // 1_000_000,
            fixed=_fixed_part(units, endpoint),
            values=values,
        )
        sys.stdout.write(record)
    except Exception:  # figures are never worth a request
        logger.warning("metrics not written", exc_info=True)


_RECORD = '{{"_aws":{{"Timestamp":{timestamp},{fixed},{values}}}\n'


@lru_cache(maxsize=1024)
def _fixed_part(units: tuple[tuple[str, Unit], ...], endpoint: str | None) -> str:
    """What a record's figures, units and endpoint make of it, besides its values."""
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "InferenceGateway")
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "")
    dimensions = {"service": service} if service else {}
    if endpoint is not None:
        dimensions["endpoint"] = endpoint
    directive = {
        "Namespace": namespace,
        "Dimensions": [list(dimensions)],
        "Metrics": [{"Name": name, "Unit": unit} for name, unit in units],
    }
    head = json.dumps({"CloudWatchMetrics": [directive]}, separators=(",", ":"))
    tail = json.dumps(dimensions, separators=(",", ":"))
    # The directive closes "_aws"; the dimensions follow as top-level keys.
    return head[1:] + ("," + tail[1:-1] if dimensions else "")
