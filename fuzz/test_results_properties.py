"""The results function finishes each inference once and delivers it at most once.

Each example arranges a few async inferences on the offline stack, as a submission
leaves them (a pending record linked to its output and failure locations, objects
present or not), then hands the results function's handler, run in this process,
a batch of S3 notifications: outputs and failures of those inferences under odd,
URL-encoded keys, of unknown ones, outside the result prefixes, S3's test event,
duplicates, records missing the fields the gateway needs, and garbage. Some batches
arrive twice, as SQS may deliver them.

What may happen to a message: it is handled, or it is handed back because it names a
linked result whose object is not (yet) there. An inference is finished by the first
notification of an object of its own (the messages of one batch run side by side, so
any of its objects in the first batch that names one), and its caller hears of it
exactly once.
"""

import json
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from fuzz.strategies import (
    FUZZ_BUCKET,
    MISSING_QUEUE,
    MOTO_QUEUE,
    PHASES,
    RECEIVER,
    REPLY_QUEUE,
    Fill,
    Raw,
    body_text,
    deep_nesting,
    huge_texts,
    import_handler,
    invoke_quietly,
    json_values,
    new_run,
    object_names,
    render,
    sqs_characters,
    stack_places,
    use_gateway_environment,
)
from gateway.models.records import (
    Callback,
    CallbackKind,
    Delivery,
    InferenceRecord,
    Status,
)
from offline.stack import OfflineStack

EXAMPLES = 100

# Callbacks an inference may have, and how its delivery must end.
CALLBACKS: dict[str, tuple[Callback | None, Delivery]] = {
    "none": (None, Delivery.NONE),
    "queue": (Callback(CallbackKind.QUEUE, MOTO_QUEUE + REPLY_QUEUE), Delivery.DELIVERED),
    "missing queue": (
        Callback(CallbackKind.QUEUE, MISSING_QUEUE.template),
        Delivery.DEAD_LETTERED,
    ),
    "webhook": (Callback(CallbackKind.WEBHOOK, RECEIVER + "{run}"), Delivery.DELIVERED),
    "webhook failing once": (
        Callback(CallbackKind.WEBHOOK, RECEIVER + "{run}/once?fail_first=1"),
        Delivery.DELIVERED,
    ),
    "webhook refusing": (
        Callback(CallbackKind.WEBHOOK, RECEIVER + "{run}/no?status=400"),
        Delivery.DEAD_LETTERED,
    ),
    # Accepted once, refused now: the guard runs again before every attempt.
    "metadata webhook": (
        Callback(CallbackKind.WEBHOOK, "https://169.254.169.254/latest/meta-data/"),
        Delivery.DEAD_LETTERED,
    ),
}
CREATED_EVENTS = (
    "ObjectCreated:Put",
    "ObjectCreated:Post",
    "ObjectCreated:Copy",
    "ObjectCreated:CompleteMultipartUpload",
)
OTHER_EVENTS = ("ObjectRemoved:Delete", "ObjectRestore:Completed", "s3:ObjectCreated:Put")
# How a notification spells a key: S3 encodes it, "+" for a space; moto encodes "/"
# as well; a hand-made notification may not encode it at all.
ENCODINGS = {
    "plus": lambda key: quote_plus(key, safe="/"),
    "plus, slash too": lambda key: quote_plus(key, safe=""),
    "percent": lambda key: quote(key, safe="/"),
    "as is": lambda key: key,
}
# The fields the gateway reads from a record, as paths into it.
NEEDED_FIELDS = (
    ("eventSource",),
    ("eventName",),
    ("s3",),
    ("s3", "bucket"),
    ("s3", "bucket", "name"),
    ("s3", "object"),
    ("s3", "object", "key"),
)


@pytest.fixture(scope="module")
def results_function(offline_stack: OfflineStack) -> ModuleType:
    use_gateway_environment(offline_stack)
    return import_handler("gateway.handlers.results")


# What is drawn -----------------------------------------------------------------


@dataclass(frozen=True)
class Inference:
    """An async inference as its submission leaves it."""

    callback: str
    output_name: str
    failure_name: str
    output_written: bool
    failure_written: bool
    text_output: bool


@dataclass(frozen=True)
class Entry:
    """One record of an S3 notification."""

    # ("output" | "failure", inference) | ("unknown output" | "unknown failure",)
    # | ("outside the prefixes",) | ("another bucket",)
    target: tuple[Any, ...]
    event_name: str
    event_source: str
    encoding: str
    sparse: bool


