"""What the fault campaign sends: requests on each path, each with its injected faults.

The plan is drawn from a seeded random generator, so a run can be repeated. Faults
reach the ``echo`` model through its custom attributes (throttling, not ready,
model errors, 5xx, delays past a timeout); callbacks go to the local webhook
receiver with its failure knobs, to a reply queue, to a queue that does not exist,
or to a loopback port where nothing listens.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

ENDPOINT = "echo"
CONTENT_TYPE = "application/json"
ASYNC_HOOK_PREFIX = "/chaos/async/"
QUEUE_HOOK_PREFIX = "/chaos/queue/"


@dataclass(frozen=True)
class Limits:
    """The timeouts the campaign's stack runs with, which the faults must exceed."""

    sync_timeout_seconds: int = 2
    container_timeout_seconds: int = 4
    async_invocation_timeout_seconds: int = 1


@dataclass(frozen=True)
class Targets:
    """Where callbacks may go, all on 127.0.0.1."""

    webhook_url: str
    reply_queue_url: str
    missing_queue_url: str
    dead_port: int


@dataclass(frozen=True)
class SyncRequest:
    """A POST to the sync route."""

    key: str
    fault: str
    attributes: str | None
    payload: str


@dataclass(frozen=True)
class AsyncRequest:
    """A POST to the async route with a webhook callback."""

    key: str
    fault: str
    target: str
    attributes: str | None
    payload: str
    inference_id: str
    callback_url: str
    invocation_timeout_seconds: int | None = None


@dataclass(frozen=True)
class QueueRequest:
    """A message to the request queue; ``copies`` is how often it is sent."""

    key: str
    fault: str
    target: str
    payload: str
    message: dict[str, Any] = field(hash=False)
    copies: int = 1


@dataclass(frozen=True)
class Plan:
    """Every request of one campaign."""

    sync: list[SyncRequest]
    asynchronous: list[AsyncRequest]
    queue: list[QueueRequest]


# Label -> (weight, echo directives); "{...}" is filled from Limits.
SYNC_FAULTS: dict[str, tuple[int, str]] = {
    "none": (36, ""),
    "slow": (4, "delay_ms=300"),
    "throttle": (8, "fault=throttle"),
    "flaky-throttle": (10, "fault=throttle;fault_rate=0.5"),
    "not-ready": (5, "fault=not-ready"),
    "model-4xx": (7, "status=400"),
    "model-5xx": (8, "status=500"),
    "unavailable": (6, "fault=unavailable"),
    "internal": (5, "fault=internal"),
    "dependency": (3, "fault=dependency"),
    "timeout": (8, "delay_ms={sync_timeout_ms}"),
}
ASYNC_FAULTS: dict[str, tuple[int, str]] = {
    "none": (40, ""),
    "throttle": (8, "fault=throttle"),
    "flaky-throttle": (8, "fault=throttle;fault_rate=0.5"),
    "not-ready": (4, "fault=not-ready"),
    "model-4xx": (8, "status=400"),
    "model-5xx": (8, "status=500"),
    "unavailable": (6, "fault=unavailable"),
    "internal": (6, "fault=internal"),
    "timeout": (12, "delay_ms={async_timeout_ms}"),
}
# Label -> (weight, query of the webhook receiver, or a special target).
ASYNC_TARGETS: dict[str, tuple[int, str]] = {
    "webhook": (50, ""),
    "webhook-fail-rate": (24, "fail_rate=0.3"),
    "webhook-fail-first": (14, "fail_first=2"),
    "webhook-fail-always": (4, "fail_first=100"),
    "webhook-gone": (4, "status=410"),
    "dead-port": (4, ""),
}
QUEUE_SYNC_FAULTS: dict[str, tuple[int, str]] = {
    "none": (40, ""),
    "flaky-throttle": (14, "fault=throttle;fault_rate=0.4"),
    "flaky-unavailable": (8, "fault=unavailable;fault_rate=0.4"),
    "flaky-internal": (6, "fault=internal;fault_rate=0.4"),
    "model-4xx": (8, "status=400"),
    "model-5xx": (8, "status=500"),
    "timeout": (6, "delay_ms={container_timeout_ms}"),
    "throttle-always": (2, "fault=throttle"),
    "invalid": (8, ""),
}
QUEUE_ASYNC_FAULTS: dict[str, tuple[int, str]] = {
    "none": (50, ""),
    "throttle": (12, "fault=throttle"),
    "model-5xx": (12, "status=500"),
    "internal": (10, "fault=internal"),
    "slow": (8, "delay_ms=500"),
    "invalid": (8, ""),
}
QUEUE_TARGETS: dict[str, tuple[int, str]] = {
    "reply-queue": (70, ""),
    "webhook": (10, ""),
    "webhook-fail-rate": (8, "fail_rate=0.3"),
    "missing-queue": (4, ""),
    "none": (8, ""),
}
# Share of queue requests in async mode, and of answerable ones sent twice.
QUEUE_ASYNC_SHARE = 0.3
QUEUE_RESEND_SHARE = 0.06
# Faults that end the same way on every attempt, so that a re-sent copy can only
# replay the stored outcome. An invalid message is no request and has none stored:
# each copy of it is refused on its own.
_RESENDABLE = frozenset({"none", "model-4xx", "model-5xx"})


