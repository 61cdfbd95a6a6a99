"""The batch10 figure: ten queue messages in one event against one message alone.

The queue function reads its settings once per process, like every function, so it
runs here in a process of its own with its own environment:
``python -m bench.batch SPEC OUT`` (started by ``python -m bench``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.cold import served_ok
from bench.fresh import LambdaContext
from bench.inprocess import FUNCTIONS, ROOT, load_handler, sqs_event, use_function_env
from bench.timing import Figure, interleave
from offline.stack import OfflineStack
from offline.template import TemplateError

QUEUE_FUNCTION = "QueueFunction"
BATCH_SIZE = 10
TARGET = 1.3
MESSAGE = {
    "endpoint": "echo",
    "body": "x",
    "customAttributes": "delay_ms=100",
    "mode": "sync",
}
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:inference-gateway-local-bench-requests"
# Room for every repetition to run its ten 100 ms calls one after another, slowly.
TIMEOUT_SECONDS = 240.0


class BatchError(RuntimeError):
    """The queue function did not serve the batch as expected."""


def queue_function_env(stack: OfflineStack) -> dict[str, str] | None:
    """The queue function's environment, or None while the template lacks it."""
    functions = stack.template.resources_of_type("AWS::Serverless::Function")
    if QUEUE_FUNCTION not in functions:
        return None
    try:
        return stack.function_env(QUEUE_FUNCTION)
    except (TemplateError, KeyError, ValueError):
        return None


def batch_figure(
    stack: OfflineStack, env: dict[str, str], *, repetitions: int, warmup: int
) -> Figure:
    """Run the measurement in a process with the queue function's environment."""
    spec = {
        "handler": stack.template.function(QUEUE_FUNCTION).handler,
        "repetitions": repetitions,
        "warmup": warmup,
    }
    child_env = dict(env)
    child_env["AWS_EC2_METADATA_DISABLED"] = "true"
    child_env["PYTHONPATH"] = os.pathsep.join([str(FUNCTIONS), str(ROOT)])
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as workdir:
        spec_path = Path(workdir) / "spec.json"
        out_path = Path(workdir) / "out.json"
        spec_path.write_text(json.dumps(spec))
        done = subprocess.run(
            [sys.executable, "-m", "bench.batch", str(spec_path), str(out_path)],
            cwd=str(ROOT),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace")[-2000:]
            raise BatchError(f"the batch measurement failed:\n{tail}")
        result = json.loads(out_path.read_text())

    return Figure(
        "batch10",
        "batch of 10 at 100 ms",
        result["a"],
        result["b"],
        TARGET,
        a_is=f"QueueFunction handler, {BATCH_SIZE} messages to echo (delay_ms=100)",
        b_is="QueueFunction handler, one such message",
    )


def measure(spec: dict[str, Any]) -> dict[str, list[float]]:
    """Time the ten-message event and the one-message event in turn."""
    handler = load_handler(spec["handler"])
    context = LambdaContext(QUEUE_FUNCTION)
    body = json.dumps(MESSAGE)
    # New message ids every time: a redelivered id is answered from the idempotency
    # record without calling the model.
    rounds = spec["repetitions"] + spec["warmup"]
    batches = iter([sqs_event([body] * BATCH_SIZE, QUEUE_ARN) for _ in range(rounds)])
    singles = iter([sqs_event([body], QUEUE_ARN) for _ in range(rounds)])

    def serve(event: dict[str, Any]) -> None:
        response = handler(event, context)
        if not served_ok(response):
            raise BatchError(f"the queue function answered {response!r:.300}")

    times_a, times_b = interleave(
        lambda: serve(next(batches)),
        lambda: serve(next(singles)),
        repetitions=spec["repetitions"],
        warmup=spec["warmup"],
    )
    return {"a": times_a, "b": times_b}


def main(argv: list[str]) -> int:
    """Measure with the environment this process was given."""
    spec = json.loads(Path(argv[1]).read_text())
    use_function_env(dict(os.environ))
    result = measure(spec)
    Path(argv[2]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
