"""Warm figures: the API function's handler in this process against bare boto3.

B is never written by hand: A's own AWS calls are recorded (botocore's
``provide-client-params`` event, hooked on every client) and made again, in the same
order and with the same parameters, through plain clients of a session of B's own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3

from bench.fresh import (
    AwsCall,
    CallRecorder,
    LambdaContext,
    bind_calls,
    call_name,
    make_calls,
)
from bench.inprocess import (
    load_event,
    load_handler,
    output_discarded,
    use_function_env,
    with_fresh_ids,
    without_header,
)
from bench.timing import Figure, interleave
from offline.lambda_runtime import DUMMY_CREDENTIALS, REGION
from offline.stack import OfflineStack


class BenchError(RuntimeError):
    """A measurement could not be taken as designed."""


class ApiBench:
    """The API function loaded in this process, its calls recorded, bare clients at hand."""

    def __init__(self, stack: OfflineStack) -> None:
        use_function_env(stack.function_env("ApiFunction"))
        # Before the import: the function creates clients at import time. B's
        # clients carry the same (idle) hook, so both sides pay for it alike.
        self.recorder = CallRecorder()
        self.recorder.install()
        self.recorder.active = False

        self.handler = load_handler(stack.template.function("ApiFunction").handler)
        self.context = LambdaContext("ApiFunction")
        self.stack = stack
        # The function's own credentials, session token included: Lambda's always
        # have one, and it is one more header to sign and send.
        self._bare = boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=REGION,
        )
        self._clients: dict[str, Any] = {}

    def clients(self, calls: list[AwsCall]) -> dict[str, Any]:
        """Bare clients, one per service the calls use, on the stack's endpoints."""
        for service, _, _ in calls:
            if service not in self._clients:
                url = (
                    self.stack.sagemaker_url
                    if service == "sagemaker-runtime"
                    else self.stack.moto_url
                )
                # Typed as Any: the stubs want each service name as a literal.
                create: Any = self._bare.client
                self._clients[service] = create(service, endpoint_url=url)
        return self._clients

    def serve(self, event: dict[str, Any], status: int) -> dict[str, Any]:
        """Run the handler once and insist on the expected status."""
        response: dict[str, Any] = self.handler(event, self.context)
        if response.get("statusCode") != status:
            raise BenchError(
                f"expected {status}, got {response.get('statusCode')}: "
                f"{str(response.get('body'))[:200]}"
            )
        return response

    def record(self, event: dict[str, Any], status: int) -> list[AwsCall]:
        """Serve one event and return the AWS calls it made."""
        self.recorder.active = True
        try:
            self.serve(event, status)
        finally:
            self.recorder.active = False
        return self.recorder.take()


def sync_figure(
    api: ApiBench,
    key: str,
    event: dict[str, Any],
    *,
    target: float,
    repetitions: int,
    warmup: int,
) -> Figure:
    """One sync request through the handler against the same InvokeEndpoint bare."""
    with output_discarded():
        calls = api.record(event, 200)
        names = [call_name(call) for call in calls]
        if names != ["sagemaker-runtime.InvokeEndpoint"]:
            raise BenchError(f"the sync route made {names}, not one InvokeEndpoint")
        bound = bind_calls(calls, api.clients(calls))

        times_a, times_b = interleave(
            lambda: api.serve(event, 200),
            lambda: make_calls(bound),
            repetitions=repetitions,
            warmup=warmup,
        )

    endpoint = calls[0][2]["EndpointName"]
    return Figure(
        key,
        f"sync {endpoint}",
        times_a,
        times_b,
        target,
        a_is="ApiFunction handler, in process, REST proxy event",
        b_is="boto3 invoke_endpoint, same parameters and body",
        extra={"body_bytes": len(calls[0][2]["Body"])},
    )


@contextlib.contextmanager
def results_pipeline_paused(stack: OfflineStack) -> Iterator[None]:
    """Stop the stack's SQS pollers meanwhile.

    A's submissions are linked, so the results function fully processes each of
    their results, while B's replays leave unlinked results that cost one call.
    On AWS that work runs elsewhere; here it lands on the next measurement, which
    within a pair is B's more often than A's, and makes A look faster than B.
    """
    sources = list(stack.event_sources)
    for source in sources:
        source.stop()
    try:
        yield
    finally:
        for source in sources:
            source.start()


def async_figure(
    api: ApiBench, *, target: float, repetitions: int, warmup: int
) -> Figure:
    """One async submit through the handler against the same AWS calls bare."""
    event = without_header(load_event("api-async-invoke"), "X-Callback-Url")
    with output_discarded():
        recorded = [api.record(event, 202) for _ in range(max(warmup, 3))]
    names = [call_name(call) for call in recorded[-1]]
    if any([call_name(call) for call in calls] != names for calls in recorded):
        raise BenchError("async submits made different calls from one to the next")

    # Each replay gets its own ids, so conditional writes meet new keys as A's do.
    clients = api.clients(recorded[-1])
    replays = iter(
        [
            bind_calls(with_fresh_ids(recorded[-1]), clients)
            for _ in range(repetitions + warmup)
        ]
    )
    with results_pipeline_paused(api.stack), output_discarded():
        times_a, times_b = interleave(
            lambda: api.serve(event, 202),
            lambda: make_calls(next(replays)),
            repetitions=repetitions,
            warmup=warmup,
        )

    return Figure(
        "async_submit",
        "async submit",
        times_a,
        times_b,
        target,
        a_is="ApiFunction handler, async route, no callback",
        b_is="the route's own AWS calls, made bare with boto3",
        extra={"calls": names},
    )


def sync_events() -> Iterator[tuple[str, dict[str, Any], float]]:
    """The two sync figures: key, event and target."""
    yield "sync_overhead_echo", load_event("api-invoke-png"), 1.10
    yield "sync_overhead_model", load_event("api-invoke-csv"), 1.02
