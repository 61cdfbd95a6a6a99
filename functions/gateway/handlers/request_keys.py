"""The sync route's log keys, worked out only when one of its records is written.

Powertools' ``inject_lambda_context`` sets a request's keys (cold start, function
name, memory, ARN, request id) as each request starts, and ``append_keys`` adds more:
about 25 µs of CPU a request on the sync route, where the budget is a fiftieth of a
model call (``make bench``). That route writes a record only when a request fails, so
it just notes the request it serves; this filter, on the Powertools handler, gives
the keys to the records written meanwhile. A record's own attributes win over the
logger's keys (Powertools lets a record's extras override them), so no key of an
earlier request shows, and a key set to None is left out.
"""

import itertools
import logging
import os
from typing import TYPE_CHECKING, Any

from gateway.handlers.http_io import api_request_id

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Started ahead of any request, a process has no cold start to report.
_PROVISIONED = (
    os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "provisioned-concurrency"
)


class RequestKeys(logging.Filter):
    """Adds the keys of the request being served to every record written meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self._request: tuple[dict[str, Any], LambdaContext, str, bool] | None = None
        self._events = itertools.count()
        self.inference_id: str | None = None

    def install(self, logger: "Logger") -> None:
        """Filter the records of ``logger`` and of its children."""
        logger.registered_handler.addFilter(self)

    def cold_start(self) -> bool:
        """Count an event of this process, whatever its route; tell whether it is the
        process's first (Powertools keeps its own count, of decorated handlers only)."""
        return next(self._events) == 0 and not _PROVISIONED

    def note(
        self,
        event: dict[str, Any],
        context: "LambdaContext",
        endpoint: str,
        cold_start: bool,
    ) -> None:
        """A request starts: records written from now on carry its keys."""
        self._request = (event, context, endpoint, cold_start)
        self.inference_id = None

    def forget(self) -> None:
        """The request is answered: records carry no keys of it any more."""
        self._request = None
        self.inference_id = None

    def filter(self, record: logging.LogRecord) -> bool:
        """Give ``record`` the request's keys; every record is kept."""
        if self._request is not None:
            record.__dict__.update(self.keys())
        return True

    def keys(self) -> dict[str, Any]:
        """The keys of the request being served, as ``inject_lambda_context`` names them."""
        if self._request is None:
            return {}
        event, context, endpoint, cold_start = self._request
        return {
            "cold_start": cold_start,
            "function_name": context.function_name,
            "function_memory_size": context.memory_limit_in_mb,
            "function_arn": context.invoked_function_arn,
            "function_request_id": context.aws_request_id,
            "correlation_id": api_request_id(event),
            "endpoint": endpoint,
            "inference_id": self.inference_id,
        }
