"""The queue function answers each message once, or hands it back to the queue.

Batches of drawn messages (requests to the stack's models, refused and odd reply
targets, wrong types, garbage, messages handed over twice, any receive count) go to
the queue function's handler, run in this process with its environment on the
offline stack. Each message it hands back comes again, as SQS brings it: alone, its
receive count one higher; past the request queue's redrive limit SQS would move it
to its dead letters instead. What the deliveries led to is then read back from the
stack: the reply queues, the request and delivery dead-letter queues, the webhook
receiver, the inference table and the table where the function keeps each request
id's outcome.

Over all deliveries, a request id must have received exactly these answers:

- a refusal (a ValidationError reply keyed ``refused:<message id>``) each time an
  invalid message came, under its requestId if that is a valid one, else under its
  message id;
- a failed reply (keyed ``reused:<digest>``) each time a request came under a
  requestId already claimed for a different request;
- a dead letter (RequestInProgress) each time a message came on its last receive
  while its request was being answered;
- once its request ran, one answer of its own (keyed by the request id): a reply, a
  dead letter with the reason when no one may be told, or an async inference; none
  when a sync request without a reply target completed (its stored outcome says so).

An answer is a reply on a reply queue or webhook, a reply kept in the delivery
dead-letter queue because it could not be delivered, a request kept in the request
dead-letter queue with its reason, or an inference record. The FIFO reply queue keeps
one message per key, so there copies of one refusal count once.

A message is handed back only when a later delivery may change what becomes of it:
a failure that may pass (throttling, 5xx, timeouts, a webhook name that may
resolve), the same request being answered, a FIFO group stopped before it. On its
last receive it never is: SQS would move it to its dead letters untold.
"""

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import assume, event, example, given, note, settings

from fuzz.strategies import (
    FIFO_REPLY_QUEUE,
    FUNCTION,
    FUNCTION_LOG,
    MOTO_QUEUE,
    NAMED_WEBHOOKS,
    PHASES,
    REFUSED_QUEUES,
    REFUSED_WEBHOOKS,
    REPLY_QUEUE,
    Batch,
    Fill,
    Message,
    import_handler,
    invoke_quietly,
    new_run,
    queue_bodies,
    render,
    sqs_batches,
    stack_places,
    use_gateway_environment,
)
from gateway.core.once import fingerprint
from gateway.models.messages import QueueMessage
from offline.stack import OfflineStack

EXAMPLES = 250
# SQS takes messages of up to 1 MiB; Lambda takes an event of up to 6 MB.
MAX_MESSAGE_BYTES = 1_048_576
MAX_EVENT_BYTES = 6_000_000
# What a request id may be (README, "Queue requests"): it keys replies, webhooks and
# FIFO deduplication. Stated here apart from the gateway's model.
REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
REUSED_KEY = re.compile(r"reused:[0-9a-f]{64}")
TOO_DEEP = "the message nests too deeply"
# Failures that may pass later, by their code: throttling, 5xx and timeouts upstream.
PASSING_FAILURES = frozenset(
    {
        "ThrottlingException",
        "ModelNotReadyException",
        "ServiceUnavailable",
        "InternalFailure",
        "ModelTimeout",
    }
)
# A reply webhook's name that did not resolve: it may later.
UNRESOLVED = "CallbackUnresolved"


# One request sent twice (in two layouts) ahead of another in a FIFO group, all on
# their last receive (at the template's default limit): the second waits for the
# first, and the one behind it must not be lost.
TWICE_AHEAD_OF_ANOTHER = Batch(
    fifo=True,
    messages=(
        Message(
            0,
            {"endpoint": "echo", "body": "1,2", "requestId": Fill("{run}-", "r0")},
            "group-a",
            received=5,
        ),
        Message(
            1,
            {"requestId": Fill("{run}-", "r0"), "body": "1,2", "endpoint": "echo"},
            "group-a",
            received=5,
        ),
        Message(
            2,
            {"endpoint": "echo", "body": "3,4", "requestId": Fill("{run}-", "r1")},
            "group-a",
            received=5,
        ),
    ),
)


