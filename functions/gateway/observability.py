"""Figures about endpoints and deliveries, in CloudWatch's embedded metric format.

Each call writes one record from a metric set of its own thread, so the requests of a
batch, which run side by side, never mix their figures. Powertools adds the ``service``
dimension; figures about one endpoint also carry ``endpoint``.
"""

import threading

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.base import MetricManager

logger = Logger(child=True)

COUNT = MetricUnit.Count
MILLISECONDS = MetricUnit.Milliseconds


def emit(
    figures: dict[str, tuple[MetricUnit, float]], endpoint: str | None = None
) -> None:
    """Write figures as one record; a failure to write never fails a request."""
    manager = _manager()
    try:
        if endpoint is not None:
            manager.add_dimension(name="endpoint", value=endpoint)
        for name, (unit, value) in figures.items():
            manager.add_metric(name=name, unit=unit, value=value)
        manager.flush_metrics()
    except Exception:  # figures are never worth a request
        manager.clear_metrics()
        logger.warning("metrics not written", exc_info=True)


_local = threading.local()


def _manager() -> MetricManager:
    # One per thread, reused: building a manager costs more than the record it writes.
    manager: MetricManager | None = getattr(_local, "manager", None)
    if manager is None:
        manager = _local.manager = MetricManager()
    return manager
