"""Lambda's SQS event source mapping, emulated against moto for the offline stack.

Each function event of Type SQS in the template becomes an :class:`SqsEventSource`:
pollers on background threads long-poll the queue (at most WAIT_SECONDS at a time so
that stopping is quick), gather a batch as Lambda does (BatchSize, with
MaximumBatchingWindowInSeconds to fill it, and never more than an invoke's 6 MB),
build the event Lambda builds and invoke the function through its pool.

What happens to the messages follows Lambda:

- the function succeeds: every message is deleted, except, with
  ``FunctionResponseTypes: [ReportBatchItemFailures]``, those it lists in
  ``batchItemFailures``; a malformed list (an unknown or empty ``itemIdentifier``, an
  entry without one, a response that is not a JSON object) fails the whole batch;
- the function fails or times out: nothing is deleted; the messages come back after
  the queue's visibility timeout and, past the redrive policy's maxReceiveCount,
  moto moves them to the dead-letter queue, as SQS does.

``ScalingConfig.MaximumConcurrency`` bounds the batches in flight (DEFAULT_CONCURRENCY
without it). On a FIFO queue SQS hands out one message group to one consumer at a
time, in order; the mapping also never runs two batches holding the same group.
``Enabled: false`` starts no poller. Settings CreateEventSourceMapping refuses are
refused here too (a queue visibility timeout shorter than the function's timeout, a
batch over 10 without a batching window, a batching window on a FIFO queue, ...).
Each batch logs one line: function, size, failures, outcome and milliseconds.

SQS and S3 deliver at least once. :meth:`SqsEventSource.duplicate_deliveries` makes
the mapping re-send a copy of a share of the messages it receives (standard queues
only), so that the function meets the duplicates it must tolerate.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offline.apigateway import Invoker
from offline.lambda_runtime import MAX_REQUEST_BYTES, InvokeResult
from offline.provision import moto_client
from offline.template import REGION, EventSpec, SamTemplate

log = logging.getLogger(__name__)

# Long polls last at most this long, so a stop request is noticed quickly.
WAIT_SECONDS = 2
DEFAULT_CONCURRENCY = 5
DEFAULT_BATCH_SIZE = 10
MAX_BATCH_SIZE = 10_000
MAX_BATCHING_WINDOW_SECONDS = 300
MAX_RECEIVE = 10
RECEIVE_RETRY_SECONDS = 1.0
# With wait_seconds=0 (short polling, for tests) empty answers are this far apart.
SHORT_POLL_PAUSE_SECONDS = 0.05
STOP_TIMEOUT_SECONDS = 5.0
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
# System attributes Lambda copies into a record, in the order its events show them.
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "SenderId",
    "MessageDeduplicationId",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)
# Marks a copy made by duplicate_deliveries, so that a copy is never copied again.
COPY_ATTRIBUTE = "OfflineDuplicateOf"
# Room for {"Records":[...]} around the records of one invoke.
_EVENT_OVERHEAD_BYTES = 64


class EventSourceError(RuntimeError):
    """An SQS event of the template cannot be emulated."""


@dataclass(frozen=True)
class SqsEventSourceConfig:
    """The mapping's settings, read from one SQS event of the template."""

    function_logical_id: str
    event_name: str
    queue_arn: str
    queue_url: str
    batch_size: int = DEFAULT_BATCH_SIZE
    batching_window_seconds: float = 0.0
    report_batch_item_failures: bool = False
    max_concurrency: int = DEFAULT_CONCURRENCY
    enabled: bool = True

    @property
    def fifo(self) -> bool:
        """Tell whether the queue is FIFO."""
        return self.queue_arn.endswith(".fifo")

    @property
    def queue_name(self) -> str:
        """Return the queue's name."""
        return self.queue_arn.rsplit(":", 1)[-1]


