"""A fresh process for the cold-start figures, and the AWS call recording they rely on.

``python -P bench/fresh.py MODE SPEC OUT`` runs with a function's environment and
writes what it saw to OUT (a pickle). MODE is one of:

- ``handler``: import the function's handler module and serve one event (A);
- ``bare``: import boto3, create the clients and make the same AWS calls (B);
- ``probe``: as ``handler``, recording the AWS calls the event makes (not timed).

Only the standard library is imported before the part being measured, and both
modes import the same things first, so A and B differ only in what they do.
"""

from __future__ import annotations

import copy
import importlib
import os
import pickle
import resource
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

# (service name as boto3.client takes it, operation name, the caller's parameters)
AwsCall = tuple[str, str, dict[str, Any]]
REQUEST_ID = "0b6a4a2e-bench-4c1e-9d1a-000000000000"
ACCOUNT_ID = "123456789012"


class LambdaContext:
    """The context attributes Powertools reads, with a deadline far away."""

    def __init__(self, function_name: str, region: str = "us-east-1") -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = "512"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        )
        self.aws_request_id = REQUEST_ID
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "bench"
        self.identity: Any = None
        self.client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        """Answer a constant: the benchmarks never run near a timeout."""
        return 29_000


class CallRecorder:
    """Records the AWS calls made through every botocore client created after install().

    Powertools builds some clients from sessions of its own (the idempotency layer's
    DynamoDB client), so the hook goes on each new client, whatever its session.
    """

    def __init__(self) -> None:
        self.calls: list[AwsCall] = []
        self.active = True

    def install(self) -> None:
        """Hook every client created from now on, in this process."""
        from botocore.session import Session  # noqa: PLC0415 - not before the measured part

        create_client = Session.create_client
        recorder = self

        def create_recorded_client(session: Session, *args: Any, **kwargs: Any) -> Any:
            client = create_client(session, *args, **kwargs)
            client.meta.events.register("provide-client-params", recorder._record)
            return client

        Session.create_client = create_recorded_client  # type: ignore[assignment,method-assign]

    def take(self) -> list[AwsCall]:
        """Return the calls recorded so far and start a new list."""
        calls, self.calls = self.calls, []
        return calls

    def _record(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        if self.active:
            service = model.service_model.service_name
            self.calls.append((service, model.name, copy.deepcopy(params)))


def call_name(call: AwsCall) -> str:
    """Name a call the way AWS documents it, like ``dynamodb.PutItem``."""
    return f"{call[0]}.{call[1]}"


def bind_calls(
    calls: Iterable[AwsCall], clients: dict[str, Any]
) -> list[tuple[Callable[..., Any], dict[str, Any]]]:
    """Turn recorded calls into (client method, parameters) ready to make."""
    from botocore import xform_name  # noqa: PLC0415 - not before the measured part

    return [
        (getattr(clients[service], xform_name(operation)), params)
        for service, operation, params in calls
    ]


def make_calls(bound: Iterable[tuple[Callable[..., Any], dict[str, Any]]]) -> None:
    """Make the calls in order, reading streamed bodies as the gateway does."""
    for method, params in bound:
        response = method(**params)
        body = response.get("Body")
        if hasattr(body, "read"):
            body.read()


def _serve(spec: dict[str, Any], *, probe: bool) -> dict[str, Any]:
    """Import the handler and serve one event, optionally recording AWS calls."""
    recorder = None
    if probe:
        recorder = CallRecorder()
        recorder.install()

    started = time.perf_counter()
    module_name, _, name = spec["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), name)
    imported = time.perf_counter()
    response = handler(spec["event"], LambdaContext(spec["function_name"]))
    served = time.perf_counter()

    return {
        "import_s": imported - started,
        "serve_s": served - imported,
        "response": response,
        "calls": recorder.calls if recorder else [],
    }


def _bare(spec: dict[str, Any]) -> dict[str, Any]:
    """Import boto3, create one client per service and make the recorded calls."""
    started = time.perf_counter()
    import boto3  # noqa: PLC0415

    imported = time.perf_counter()
    calls: list[AwsCall] = spec["calls"]
    # Typed as Any: the stubs want each service name as a literal.
    create: Any = boto3.client
    clients = {
        service: create(
            service, endpoint_url=spec["endpoints"][service], region_name=spec["region"]
        )
        for service in dict.fromkeys(call[0] for call in calls)
    }
    make_calls(bind_calls(calls, clients))
    served = time.perf_counter()

    return {"import_s": imported - started, "serve_s": served - imported}


def peak_rss_kib() -> int:
    """This process's peak resident set (VmHWM), which, unlike ru_maxrss, starts
    afresh at exec instead of carrying over the forking parent's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(argv: list[str]) -> NoReturn:
    """Run one mode on one spec, write the outcome and leave at once.

    Lambda keeps an environment's process after its first event, so interpreter
    teardown (100-250 ms with Powertools and pydantic loaded) is no part of a cold
    start: both modes skip it alike.
    """
    mode, spec_path, out_path = argv[1:4]
    with open(spec_path, "rb") as spec_file:
        spec = pickle.load(spec_file)

    outcome = _bare(spec) if mode == "bare" else _serve(spec, probe=mode == "probe")
    outcome["peak_rss_kib"] = peak_rss_kib()
    # CPU time from exec on: waiting behind other processes does not count.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    outcome["cpu_s"] = usage.ru_utime + usage.ru_stime

    with open(out_path, "wb") as out_file:
        pickle.dump(outcome, out_file)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
