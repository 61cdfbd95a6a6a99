"""Cold-start figures: a fresh process that serves a function's first event (A)
against a fresh process that makes the same AWS calls with boto3 alone (B)."""

from __future__ import annotations

import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fresh import AwsCall, call_name
from bench.inprocess import FUNCTIONS, ROOT, with_fresh_ids
from bench.timing import Figure
from offline.lambda_runtime import REGION
from offline.stack import OfflineStack

FRESH = Path(__file__).resolve().parent / "fresh.py"
# A fresh process that takes this long is stuck, not slow.
CHILD_TIMEOUT_SECONDS = 60.0


class ColdStartError(RuntimeError):
    """A fresh process failed or served its event badly."""


@dataclass(frozen=True)
class ColdCase:
    """One function and the first event it serves."""

    logical_id: str
    event: dict[str, Any]


@dataclass
class PreparedCase:
    """A case with its function's environment and the AWS calls its event makes."""

    case: ColdCase
    env: dict[str, str]
    handler: str
    calls: list[AwsCall] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FreshRun:
    """What one fresh process cost and reported."""

    wall_ms: float
    peak_rss_mib: float
    outcome: dict[str, Any]


def served_ok(response: Any) -> bool:
    """Tell whether a handler's answer is a success in its own terms."""
    if isinstance(response, dict) and "statusCode" in response:
        return int(response["statusCode"]) < 400
    if isinstance(response, dict) and "batchItemFailures" in response:
        return not response["batchItemFailures"]
    return True


class ColdBench:
    """Fresh processes for each case, their specs in a private directory."""

    def __init__(self, stack: OfflineStack, workdir: Path) -> None:
        self._stack = stack
        self._workdir = workdir

    def run(self, mode: str, spec: Path, env: dict[str, str]) -> FreshRun:
        """Start one fresh process and wait for it; its wall time and peak RSS."""
        out = self._workdir / f"{spec.stem}-{mode}.out"
        out.unlink(missing_ok=True)
        errors = self._workdir / f"{spec.stem}-{mode}.err"
        with errors.open("wb") as stderr:
            started = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-P", str(FRESH), mode, str(spec), str(out)],
                cwd=str(ROOT),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            # wait() with a timeout polls with growing sleeps, which would blur the
            # wall time: block instead, with a watchdog for a stuck child.
            watchdog = threading.Timer(CHILD_TIMEOUT_SECONDS, process.kill)
            watchdog.start()
            try:
                process.wait()
            finally:
                watchdog.cancel()
            wall_ms = (time.perf_counter() - started) * 1000

        if process.returncode != 0 or not out.exists():
            tail = errors.read_text(errors="replace")[-2000:]
            raise ColdStartError(
                f"{mode} {spec.stem} exited {process.returncode}:\n{tail}"
            )
        with out.open("rb") as file:
            outcome: dict[str, Any] = pickle.load(file)
        if mode != "bare" and not served_ok(outcome["response"]):
            raise ColdStartError(f"{spec.stem} answered {outcome['response']!r:.300}")
        return FreshRun(wall_ms, outcome["peak_rss_kib"] / 1024, outcome)

    def prepare(self, case: ColdCase) -> PreparedCase:
        """Probe the AWS calls the case's first event makes, in a fresh process."""
        env = self._stack.function_env(case.logical_id)
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        env["PYTHONPATH"] = str(FUNCTIONS)
        prepared = PreparedCase(
            case,
            env,
            self._stack.template.function(case.logical_id).handler,
        )

        probe = self.run("probe", self.spec_a(prepared), env)
        prepared.calls.extend(probe.outcome["calls"])
        for service, _, _ in prepared.calls:
            prepared.endpoints[service] = (
                self._stack.sagemaker_url
                if service == "sagemaker-runtime"
                else self._stack.moto_url
            )
        return prepared

    def spec_a(self, prepared: PreparedCase) -> Path:
        """Write the spec of one A run: the event, its ids renewed."""
        return self._write(
            f"{prepared.case.logical_id}-a",
            {
                "handler": prepared.handler,
                "event": with_fresh_ids(prepared.case.event),
                "function_name": prepared.case.logical_id,
            },
        )

    def spec_b(self, prepared: PreparedCase) -> Path:
        """Write the spec of one B run: the probed calls, their ids renewed."""
        return self._write(
            f"{prepared.case.logical_id}-b",
            {
                "calls": with_fresh_ids(prepared.calls),
                "endpoints": prepared.endpoints,
                "region": REGION,
            },
        )

    def _write(self, name: str, spec: dict[str, Any]) -> Path:
        path = self._workdir / f"{name}.spec"
        with path.open("wb") as file:
            pickle.dump(spec, file)
        return path


