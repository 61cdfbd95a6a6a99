"""Run the fault campaign on an offline stack of its own and count from the outside.

``python -m offline.chaos`` (``make chaos``, which first enters a network namespace
that has only loopback) starts the stack on free ports, sends every request of the
plan on the three paths at once, duplicates a share of the S3 notifications, then
waits until each request has reached its outcome and the queues are idle. It prints
the tally; the last line reads ``N requests, L lost, D delivered twice`` and the
exit status is 1 unless L and D are 0 (2 when the campaign could not run).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import random
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from offline.chaos.plan import (
    ASYNC_HOOK_PREFIX,
    CONTENT_TYPE,
    ENDPOINT,
    QUEUE_HOOK_PREFIX,
    AsyncRequest,
    Limits,
    Plan,
    QueueRequest,
    SyncRequest,
    Targets,
    make_plan,
)
from offline.chaos.tally import (
    Outcome,
    PathTally,
    Sent,
    dead_letter_outcome,
    passed,
    render,
    reply_outcome,
    submission_outcome,
    sync_outcome,
    tally_path,
    webhook_outcome,
)
from offline.stack import LOOPBACK, OfflineStack, StackError

log = logging.getLogger("offline.chaos")

SYNC, ASYNC, QUEUE = "sync HTTP", "async HTTP", "queue"
PATH_OF_PREFIX = {"s": SYNC, "a": ASYNC, "q": QUEUE}
DEFAULT_REQUESTS = 1000
DEFAULT_WORKERS = 6
# Share of S3 notifications the results queue's event source delivers twice.
DEFAULT_DUPLICATE_SHARE = 0.3
DEFAULT_MAX_WAIT_SECONDS = 600.0
# With every request answered and the queues idle, late duplicates get this long.
SETTLE_SECONDS = 10.0
# A batch that fails whole comes back after its function's timeout plus this, not
# after the template's six times that: the campaign would wait for minutes.
VISIBILITY_MARGIN_SECONDS = 10
# With the queues idle and nothing new for this long, what is missing is lost.
QUIET_SECONDS = 45.0
PROGRESS_SECONDS = 15.0
# Longer than API Gateway's 29 s, so the API, not the client, decides.
HTTP_TIMEOUT_SECONDS = 40.0
REPLY_QUEUE = "chaos-replies"
MISSING_QUEUE = "chaos-missing"
ACCOUNT_ID = "123456789012"
# The template's logical ids the campaign reads.
REQUEST_QUEUE = "RequestQueue"
RESULTS_QUEUE = "ResultsQueue"
DEAD_LETTER_QUEUES = {
    "request DLQ": "RequestDeadLetterQueue",
    "delivery DLQ": "DeliveryDeadLetterQueue",
    "results DLQ": "ResultsDeadLetterQueue",
}
RESULTS_FUNCTION = "ResultsFunction"
QUEUE_FUNCTION = "QueueFunction"
_BUSY_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class CampaignError(RuntimeError):
    """The campaign could not run (as opposed to finding lost or doubled requests)."""


@dataclass
class Seen:
    """What the campaign saw, gathered while it runs."""

    outcomes: list[Outcome] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, outcome: Outcome | None, note: str) -> None:
        """Keep an outcome, and a note on what was seen for the request."""
        with self.lock:
            if outcome is not None:
                self.outcomes.append(outcome)
            self.notes[key] = note


class QueueDrain:
    """Receives and deletes every message of one queue on a thread; keeps them."""

    def __init__(self, client: Any, url: str, label: str) -> None:
        self.label = label
        self._client = client
        self._url = url
        self._messages: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"drain-{label}")

    def start(self) -> QueueDrain:
        """Start draining."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the current receive."""
        self._stop.set()
        self._thread.join()

    def messages(self) -> list[dict[str, Any]]:
        """Every message received so far, each once (by message id)."""
        with self._lock:
            return list(self._messages.values())

    def _run(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        while not self._stop.is_set():
            try:
                self._receive_once()
            except (BotoCoreError, ClientError) as error:
                log.warning("queue drain failed for %s: %s", self.label, error)
                self._stop.wait(1.0)

    def _receive_once(self) -> None:
        response = self._client.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages") or []
        if not messages:
            return
        with self._lock:
            for message in messages:
                self._messages.setdefault(message["MessageId"], message)
        self._client.delete_message_batch(
            QueueUrl=self._url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(messages)
            ],
        )


