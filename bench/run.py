"""``python -m bench``: start the offline stack, measure every figure, report, stop."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import report
from bench.batch import MESSAGE, QUEUE_ARN, batch_figure, queue_function_env
from bench.cold import ColdCase, cold_figures
from bench.inprocess import load_event, sqs_event
from bench.timing import Figure
from bench.warm import ApiBench, async_figure, sync_events, sync_figure
from offline.stack import OfflineStack

ASYNC_SUBMIT_TARGET = 1.1
ASYNC_CALLS_TARGET = 3


@dataclass(frozen=True)
class Plan:
    """How many times each figure is measured."""

    sync: int = 1500
    sync_warmup: int = 40
    async_submit: int = 150
    async_warmup: int = 10
    cold: int = 21
    batch: int = 7
    batch_warmup: int = 1


FULL = Plan()
# For checking that the benchmark runs; its figures are not stable.
QUICK = Plan(sync=40, sync_warmup=5, async_submit=10, async_warmup=3, cold=2, batch=2)


@dataclass
class Outcome:
    """What a run found: results.json's keys, the table's rows, what failed."""

    results: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    rows: list[report.Row] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, figure: Figure, key: str | None = None) -> None:
        """Keep a figure, its row and, under ``key``, its ratio."""
        self.figures.append(figure)
        self.rows.append(report.figure_row(figure))
        if key is not None:
            self.results[key] = figure.ratio

    def attempt(self, keys: list[str], section: Callable[[], None]) -> None:
        """Run one section; a failure records its keys as null and the run goes on."""
        try:
            section()
        except Exception as error:
            detail = "".join(traceback.format_exception_only(error)).strip()
            for key in keys:
                self.results[key] = None
                self.errors[key] = detail
                self.rows.append(report.pending_row(key, "ERROR (see results.json)"))


def cold_cases(queue_env: dict[str, str] | None) -> list[ColdCase]:
    """Each function with its first event; the queue function once it exists."""
    cases = [
        ColdCase("ApiFunction", load_event("api-invoke-csv")),
        ColdCase("ResultsFunction", load_event("results-output-put")),
    ]
    if queue_env is not None:
        message = {
            key: value for key, value in MESSAGE.items() if key != "customAttributes"
        }
        event = sqs_event([json.dumps(message)], QUEUE_ARN)
        cases.append(ColdCase("QueueFunction", event))
    return cases


def measure(stack: OfflineStack, plan: Plan, say: Callable[[str], None]) -> Outcome:
    """Measure every figure, section by section."""
    outcome = Outcome()
    queue_env = queue_function_env(stack)

    def cold() -> None:
        pairs, errors = cold_figures(stack, cold_cases(queue_env), repetitions=plan.cold)
        for logical_id, detail in errors.items():
            outcome.errors[f"cold_init[{logical_id}]"] = detail
            outcome.rows.append(
                report.pending_row(f"cold_init[{logical_id}]", "ERROR (see results.json)")
            )
        for index, key in ((0, "cold_init_time"), (1, "cold_init_rss")):
            for pair in pairs:
                outcome.add(pair[index])
            worst = max((pair[index] for pair in pairs), key=lambda item: item.ratio)
            outcome.results[key] = worst.ratio
            outcome.results[f"{key}_worst_function"] = worst.key.split("[")[1][:-1]

    def batch() -> None:
        if queue_env is None:
            outcome.results["batch10"] = None
            outcome.rows.append(report.pending_row("batch10", "pending"))
            say("batch10: pending (the template has no QueueFunction)")
            return
        figure = batch_figure(
            stack, queue_env, repetitions=plan.batch, warmup=plan.batch_warmup
        )
        outcome.add(figure, "batch10")

    api: list[ApiBench] = []

    def sync() -> None:
        api.append(ApiBench(stack))
        for key, event, target in sync_events():
            figure = sync_figure(
                api[0],
                key,
                event,
                target=target,
                repetitions=plan.sync,
                warmup=plan.sync_warmup,
            )
            outcome.add(figure, key)

    def submit() -> None:
        if not api:
            raise RuntimeError("the API function could not be loaded")
        figure = async_figure(
            api[0],
            target=ASYNC_SUBMIT_TARGET,
            repetitions=plan.async_submit,
            warmup=plan.async_warmup,
        )
        outcome.add(figure, "async_submit")
        calls: list[str] = figure.extra["calls"]
        outcome.results["async_submit_calls"] = len(calls)
        outcome.results["async_submit_call_list"] = calls
        outcome.rows.append(
            report.count_row("async_submit_calls", len(calls), ASYNC_CALLS_TARGET)
        )

    say("cold starts: fresh processes, interleaved")
    outcome.attempt(["cold_init_time", "cold_init_rss"], cold)
    say("batch of ten queue messages")
    outcome.attempt(["batch10"], batch)
    say("sync route: handler in this process against bare boto3")
    outcome.attempt(["sync_overhead_echo", "sync_overhead_model"], sync)
    say("async route: handler in this process against its own calls, bare")
    outcome.attempt(["async_submit", "async_submit_calls"], submit)
    return outcome


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the gateway against bare boto3 on the offline stack.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="few repetitions: checks it runs, unstable"
    )
    parser.add_argument("--output", type=Path, default=report.RESULTS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table and write results.json."""
    args = _parse_args(argv)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    plan = QUICK if args.quick else FULL
    started = time.monotonic()

    def say(message: str) -> None:
        elapsed = time.monotonic() - started
        print(f"[{elapsed:6.1f} s] {message}", file=sys.stderr, flush=True)

    say("starting the offline stack")
    # No prewarmed workers: idle Lambda workers would only take memory from the run.
    # moto mended (offline.moto_server): its transactions otherwise copy whole tables,
    # a cost that grows with every item the run writes, which DynamoDB's do not have.
    with OfflineStack(quiet=True, prewarm=False, mended_moto=True) as stack:
        outcome = measure(stack, plan, say)
    say("offline stack stopped")

    results = dict(outcome.results)
    results["details"] = {figure.key: figure.summary() for figure in outcome.figures}
    results["errors"] = outcome.errors
    results["versions"] = report.versions()
    results["machine"] = report.machine()
    results["plan"] = asdict(plan)
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    report.write_results(results, args.output)

    print(report.table(outcome.rows))
    print(f"\nwritten: {args.output} ({results['elapsed_seconds']} s)")
    for key, detail in outcome.errors.items():
        print(f"error in {key}: {detail}", file=sys.stderr)
    return 1 if outcome.errors else 0