@pytest.fixture(scope="module")
def queue_function(offline_stack: OfflineStack) -> ModuleType:
    use_gateway_environment(offline_stack)
    return import_handler("gateway.handlers.queue")


@pytest.fixture(scope="module")
def last_receive(offline_stack: OfflineStack) -> int:
    """The request queue's redrive limit, as the template gives it to the function."""
    return int(offline_stack.function_env(FUNCTION)["REQUEST_MAX_RECEIVE_COUNT"])


# What the stack shows ------------------------------------------------------------


@dataclass(frozen=True)
class Told:
    """One answer found on the stack, under the request id it answers."""

    where: str
    request_id: str
    # The key a receiver or a FIFO queue drops copies by, where it can be seen.
    key: str | None = None
    # Where it went, where that tells replies apart: a webhook's path, a queue's URL.
    target: str | None = None
    reply: dict[str, Any] | None = None
    code: str | None = None
    reason: str | None = None
    source: str | None = None


@dataclass
class Seen:
    """Everything the stack holds about one example's answers."""

    replies: list[dict[str, Any]]
    fifo_replies: list[dict[str, Any]]
    request_dead_letters: list[dict[str, Any]]
    delivery_dead_letters: list[dict[str, Any]]
    webhooks: list[dict[str, Any]]
    inferences: list[dict[str, Any]]


class StackView:
    """Reads the stack's queues, webhook receiver and tables."""

    def __init__(self, stack: OfflineStack) -> None:
        self.sqs = stack.client("sqs")
        self.dynamodb = stack.client("dynamodb")
        assert stack.webhook_receiver is not None
        self.receiver = stack.webhook_receiver
        resources = stack.resources
        self.request_dlq = resources["RequestDeadLetterQueue"]
        self.delivery_dlq = resources["DeliveryDeadLetterQueue"]
        self.inference_table = resources["InferenceTable"]
        self.claims_table = resources["IdempotencyTable"]
        self.reply_queues = [
            self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            for name in (REPLY_QUEUE, "client-replies")
        ]
        self.fifo_reply_queue = self.sqs.get_queue_url(QueueName=FIFO_REPLY_QUEUE)[
            "QueueUrl"
        ]
        self._webhooks_before = 0

    def forget_earlier(self) -> None:
        """Empty the queues and mark the receiver, so only what follows is seen."""
        queues = [*self.reply_queues, self.fifo_reply_queue]
        for url in [*queues, self.request_dlq, self.delivery_dlq]:
            self.drain(url)
        self._webhooks_before = len(self.receiver.deliveries())

    def read(self, run: str) -> Seen:
        """What arrived since forget_earlier()."""
        return Seen(
            replies=[m for url in self.reply_queues for m in self.drain(url)],
            fifo_replies=self.drain(self.fifo_reply_queue),
            request_dead_letters=self.drain(self.request_dlq),
            delivery_dead_letters=self.drain(self.delivery_dlq),
            webhooks=self.receiver.deliveries()[self._webhooks_before :],
            inferences=self.inferences_of(run),
        )

    def drain(self, url: str) -> list[dict[str, Any]]:
        """Receive and delete every message of a queue."""
        found: list[dict[str, Any]] = []
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                AttributeNames=["MessageDeduplicationId"],
            ).get("Messages", [])
            if not messages:
                return found
            found += messages
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )

    def inferences_of(self, run: str) -> list[dict[str, Any]]:
        """Inference records whose request id belongs to this run."""
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=self.inference_table,
            FilterExpression="begins_with(requestId, :run)",
            ExpressionAttributeValues={":run": {"S": run}},
        )
        return [plain(item) for page in pages for item in page["Items"]]

    def claims(self, request_ids: set[str]) -> dict[str, dict[str, Any] | None]:
        """The queue function's entry for each request id: status, fingerprint, outcome."""
        found: dict[str, dict[str, Any] | None] = {}
        for request_id in request_ids:
            item = self.dynamodb.get_item(
                TableName=self.claims_table,
                Key={"id": {"S": f"request#{request_id}"}},
                ConsistentRead=True,
            ).get("Item")
            found[request_id] = plain(item) if item else None
        return found