@dataclass
class Campaign:
    """One run of the fault campaign on a started stack."""

    stack: OfflineStack
    requests: int = DEFAULT_REQUESTS
    seed: int = 0
    workers: int = DEFAULT_WORKERS
    duplicate_share: float = DEFAULT_DUPLICATE_SHARE
    max_wait: float = DEFAULT_MAX_WAIT_SECONDS
    limits: Limits = field(default_factory=Limits)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    seen: Seen = field(default_factory=Seen)

    def run(self) -> tuple[list[PathTally], list[str]]:
        """Send the plan, wait for the outcomes; return the tallies and the figures."""
        sqs = self.stack.sqs_client()
        self._shorten_visibility(sqs)
        reply_url = sqs.create_queue(QueueName=REPLY_QUEUE)["QueueUrl"]
        drains = [QueueDrain(self.stack.sqs_client(), reply_url, "reply queue")]
        drains += [
            QueueDrain(self.stack.sqs_client(), self._queue_url(logical_id), label)
            for label, logical_id in DEAD_LETTER_QUEUES.items()
        ]
        with _dead_port() as dead_port:
            targets = Targets(
                webhook_url=self._receiver().url,
                reply_queue_url=reply_url,
                missing_queue_url=f"{self.stack.moto_url}/{ACCOUNT_ID}/{MISSING_QUEUE}",
                dead_port=dead_port,
            )
            plan = make_plan(self.requests, targets, self.limits, self.seed, self.run_id)
            self._source(RESULTS_FUNCTION).duplicate_deliveries(
                self.duplicate_share, self.seed
            )
            for drain in drains:
                drain.start()
            try:
                started = time.monotonic()
                print("sending; then waiting for every outcome", flush=True)
                self._drive(plan)
                sent_seconds = time.monotonic() - started
                self._wait(plan, drains, sqs)
                waited_seconds = time.monotonic() - started - sent_seconds
            finally:
                for drain in drains:
                    drain.stop()
        tallies = self._tally(plan, drains)
        figures = self._figures(plan, drains, sent_seconds, waited_seconds)
        return tallies, figures

    def _shorten_visibility(self, sqs: Any) -> None:
        """Let a failed batch come back soon, yet never while it may still run."""
        for queue, function in (
            (REQUEST_QUEUE, QUEUE_FUNCTION),
            (RESULTS_QUEUE, RESULTS_FUNCTION),
        ):
            timeout = self.stack.template.function(function).timeout
            sqs.set_queue_attributes(
                QueueUrl=self._queue_url(queue),
                Attributes={
                    "VisibilityTimeout": str(timeout + VISIBILITY_MARGIN_SECONDS)
                },
            )

    # Sending ------------------------------------------------------------------

    def _drive(self, plan: Plan) -> None:
        """Send the three paths' requests side by side; return when all are sent."""
        senders: list[Callable[[], None]] = [
            lambda: self._each(plan.sync, self._send_sync),
            lambda: self._each(plan.asynchronous, self._send_async),
            lambda: self._send_queue(plan.queue),
        ]
        with ThreadPoolExecutor(len(senders)) as pool:
            for future in [pool.submit(sender) for sender in senders]:
                future.result()

    def _each[Request](
        self, requests: Sequence[Request], send: Callable[[Request], None]
    ) -> None:
        with ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(send, requests))

    def _send_sync(self, request: SyncRequest) -> None:
        headers = {"Content-Type": CONTENT_TYPE}
        if request.attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = request.attributes
        status, body = self._post(
            f"/endpoints/{ENDPOINT}/invocations", request.payload, headers
        )
        outcome, note = sync_outcome(request.key, status, body)
        self.seen.add(request.key, outcome, note)

    def _send_async(self, request: AsyncRequest) -> None:
        headers = {
            "Content-Type": CONTENT_TYPE,
            "X-Amzn-SageMaker-Inference-Id": request.inference_id,
            "X-Callback-Url": request.callback_url,
        }
        if request.attributes:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = request.attributes
        if request.invocation_timeout_seconds is not None:
            headers["X-Amzn-SageMaker-InvocationTimeoutSeconds"] = str(
                request.invocation_timeout_seconds
            )
        status, body = self._post(
            f"/endpoints/{ENDPOINT}/async-invocations", request.payload, headers
        )
        outcome, note = submission_outcome(request.key, status, body)
        self.seen.add(request.key, outcome, note)

    def _send_queue(self, requests: Sequence[QueueRequest]) -> None:
        """Send every message ten at a time; a re-sent one follows a little later."""
        rng = random.Random(self.seed)
        ordered = [
            (float(index), json.dumps(request.message))
            for index, request in enumerate(requests)
        ]
        for index, request in enumerate(requests):
            for _ in range(request.copies - 1):
                ordered.append((index + rng.uniform(5, 40), json.dumps(request.message)))
        bodies = [body for _, body in sorted(ordered, key=lambda item: item[0])]
        url = self._queue_url(REQUEST_QUEUE)
        sqs = self.stack.sqs_client()
        for start in range(0, len(bodies), 10):
            chunk = bodies[start : start + 10]
            response = sqs.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(index), "MessageBody": body}
                    for index, body in enumerate(chunk)
                ],
            )
            if response.get("Failed"):
                raise CampaignError(f"the request queue refused {response['Failed']}")

    def _post(
        self, path: str, payload: str, headers: dict[str, str]
    ) -> tuple[int | None, bytes]:
        """POST to the API under its stage; None as the status when nothing answers."""
        url = urlsplit(self.stack.stage_url)
        connection = http.client.HTTPConnection(
            url.hostname or LOOPBACK, url.port, timeout=HTTP_TIMEOUT_SECONDS
        )
        try:
            connection.request("POST", f"{url.path}{path}", payload.encode(), headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            return None, str(error).encode()
        finally:
            connection.close()

    # Waiting ------------------------------------------------------------------

    def _wait(self, plan: Plan, drains: Sequence[QueueDrain], sqs: Any) -> None:
        """Wait until every request has an outcome and the queues are idle, then settle."""
        keys = [request.key for request in plan.asynchronous] + [
            request.key for request in plan.queue
        ]
        started = time.monotonic()
        deadline = started + self.max_wait
        last_change = started
        last_report = started
        last_missing = -1
        settled_since: float | None = None
        while True:
            time.sleep(1.0)
            now = time.monotonic()
            answered = {outcome.key for outcome in self._outcomes(plan, drains)}
            missing = sum(key not in answered for key in keys)
            busy = self._busy(sqs)
            if missing != last_missing:
                last_missing, last_change = missing, now
            if now - last_report >= PROGRESS_SECONDS:
                last_report = now
                print(
                    f"  +{now - started:.0f} s: {missing} requests wait for an "
                    f"outcome; {busy} messages in the request and results queues",
                    file=sys.stderr,
                    flush=True,
                )
            if busy or missing:
                settled_since = None
            elif settled_since is None:
                settled_since = now
            if settled_since is not None and now - settled_since >= SETTLE_SECONDS:
                return
            if not busy and now - last_change >= QUIET_SECONDS:
                return
            if now >= deadline:
                print("  giving up waiting: the deadline passed", file=sys.stderr)
                return

    def _busy(self, sqs: Any) -> int:
        """Count the messages still in (or on their way through) the two work queues."""
        total = 0
        for logical_id in (REQUEST_QUEUE, RESULTS_QUEUE):
            attributes = sqs.get_queue_attributes(
                QueueUrl=self._queue_url(logical_id),
                AttributeNames=list(_BUSY_ATTRIBUTES),
            )["Attributes"]
            total += sum(int(attributes.get(name, 0)) for name in _BUSY_ATTRIBUTES)
        return total

    # Counting -----------------------------------------------------------------

    def _outcomes(self, plan: Plan, drains: Sequence[QueueDrain]) -> list[Outcome]:
        """Every outcome seen so far on every path."""
        keys_by_inference = {
            request.inference_id: request.key for request in plan.asynchronous
        }
        with self.seen.lock:
            outcomes = list(self.seen.outcomes)
        for record in self._receiver().deliveries():
            for prefix in (ASYNC_HOOK_PREFIX, QUEUE_HOOK_PREFIX):
                outcome = webhook_outcome(record, prefix)
                if outcome is not None:
                    outcomes.append(outcome)
        for drain in drains:
            for message in drain.messages():
                if drain.label == "reply queue":
                    found = reply_outcome(message)
                else:
                    found = dead_letter_outcome(message, drain.label, keys_by_inference)
                if found is not None:
                    outcomes.append(found)
        return outcomes

    def _tally(self, plan: Plan, drains: Sequence[QueueDrain]) -> list[PathTally]:
        outcomes = self._outcomes(plan, drains)
        sent = {
            SYNC: [Sent(r.key, r.fault, r.payload) for r in plan.sync],
            ASYNC: [Sent(r.key, r.fault, r.payload, r.target) for r in plan.asynchronous],
            QUEUE: [Sent(r.key, r.fault, r.payload, r.target) for r in plan.queue],
        }
        return [
            tally_path(
                path,
                items,
                [o for o in outcomes if PATH_OF_PREFIX.get(o.key[:1]) == path],
            )
            for path, items in sent.items()
        ]

    def _figures(
        self,
        plan: Plan,
        drains: Sequence[QueueDrain],
        sent_seconds: float,
        waited_seconds: float,
    ) -> list[str]:
        """What was injected and how long it took, for the report."""
        receiver = self._receiver()
        records = receiver.deliveries()
        refused = sum(int(record["status"]) >= 300 for record in records)
        results = self._source(RESULTS_FUNCTION).stats()
        requests = self._source(QUEUE_FUNCTION).stats()
        resent = sum(request.copies - 1 for request in plan.queue)
        dead = {drain.label: len(drain.messages()) for drain in drains}
        return [
            f"sent in {sent_seconds:.0f} s, outcomes settled {waited_seconds:.0f} s later",
            f"S3 notifications delivered twice by the results queue: "
            f"{results['duplicated']} (of {results['records']} handled)",
            f"queue requests sent twice by their client: {resent}",
            f"queue messages handed back for a retry: {requests['failed']}",
            f"webhook attempts the receiver failed on purpose: {refused} "
            f"(of {len(records)})",
            "messages drained: "
            + ", ".join(f"{label} {count}" for label, count in dead.items()),
        ]

    # Stack --------------------------------------------------------------------

    def _queue_url(self, logical_id: str) -> str:
        return self.stack.resources[logical_id]

    def _receiver(self) -> Any:
        receiver = self.stack.webhook_receiver
        if receiver is None:
            raise CampaignError("the stack's webhook receiver did not start")
        return receiver

    def _source(self, function_logical_id: str) -> Any:
        for source in self.stack.event_sources:
            if source.config.function_logical_id == function_logical_id:
                return source
        raise CampaignError(f"no SQS event source for {function_logical_id}")


@contextlib.contextmanager
def _dead_port() -> Iterator[int]:
    """Hold a loopback port that refuses connections: bound, never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield int(sock.getsockname()[1])


def network_interfaces() -> list[str]:
    """Name the network interfaces of this process's network namespace."""
    return [name for _, name in socket.if_nameindex()]


def require_loopback_only() -> None:
    """Refuse to run where anything but loopback could be reached."""
    others = [name for name in network_interfaces() if name != "lo"]
    if others:
        raise CampaignError(
            "the fault campaign runs only in a network namespace with nothing but "
            f"loopback (make chaos sets one up); this one also has {', '.join(others)}"
        )


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m offline.chaos",
        description="Fault campaign: requests on every path under injected faults.",
    )
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    parser.add_argument("--duplicate-share", type=float, default=DEFAULT_DUPLICATE_SHARE)
    parser.add_argument("--max-wait", type=float, default=DEFAULT_MAX_WAIT_SECONDS)
    parser.add_argument(
        "--log-dir", default=None, help="keep the stack's logs here (else removed)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the campaign; 0 when nothing was lost or doubled, 1 otherwise, 2 on error."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    limits = Limits()
    started = time.monotonic()
    try:
        require_loopback_only()
        print(
            f"fault campaign: {args.requests} requests per path, seed {seed}",
            flush=True,
        )
        with OfflineStack(
            parameter_overrides={"SyncTimeoutSeconds": str(limits.sync_timeout_seconds)},
            container_timeout=float(limits.container_timeout_seconds),
            log_dir=args.log_dir,
            mended_moto=True,
        ) as stack:
            print(f"stack up in {time.monotonic() - started:.0f} s", flush=True)
            campaign = Campaign(
                stack,
                requests=args.requests,
                seed=seed,
                workers=args.workers,
                duplicate_share=args.duplicate_share,
                max_wait=args.max_wait,
                limits=limits,
            )
            tallies, figures = campaign.run()
    except (CampaignError, StackError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print()
    for line in figures:
        print(line)
    print(f"run time {time.monotonic() - started:.0f} s (seed {seed})")
    print()
    for line in render(tallies, campaign.seen.notes):
        print(line)
    return 0 if passed(tallies) else 1
