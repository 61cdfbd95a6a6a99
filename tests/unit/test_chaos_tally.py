"""The fault campaign's tally: what counts as an outcome, a loss or a duplicate."""

import json

from offline.chaos.tally import (
    Kind,
    Outcome,
    Sent,
    dead_letter_outcome,
    passed,
    render,
    reply_outcome,
    submission_outcome,
    summary_line,
    sync_outcome,
    tally_path,
    webhook_outcome,
)


def sent(*keys: str) -> list[Sent]:
    return [Sent(key, "none", f'{{"chaos":"{key}"}}') for key in keys]


def result(key: str, body: str | None = None) -> Outcome:
    return Outcome(key, Kind.RESULT, "webhook", "completed", body)


def sqs_message(body: object, **attributes: str) -> dict[str, object]:
    return {
        "MessageId": "m-1",
        "Body": json.dumps(body),
        "Attributes": {"ApproximateReceiveCount": "1"},
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value}
            for name, value in attributes.items()
        },
    }


def test_request_without_outcome_is_lost_and_one_with_two_is_delivered_twice():
    requests = sent("a1", "a2", "a3")
    outcomes = [result("a1"), result("a3"), Outcome("a3", Kind.ERROR, "webhook")]

    tally = tally_path("async HTTP", requests, outcomes)

    assert tally.lost == ["a2"]
    assert tally.twice == ["a3"]
    assert (tally.results, tally.errors, tally.dead_letters) == (1, 0, 0)


def test_last_line_counts_requests_lost_and_delivered_twice_over_every_path():
    sync = tally_path("sync HTTP", sent("s1", "s2"), [result("s1")])
    queue = tally_path("queue", sent("q1"), [result("q1"), result("q1")])

    lines = render([sync, queue])

    assert lines[-1] == "3 requests, 1 lost, 1 delivered twice"
    assert "sync HTTP: lost: s2" in lines
    assert (
        "queue: twice: q1 (result via webhook: completed + result via webhook: completed)"
        in lines
    )
    assert summary_line([sync, queue]) == lines[-1]
    assert not passed([sync, queue])


def test_campaign_passes_when_every_request_has_exactly_one_outcome():
    requests = sent("q1", "q2")
    outcomes = [result("q1"), Outcome("q2", Kind.DEAD_LETTER, "request DLQ", "why")]

    tally = tally_path("queue", requests, outcomes)

    assert passed([tally])
    assert summary_line([tally]) == "2 requests, 0 lost, 0 delivered twice"


def test_wrong_result_and_reasonless_dead_letter_are_not_outcomes():
    requests = sent("q1", "q2")
    outcomes = [
        result("q1", body="someone else's answer"),
        dead_letter_outcome(sqs_message({"requestId": "q2"}), "request DLQ", {}),
    ]

    tally = tally_path("queue", requests, [o for o in outcomes if o is not None])

    assert tally.lost == ["q1", "q2"]
    assert [why for _, why in tally.rejected] == [
        "wrong result via webhook",
        "dead letter without a reason in request DLQ",
    ]


def test_outcome_for_a_request_never_sent_is_a_stray_not_a_duplicate():
    tally = tally_path("queue", sent("q1"), [result("q1"), result("q9")])

    assert tally.strays == 1
    assert tally.twice == []


def test_sync_answers_mapped_errors_count_and_unmapped_5xx_or_silence_is_lost():
    throttled = json.dumps({"code": "ThrottlingException", "message": "later"})
    crashed = json.dumps({"code": "InternalFailure", "message": "gateway failed"})

    ok, _ = sync_outcome("s1", 200, b'{"chaos":"s1"}')
    error, seen = sync_outcome("s2", 429, throttled.encode())
    lost_500, seen_500 = sync_outcome("s3", 500, crashed.encode())
    lost_502, _ = sync_outcome("s4", 502, b'{"message": "Internal server error"}')
    silent, note = sync_outcome("s5", None, b"")

    assert ok == Outcome("s1", Kind.RESULT, "http", "200", '{"chaos":"s1"}')
    assert error == Outcome("s2", Kind.ERROR, "http", "429 ThrottlingException")
    assert seen == "429 ThrottlingException"
    assert lost_500 is None
    assert seen_500 == "500 InternalFailure"
    assert lost_502 is None
    assert silent is None
    assert note == "no answer"


def test_accepted_submission_leaves_the_outcome_for_later():
    outcome, note = submission_outcome("a1", 202, b'{"InferenceId": "x"}')

    assert outcome is None
    assert note == "accepted"


def test_webhook_counts_only_accepted_deliveries_to_its_own_prefix():
    envelope = {"status": "failed", "failureReason": "the model\nfailed"}
    refused = {"path": "/chaos/async/a1", "status": 503, "body": envelope}
    accepted = {**refused, "status": 200}
    elsewhere = {**accepted, "path": "/hooks/other"}

    outcomes = [
        webhook_outcome(r, "/chaos/async/") for r in (refused, accepted, elsewhere)
    ]

    assert outcomes[0] is None
    assert outcomes[2] is None
    assert outcomes[1] == Outcome("a1", Kind.ERROR, "webhook", "failed: the model failed")


def test_replies_and_dead_letters_find_their_request():
    reply = sqs_message({"requestId": "q1", "status": "completed", "body": "x"})
    envelope = sqs_message(
        {"inferenceId": "inf-7", "status": "completed"},
        inferenceId="inf-7",
        reason="HTTP 410",
    )

    replied = reply_outcome(reply)
    dead = dead_letter_outcome(envelope, "delivery DLQ", {"inf-7": "a7"})

    assert replied == Outcome("q1", Kind.RESULT, "reply queue", "completed", "x")
    assert dead == Outcome("a7", Kind.DEAD_LETTER, "delivery DLQ", "HTTP 410")


def test_redriven_request_is_a_dead_letter_whose_reason_is_the_redrive():
    message = sqs_message({"requestId": "q3", "endpoint": "echo"})
    message["Attributes"] = {"ApproximateReceiveCount": "6"}

    dead = dead_letter_outcome(message, "request DLQ", {})

    assert dead is not None
    assert dead.key == "q3"
    assert dead.detail.startswith("retries exhausted")
