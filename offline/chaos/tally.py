"""Outcomes of the fault campaign, read from the outside, and the tally they make.

Everything here is pure: the campaign hands over what it saw (HTTP answers,
webhook records, queue messages) and gets back outcomes, per-path counts and the
report. A request has exactly one outcome when all is well: a result, an error,
or a dead letter with its reason. None is lost; two or more is a duplicate.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# The errors the API maps from SageMaker's (status and code, as README lists them).
MAPPED_UPSTREAM_ERRORS: frozenset[tuple[int, str]] = frozenset(
    {
        (424, "ModelError"),
        (429, "ThrottlingException"),
        (429, "ModelNotReadyException"),
        (502, "InternalFailure"),
        (503, "ServiceUnavailable"),
        (504, "ModelTimeout"),
    }
)
# SQS adds this to a message its redrive policy moved to a dead-letter queue.
REDRIVE_SOURCE = "DeadLetterQueueSourceArn"
NO_REASON = "(no reason)"
# How much of a failure reason a detail line shows.
REASON_CHARS = 60


class Kind(StrEnum):
    """What a caller finally got."""

    RESULT = "result"
    ERROR = "error"
    DEAD_LETTER = "dead-letter"


@dataclass(frozen=True)
class Outcome:
    """One final answer seen for one request, and where it was seen."""

    key: str
    kind: Kind
    source: str
    detail: str = ""
    body: str | None = None


@dataclass(frozen=True)
class Sent:
    """One request of the campaign: its key, faults, payload and callback target."""

    key: str
    fault: str
    payload: str | None = None
    target: str | None = None


@dataclass
class PathTally:
    """The counts of one path."""

    path: str
    requests: int = 0
    results: int = 0
    errors: int = 0
    dead_letters: int = 0
    lost: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    # Outcomes that do not count, and why: a wrong result, a reasonless dead letter.
    rejected: list[tuple[str, str]] = field(default_factory=list)
    strays: int = 0
    # The outcomes of each request delivered twice, to show what arrived.
    doubles: dict[str, list[Outcome]] = field(default_factory=dict)
    by_fault: dict[str, Counter[str]] = field(default_factory=dict)
    details: Counter[str] = field(default_factory=Counter)


def sync_outcome(key: str, status: int | None, body: bytes) -> tuple[Outcome | None, str]:
    """Judge a sync answer: an outcome, or None (lost) with what was seen instead."""
    if status is None:
        return None, "no answer"
    if 200 <= status < 300:
        text = body.decode("utf-8", "replace")
        return Outcome(key, Kind.RESULT, "http", str(status), text), str(status)
    code = _error_code(body)
    seen = f"{status} {code or '(no code)'}"
    if code and (400 <= status < 500 or (status, code) in MAPPED_UPSTREAM_ERRORS):
        return Outcome(key, Kind.ERROR, "http", seen), seen
    return None, seen


def submission_outcome(
    key: str, status: int | None, body: bytes
) -> tuple[Outcome | None, str]:
    """Judge an async submission's answer: 202 leaves the outcome to come later."""
    if status == 202:
        return None, "accepted"
    outcome, seen = sync_outcome(key, status, body)
    if outcome is not None and outcome.kind is Kind.RESULT:
        return None, f"{seen} instead of 202"
    return outcome, seen


def webhook_outcome(record: Mapping[str, Any], prefix: str) -> Outcome | None:
    """Turn an accepted webhook delivery to ``<prefix><key>`` into an outcome."""
    path = str(record.get("path") or "")
    status = int(record.get("status") or 0)
    if not path.startswith(prefix) or not 200 <= status < 300:
        return None
    body = record.get("body")
    key = path[len(prefix) :]
    return _answer_outcome(key, body if isinstance(body, dict) else {}, "webhook")


def reply_outcome(message: Mapping[str, Any]) -> Outcome | None:
    """Turn a reply-queue message (a reply or an async envelope) into an outcome."""
    body = _json_object(str(message.get("Body") or ""))
    key = body.get("requestId")
    if not isinstance(key, str):
        return None
    return _answer_outcome(key, body, "reply queue")


