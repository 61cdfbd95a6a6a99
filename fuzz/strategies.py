"""Inputs for the property tests (queue messages, S3 keys, SQS batches) and the
gateway's functions run in this process against the offline stack.

A value that is known only when a test runs (an id of that run, a queue's URL on
the stack's moto) is drawn as a :class:`Fill` and rendered then. Message bodies are
JSON, with escapes wherever SQS would refuse a character, so a drawn string may hold
any character (control characters, lone surrogates) and still travel in a message.
"""

import base64
import contextlib
import functools
import importlib
import io
import json
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import Phase
from hypothesis import strategies as st

from offline.stack import SAMPLE_CSV_ROW, OfflineStack

# Shrinking a failure is worth its time; explaining it (which lines it ran) is not.
PHASES = (Phase.explicit, Phase.generate, Phase.target, Phase.shrink)

ROOT = Path(__file__).resolve().parent.parent
FUNCTION = "QueueFunction"
ACCOUNT = "123456789012"
REGION = "us-east-1"
# The fuzz tests' own bucket: no notification reaches the stack's results function.
FUZZ_BUCKET = "inference-gateway-fuzz"
FUZZ_INPUTS = f"s3://{FUZZ_BUCKET}/allowed/"
REPLY_QUEUE = "fuzz-replies"
FIFO_REPLY_QUEUE = "fuzz-replies.fifo"


# Values filled in when a test runs -------------------------------------------------

# "fz" and 12 hex digits: what every id an example makes up begins with.
RUN_ID_LENGTH = 14


def new_run() -> str:
    """A fresh id for one run of an example (a replayed example gets a new one too)."""
    return f"fz{uuid.uuid4().hex[: RUN_ID_LENGTH - 2]}"


@dataclass(frozen=True)
class Fill:
    """``template`` formatted with the run's places, then ``tail`` as drawn."""

    template: str
    tail: str = ""


@dataclass(frozen=True)
class Raw:
    """A message body sent as it is, not as JSON."""

    text: str


def render(value: Any, places: Mapping[str, str]) -> Any:
    """Replace every Fill in a drawn value."""
    if isinstance(value, Fill):
        return value.template.format_map(places) + value.tail
    if isinstance(value, dict):
        return {render(k, places): render(v, places) for k, v in value.items()}
    if isinstance(value, list):
        return [render(item, places) for item in value]
    return value


def body_text(value: Any, places: Mapping[str, str], *, ascii_only: bool = True) -> str:
    """The SQS body of a drawn message: JSON, escaped to ASCII or not, or raw text."""
    if isinstance(value, Raw):
        return value.text
    document = render(value, places)
    text = json.dumps(document, ensure_ascii=ascii_only)
    # Unescaped, a lone surrogate or U+FFFE could not travel in an SQS message.
    if not all(is_sqs_character(char) for char in text):
        text = json.dumps(document)
    return text