@pytest.fixture(scope="module")
def stack_view(offline_stack: OfflineStack, queue_function: ModuleType) -> StackView:
    return StackView(offline_stack)


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item's string and number attributes as plain values."""
    return {name: next(iter(value.values())) for name, value in item.items()}


def attributes(message: dict[str, Any]) -> dict[str, str]:
    """A received message's string attributes."""
    return {
        name: value["StringValue"]
        for name, value in message.get("MessageAttributes", {}).items()
    }


# What was sent -----------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One message, and what the gateway's rules make of it."""

    message_id: str
    body: str
    fifo_group: str | None
    # The request the gateway must read in it; None when it must refuse it.
    request: QueueMessage | None
    # The request id its answers carry.
    request_id: str
    fingerprint: str | None
    # The URL its replyTo names, valid or not.
    reply_target: str | None
    # Its answers go to the FIFO reply queue, which keeps one message per key.
    fifo_reply: bool
    # Its reply webhook has a name: offline no name resolves; later one may.
    named_webhook: bool
    # Its reply target is one no deployment may use.
    refused_target: bool
    too_deep: bool


def read_sent(record: dict[str, Any], places: dict[str, str]) -> Sent:
    """A record, with the request and request id the gateway should read in it."""
    message_id, body = record["messageId"], record["body"]
    raw = json_object(body)
    request = parse_request(body)
    named = raw.get("requestId")
    valid_id = isinstance(named, str) and REQUEST_ID.fullmatch(named) is not None
    if request is not None:
        assert named is None or valid_id, f"the model takes request id {named!r}"
    reply_to = raw.get("replyTo")
    targets = list(reply_to.values()) if isinstance(reply_to, dict) else []
    refused = [render(url, places) for url in (*REFUSED_QUEUES, *REFUSED_WEBHOOKS)]
    return Sent(
        message_id=message_id,
        body=body,
        fifo_group=record["attributes"].get("MessageGroupId"),
        request=request,
        request_id=named if valid_id else message_id,
        fingerprint=fingerprint(dump(request)) if request is not None else None,
        reply_target=targets[0]
        if len(targets) == 1 and isinstance(targets[0], str)
        else None,
        fifo_reply=reply_to == {"queueUrl": places["fifo_reply_queue"]},
        named_webhook=reply_to in [{"webhookUrl": url} for url in NAMED_WEBHOOKS],
        refused_target=len(targets) == 1 and targets[0] in refused,
        too_deep=is_too_deep(body),
    )


def parse_request(body: str) -> QueueMessage | None:
    try:
        return QueueMessage.model_validate(json.loads(body))
    except (ValueError, RecursionError):
        return None