@dataclass(frozen=True)
class Notification:
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Broken:
    """A notification whose one record lacks a field the gateway needs."""

    entry: Entry
    missing: tuple[str, ...]
    replacement: Any


@dataclass(frozen=True)
class S3TestEvent:
    """What S3 sends once when a notification is configured."""


@dataclass(frozen=True)
class Copy:
    """An earlier message again: a new message id for a duplicate notification."""

    of: int
    same_message_id: bool


@dataclass(frozen=True)
class Scenario:
    inferences: tuple[Inference, ...]
    messages: tuple[Any, ...]
    delivered_twice: bool


def mostly[T](
    usual: st.SearchStrategy[T], rare: st.SearchStrategy[T]
) -> st.SearchStrategy[T]:
    """A value of the usual kind three times in four, else a rare one."""
    return st.integers(0, 3).flatmap(lambda n: rare if n == 3 else usual)


# Which inference an entry names is taken modulo the example's inference count.
known_targets = st.tuples(st.sampled_from(["output", "failure"]), st.integers(0, 2))
other_targets = st.sampled_from(
    [
        ("unknown output",),
        ("unknown failure",),
        ("outside the prefixes",),
        ("another bucket",),
    ]
)
# Mostly what S3 sends about the gateway's own results; now and then something else.
entries = st.builds(
    Entry,
    target=mostly(known_targets, other_targets),
    event_name=mostly(st.sampled_from(CREATED_EVENTS), st.sampled_from(OTHER_EVENTS)),
    event_source=mostly(st.just("aws:s3"), st.just("aws:sqs")),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    sparse=st.booleans(),
)
notifications = st.builds(
    Notification, st.lists(entries, min_size=1, max_size=2).map(tuple)
)
odd_messages = st.one_of(
    st.builds(
        Broken, entries, st.sampled_from(NEEDED_FIELDS), st.sampled_from([None, "", 42])
    ),
    st.just(S3TestEvent()),
    json_values,
    st.text(sqs_characters, max_size=60).map(Raw),
    deep_nesting.map(Raw),
    huge_texts.map(Raw),
)
mostly_true = st.sampled_from([True, True, True, False])
inferences = st.builds(
    Inference,
    callback=st.sampled_from(sorted(CALLBACKS)),
    output_name=object_names,
    failure_name=object_names,
    output_written=mostly_true,
    failure_written=st.booleans(),
    text_output=st.booleans(),
)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    drawn = draw(st.lists(inferences, min_size=1, max_size=3))
    messages: list[Any] = []
    for _ in range(draw(st.integers(1, 10))):
        if messages and draw(st.integers(0, 4)) == 0:
            of = draw(st.integers(0, len(messages) - 1))
            messages.append(Copy(of, draw(st.booleans())))
        else:
            messages.append(draw(mostly(notifications, odd_messages)))
    return Scenario(tuple(drawn), tuple(messages), draw(st.booleans()))


# Arranging the stack -----------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """Where an inference's results go on the stack."""

    inference_id: str
    output: str
    failure: str
    callback: Callback | None
    delivery: Delivery