def is_sqs_character(char: str) -> bool:
    """Tell whether SQS accepts a character in a message body."""
    code = ord(char)
    return (
        char in "\t\n\r"
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


# Strings -----------------------------------------------------------------------

# Characters that are rare in drawn text but break naive code.
ODD_CHARACTERS = ("\x00", "\x01", "\x7f", "\ud800", "\udfff", "\u2028", "\ufffe", "é")

# What SQS accepts in a message body.
sqs_characters = st.characters(
    min_codepoint=0x20,
    exclude_categories=("Cs",),
    exclude_characters="\ufffe\uffff",
    include_characters="\t\n\r",
)
any_characters = st.one_of(st.characters(), st.sampled_from(ODD_CHARACTERS))
texts = st.text(any_characters, max_size=24)
# Past the async route's inline limit (128,000 bytes), within SQS's 1 MiB.
huge_texts = st.builds(
    lambda size, char: char * size,
    st.integers(128_001, 170_000),
    st.sampled_from("x,é"),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=8,
)


def nested(depth: int) -> str:
    """A JSON array nested ``depth`` levels deep."""
    return "[" * depth + "]" * depth


# Depths within the JSON parser's limit (some 10,000 levels) and past it; never close
# to it, where the exact depth the parser reaches decides.
nesting_depths = st.one_of(st.integers(500, 5_000), st.integers(20_000, 100_000))
deep_nesting = nesting_depths.map(nested)
# A request but for one unknown field that nests deeply.
deep_fields = nesting_depths.map(
    lambda depth: '{"endpoint": "echo", "body": "1,2", "x": ' + nested(depth) + "}"
)
garbage_bodies = st.one_of(
    json_values,
    st.text(sqs_characters, max_size=60).map(Raw),
    deep_nesting.map(Raw),
    deep_fields.map(Raw),
    huge_texts.map(Raw),
    st.just(Raw("endpoint=echo&body=1,2,3")),
)


# Reply targets -----------------------------------------------------------------

MOTO_QUEUE = "{moto}/" + ACCOUNT + "/"
RECEIVER = "{receiver}/fuzz/"
# Offline the gateway may call back to 127.0.0.1, however it is spelled.
LOOPBACK_WEBHOOKS = (
    Fill(RECEIVER + "plain"),
    Fill(RECEIVER + "retried?fail_first=1"),
    Fill(RECEIVER + "refusing?status=400"),
    Fill(RECEIVER + "empty?status=204"),
    Fill(RECEIVER + "moved?status=302"),
    Fill("http://127.1:{receiver_port}/fuzz/short"),
    Fill("http://2130706433:{receiver_port}/fuzz/decimal"),
    Fill("http://0x7f.0.0.1:{receiver_port}/fuzz/hex"),
)
# Names under reserved example domains: offline they never resolve, which may pass
# later, so the message may come back.
NAMED_WEBHOOKS = (
    "https://hooks.example.com/callback",
    "https://callback.example.net/x?token=abc",
    "https://a-b.example.org:8443/",
    "https://xn--bcher-kva.example.com/",
)
# Places no deployment may call: private, metadata, documentation and reserved
# addresses in their many spellings, local names, other schemes, malformed URLs.
REFUSED_WEBHOOKS = (
    "https://10.0.0.1/hook",
    "https://192.168.1.10/",
    "https://172.16.0.1/",
    "https://100.64.0.1/",
    "https://169.254.169.254/latest/meta-data/",
    "http://169.254.169.254/latest/meta-data/iam/",
    "https://169.254.170.2/v2/credentials",
    "https://[fd00:ec2::254]/latest/",
    "https://[::ffff:169.254.169.254]/",
    "https://[fe80::1%25eth0]/",
    "https://[::]/",
    "https://0.0.0.0/",
    "https://0/",
    "https://0xa9fea9fe/",
    "https://2852039166/",
    "https://0251.0376.0251.0376/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[2002:a9fe:a9fe::]/",
    "https://192.0.2.10/",
    "https://198.51.100.7/",
    "https://203.0.113.9/",
    "https://[2001:db8::1]/",
    "https://224.0.0.1/",
    "https://255.255.255.255/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://metadata.goog/",
    "https://instance-data.ec2.internal/",
    "https://\uff4d\uff45\uff54\uff41\uff44\uff41\uff54\uff41.goog/",
    "https://localhost/",
    "https://x.localhost/",
    "https://printer.local/",
    "https://intranet/",
    "https://a.invalid/",
    "ftp://hooks.example.com/x",
    "file:///etc/passwd",
    "gopher://127.0.0.1:25/",
    "javascript:alert(1)",
    "http://hooks.example.com/plain-http",
    "https://user:pass@hooks.example.com/",
    "https://hooks.example.com:99999/",
    "https://hooks.example.com:0/",
    "https://exa mple.com/",
    "https://hooks.example.com/\x00",
    "https://[::1/",
    "https://",
    "not a url",
)
# Queues a reply may go to: the fuzz queues on moto, and the sample client queue
# the deployment allows (on moto too, through the functions' endpoint URL).
ALLOWED_QUEUES = (
    Fill(MOTO_QUEUE + REPLY_QUEUE),
    Fill(MOTO_QUEUE + FIFO_REPLY_QUEUE),
    f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/client-replies",
)
MISSING_QUEUE = Fill(MOTO_QUEUE + "fuzz-no-such-queue-{run}")
REFUSED_QUEUES = (
    f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/someone-else",
    "https://sqs.eu-west-1.amazonaws.com/999999999999/client-replies",
    f"https://sqs.{REGION}.amazonaws.com.example.com/{ACCOUNT}/client-replies",
    f"http://169.254.169.254/{ACCOUNT}/client-replies",
    f"http://10.0.0.5/{ACCOUNT}/client-replies",
    Fill(MOTO_QUEUE + REPLY_QUEUE + "/extra"),
    Fill("http://user:pw@127.0.0.1:{moto_port}/" + ACCOUNT + "/" + REPLY_QUEUE),
    "http://[::1",
    "https://[zz]/1/x",
    "not a url",
)

webhook_urls = st.one_of(
    st.sampled_from(LOOPBACK_WEBHOOKS),
    st.sampled_from(LOOPBACK_WEBHOOKS),
    st.sampled_from(NAMED_WEBHOOKS),
    st.sampled_from(REFUSED_WEBHOOKS),
)
queue_urls = st.one_of(
    st.sampled_from(ALLOWED_QUEUES),
    st.sampled_from(ALLOWED_QUEUES),
    st.just(MISSING_QUEUE),
    st.sampled_from(REFUSED_QUEUES),
)
reply_targets = st.one_of(
    queue_urls.map(lambda url: {"queueUrl": url}),
    webhook_urls.map(lambda url: {"webhookUrl": url}),
    st.builds(lambda q, w: {"queueUrl": q, "webhookUrl": w}, queue_urls, webhook_urls),
    st.just({}),
    json_values,
)


# Queue messages ----------------------------------------------------------------

# Directives the echo model obeys: some fail for now, some for good.
RETRYABLE_FAULTS = ("throttle", "not-ready", "unavailable", "internal", "dependency")
ECHO_DIRECTIVES = (
    "delay_ms=5",
    "status=200",
    "status=400",
    "status=404",
    "status=500",
    "status=503",
    "delay_ms=abc",
    "x=1, y=2",
    *(f"fault={fault}" for fault in RETRYABLE_FAULTS),
    "fault=internal;fault_rate=0.5",
)

run_ids = st.builds(Fill, st.just("{run}-"), st.sampled_from(["r0", "r1"]))
visible_ascii = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
# A request id is 1 to 128 visible ASCII characters; after "{run}-", a tail of up to
# ID_TAIL_LIMIT keeps it within. Longer tails, spaces, control and non-ASCII
# characters make the message invalid.
ID_TAIL_LIMIT = 128 - RUN_ID_LENGTH - 1
# Mostly one of a few ids, so that requests of a batch share them.
request_ids = st.one_of(
    run_ids,
    run_ids,
    run_ids,
    run_ids,
    st.builds(
        Fill,
        st.just("{run}-"),
        st.text(visible_ascii, min_size=1, max_size=ID_TAIL_LIMIT + 2),
    ),
    st.builds(Fill, st.just("{run}-"), st.sampled_from(["x" * ID_TAIL_LIMIT, "x" * 200])),
    st.builds(Fill, st.just("{run}-"), texts.filter(bool)),
)
endpoints = st.one_of(
    st.sampled_from(["echo", "echo", "echo", "breast-cancer-xgb"]),
    st.from_regex(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,12}", fullmatch=True),
)
ascii_texts = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
custom_attributes = st.one_of(
    st.sampled_from(ECHO_DIRECTIVES), st.sampled_from(ECHO_DIRECTIVES), ascii_texts
)
content_types = st.sampled_from(
    [
        "text/csv",
        "application/json",
        "text/plain; charset=utf-8",
        "application/octet-stream",
        "image/png",
    ]
)
text_bodies = st.one_of(
    st.sampled_from(
        [SAMPLE_CSV_ROW, SAMPLE_CSV_ROW + "\r\n" + SAMPLE_CSV_ROW + "\r\n", "1,2,3", ""]
    ),
    texts,
    huge_texts,
)
base64_bodies = st.binary(max_size=64).map(lambda data: base64.b64encode(data).decode())
input_locations = st.one_of(
    st.builds(Fill, st.just(FUZZ_INPUTS + "{run}/"), st.sampled_from(["in.csv", "x y"])),
    st.just("s3://other-bucket/input.csv"),
)
sync_payloads = st.one_of(
    st.fixed_dictionaries({"body": text_bodies}),
    st.fixed_dictionaries({"bodyBase64": base64_bodies}),
)
async_payloads = st.one_of(
    sync_payloads, st.fixed_dictionaries({"inputLocation": input_locations})
)
sync_modes = st.fixed_dictionaries(
    {},
    optional={
        "mode": st.just("sync"),
        "inferenceId": st.builds(Fill, st.just("{run} "), ascii_texts),
    },
)
async_modes = st.fixed_dictionaries(
    {"mode": st.just("async")},
    optional={
        "inferenceId": st.builds(Fill, st.just("{run}-"), st.sampled_from(["i0", "i1"]))
    },
)
reply_tos = st.one_of(
    queue_urls.map(lambda url: {"queueUrl": url}),
    webhook_urls.map(lambda url: {"webhookUrl": url}),
)
OPTIONAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "contentType": content_types,
    "accept": st.sampled_from(["application/json", "text/csv", "*/*"]),
    "customAttributes": custom_attributes,
    "targetVariant": st.sampled_from(["AllTraffic", "Variant-2"]),
    "sessionId": st.sampled_from(["NEW_SESSION", "no-such-session"]),
    "enableExplanations": st.just("`true`"),
}


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request, sync or async; one the queue message model accepts but for its id."""
    fields = draw(
        st.fixed_dictionaries({"endpoint": endpoints}, optional=OPTIONAL_FIELDS)
    )
    # Mostly with a request id and someone to reply to.
    if draw(st.integers(0, 4)):
        fields["requestId"] = draw(request_ids)
    if draw(st.integers(0, 3)):
        fields["replyTo"] = draw(reply_tos)
    if draw(st.booleans()):
        mode = draw(sync_modes) | draw(sync_payloads)
    else:
        mode = draw(async_modes) | draw(async_payloads)
    return fields | mode


# Ways a message breaks the model: each is one field gone wrong.
FLAWS: tuple[tuple[str, st.SearchStrategy[Any]], ...] = (
    ("endpoint", st.sampled_from(["", "echo-", "x" * 64, "Échos"])),
    ("mode", st.sampled_from(["later", "SYNC", ""])),
    ("requestId", st.sampled_from(["", "x" * 129, "a b", "tab\t", "é", "\x7f", "\x00"])),
    ("replyTo", st.one_of(st.just({}), reply_targets)),
    ("customAttributes", st.sampled_from(["é", "\x01", "a" * 1025])),
    ("contentType", st.just("t\u00e9xt/csv")),
    ("bodyBase64", st.sampled_from(["not base64!", "QUJD=", "QQ"])),
    ("inputLocation", st.sampled_from(["s3://Bad_Bucket/x", "s3://b", "/local"])),
    ("inferenceId", st.sampled_from(["", " spaced", "é", "x" * 65])),
    ("unknownField", json_values),
)


@st.composite
def flawed_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request with one field wrong: a bad value, the wrong type, one too many."""
    message = draw(requests())
    name, values = draw(st.sampled_from(FLAWS))
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(message)))
        values = json_values
    value = draw(values)
    if name == "requestId" and isinstance(value, str) and value:
        value = Fill("{run}-", value)  # a valid id still, fresh in every run
    return message | {name: value}


