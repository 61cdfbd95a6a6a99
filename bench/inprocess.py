"""Running a function's handler inside the benchmark's own process, and its events."""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import os
import re
import secrets
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
EVENTS = ROOT / "events"

Handler = Callable[[dict[str, Any], Any], Any]
# Ids a request or a write is keyed by: uuids, and the hex digests Powertools'
# idempotency layer names its records with.
_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\b[0-9a-f]{64}\b|\b[0-9a-f]{32}\b"
)


def load_event(name: str) -> dict[str, Any]:
    """Load a sample event from events/."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def without_header(event: dict[str, Any], name: str) -> dict[str, Any]:
    """Return a copy of a proxy event without one header (any case)."""
    event = copy.deepcopy(event)
    for key in ("headers", "multiValueHeaders"):
        values = event.get(key) or {}
        for header in [h for h in values if h.lower() == name.lower()]:
            del values[header]
    return event


def sqs_event(bodies: list[str], queue_arn: str) -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping delivers it."""
    records = [
        {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": f"bench-receipt-{index}",
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1796385605000",
                "SenderId": "AIDAEXAMPLESENDER",
                "ApproximateFirstReceiveTimestamp": "1796385605010",
            },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": "us-east-1",
        }
        for index, body in enumerate(bodies)
    ]
    return {"Records": records}


def with_fresh_ids[T](value: T) -> T:
    """Copy events or recorded calls with every id renewed, consistently throughout.

    A replayed call or a re-sent message then meets new keys, as a new request does,
    instead of a conditional write's conflict or an idempotency layer's stored answer.
    """
    fresh: dict[str, str] = {}

    def renew(match: re.Match[str]) -> str:
        old = match.group(0)
        if old not in fresh:
            new = str(uuid.uuid4()) if "-" in old else secrets.token_hex(len(old) // 2)
            fresh[old] = new
        return fresh[old]

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _ID.sub(renew, item)
        if isinstance(item, dict):
            return {key: walk(entry) for key, entry in item.items()}
        if isinstance(item, list | tuple):
            return type(item)(walk(entry) for entry in item)
        return item

    renewed: T = walk(value)
    return renewed


def use_function_env(env: dict[str, str]) -> None:
    """Give this process a function's environment and code, as its workers have."""
    os.environ.update(env)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    if str(FUNCTIONS) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS))


@contextlib.contextmanager
def output_discarded() -> Iterator[None]:
    """Send this process's standard output to /dev/null meanwhile.

    A function writes its metrics there (in Lambda, to its log stream); the
    benchmark's terminal is no part of what is measured, and the logs already go
    to /dev/null.
    """
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def load_handler(handler: str) -> Handler:
    """Import ``module.function`` with the function's logs going nowhere.

    The log handler keeps the stream it was created with, so /dev/null stays open
    for the process's life: the handler still formats and writes every log line.
    """
    module_name, _, name = handler.rpartition(".")
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the logger
    real, sys.stdout = sys.stdout, devnull
    try:
        module = importlib.import_module(module_name)
    finally:
        sys.stdout = real
    function: Handler = getattr(module, name)
    return function