class World:
    """The example's inferences in the stack's table and the fuzz bucket."""

    def __init__(self, stack: OfflineStack, results_function: ModuleType) -> None:
        self.s3 = stack.client("s3")
        # The very records the handler finishes, through the gateway's own layer.
        self.records = results_function.services.result_services().records

    def arrange(
        self, scenario: Scenario, run: str, places: dict[str, str]
    ) -> list[Placed]:
        placed = []
        for number, inference in enumerate(scenario.inferences):
            callback, delivery = CALLBACKS[inference.callback]
            if callback is not None:
                callback = Callback(callback.kind, render(Fill(callback.target), places))
            item = Placed(
                inference_id=f"{run}-i{number}",
                output=f"s3://{FUZZ_BUCKET}/outputs/{run}/{number}/{inference.output_name}.out",
                failure=f"s3://{FUZZ_BUCKET}/failures/{run}/{number}/"
                f"{inference.failure_name}-error.out",
                callback=callback,
                delivery=delivery,
            )
            self.submit(item)
            if inference.output_written:
                text = inference.text_output
                body = b"0.0198519491\n" if text else b"\x89PNG\r\n\x1a\n\x00\xff"
                kind = "text/csv" if text else "application/octet-stream"
                self.write(item.output, body, kind)
            if inference.failure_written:
                self.write(item.failure, b"model failed: out of memory\n", "text/plain")
            placed.append(item)
        return placed

    def submit(self, item: Placed) -> None:
        """Leave the inference as its submission does: pending, linked to its results."""
        now = now_ms()
        self.records.create(
            InferenceRecord(
                inference_id=item.inference_id,
                endpoint="echo",
                status=Status.PENDING,
                created_at=now,
                updated_at=now,
                request_ttl_seconds=21_600,
                invocation_timeout_seconds=900,
                callback=item.callback,
            )
        )
        early = self.records.link_submission(
            item.inference_id, item.output, item.failure, now
        )
        assert early == [], "no object was written before the link"

    def write(self, location: str, body: bytes, content_type: str) -> None:
        key = location.removeprefix(f"s3://{FUZZ_BUCKET}/")
        self.s3.put_object(
            Bucket=FUZZ_BUCKET, Key=key, Body=body, ContentType=content_type
        )


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# The notifications, as SQS hands them over --------------------------------------


@dataclass(frozen=True)
class Sent:
    """One SQS message of the batch and what the gateway must act on in it."""

    message_id: str
    body: str
    # (location, object created?) for each record the gateway must read, in order.
    entries: tuple[tuple[str, bool], ...]


def location_of(target: tuple[Any, ...], placed: list[Placed], run: str) -> str:
    match target:
        case ("output", number):
            return placed[number % len(placed)].output
        case ("failure", number):
            return placed[number % len(placed)].failure
        case ("unknown output",):
            return f"s3://{FUZZ_BUCKET}/outputs/{run}/unknown.out"
        case ("unknown failure",):
            return f"s3://{FUZZ_BUCKET}/failures/{run}/unknown-error.out"
        case ("outside the prefixes",):
            return f"s3://{FUZZ_BUCKET}/inputs/{run}/payload"
        case _:
            return f"s3://other-bucket/outputs/{run}/x.out"


def s3_record(entry: Entry, bucket: str, key: str) -> dict[str, Any]:
    """A record as S3 writes it, or with only the fields the gateway reads."""
    if entry.sparse:
        return {
            "eventSource": entry.event_source,
            "eventName": entry.event_name,
            "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
        }
    return {
        "eventVersion": "2.1",
        "eventSource": entry.event_source,
        "awsRegion": "us-east-1",
        "eventTime": "2026-12-04T12:00:05.000Z",
        "eventName": entry.event_name,
        "userIdentity": {"principalId": "EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE123456789"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "AsyncResults",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": 42, "eTag": "0123456789abcdef"},
        },
    }


def spelled(entry: Entry, placed: list[Placed], run: str) -> tuple[dict[str, Any], str]:
    """A notification record for an entry, and the location its key decodes to."""
    bucket, _, key = (
        location_of(entry.target, placed, run).removeprefix("s3://").partition("/")
    )
    encoded = ENCODINGS[entry.encoding](key)
    # S3's rule for keys in notifications: URL-encoded, "+" for a space.
    return s3_record(entry, bucket, encoded), f"s3://{bucket}/{unquote_plus(encoded)}"


def is_created(entry: Entry) -> bool:
    return entry.event_source == "aws:s3" and entry.event_name.startswith(
        "ObjectCreated:"
    )