def cold_figures(
    stack: OfflineStack, cases: list[ColdCase], *, repetitions: int
) -> tuple[list[tuple[Figure, Figure]], dict[str, str]]:
    """Time and peak-RSS figures per function, all cases interleaved, ABBA.

    A function whose first event fails is left out and named in the errors returned.
    """
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as workdir:
        bench = ColdBench(stack, Path(workdir))
        prepared: list[PreparedCase] = []
        for case in cases:
            try:
                item = bench.prepare(case)
                # The probe read A's files into the page cache; this reads B's.
                bench.run("bare", bench.spec_b(item), item.env)
            except ColdStartError as error:
                errors[case.logical_id] = str(error)
                continue
            prepared.append(item)

        runs: dict[tuple[str, str], list[FreshRun]] = {}
        for repetition in range(repetitions):
            for item in prepared:
                sides = ["a", "b"] if repetition % 2 == 0 else ["b", "a"]
                for side in sides:
                    if side == "a":
                        run = bench.run("handler", bench.spec_a(item), item.env)
                    else:
                        run = bench.run("bare", bench.spec_b(item), item.env)
                    runs.setdefault((item.case.logical_id, side), []).append(run)

    figures: list[tuple[Figure, Figure]] = []
    for item in prepared:
        case, calls = item.case, item.calls
        a_runs = runs[(case.logical_id, "a")]
        b_runs = runs[(case.logical_id, "b")]
        a_cpu = _median_ms(a_runs, "cpu_s")
        b_cpu = _median_ms(b_runs, "cpu_s")
        extra = {
            "calls": [call_name(call) for call in calls],
            "a_import_ms": _median_ms(a_runs, "import_s"),
            "a_serve_ms": _median_ms(a_runs, "serve_s"),
            "b_import_ms": _median_ms(b_runs, "import_s"),
            "b_serve_ms": _median_ms(b_runs, "serve_s"),
            # CPU time moves less than wall time when the machine is busy.
            "a_cpu_ms": a_cpu,
            "b_cpu_ms": b_cpu,
            "cpu_ratio": a_cpu / b_cpu,
        }
        figures.append(
            (
                Figure(
                    f"cold_init_time[{case.logical_id}]",
                    f"cold start {case.logical_id}",
                    [run.wall_ms for run in a_runs],
                    [run.wall_ms for run in b_runs],
                    1.3,
                    a_is="fresh process: import the handler, serve the first event",
                    b_is="fresh process: import boto3, create clients, same AWS calls",
                    extra=extra,
                ),
                Figure(
                    f"cold_init_rss[{case.logical_id}]",
                    f"cold peak RSS {case.logical_id}",
                    [run.peak_rss_mib for run in a_runs],
                    [run.peak_rss_mib for run in b_runs],
                    1.3,
                    unit="MiB",
                    a_is="peak RSS (VmHWM) of the same A processes",
                    b_is="peak RSS of the same B processes",
                ),
            )
        )
    return figures, errors


def _median_ms(runs: list[FreshRun], key: str) -> float:
    return float(statistics.median(run.outcome[key] * 1000 for run in runs))