def dead_letter_outcome(
    message: Mapping[str, Any],
    source: str,
    keys_by_inference: Mapping[str, str],
) -> Outcome | None:
    """Turn a dead-letter message into an outcome for the request it belongs to."""
    body = _json_object(str(message.get("Body") or ""))
    attributes = _attributes(message)
    key = body.get("requestId")
    if not isinstance(key, str):
        key = attributes.get("requestId") or keys_by_inference.get(
            attributes.get("inferenceId", "") or str(body.get("inferenceId") or "")
        )
    if not key:
        return None
    return Outcome(key, Kind.DEAD_LETTER, source, dead_letter_reason(message))


def dead_letter_reason(message: Mapping[str, Any]) -> str:
    """Say why a message is a dead letter: the gateway's reason, or the redrive's."""
    attributes = _attributes(message)
    reason = attributes.get("reason")
    if reason:
        code = attributes.get("code")
        return _short(f"{code}: {reason}" if code else reason)
    # moto does not add DeadLetterQueueSourceArn; a message received before it
    # reached the dead-letter queue can only have come by the redrive policy.
    system = message.get("Attributes") or {}
    receives = _number(system.get("ApproximateReceiveCount"))
    if REDRIVE_SOURCE in system or receives > 1:
        return f"retries exhausted (moved by the redrive policy, {receives} receives)"
    return NO_REASON


def tally_path(
    path: str,
    sent: Sequence[Sent],
    outcomes: Iterable[Outcome],
    *,
    check_bodies: bool = True,
) -> PathTally:
    """Count each request's outcomes: none is lost, two or more is delivered twice.

    Two kinds of outcome do not count: a result whose body is not the payload sent
    (the model echoes it), and a dead letter that does not say why it is one.
    """
    tally = PathTally(path, requests=len(sent))
    expected = {item.key: item.payload for item in sent}
    found: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.key not in expected:
            tally.strays += 1
            continue
        problem = _problem(outcome, expected[outcome.key], check_bodies)
        if problem:
            tally.rejected.append((outcome.key, problem))
            continue
        found[outcome.key].append(outcome)

    for item in sent:
        seen = found.get(item.key, [])
        label = _label(seen)
        tally.by_fault.setdefault(f"fault {item.fault}", Counter())[label] += 1
        if item.target is not None:
            tally.by_fault.setdefault(f"target {item.target}", Counter())[label] += 1
        if not seen:
            tally.lost.append(item.key)
        elif len(seen) > 1:
            tally.twice.append(item.key)
            tally.doubles[item.key] = seen
        else:
            [outcome] = seen
            _count_kind(tally, outcome)
    return tally


def summary_line(tallies: Sequence[PathTally]) -> str:
    """The campaign's last line: requests, lost, and delivered twice."""
    requests = sum(tally.requests for tally in tallies)
    lost = sum(len(tally.lost) for tally in tallies)
    twice = sum(len(tally.twice) for tally in tallies)
    return f"{requests} requests, {lost} lost, {twice} delivered twice"


def passed(tallies: Sequence[PathTally]) -> bool:
    """Tell whether no request was lost and none was delivered twice."""
    return all(not tally.lost and not tally.twice for tally in tallies)


def render(
    tallies: Sequence[PathTally],
    notes: Mapping[str, str] | None = None,
    *,
    examples: int = 5,
) -> list[str]:
    """Format the per-fault breakdown, the table, and the summary line last."""
    lines: list[str] = []
    for tally in tallies:
        lines += _fault_lines(tally)
    lines.append("")
    lines += _table(tallies)
    for tally in tallies:
        lines += _problem_lines(tally, notes or {}, examples)
    lines.append(summary_line(tallies))
    return lines


def _answer_outcome(key: str, body: Mapping[str, Any], source: str) -> Outcome:
    """A reply or envelope: completed is a result, anything else an error."""
    status = str(body.get("status") or "")
    if status == "completed":
        text = body.get("body", body.get("result"))
        shown = text if isinstance(text, str) else None
        return Outcome(key, Kind.RESULT, source, "completed", shown)
    error = body.get("error")
    reason = body.get("failureReason")
    if isinstance(error, dict) and error.get("code"):
        detail = f"{status}: {error['code']}"
    elif isinstance(reason, str) and reason:
        detail = f"{status}: {reason}"
    else:
        detail = status or "(no status)"
    return Outcome(key, Kind.ERROR, source, _short(detail))