def config_from_event(
    function_logical_id: str,
    event: EventSpec,
    queue_urls: Mapping[str, str],
    default_concurrency: int = DEFAULT_CONCURRENCY,
) -> SqsEventSourceConfig:
    """Read one SQS event's properties (Queue resolved to an ARN) into a config."""
    properties = event.properties
    queue_arn = str(properties.get("Queue", ""))
    if not queue_arn.startswith("arn:"):
        raise EventSourceError(
            f"{function_logical_id}.{event.name}: Queue must resolve to an ARN"
        )
    queue_url = queue_urls.get(queue_arn)
    if queue_url is None:
        raise EventSourceError(
            f"{function_logical_id}.{event.name}: no local queue for {queue_arn}"
        )
    if properties.get("FilterCriteria"):
        log.warning(
            "sqs event filter criteria not emulated: %s.%s",
            function_logical_id,
            event.name,
        )
    response_types = [str(item) for item in properties.get("FunctionResponseTypes") or []]
    scaling = properties.get("ScalingConfig") or {}
    concurrency = scaling.get("MaximumConcurrency")
    config = SqsEventSourceConfig(
        function_logical_id=function_logical_id,
        event_name=event.name,
        queue_arn=queue_arn,
        queue_url=queue_url,
        batch_size=int(properties.get("BatchSize") or DEFAULT_BATCH_SIZE),
        batching_window_seconds=float(
            properties.get("MaximumBatchingWindowInSeconds") or 0
        ),
        report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES in response_types,
        max_concurrency=int(concurrency) if concurrency else default_concurrency,
        enabled=_enabled(properties.get("Enabled", True)),
    )
    problem = _config_problem(config, concurrency is not None)
    if problem:
        raise EventSourceError(f"{function_logical_id}.{event.name}: {problem}")
    return config


def _config_problem(config: SqsEventSourceConfig, concurrency_given: bool) -> str | None:
    """Say what CreateEventSourceMapping would refuse in a config, if anything."""
    limit = MAX_RECEIVE if config.fifo else MAX_BATCH_SIZE
    if not 1 <= config.batch_size <= limit:
        return f"BatchSize must be between 1 and {limit}"
    window = config.batching_window_seconds
    if not 0 <= window <= MAX_BATCHING_WINDOW_SECONDS:
        return (
            f"MaximumBatchingWindowInSeconds must be 0 to {MAX_BATCHING_WINDOW_SECONDS}"
        )
    if config.fifo and window:
        return "MaximumBatchingWindowInSeconds is not supported for FIFO queues"
    if config.batch_size > MAX_RECEIVE and window < 1:
        return "a BatchSize over 10 needs MaximumBatchingWindowInSeconds of at least 1"
    if concurrency_given and not 2 <= config.max_concurrency <= 1000:
        return "ScalingConfig.MaximumConcurrency must be between 2 and 1000"
    if config.max_concurrency < 1:
        return "at least one poller is needed"
    return None


def check_visibility_timeout(
    config: SqsEventSourceConfig, function_timeout: int, client: Any
) -> None:
    """Refuse a queue whose visibility timeout is shorter than the function's timeout."""
    attributes = client.get_queue_attributes(
        QueueUrl=config.queue_url, AttributeNames=["VisibilityTimeout"]
    )["Attributes"]
    visibility = int(attributes.get("VisibilityTimeout", 30))
    if visibility < function_timeout:
        raise EventSourceError(
            f"{config.function_logical_id}.{config.event_name}: queue visibility timeout "
            f"{visibility} s is less than the function timeout {function_timeout} s"
        )


def _enabled(value: Any) -> bool:
    """Read the Enabled property (a boolean or the strings true/false)."""
    if isinstance(value, str):
        return value.lower() != "false"
    return bool(value)


def sqs_event_sources(
    template: SamTemplate,
    invokers: Mapping[str, Invoker],
    queue_urls: Mapping[str, str],
    endpoint_url: str,
    *,
    default_concurrency: int = DEFAULT_CONCURRENCY,
    wait_seconds: int = WAIT_SECONDS,
) -> list[SqsEventSource]:
    """Build (not start) a mapping for every SQS event of the template's functions."""
    sources: list[SqsEventSource] = []
    client: Any = None
    for function in template.functions():
        for event in function.events:
            if event.type != "SQS":
                continue
            config = config_from_event(
                function.logical_id, event, queue_urls, default_concurrency
            )
            client = client or moto_client("sqs", endpoint_url)
            check_visibility_timeout(config, function.timeout, client)
            sources.append(
                SqsEventSource(
                    config,
                    invokers[function.logical_id],
                    endpoint_url,
                    wait_seconds=wait_seconds,
                )
            )
    return sources


# Events ---------------------------------------------------------------------------