def without(record: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """The record with the field at path removed (value None) or replaced."""
    *parents, name = path
    inner = record
    for parent in parents:
        inner = inner[parent]
    if value is None:
        del inner[name]
    else:
        inner[name] = value
    return record


def read_message(
    message: Any, placed: list[Placed], run: str, places: dict[str, str]
) -> tuple[str, tuple[tuple[str, bool], ...]]:
    """The SQS body of a drawn message, and what the gateway must act on in it."""
    match message:
        case Notification(notified):
            pairs = [spelled(entry, placed, run) for entry in notified]
            body = json.dumps({"Records": [record for record, _ in pairs]})
            acted = tuple(
                (where, is_created(entry))
                for entry, (_, where) in zip(notified, pairs, strict=True)
            )
            return body, acted
        case Broken(entry, missing, replacement):
            record, _ = spelled(entry, placed, run)
            return json.dumps({"Records": [without(record, missing, replacement)]}), ()
        case S3TestEvent():
            body = {
                "Service": "Amazon S3",
                "Event": "s3:TestEvent",
                "Bucket": FUZZ_BUCKET,
            }
            return json.dumps(body), ()
        case _:
            return body_text(message, places), ()


def sent_messages(
    scenario: Scenario, placed: list[Placed], run: str, places: dict[str, str]
) -> list[Sent]:
    sent: list[Sent] = []
    for number, message in enumerate(scenario.messages):
        if isinstance(message, Copy):
            original = sent[message.of]
            message_id = original.message_id if message.same_message_id else ""
            sent.append(
                Sent(
                    message_id or f"{run}:msg:{number}",
                    original.body,
                    original.entries,
                )
            )
            continue
        body, acted = read_message(message, placed, run, places)
        sent.append(Sent(f"{run}:msg:{number}", body, acted))
    return sent


def sqs_event(sent: list[Sent]) -> dict[str, Any]:
    """The batch as Lambda's SQS event source hands it to the results function."""
    queue = "arn:aws:sqs:us-east-1:123456789012:inference-gateway-local-resultsqueue"
    return {
        "Records": [
            {
                "messageId": message.message_id,
                "receiptHandle": f"fuzz-receipt-{number}",
                "body": message.body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue,
                "awsRegion": "us-east-1",
            }
            for number, message in enumerate(sent)
        ]
    }


# What must follow --------------------------------------------------------------


def linked(placed: list[Placed], scenario: Scenario) -> dict[str, tuple[int, str, bool]]:
    """Each linked location: its inference, what it holds, whether its object exists."""
    found = {}
    for number, (item, inference) in enumerate(
        zip(placed, scenario.inferences, strict=True)
    ):
        found[item.output] = (number, "completed", inference.output_written)
        found[item.failure] = (number, "failed", inference.failure_written)
    return found


def acted_on(
    sent: list[Sent], failed: list[set[str]], places: dict[str, tuple[int, str, bool]]
) -> list[list[str]]:
    """The created objects the gateway handled, delivery by delivery.

    A message handed back stops at its first linked result whose object is missing:
    only that can make it fail.
    """
    handled = []
    for failures in failed:
        delivery = []
        for message in sent:
            for location, created in message.entries:
                if not created:
                    continue
                missing = location in places and not places[location][2]
                if missing and message.message_id in failures:
                    break
                delivery.append(location)
        handled.append(delivery)
    return handled


def may_fail(message: Sent, places: dict[str, tuple[int, str, bool]]) -> bool:
    """A message may come back only if it names a linked result not yet written."""
    return any(
        created and location in places and not places[location][2]
        for location, created in message.entries
    )


def finishing_status(
    handled: list[list[str]], places: dict[str, tuple[int, str, bool]]
) -> dict[int, set[str]]:
    """How each inference may end: as one of its own objects handled in the first
    delivery that handled any (a delivery's messages run side by side)."""
    status: dict[int, set[str]] = {}
    for delivery in handled:
        found: dict[int, set[str]] = {}
        for location in delivery:
            if location in places:
                number, outcome, written = places[location]
                if written and number not in status:
                    found.setdefault(number, set()).add(outcome)
        status.update(found)
    return status


# What the stack shows ------------------------------------------------------------


class Deliveries:
    """Deliveries to callers: the reply queue, the webhook receiver, the dead letters."""

    def __init__(self, stack: OfflineStack) -> None:
        self.sqs = stack.client("sqs")
        assert stack.webhook_receiver is not None
        self.receiver = stack.webhook_receiver
        self.reply_queue = self.sqs.get_queue_url(QueueName=REPLY_QUEUE)["QueueUrl"]
        self.dead_letters = stack.resources["DeliveryDeadLetterQueue"]
        self._webhooks_before = 0

    def forget_earlier(self) -> None:
        self.drain(self.reply_queue)
        self.drain(self.dead_letters)
        self._webhooks_before = len(self.receiver.deliveries())

    def read(self) -> dict[str, list[dict[str, Any]]]:
        """Each delivered envelope since forget_earlier(), by inference id."""
        envelopes = [json.loads(m["Body"]) for m in self.drain(self.reply_queue)]
        envelopes += [json.loads(m["Body"]) for m in self.drain(self.dead_letters)]
        for hook in self.receiver.deliveries()[self._webhooks_before :]:
            if 200 <= int(hook["status"]) < 300:
                assert hook["signatureValid"], hook
                assert hook["idempotencyKey"] == hook["body"]["inferenceId"], hook
                envelopes.append(hook["body"])
        by_inference: dict[str, list[dict[str, Any]]] = {}
        for envelope in envelopes:
            by_inference.setdefault(envelope.get("inferenceId", "?"), []).append(envelope)
        return by_inference

    def drain(self, url: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while messages := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10
        ).get("Messages", []):
            found += messages
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
        return found


@pytest.fixture(scope="module")
def world(offline_stack: OfflineStack, results_function: ModuleType) -> World:
    return World(offline_stack, results_function)


@pytest.fixture(scope="module")
def deliveries(offline_stack: OfflineStack, results_function: ModuleType) -> Deliveries:
    return Deliveries(offline_stack)


def check_response_shape(response: Any, event: dict[str, Any]) -> set[str]:
    """The partial batch response names only messages of the batch."""
    assert isinstance(response, dict)
    assert set(response) == {"batchItemFailures"}
    items = response["batchItemFailures"]
    assert all(set(item) == {"itemIdentifier"} for item in items)
    ids = {item["itemIdentifier"] for item in items}
    assert ids <= {record["messageId"] for record in event["Records"]}
    return ids


# The property ------------------------------------------------------------------


@given(scenario=scenarios())
@settings(max_examples=EXAMPLES, phases=PHASES)
def test_each_result_is_finished_once_and_told_once(
    offline_stack: OfflineStack,
    results_function: ModuleType,
    world: World,
    deliveries: Deliveries,
    scenario: Scenario,
) -> None:
    run = new_run()
    places = stack_places(offline_stack, run)
    placed = world.arrange(scenario, run, places)
    sent = sent_messages(scenario, placed, run, places)
    event = sqs_event(sent)
    note(f"inferences: {placed}")
    note(f"messages: {[(m.message_id, m.body[:400]) for m in sent]}")
    deliveries.forget_earlier()

    responses = [
        invoke_quietly(results_function.handler, event)
        for _ in range(1 + scenario.delivered_twice)
    ]

    failed = [check_response_shape(response, event) for response in responses]
    results = linked(placed, scenario)
    assert_handed_back_only_for_results_not_written(sent, failed, results)
    status = finishing_status(acted_on(sent, failed, results), results)
    told = deliveries.read()
    describe(scenario, failed, status, told)
    for number, item in enumerate(placed):
        assert_finished_once_and_told_once(world, item, status.get(number), told)


def describe(
    scenario: Scenario,
    failed: list[set[str]],
    status: dict[int, set[str]],
    told: dict[str, list[dict[str, Any]]],
) -> None:
    """Tally what the examples exercised (shown with --hypothesis-show-statistics)."""
    event(f"inferences finished: {len(status)} of {len(scenario.inferences)}")
    event(f"deliveries: {sum(len(envelopes) for envelopes in told.values())}")
    if any(failed):
        event("a message was handed back")
    if scenario.delivered_twice:
        event("the batch arrived twice")


def assert_handed_back_only_for_results_not_written(
    sent: list[Sent], failed: list[set[str]], results: dict[str, tuple[int, str, bool]]
) -> None:
    for failures in failed:
        for message in sent:
            if message.message_id in failures:
                assert may_fail(message, results), f"handed back: {message.body[:300]}"


def assert_finished_once_and_told_once(
    world: World,
    item: Placed,
    statuses: set[str] | None,
    told: dict[str, list[dict[str, Any]]],
) -> None:
    record = world.records.get(item.inference_id)
    envelopes = told.get(item.inference_id, [])
    if statuses is None:
        assert record.status is Status.PENDING, record
        assert envelopes == [], envelopes
        return

    assert record.status.value in statuses, record
    status = record.status.value
    assert record.delivery is item.delivery, record
    expected = 0 if item.callback is None else 1
    assert len(envelopes) == expected, envelopes
    for envelope in envelopes:
        assert envelope["status"] == status, envelope
        if status == "failed":
            assert envelope["failureReason"], envelope
        else:
            assert envelope["resultUrl"], envelope
            if envelope["contentType"] == "text/csv":
                assert envelope["result"] == "0.0198519491\n", envelope