def _problem(outcome: Outcome, payload: str | None, check_bodies: bool) -> str | None:
    """Say why an outcome does not count, or None when it does."""
    if outcome.kind is Kind.DEAD_LETTER and outcome.detail == NO_REASON:
        return f"dead letter without a reason in {outcome.source}"
    if (
        check_bodies
        and outcome.kind is Kind.RESULT
        and payload is not None
        and outcome.body is not None
        and outcome.body != payload
    ):
        return f"wrong result via {outcome.source}"
    return None


def _count_kind(tally: PathTally, outcome: Outcome) -> None:
    if outcome.kind is Kind.RESULT:
        tally.results += 1
    elif outcome.kind is Kind.ERROR:
        tally.errors += 1
    else:
        tally.dead_letters += 1
    tally.details[f"{outcome.kind.value} via {outcome.source}: {outcome.detail}"] += 1


def _label(seen: Sequence[Outcome]) -> str:
    if not seen:
        return "lost"
    if len(seen) > 1:
        return "twice"
    return seen[0].kind.value


def _fault_lines(tally: PathTally) -> list[str]:
    lines = [f"{tally.path}: outcomes by injected fault and by callback target"]
    width = max((len(fault) for fault in tally.by_fault), default=5)
    for fault in sorted(tally.by_fault):
        counts = tally.by_fault[fault]
        shown = ", ".join(f"{label} {counts[label]}" for label in sorted(counts))
        lines.append(f"  {fault:<{width}}  {sum(counts.values()):>5}  {shown}")
    lines.append(f"{tally.path}: how the outcomes arrived")
    for detail, count in sorted(tally.details.items(), key=lambda item: -item[1]):
        lines.append(f"  {count:>5}  {detail}")
    return lines


def _table(tallies: Sequence[PathTally]) -> list[str]:
    header = ("path", "requests", "result", "error", "dead-letter", "lost", "twice")
    rows = [
        (
            tally.path,
            tally.requests,
            tally.results,
            tally.errors,
            tally.dead_letters,
            len(tally.lost),
            len(tally.twice),
        )
        for tally in tallies
    ]
    total = ("total", *(sum(int(row[index]) for row in rows) for index in range(1, 7)))
    lines = [f"{header[0]:<11}" + "".join(f"{name:>12}" for name in header[1:])]
    for row in [*rows, total]:
        lines.append(f"{row[0]:<11}" + "".join(f"{value:>12}" for value in row[1:]))
    return lines


def _problem_lines(
    tally: PathTally, notes: Mapping[str, str], examples: int
) -> list[str]:
    lines: list[str] = []
    if tally.lost:
        shown = ", ".join(
            f"{key} ({notes[key]})" if key in notes else key
            for key in tally.lost[:examples]
        )
        lines.append(f"{tally.path}: lost: {shown}")
    for key in tally.twice[:examples]:
        arrived = " + ".join(
            f"{outcome.kind.value} via {outcome.source}: {outcome.detail}"
            for outcome in tally.doubles.get(key, [])
        )
        lines.append(f"{tally.path}: twice: {key} ({arrived})")
    if tally.rejected:
        shown = ", ".join(f"{key} ({why})" for key, why in tally.rejected[:examples])
        lines.append(f"{tally.path}: not counted: {shown}")
    if tally.strays:
        lines.append(f"{tally.path}: {tally.strays} outcomes for no request sent")
    return lines


def _short(text: str) -> str:
    """One line of at most REASON_CHARS characters."""
    line = " ".join(text.split())
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 3] + "..."


def _number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _error_code(body: bytes) -> str | None:
    parsed = _json_object(body.decode("utf-8", "replace"))
    code = parsed.get("code")
    return code if isinstance(code, str) and code else None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _attributes(message: Mapping[str, Any]) -> dict[str, str]:
    """The string message attributes of an SQS message."""
    raw = message.get("MessageAttributes") or {}
    return {
        name: str(value.get("StringValue"))
        for name, value in raw.items()
        if isinstance(value, dict) and value.get("StringValue") is not None
    }