def lambda_record(
    message: Mapping[str, Any], queue_arn: str, region: str
) -> dict[str, Any]:
    """Build one record of Lambda's SQS event from a ReceiveMessage message."""
    received = message.get("Attributes") or {}
    attributes = {name: received[name] for name in _RECORD_ATTRIBUTES if name in received}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update(
        {
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
    )
    return record


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """Shape one message attribute as Lambda does (binary values in base64)."""
    shaped: dict[str, Any] = {}
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = _base64(value["BinaryValue"])
    shaped["stringListValues"] = list(value.get("StringListValues") or [])
    shaped["binaryListValues"] = [
        _base64(item) for item in value.get("BinaryListValues") or []
    ]
    shaped["dataType"] = value.get("DataType", "String")
    return shaped


def _copy_attributes(message: Mapping[str, Any]) -> dict[str, Any]:
    """Return a message's attributes as SendMessage takes them, plus the copy mark."""
    copied: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        kept = {"DataType": value.get("DataType", "String")}
        for field in ("StringValue", "BinaryValue"):
            if field in value:
                kept[field] = value[field]
        copied[name] = kept
    copied[COPY_ATTRIBUTE] = {"DataType": "String", "StringValue": message["MessageId"]}
    return copied


def _base64(value: bytes | str) -> str:
    """Encode a binary attribute value (boto3 hands it over decoded)."""
    raw = value.encode() if isinstance(value, str) else bytes(value)
    return base64.b64encode(raw).decode()


def failed_message_ids(
    payload_bytes: bytes, message_ids: Sequence[str]
) -> set[str] | None:
    """Read batchItemFailures: the failed ids, or None when the whole batch failed."""
    try:
        response = json.loads(payload_bytes) if payload_bytes.strip() else None
    except ValueError:
        return None
    if response is None:
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    known = set(message_ids)
    failed: set[str] = set()
    for item in failures:
        if not isinstance(item, dict):
            return None
        identifier = item.get("itemIdentifier")
        if not isinstance(identifier, str) or identifier not in known:
            return None
        failed.add(identifier)
    return failed


def split_by_size(
    records: Sequence[dict[str, Any]], limit: int = MAX_REQUEST_BYTES
) -> list[list[dict[str, Any]]]:
    """Split records into batches whose event stays under the invoke payload limit."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = _EVENT_OVERHEAD_BYTES
    for record in records:
        record_size = len(json.dumps(record, separators=(",", ":")).encode()) + 1
        if current and size + record_size > limit:
            batches.append(current)
            current, size = [], _EVENT_OVERHEAD_BYTES
        current.append(record)
        size += record_size
    if current:
        batches.append(current)
    return batches


# The mapping ----------------------------------------------------------------------


@dataclass
class _Outcome:
    """What one invoke did to its batch."""

    failed: set[str]
    label: str


class SqsEventSource:
    """One SQS event source mapping: pollers that invoke and delete, on threads."""

    def __init__(
        self,
        config: SqsEventSourceConfig,
        invoker: Invoker,
        endpoint_url: str,
        *,
        region: str = REGION,
        wait_seconds: int = WAIT_SECONDS,
    ) -> None:
        self.config = config
        self.invoker = invoker
        self.endpoint_url = endpoint_url
        self.region = region
        self.wait_seconds = max(0, min(int(wait_seconds), WAIT_SECONDS))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._groups = threading.Condition()
        self._busy_groups: set[str] = set()
        self._stats_lock = threading.Lock()
        self._stats = {
            "batches": 0,
            "records": 0,
            "deleted": 0,
            "failed": 0,
            "duplicated": 0,
        }
        self._duplicate_share = 0.0
        self._random = random.Random()

    @property
    def name(self) -> str:
        """Return a label for logs: function.event."""
        return f"{self.config.function_logical_id}.{self.config.event_name}"

    def stats(self) -> dict[str, int]:
        """Return counters: batches, records, deleted, failed and duplicated records."""
        with self._stats_lock:
            return dict(self._stats)

    def duplicate_deliveries(self, share: float, seed: int | None = None) -> None:
        """Re-send a copy of this share (0..1) of the messages received from now on."""
        if not 0.0 <= share <= 1.0:
            raise ValueError("the share of duplicates must be between 0 and 1")
        if share and self.config.fifo:
            raise EventSourceError(f"{self.name}: duplicates need a standard queue")
        self._random = random.Random(seed)
        self._duplicate_share = share

    # Lifecycle ----------------------------------------------------------------

    def __enter__(self) -> SqsEventSource:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> SqsEventSource:
        """Start the pollers (none when the event is disabled)."""
        if self._threads or not self.config.enabled:
            if not self.config.enabled:
                log.info("sqs event source disabled: %s", self.name)
            return self
        self._stop.clear()
        for index in range(self.config.max_concurrency):
            thread = threading.Thread(
                target=self._poll,
                name=f"sqs-{self.config.function_logical_id}-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        log.info(
            "sqs event source started: %s on %s with %d pollers",
            self.name,
            self.config.queue_name,
            self.config.max_concurrency,
        )
        return self

    def request_stop(self) -> None:
        """Ask the pollers to stop after their current long poll or batch."""
        self._stop.set()
        with self._groups:
            self._groups.notify_all()

    def join(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Wait for the pollers to end, up to timeout seconds in all."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        if alive:
            log.warning("sqs pollers still busy at stop: %s", ", ".join(alive))
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop the pollers and wait for them."""
        self.request_stop()
        self.join(timeout)

    # Polling ------------------------------------------------------------------

    def _poll(self) -> None:
        """Receive, invoke and delete until asked to stop."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        client = moto_client(
            "sqs",
            self.endpoint_url,
            read_timeout=self.wait_seconds + 10,
            retries={"mode": "standard", "total_max_attempts": 1},
        )
        while not self._stop.is_set():
            try:
                messages = self._gather(client)
            except (BotoCoreError, ClientError) as error:
                if self._stop.is_set():
                    break
                log.warning("sqs receive failed for %s: %s", self.name, error)
                self._stop.wait(RECEIVE_RETRY_SECONDS)
                continue
            if not messages:
                continue
            if self._stop.is_set():
                self._release(client, messages)
                break
            if self._duplicate_share:
                self._send_copies(client, messages)
            try:
                records = [
                    lambda_record(message, self.config.queue_arn, self.region)
                    for message in messages
                ]
                for batch in split_by_size(records):
                    self._run_batch(client, batch)
            except Exception:
                # A poller must outlive any one batch; its messages come back later.
                log.exception("sqs batch handling failed for %s", self.name)

    def _receive(self, client: Any, count: int, wait: int) -> list[dict[str, Any]]:
        """Receive up to count messages with every attribute."""
        response = client.receive_message(
            QueueUrl=self.config.queue_url,
            MaxNumberOfMessages=max(1, min(MAX_RECEIVE, count)),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages") or [])

    def _gather(self, client: Any) -> list[dict[str, Any]]:
        """Long-poll for a first message, then fill the batch within the window."""
        size = self.config.batch_size
        messages = self._receive(client, size, self.wait_seconds)
        if not messages:
            if self.wait_seconds == 0:
                self._stop.wait(SHORT_POLL_PAUSE_SECONDS)
            return []
        window = self.config.batching_window_seconds
        deadline = time.monotonic() + window
        while window > 0 and len(messages) < size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = min(self.wait_seconds, int(remaining))
            more = self._receive(client, size - len(messages), wait)
            messages += more
            if not more and wait == 0:
                self._stop.wait(min(0.1, remaining))
        return messages

    def _release(self, client: Any, messages: Sequence[Mapping[str, Any]]) -> None:
        """Make messages received during shutdown visible again at once."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        for chunk in _chunks(messages, MAX_RECEIVE):
            entries = [
                {
                    "Id": str(index),
                    "ReceiptHandle": message["ReceiptHandle"],
                    "VisibilityTimeout": 0,
                }
                for index, message in enumerate(chunk)
            ]
            try:
                client.change_message_visibility_batch(
                    QueueUrl=self.config.queue_url, Entries=entries
                )
            except (BotoCoreError, ClientError) as error:
                log.debug("messages not released at stop: %s", error)

    def _send_copies(self, client: Any, messages: Sequence[Mapping[str, Any]]) -> None:
        """Send a copy of a share of messages back to the queue, as SQS may redeliver."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        chosen = [
            message
            for message in messages
            if COPY_ATTRIBUTE not in (message.get("MessageAttributes") or {})
            and self._random.random() < self._duplicate_share
        ]
        for chunk in _chunks(chosen, MAX_RECEIVE):
            entries = [
                {
                    "Id": str(index),
                    "MessageBody": message.get("Body", ""),
                    "MessageAttributes": _copy_attributes(message),
                }
                for index, message in enumerate(chunk)
            ]
            try:
                response = client.send_message_batch(
                    QueueUrl=self.config.queue_url, Entries=entries
                )
            except (BotoCoreError, ClientError) as error:
                log.warning("sqs duplicate not sent for %s: %s", self.name, error)
                continue
            with self._stats_lock:
                self._stats["duplicated"] += len(response.get("Successful") or [])

    # Batches ------------------------------------------------------------------

    def _run_batch(self, client: Any, records: list[dict[str, Any]]) -> None:
        """Invoke the function on one batch and delete what succeeded."""
        groups = {
            str(record["attributes"]["MessageGroupId"])
            for record in records
            if "MessageGroupId" in record["attributes"]
        }
        if not self._take_groups(groups):
            self._release(
                client, [{"ReceiptHandle": r["receiptHandle"]} for r in records]
            )
            return
        started = time.perf_counter()
        try:
            outcome = self._invoke(records)
            keep = outcome.failed
            done = [record for record in records if record["messageId"] not in keep]
            self._delete(client, done)
        finally:
            self._free_groups(groups)
        elapsed = (time.perf_counter() - started) * 1000
        with self._stats_lock:
            self._stats["batches"] += 1
            self._stats["records"] += len(records)
            self._stats["deleted"] += len(done)
            self._stats["failed"] += len(keep)
        level = logging.INFO if outcome.label in ("ok", "partial") else logging.WARNING
        log.log(
            level,
            "sqs batch function=%s queue=%s size=%d failures=%d outcome=%s ms=%.0f",
            self.config.function_logical_id,
            self.config.queue_name,
            len(records),
            len(keep),
            outcome.label,
            elapsed,
        )

    def _invoke(self, records: list[dict[str, Any]]) -> _Outcome:
        """Invoke synchronously, as the mapping does, and judge the response."""
        every = {record["messageId"] for record in records}
        try:
            result: InvokeResult = self.invoker.invoke({"Records": records})
        except RuntimeError:
            # The pool is closing: the messages go back to the queue.
            return _Outcome(every, "invoke-error")
        if result.timed_out:
            return _Outcome(every, "timeout")
        if result.status_code != 200:
            return _Outcome(every, "invoke-error")
        if result.function_error:
            return _Outcome(every, "function-error")
        if not self.config.report_batch_item_failures:
            return _Outcome(set(), "ok")
        failed = failed_message_ids(
            result.payload_bytes, [r["messageId"] for r in records]
        )
        if failed is None:
            return _Outcome(every, "bad-batch-response")
        return _Outcome(failed, "partial" if failed else "ok")

    def _delete(self, client: Any, records: Sequence[Mapping[str, Any]]) -> None:
        """Delete processed messages, ten at a time."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        for chunk in _chunks(records, MAX_RECEIVE):
            entries = [
                {"Id": str(index), "ReceiptHandle": record["receiptHandle"]}
                for index, record in enumerate(chunk)
            ]
            try:
                response = client.delete_message_batch(
                    QueueUrl=self.config.queue_url, Entries=entries
                )
            except (BotoCoreError, ClientError) as error:
                log.warning("sqs delete failed for %s: %s", self.name, error)
                continue
            if response.get("Failed"):
                log.warning(
                    "sqs delete refused for %d messages of %s",
                    len(response["Failed"]),
                    self.name,
                )

    def _take_groups(self, groups: set[str]) -> bool:
        """Wait until no other batch holds these message groups, then hold them."""
        if not groups:
            return True
        with self._groups:
            while self._busy_groups & groups:
                if self._stop.is_set():
                    return False
                self._groups.wait(0.5)
            self._busy_groups |= groups
            return True

    def _free_groups(self, groups: set[str]) -> None:
        """Let other batches take these message groups."""
        if not groups:
            return
        with self._groups:
            self._busy_groups -= groups
            self._groups.notify_all()


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """Yield consecutive slices of at most size items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