# Mostly requests, so that a batch's requests meet (share ids, wait for each other).
queue_bodies = st.integers(0, 9).flatmap(
    lambda n: requests() if n < 6 else flawed_requests() if n < 8 else garbage_bodies
)


# SQS batches -------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One drawn message of a batch; copies share their index, so their message id."""

    index: int
    body: Any
    group: str | None = None
    # JSON with non-ASCII characters as they are, or escaped.
    ascii_only: bool = True
    # ApproximateReceiveCount: how often SQS has handed the message over, this time too.
    received: int = 1


@dataclass(frozen=True)
class Batch:
    """A drawn batch, Standard or FIFO."""

    fifo: bool
    messages: tuple[Message, ...]

    def event(self, run: str, places: Mapping[str, str]) -> dict[str, Any]:
        """The batch as the event Lambda's SQS event source hands the function."""
        queue = "inference-gateway-local-requestqueue" + (".fifo" if self.fifo else "")
        records = []
        for sequence, message in enumerate(self.messages):
            attributes = {
                "ApproximateReceiveCount": str(message.received),
                "SentTimestamp": "1796385600000",
                "SenderId": "AIDAEXAMPLECLIENT",
                "ApproximateFirstReceiveTimestamp": "1796385600010",
            }
            if message.group is not None:
                attributes["MessageGroupId"] = message.group
                attributes["SequenceNumber"] = str(18_600_000_000_000_000_000 + sequence)
            records.append(
                {
                    "messageId": message_id(run, message.index),
                    "receiptHandle": f"fuzz-receipt-{run}-{sequence}",
                    "body": body_text(
                        message.body, places, ascii_only=message.ascii_only
                    ),
                    "attributes": attributes,
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}",
                    "awsRegion": REGION,
                }
            )
        return {"Records": records}