def make_plan(count: int, targets: Targets, limits: Limits, seed: int, run: str) -> Plan:
    """Draw ``count`` requests for each path."""
    rng = random.Random(seed)
    values = {
        "sync_timeout_ms": (limits.sync_timeout_seconds + 1) * 1000,
        "async_timeout_ms": (limits.async_invocation_timeout_seconds + 1) * 1000,
        "container_timeout_ms": (limits.container_timeout_seconds + 1) * 1000,
    }
    return Plan(
        sync=[_sync(rng, index, values) for index in range(count)],
        asynchronous=[
            _async(rng, index, values, targets, limits, run) for index in range(count)
        ],
        queue=[_queue(rng, index, values, targets) for index in range(count)],
    )


def payload_of(key: str) -> str:
    """The JSON payload a request carries: the echo model answers it unchanged."""
    return json.dumps({"chaos": key}, separators=(",", ":"))


def _sync(rng: random.Random, index: int, values: dict[str, int]) -> SyncRequest:
    key = f"s{index:05d}"
    fault = _draw(rng, SYNC_FAULTS)
    return SyncRequest(
        key, fault, _directives(SYNC_FAULTS, fault, values), payload_of(key)
    )


def _async(
    rng: random.Random,
    index: int,
    values: dict[str, int],
    targets: Targets,
    limits: Limits,
    run: str,
) -> AsyncRequest:
    key = f"a{index:05d}"
    fault = _draw(rng, ASYNC_FAULTS)
    target = _draw(rng, ASYNC_TARGETS)
    return AsyncRequest(
        key=key,
        fault=fault,
        target=target,
        attributes=_directives(ASYNC_FAULTS, fault, values),
        payload=payload_of(key),
        inference_id=f"chaos-{run}-{key}",
        callback_url=_hook(targets, ASYNC_HOOK_PREFIX, key, target, ASYNC_TARGETS),
        invocation_timeout_seconds=(
            limits.async_invocation_timeout_seconds if fault == "timeout" else None
        ),
    )


def _queue(
    rng: random.Random, index: int, values: dict[str, int], targets: Targets
) -> QueueRequest:
    key = f"q{index:05d}"
    target = _draw(rng, QUEUE_TARGETS)
    asynchronous = target != "none" and rng.random() < QUEUE_ASYNC_SHARE
    table = QUEUE_ASYNC_FAULTS if asynchronous else QUEUE_SYNC_FAULTS
    fault = _draw(rng, table)
    if target == "none":
        # Only a failure can be seen without a reply target: the dead-letter queue.
        fault = rng.choice(["model-4xx", "model-5xx", "invalid"])
    payload = payload_of(key)
    message: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "body": payload,
        "contentType": CONTENT_TYPE,
        "requestId": key,
    }
    if asynchronous:
        message["mode"] = "async"
    attributes = _directives(table, fault, values)
    if attributes:
        message["customAttributes"] = attributes
    reply_to = _reply_to(targets, key, target)
    if reply_to is not None:
        message["replyTo"] = reply_to
    if fault == "invalid":
        # An unknown field: the gateway refuses the message and says why.
        message["priority"] = "high"
    resend = (
        fault in _RESENDABLE
        and target == "reply-queue"
        and rng.random() < QUEUE_RESEND_SHARE
    )
    label = f"{'async' if asynchronous else 'sync'} {fault}"
    return QueueRequest(key, label, target, payload, message, 2 if resend else 1)


def _reply_to(targets: Targets, key: str, target: str) -> dict[str, str] | None:
    if target == "none":
        return None
    if target == "reply-queue":
        return {"queueUrl": targets.reply_queue_url}
    if target == "missing-queue":
        return {"queueUrl": targets.missing_queue_url}
    url = _hook(targets, QUEUE_HOOK_PREFIX, key, target, QUEUE_TARGETS)
    return {"webhookUrl": url}


def _hook(
    targets: Targets,
    prefix: str,
    key: str,
    target: str,
    table: dict[str, tuple[int, str]],
) -> str:
    if target == "dead-port":
        return f"http://127.0.0.1:{targets.dead_port}{prefix}{key}"
    query = table[target][1]
    return f"{targets.webhook_url}{prefix}{key}" + (f"?{query}" if query else "")


def _draw(rng: random.Random, table: dict[str, tuple[int, str]]) -> str:
    labels: Sequence[str] = list(table)
    weights = [table[label][0] for label in labels]
    return rng.choices(labels, weights)[0]


def _directives(
    table: dict[str, tuple[int, str]], fault: str, values: dict[str, int]
) -> str | None:
    text = table[fault][1].format(**values)
    return text or None