def json_object(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def is_too_deep(body: str) -> bool:
    try:
        json.loads(body)
    except RecursionError:
        return True
    except ValueError:
        return False
    return False


def dump(request: QueueMessage) -> dict[str, Any]:
    """The request as the queue function reads it (what its claim fingerprints)."""
    return request.model_dump(mode="json", by_alias=True, exclude_none=True)


# What each delivery should do --------------------------------------------------


class Fate(StrEnum):
    """What a message meets in one delivery, by the gateway's rules."""

    REFUSED = "refused as invalid"
    REUSED = "refused: its requestId names another request"
    RUNS = "runs"
    ANSWERED = "answered before"
    WAITS = "waits: the same request is being answered"
    HELD_BACK = "held back: its FIFO group stopped"


@dataclass(frozen=True)
class Handled:
    """One record of one delivery."""

    sent: Sent
    received: int
    fate: Fate
    # A failure now sends it to the dead letters: it is its last receive.
    last: bool

    def describe(self) -> str:
        return f"{self.fate}, receive {self.received}: {self.sent.body[:300]!r}"


@dataclass
class Delivery:
    """One invocation of the handler and what it left."""

    records: list[Handled]
    reported: set[str]
    claims: dict[str, dict[str, Any] | None]
    # Why the function said it hands messages back, by message id.
    retried: dict[str, set[str]]
    # Requests it answered with a failure on their last receive: (message id, code).
    gave_up: list[tuple[str, str]]
    # Messages handed back on their last receive: SQS moves them to its dead letters.
    redriven: set[str] = field(default_factory=set)


def fates(
    sent: list[Sent],
    stored: dict[str, dict[str, Any] | None],
    reported: set[str],
    fifo: bool,
) -> list[Fate]:
    """Each record's fate: the batch claims its request ids before running any."""
    first: dict[str, Sent] = {}
    stopped: set[str | None] = set()
    found = []
    for s in sent:
        fate = standing(s, first, stored)
        if fifo:
            if s.fifo_group in stopped:
                fate = Fate.HELD_BACK
            if s.message_id in reported:
                stopped.add(s.fifo_group)
        found.append(fate)
    return found


def standing(
    s: Sent, first: dict[str, Sent], stored: dict[str, dict[str, Any] | None]
) -> Fate:
    if s.request is None:
        return Fate.REFUSED
    earlier = first.setdefault(s.request_id, s)
    if earlier is not s:
        return Fate.WAITS if earlier.fingerprint == s.fingerprint else Fate.REUSED
    entry = stored.get(s.request_id)
    if entry is None:
        return Fate.RUNS
    if entry["fingerprint"] != s.fingerprint:
        return Fate.REUSED
    return Fate.ANSWERED if entry["status"] == "completed" else Fate.WAITS


def passing(s: Sent) -> frozenset[str]:
    """Why running a message's request may fail now and pass later."""
    return PASSING_FAILURES | {UNRESOLVED} if s.named_webhook else PASSING_FAILURES


def logged_retries() -> dict[str, set[str]]:
    found: defaultdict[str, set[str]] = defaultdict(set)
    for entry in FUNCTION_LOG.entries("request will be retried"):
        found[entry["message_id"]].add(entry.get("reason", ""))
    return found


def logged_surrenders() -> list[tuple[str, str]]:
    return [
        (entry["message_id"], entry.get("reason", ""))
        for entry in FUNCTION_LOG.entries("request gave up after retries")
    ]


def redelivery(
    event: dict[str, Any], reported: set[str], last_receive: int
) -> tuple[dict[str, Any], set[str]]:
    """The messages handed back as SQS brings them again, and those it redrives."""
    again: list[dict[str, Any]] = []
    redriven: set[str] = set()
    done: set[str] = set()
    for record in event["Records"]:
        message_id = record["messageId"]
        if message_id not in reported or message_id in done:
            continue
        done.add(message_id)
        received = int(record["attributes"]["ApproximateReceiveCount"])
        if received >= last_receive:
            redriven.add(message_id)
            continue
        counted = {**record["attributes"], "ApproximateReceiveCount": str(received + 1)}
        handle = f"{record['receiptHandle']}+{received}"
        again.append({**record, "attributes": counted, "receiptHandle": handle})
    return {"Records": again}, redriven


# Counting answers ----------------------------------------------------------------


def told_of(seen: Seen, message_groups: dict[str, str]) -> list[Told]:
    """The answers on the stack to queue requests (async results come later)."""
    told = []
    for message in seen.replies:
        reply = json.loads(message["Body"])
        if "inferenceId" not in reply:
            told.append(answer("reply queue", reply))
    for message in seen.fifo_replies:
        reply = json.loads(message["Body"])
        key = message["Attributes"]["MessageDeduplicationId"]
        if "inferenceId" not in reply:
            told.append(answer("FIFO reply queue", reply, key))
    for hook in seen.webhooks:
        body = hook["body"]
        if is_accepted(hook) and isinstance(body, dict) and "inferenceId" not in body:
            told.append(answer("webhook", body, hook["idempotencyKey"], hook["path"]))
    for letter in seen.delivery_dead_letters:
        reply = json.loads(letter["Body"])
        if "inferenceId" not in reply:
            told.append(answer("delivery dead letters", reply))
    for letter in seen.request_dead_letters:
        kept = attributes(letter)
        source = kept.get("sourceMessageId", "")
        told.append(
            Told(
                "request dead letters",
                message_groups.get(source) or kept.get("requestId") or source,
                code=kept.get("code"),
                reason=kept.get("reason"),
                source=source,
            )
        )
    for item in seen.inferences:
        failed_at_submission = item["status"] == "failed" and "resultLocation" not in item
        if not failed_at_submission:
            told.append(Told("inference", item["requestId"]))
    return told


def answer(
    where: str,
    reply: dict[str, Any],
    key: str | None = None,
    target: str | None = None,
) -> Told:
    error = reply.get("error")
    return Told(
        where,
        str(reply.get("requestId")),
        key=key,
        target=target,
        reply=reply,
        code=error.get("code") if isinstance(error, dict) else None,
        reason=error.get("message") if isinstance(error, dict) else None,
    )


def is_accepted(hook: dict[str, Any]) -> bool:
    return 200 <= int(hook["status"]) < 300


@dataclass
class Due:
    """The answers a request id must have, over every delivery."""

    # One per answer: the same key on the FIFO reply queue is one answer.
    answers: set[tuple[Any, ...]] = field(default_factory=set)
    ran: Sent | None = None
    silent: bool = False


def due_answers(
    deliveries: list[Delivery], stored: dict[str, dict[str, Any] | None]
) -> defaultdict[str, Due]:
    due: defaultdict[str, Due] = defaultdict(Due)
    for number, delivery in enumerate(deliveries):
        for index, handled in enumerate(delivery.records):
            s = handled.sent
            if handled.fate is Fate.RUNS and delivery.claims.get(s.request_id):
                due[s.request_id].ran = s
            kept = handled.fate is Fate.WAITS and handled.last
            if handled.fate not in (Fate.REFUSED, Fate.REUSED) and not kept:
                continue
            if s.message_id in delivery.reported:
                continue  # it failed before answering: it comes again
            if kept or not s.fifo_reply:
                due[s.request_id].answers.add((number, index))
            elif handled.fate is Fate.REFUSED:
                due[s.request_id].answers.add(("FIFO", "refused", s.message_id))
            else:
                due[s.request_id].answers.add(("FIFO", "reused", s.fingerprint))
    for request_id, entry in stored.items():
        ran = due[request_id].ran
        if entry is None:
            continue
        assert ran is not None, f"{request_id!r}: stored, but no delivery ran it"
        due[request_id].answers.add(("own",))
        silent = entry["outcome"] == "completed" and ran.request is not None
        due[request_id].silent = silent and ran.request.reply_to is None
    return due


# Shapes ------------------------------------------------------------------------


def check_response_shape(response: Any, event: dict[str, Any]) -> set[str]:
    """The partial batch response names only messages of the batch."""
    assert isinstance(response, dict)
    assert set(response) == {"batchItemFailures"}
    items = response["batchItemFailures"]
    assert all(set(item) == {"itemIdentifier"} for item in items)
    ids = {item["itemIdentifier"] for item in items}
    assert ids <= {record["messageId"] for record in event["Records"]}
    return ids


def check_reply_shape(reply: dict[str, Any]) -> None:
    assert isinstance(reply.get("requestId"), str), reply
    assert isinstance(reply.get("endpoint"), str), reply
    assert reply.get("status") in ("completed", "failed"), reply
    if reply["status"] == "failed":
        assert set(reply["error"]) == {"code", "message"}, reply
    else:
        answers = {"body", "bodyBase64", "resultUrl"} & set(reply)
        assert len(answers) == 1, reply


# The property ------------------------------------------------------------------


@given(batch=sqs_batches(queue_bodies))
@example(batch=TWICE_AHEAD_OF_ANOTHER)
@settings(max_examples=EXAMPLES, phases=PHASES)
def test_every_message_is_answered_once_or_handed_back(
    offline_stack: OfflineStack,
    queue_function: ModuleType,
    stack_view: StackView,
    last_receive: int,
    batch: Batch,
) -> None:
    run = new_run()  # fresh ids, also when an example is replayed
    places = stack_places(offline_stack, run)
    places["fifo_reply_queue"] = render(Fill(MOTO_QUEUE + FIFO_REPLY_QUEUE), places)
    event = batch.event(run, places)
    sizes = [len(record["body"].encode()) for record in event["Records"]]
    assume(max(sizes) <= MAX_MESSAGE_BYTES and sum(sizes) <= MAX_EVENT_BYTES)
    note(f"FIFO: {batch.fifo}; messages: {summary(event)}")
    stack_view.forget_earlier()
    first = [read_sent(record, places) for record in event["Records"]]
    request_ids = {s.request_id for s in first if s.request is not None}
    stored: dict[str, dict[str, Any] | None] = dict.fromkeys(request_ids)

    deliveries: list[Delivery] = []
    while event["Records"]:
        FUNCTION_LOG.clear()
        response = invoke_quietly(queue_function.handler, event)

        reported = check_response_shape(response, event)
        sent = [read_sent(record, places) for record in event["Records"]]
        received = [
            int(r["attributes"]["ApproximateReceiveCount"]) for r in event["Records"]
        ]
        found = fates(sent, stored, reported, batch.fifo)
        stored = stack_view.claims(request_ids)
        delivery = Delivery(
            [
                Handled(s, count, fate, count >= last_receive)
                for s, count, fate in zip(sent, received, found, strict=True)
            ],
            reported,
            stored,
            logged_retries(),
            logged_surrenders(),
        )
        deliveries.append(delivery)
        note(f"delivery {len(deliveries)}: {[h.fate.value for h in delivery.records]}")
        assert_no_claim_left_in_progress(stored)
        assert_handed_back_only_when_a_retry_may_help(delivery)
        assert_gave_up_only_on_the_last_receive(delivery)
        event, delivery.redriven = redelivery(event, reported, last_receive)

    seen = stack_view.read(run)
    told = told_of(seen, {s.message_id: s.request_id for s in first})
    describe(deliveries, told)
    due = due_answers(deliveries, stored)
    assert_never_redriven(deliveries)
    assert_waiting_kept_on_the_last_receive(deliveries, stored, told)
    assert_each_request_answered_once(deliveries, due, told)
    assert_keys_tell_answers_apart(deliveries, due, seen, told)
    assert_refusals_say_why(deliveries, told)
    assert_surrenders_answered(deliveries, told)
    assert_refused_targets_never_tried(seen, places)
    assert_answers_well_formed(seen)


def summary(event: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Each record's message id, receive count and body start, for a failure's report."""
    return [
        (r["messageId"], r["attributes"]["ApproximateReceiveCount"], r["body"][:400])
        for r in event["Records"]
    ]


def describe(deliveries: list[Delivery], told: list[Told]) -> None:
    """Tally what the examples exercised (shown with --hypothesis-show-statistics)."""
    event(f"deliveries: {len(deliveries)}")
    for delivery in deliveries:
        for handled in delivery.records:
            event(f"message {handled.fate}")
            if handled.sent.request is not None:
                event(f"{handled.sent.request.mode} request")
            if handled.sent.too_deep:
                event("message nested too deeply")
        if delivery.gave_up:
            event("answered on its last receive")
        if delivery.redriven:
            event("redriven on its last receive")
    for where in {t.where for t in told}:
        event(f"answers found in: {where}")


def assert_no_claim_left_in_progress(stored: dict[str, dict[str, Any] | None]) -> None:
    for request_id, entry in stored.items():
        if entry is not None:
            assert entry["status"] == "completed", f"{request_id!r}: claim left {entry}"


def assert_handed_back_only_when_a_retry_may_help(delivery: Delivery) -> None:
    """Which messages must come back, and which may; by message id, as SQS sees it."""
    must: dict[str, list[str]] = defaultdict(list)
    may: set[str] = set()
    for handled in delivery.records:
        s, message_id = handled.sent, handled.sent.message_id
        if handled.fate is Fate.HELD_BACK or (
            handled.fate is Fate.WAITS and not handled.last
        ):
            must[message_id].append(handled.describe())
            may.add(message_id)
        elif handled.fate is Fate.RUNS:
            entry = delivery.claims[s.request_id]
            if entry is not None:
                assert entry["fingerprint"] == s.fingerprint, f"another ran: {entry}"
                continue
            must[message_id].append(f"neither answered nor stored: {handled.describe()}")
            why = delivery.retried.get(message_id, set()) & passing(s)
            assert why, f"handed back for no reason: {handled.describe()}"
            assert not handled.last, (
                f"handed back on its last receive: {handled.describe()}"
            )
            may.add(message_id)
        elif handled.fate in (Fate.REFUSED, Fate.REUSED) and s.named_webhook:
            # The refusal's webhook name may resolve later; on the last receive the
            # refusal is kept with its reason instead.
            may.update([message_id] if not handled.last else [])

    for message_id, reasons in must.items():
        assert message_id in delivery.reported, f"not handed back: {reasons}"
    for message_id in delivery.reported - may:
        records = [h for h in delivery.records if h.sent.message_id == message_id]
        why = "on its last receive" if any(h.last for h in records) else "for no reason"
        pytest.fail(f"handed back {why}: {[h.describe() for h in records]}")


def assert_gave_up_only_on_the_last_receive(delivery: Delivery) -> None:
    for message_id, code in delivery.gave_up:
        running = [
            h
            for h in delivery.records
            if h.sent.message_id == message_id and h.fate is Fate.RUNS
        ]
        assert running, f"gave up on {message_id!r}, which did not run"
        handled = running[0]
        assert handled.last, f"gave up early: {handled.describe()}"
        assert code in passing(handled.sent), f"gave up on {code}: {handled.describe()}"
        entry = delivery.claims[handled.sent.request_id]
        assert entry is not None
        assert entry["outcome"] == "failed", entry


def assert_never_redriven(deliveries: list[Delivery]) -> None:
    """On its last receive, a message handed back reaches the dead letters untold."""
    for delivery in deliveries:
        for message_id in delivery.redriven:
            records = [h for h in delivery.records if h.sent.message_id == message_id]
            described = [h.describe() for h in records]
            pytest.fail(f"handed back on its last receive, redriven: {described}")


def assert_waiting_kept_on_the_last_receive(
    deliveries: list[Delivery], stored: dict[str, dict[str, Any] | None], told: list[Told]
) -> None:
    """A message waiting for its request on its last receive is kept, with why."""
    kept: Counter[str] = Counter()
    for delivery in deliveries:
        for handled in delivery.records:
            if handled.fate is Fate.WAITS and handled.last:
                request_id = handled.sent.request_id
                assert stored.get(request_id), f"left waiting: {handled.describe()}"
                kept[request_id] += 1
    found = Counter(
        t.request_id
        for t in told
        if t.where == "request dead letters" and t.code == "RequestInProgress"
    )
    assert found == kept, f"kept waiting: {found}, due {kept}"


def assert_each_request_answered_once(
    deliveries: list[Delivery], due: defaultdict[str, Due], told: list[Told]
) -> None:
    observed = Counter(t.request_id for t in told)
    for request_id in set(due) | set(observed):
        expected = due[request_id]
        count = len(expected.answers) - expected.silent
        records = [
            (number, h.fate.value, h.sent.body[:200])
            for number, delivery in enumerate(deliveries)
            for h in delivery.records
            if h.sent.request_id == request_id
        ]
        found = [(t.where, t.code) for t in told if t.request_id == request_id]
        assert observed[request_id] == count, (
            f"request id {request_id!r}: {observed[request_id]} answers {found}, "
            f"{count} due (silent: {expected.silent}); records: {records}"
        )


def assert_keys_tell_answers_apart(
    deliveries: list[Delivery], due: defaultdict[str, Due], seen: Seen, told: list[Told]
) -> None:
    """Webhooks and the FIFO reply queue show keys: each names an answer sent there."""
    refused = {
        h.sent.message_id: h.sent
        for d in deliveries
        for h in d.records
        if h.fate is Fate.REFUSED
    }
    reused = [h.sent for d in deliveries for h in d.records if h.fate is Fate.REUSED]
    attempts = [
        answer("webhook attempt", hook["body"], hook["idempotencyKey"], hook["path"])
        for hook in seen.webhooks
        if isinstance(hook["body"], dict) and "inferenceId" not in hook["body"]
    ]
    own: Counter[str] = Counter()
    for t in [*attempts, *(t for t in told if t.key is not None)]:
        assert t.key is not None
        if t.key == t.request_id:
            ran = due[t.request_id].ran
            assert ran is not None, f"keyed as an answer, none ran: {t}"
            assert sent_there(t, ran), f"keyed as the answer of {ran.body[:300]!r}: {t}"
            own[t.request_id] += t.where != "webhook attempt"
        elif t.key.startswith("refused:"):
            s = refused.get(t.key.removeprefix("refused:"))
            assert s is not None, f"keyed as a refusal of no message: {t}"
            assert s.request_id == t.request_id, f"refusal of {s.body[:300]!r}: {t}"
            assert sent_there(t, s), f"keyed as the refusal of {s.body[:300]!r}: {t}"
            assert t.code == "ValidationError", t
        else:
            assert REUSED_KEY.fullmatch(t.key), f"unknown key: {t}"
            assert any(
                s.request_id == t.request_id and sent_there(t, s) for s in reused
            ), f"keyed as a reused request id: {t}"
            assert t.code == "ValidationError", t
    for request_id, count in own.items():
        assert count <= 1, f"{request_id!r}: {count} answers keyed by the request id"


def sent_there(t: Told, s: Sent) -> bool:
    """Tell whether a message asked for its replies where this answer went."""
    if t.where == "FIFO reply queue":
        return s.fifo_reply
    return s.reply_target is not None and urlsplit(s.reply_target).path == t.target


def assert_refusals_say_why(deliveries: list[Delivery], told: list[Told]) -> None:
    """Invalid messages get ValidationError; refused reply targets, CallbackRefused."""
    refused = {
        h.sent.message_id: h.sent
        for d in deliveries
        for h in d.records
        if h.fate is Fate.REFUSED
    }
    for t in told:
        if t.where == "request dead letters" and t.source in refused:
            s = refused[t.source]
            assert t.code == "ValidationError", t
            if s.too_deep:
                assert t.reason == TOO_DEEP, t
    for d in deliveries:
        for h in d.records:
            s = h.sent
            if h.fate is Fate.RUNS and s.refused_target and d.claims[s.request_id]:
                codes = Counter(
                    t.code
                    for t in told
                    if t.where == "request dead letters" and t.request_id == s.request_id
                )
                assert codes["CallbackRefused"] == 1, (h.describe(), codes)


def assert_surrenders_answered(deliveries: list[Delivery], told: list[Told]) -> None:
    """A request given up on its last receive is answered with the failure's code."""
    for delivery in deliveries:
        for message_id, code in delivery.gave_up:
            request_id = next(
                h.sent.request_id
                for h in delivery.records
                if h.sent.message_id == message_id
            )
            codes = [t.code for t in told if t.request_id == request_id]
            assert code in codes, f"{request_id!r} gave up on {code}, told {codes}"


def assert_refused_targets_never_tried(seen: Seen, places: dict[str, str]) -> None:
    refused = {render(url, places) for url in (*REFUSED_QUEUES, *REFUSED_WEBHOOKS)}
    for letter in seen.delivery_dead_letters:
        target = attributes(letter).get("callbackTarget")
        assert target not in refused, f"a refused target was tried: {target!r}"


def assert_answers_well_formed(seen: Seen) -> None:
    for letter in seen.request_dead_letters:
        kept = attributes(letter)
        assert kept.get("reason"), letter
        assert kept.get("code"), letter
    for message in [*seen.replies, *seen.fifo_replies]:
        reply = json.loads(message["Body"])
        if "inferenceId" not in reply:
            check_reply_shape(reply)
    for hook in seen.webhooks:
        if isinstance(hook["body"], dict) and "inferenceId" not in hook["body"]:
            check_reply_shape(hook["body"])