def message_id(run: str, index: int) -> str:
    """The SQS message id of a batch's message."""
    return f"{run}:msg:{index}"


# Mostly a first delivery; else one up to past the request queue's redrive limit
# (RequestMaxReceiveCount, 5 by default), as after a limit lowered since.
receive_counts = st.one_of(st.just(1), st.integers(1, 7))


@st.composite
def sqs_batches(draw: st.DrawFn, bodies: st.SearchStrategy[Any]) -> Batch:
    """1 to 10 messages; now and then a message comes twice, as SQS may deliver it.

    Only a Standard queue hands a message over twice in one batch: a FIFO queue
    delivers it once. In a FIFO message group, a message is received no more often
    than the one before it, which it never overtakes.
    """
    fifo = draw(st.booleans())
    messages: list[Message] = []
    fewest: dict[str | None, int] = {}
    for index in range(draw(st.integers(1, 10))):
        if messages and not fifo and draw(st.integers(0, 7)) == 0:
            messages.append(draw(st.sampled_from(messages)))
            continue
        group = draw(st.sampled_from(["group-a", "group-b"])) if fifo else None
        received = draw(receive_counts)
        if fifo:
            received = fewest[group] = min(received, fewest.get(group, received))
        messages.append(
            Message(index, draw(bodies), group, draw(st.booleans()), received)
        )
    return Batch(fifo, tuple(messages))


# S3 keys -----------------------------------------------------------------------

# Characters S3 keys hold and notifications encode: space, plus, percent, non-ASCII.
KEY_CHARACTERS = "abcXYZ019-_.!*'()&$@=;:+,? %~#[]é模型"
object_names = st.text(st.sampled_from(KEY_CHARACTERS), min_size=1, max_size=16).filter(
    lambda name: not name.startswith(".")
)


# The functions, in this process ---------------------------------------------------


class LambdaContext:
    """What Powertools reads from a Lambda context."""

    function_name = FUNCTION
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
    log_group_name = f"/aws/lambda/{FUNCTION}"
    log_stream_name = "2026/12/04/[$LATEST]fuzz"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


@functools.cache
def use_gateway_environment(stack: OfflineStack) -> None:
    """Give this process the functions' environment on the stack, and their code.

    The queue function's environment holds every setting the results function
    reads too, so both handlers can run here on one set of settings (read once per
    process, as in Lambda). Their bucket is the fuzz tests' own.
    """
    env = stack.function_env(FUNCTION)
    for name in ("PATH", "HOME", "LANG", "TZ", "PYTHONPATH", "PYTHONUNBUFFERED"):
        env.pop(name, None)
    os.environ.update(env)
    os.environ.update(
        AWS_EC2_METADATA_DISABLED="true",
        GATEWAY_BUCKET=FUZZ_BUCKET,
        ALLOWED_INPUT_LOCATIONS=FUZZ_INPUTS,
    )
    functions = str(ROOT / "functions")
    if functions not in sys.path:
        sys.path.insert(0, functions)

    s3 = stack.client("s3")
    s3.create_bucket(Bucket=FUZZ_BUCKET)
    sqs = stack.client("sqs")
    sqs.create_queue(QueueName=REPLY_QUEUE)
    sqs.create_queue(QueueName=FIFO_REPLY_QUEUE, Attributes={"FifoQueue": "true"})


def stack_places(stack: OfflineStack, run: str) -> dict[str, str]:
    """What a Fill may name."""
    receiver = stack.webhook_receiver
    assert receiver is not None, "the stack's webhook receiver did not start"
    return {
        "run": run,
        "moto": stack.moto_url,
        "moto_port": str(stack.ports.moto),
        "receiver": receiver.url,
        "receiver_port": str(receiver.port),
    }


class FunctionLog(io.TextIOBase):
    """The functions' log lines, kept in memory to be read back as CloudWatch's are."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)

    def entries(self, message: str) -> list[dict[str, Any]]:
        """The JSON entries with this message, since the last clear()."""
        found = []
        for line in list(self.lines):
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("message") == message:
                    found.append(entry)
        return found

    def clear(self) -> None:
        self.lines.clear()


FUNCTION_LOG = FunctionLog()


def import_handler(name: str) -> ModuleType:
    """Import a handler module; its logs go to FUNCTION_LOG (the logger keeps its stream)."""
    real, sys.stdout = sys.stdout, FUNCTION_LOG
    try:
        return importlib.import_module(name)
    finally:
        sys.stdout = real


_DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - open for the process's life


def invoke_quietly(handler: Callable[[Any, Any], Any], event: dict[str, Any]) -> Any:
    """Call a handler as Lambda would; its metrics records go nowhere."""
    with contextlib.redirect_stdout(_DEVNULL):
        return handler(event, LambdaContext())
