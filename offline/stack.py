"""The whole offline stack: moto, model containers, SageMaker Runtime and the local API.

``python -m offline.stack [--parameter-overrides K=V ...]`` (``make run``) starts:

- moto (every AWS API the functions call except SageMaker Runtime) on 127.0.0.1:5000,
- the model containers ``xgb`` (8081) and ``echo`` (8082),
- the template's buckets, queues, tables and secrets, created in moto from the template
  (:mod:`offline.provision`), the bucket's S3 -> SQS notifications included,
- the SageMaker Runtime stand-in (8080) serving the endpoints ``breast-cancer-xgb`` and
  ``echo`` from those containers, writing async results to the template's
  AsyncOutputPath and AsyncFailurePath (both in the gateway bucket),
- the template's REST API (3000), whose functions run in local Lambda workers with
  the template's environment and endpoint URLs that point at the pieces above,
- the SQS event source mappings of the template's functions
  (:mod:`offline.event_sources`),
- a webhook receiver (8090) that records signed deliveries
  (:mod:`offline.webhook_receiver`).

Ports come from flags or the variables GATEWAY_API_PORT, MOTO_PORT, SAGEMAKER_PORT,
XGB_PORT, ECHO_PORT and WEBHOOK_PORT. The webhook secret is WEBHOOK_SECRET (default
``local-dev-secret``): the stack stores it in the template's webhook secret and the
receiver checks signatures with it. Every function also gets
ALLOW_LOOPBACK_CALLBACKS=true: offline, and only there, webhooks and reply queues on
127.0.0.1 are allowed. Every child runs in its own process group and is stopped,
group and all, when the stack stops: on Ctrl-C, SIGTERM, SIGHUP, an error or
interpreter exit. Once stopping has begun, further signals are ignored until every
child group is gone (make forwards SIGTERM, so the stack often gets it twice). On
Linux each child also gets SIGTERM from the kernel if the stack dies without
cleaning up (SIGKILL, a crash): PR_SET_PDEATHSIG, which follows the thread that
started the child, so call :meth:`OfflineStack.start` from a thread that outlives
the stack (the main thread, as ``make run`` and the tests do).

Tests use :class:`OfflineStack`, which starts the same pieces on free loopback ports.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import functools
import http.client
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from offline.apigateway import INTEGRATION_TIMEOUT_SECONDS, LocalApi
from offline.event_sources import EventSourceError, SqsEventSource, sqs_event_sources
from offline.lambda_runtime import (
    DEFAULT_MAX_WORKERS,
    DUMMY_CREDENTIALS,
    FunctionPool,
    InvokeResult,
)
from offline.provision import (
    QUEUE,
    ProvisionedResource,
    ProvisionError,
    moto_client,
    planned_resources,
    provision,
    webhook_secret_ids,
)
from offline.template import (
    DEFAULT_TEMPLATE,
    REGION,
    STACK_NAME,
    SamTemplate,
    TemplateError,
    load_template,
    parse_parameter_overrides,
)
from offline.webhook_receiver import WebhookReceiver, secret_from_env

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
# Endpoint name -> model container that serves it.
MODEL_ENDPOINTS: dict[str, str] = {"breast-cancer-xgb": "xgb", "echo": "echo"}
# Offline, and only there, functions may call back to 127.0.0.1 (the webhook receiver).
FUNCTION_EXTRA_ENV: dict[str, str] = {"ALLOW_LOOPBACK_CALLBACKS": "true"}
# Outputs of the template that name where the stand-in writes async results.
ASYNC_OUTPUT = "AsyncOutputPath"
ASYNC_FAILURE = "AsyncFailurePath"
# The reply queue the sample events in events/ name, created and allowed offline, as a
# deployment would list its clients' queues in AllowedReplyQueues.
SAMPLE_REPLY_QUEUE = "client-replies"
LOCAL_PARAMETERS = {
    "AllowedReplyQueues": f"arn:aws:sqs:{REGION}:123456789012:{SAMPLE_REPLY_QUEUE}",
}
STARTUP_TIMEOUT_SECONDS = 120.0
STOP_GRACE_SECONDS = 5.0
# How often start() and wait() look at the stop flag that the signal handler sets.
POLL_SECONDS = 0.1
# Ctrl-C, kill (and make forwarding it), a closed terminal.
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP")
    if hasattr(signal, name)
)
# prctl(2) option: the signal a process gets when the thread that forked it ends.
PR_SET_PDEATHSIG = 1
# A row of the breast cancer data set: what the xgb container scores.
SAMPLE_CSV_ROW = (
    "17.99,10.38,122.8,1001,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,"
    "8.589,153.4,0.006399,0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,"
    "2019,0.1622,0.6656,0.7119,0.2654,0.4601,0.1189"
)
PORT_VARIABLES: dict[str, str] = {
    "api": "GATEWAY_API_PORT",
    "moto": "MOTO_PORT",
    "sagemaker": "SAGEMAKER_PORT",
    "xgb": "XGB_PORT",
    "echo": "ECHO_PORT",
    "webhook": "WEBHOOK_PORT",
}


class StackError(RuntimeError):
    """The offline stack could not start."""


class StackStoppedError(StackError):
    """Stopping was asked for (a signal) before the stack was ready."""


@functools.cache
def _prctl() -> Any:
    """Return libc's prctl on Linux, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_ulong]
    function.restype = ctypes.c_int
    return function


def _die_with_parent_hook() -> Callable[[], None] | None:
    """Build a preexec_fn that has the kernel SIGTERM the child when the stack dies."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    death_signal = int(signal.SIGTERM)

    def die_with_parent() -> None:
        """Run in the child between fork and exec: nothing here may take a lock."""
        prctl(PR_SET_PDEATHSIG, death_signal)
        # The stack may have died before the request took effect: nobody would ask.
        if os.getppid() != parent:
            os._exit(1)

    return die_with_parent


@dataclass(frozen=True)
class StackPorts:
    """Loopback ports of the stack's pieces."""

    api: int = 3000
    moto: int = 5000
    sagemaker: int = 8080
    xgb: int = 8081
    echo: int = 8082
    webhook: int = 8090

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackPorts:
        """Read ports from GATEWAY_API_PORT, MOTO_PORT, ... with the defaults as fallback."""
        source = os.environ if env is None else env
        values: dict[str, int] = {}
        for name, variable in PORT_VARIABLES.items():
            raw = source.get(variable)
            if raw:
                try:
                    values[name] = int(raw)
                except ValueError as error:
                    raise StackError(
                        f"{variable}={raw!r} is not a port number"
                    ) from error
        return cls(**values)

    @classmethod
    def free(cls) -> StackPorts:
        """Pick free loopback ports (the OS chooses; all distinct)."""
        sockets: list[socket.socket] = []
        try:
            for _ in PORT_VARIABLES:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind((LOOPBACK, 0))
                sockets.append(sock)
            ports = [sock.getsockname()[1] for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
        return cls(*ports)

    def model_port(self, model: str) -> int:
        """Return the port of a model container."""
        return int(getattr(self, model))


def _port_is_free(port: int) -> bool:
    """Tell whether a loopback port can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _http_status(port: int, path: str) -> int | None:
    """GET a loopback URL; return the status, or None when nothing answers yet."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _pings(port: int) -> bool:
    """Tell whether a model container answers GET /ping with 200."""
    return _http_status(port, "/ping") == 200


def _accepts(port: int) -> bool:
    """Tell whether something accepts TCP connections on a loopback port."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


@dataclass(eq=False)
class _Child:
    """A server the stack runs as a subprocess."""

    name: str
    argv: list[str]
    port: int
    ready: Callable[[], bool]
    log_path: Path | None = None
    is_moto: bool = False
    process: subprocess.Popen[bytes] | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)
    is_ready: bool = False

    def tail(self, lines: int = 25) -> str:
        """Return the end of the child's log, for error messages."""
        if self.log_path is None:
            return "(its output is above)"
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class OfflineStack:
    """Start and stop the offline stack; a context manager for tests."""

    def __init__(
        self,
        ports: StackPorts | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        template_path: Path | str = DEFAULT_TEMPLATE,
        *,
        quiet: bool = True,
        log_dir: Path | str | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        prewarm: bool = True,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
        container_timeout: float | None = None,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
        mended_moto: bool = False,
    ) -> None:
        self.ports = ports or StackPorts.free()
        parameter_overrides = {**LOCAL_PARAMETERS, **(parameter_overrides or {})}
        # The template as written; self.template also resolves the resources in moto.
        self.base_template: SamTemplate = load_template(
            template_path, parameter_overrides
        )
        self._template_path = template_path
        self._parameter_overrides = dict(parameter_overrides)
        self.provisioned: dict[str, ProvisionedResource] = planned_resources(
            self.base_template, self.moto_url
        )
        self.template: SamTemplate = self._resolved_template()
        self.webhook_secret = secret_from_env()
        self.webhook_receiver: WebhookReceiver | None = None
        self.event_sources: list[SqsEventSource] = []
        self.quiet = quiet
        self._own_log_dir = log_dir is None
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="offline-stack-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.max_workers = max_workers
        self.prewarm = prewarm
        self.startup_timeout = startup_timeout
        self.container_timeout = container_timeout
        self.integration_timeout = integration_timeout
        # moto's DynamoDB breaks under concurrent writers; offline.moto_server mends it.
        self.mended_moto = mended_moto
        self.pools: dict[str, FunctionPool] = {}
        self.api: LocalApi | None = None
        self.warm_errors: dict[str, list[str]] = {}
        self._children: list[_Child] = []
        self._function_log: IO[bytes] | None = None
        self._started = False
        # A plain flag: signal handlers set it and must take no lock to do so.
        self._stop_requested = False

    # URLs ---------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Root URL of the local REST API (like sam local start-api)."""
        return f"http://{LOOPBACK}:{self.ports.api}"

    @property
    def stage_url(self) -> str:
        """URL of the API under its stage, shaped like the deployed ApiUrl."""
        stages = [api.stage_name for api in self.template.apis()]
        return f"{self.api_url}/{stages[0]}" if stages else self.api_url

    @property
    def moto_url(self) -> str:
        """URL of the moto server."""
        return f"http://{LOOPBACK}:{self.ports.moto}"

    @property
    def sagemaker_url(self) -> str:
        """URL of the SageMaker Runtime stand-in."""
        return f"http://{LOOPBACK}:{self.ports.sagemaker}"

    @property
    def endpoints(self) -> dict[str, str]:
        """Endpoint name -> URL of the container that serves it."""
        return {
            name: f"http://{LOOPBACK}:{self.ports.model_port(model)}"
            for name, model in MODEL_ENDPOINTS.items()
        }

    @property
    def resources(self) -> dict[str, str]:
        """Logical id -> Ref value in moto (bucket, table, queue URL, secret ARN)."""
        return {logical_id: item.ref for logical_id, item in self.provisioned.items()}

    @property
    def webhook_url(self) -> str:
        """Base URL of the webhook receiver (append any path)."""
        return f"http://{LOOPBACK}:{self.ports.webhook}"

    @property
    def async_output_path(self) -> str | None:
        """S3 URI where the stand-in writes async results (the template's output)."""
        return self._output(ASYNC_OUTPUT)

    @property
    def async_failure_path(self) -> str | None:
        """S3 URI where the stand-in writes async failures (the template's output)."""
        return self._output(ASYNC_FAILURE)

    def _output(self, name: str) -> str | None:
        """Resolve one output of the template, or None when it has none by that name."""
        output = (self.template.document.get("Outputs") or {}).get(name)
        if not isinstance(output, dict):
            return None
        value = self.template.resolve(output.get("Value"))
        return str(value).rstrip("/") if value else None

    def client(self, service: str) -> Any:
        """Return a boto3 client for one service, bound to the stack's moto."""
        return moto_client(service, self.moto_url)

    def s3_client(self) -> Any:
        """Return an S3 client bound to moto."""
        return self.client("s3")

    def sqs_client(self) -> Any:
        """Return an SQS client bound to moto."""
        return self.client("sqs")

    def dynamodb_client(self) -> Any:
        """Return a DynamoDB client bound to moto."""
        return self.client("dynamodb")

    def secretsmanager_client(self) -> Any:
        """Return a Secrets Manager client bound to moto."""
        return self.client("secretsmanager")

    def function_env(self, logical_id: str) -> dict[str, str]:
        """Return the environment a function's workers get."""
        if logical_id in self.pools:
            return dict(self.pools[logical_id].environment)
        return dict(self._new_pool(logical_id, start=False).environment)

    def invoke(self, logical_id: str, event: Any) -> InvokeResult:
        """Invoke a function directly (like lambda invoke) through its warm pool."""
        return self.pools[logical_id].invoke(event)

    # Lifecycle ----------------------------------------------------------------

    def __enter__(self) -> OfflineStack:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start every piece in parallel and wait until all are ready."""
        if self._started:
            return
        self._started = True
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        """Launch, then wait for readiness; raise StackError with the reason."""
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        self._check_stop()
        self._check_ports()
        deadline = time.monotonic() + self.startup_timeout
        self._children = self._plan_children()
        for child in self._children:
            self._launch(child)
        if self.quiet:
            self._function_log = (self.log_dir / "functions.log").open("ab")
        self._start_webhook_receiver()
        # The functions' environments name moto's resources: create those first.
        self._wait_ready(deadline, [child for child in self._children if child.is_moto])
        self._check_stop()
        self._provision()
        self._check_stop()
        for function in self.template.functions():
            self.pools[function.logical_id] = self._new_pool(
                function.logical_id, start=True
            )
        warmers = [
            threading.Thread(target=self._warm, args=(logical_id,), daemon=True)
            for logical_id in self.pools
            if self.prewarm
        ]
        for warmer in warmers:
            warmer.start()
        self.api = LocalApi.from_template(
            self.template,
            self.pools,
            port=self.ports.api,
            integration_timeout=self.integration_timeout,
        ).start()
        self._start_event_sources()
        self._wait_ready(deadline)
        for warmer in warmers:
            # Short joins, so that a stop request is noticed while functions warm.
            while warmer.is_alive() and time.monotonic() < deadline:
                self._check_stop()
                warmer.join(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        self._check_stop()

    def request_stop(self) -> None:
        """Ask start() and wait() to give up soon; safe in a signal handler (no lock)."""
        self._stop_requested = True

    def _on_signal(self, signum: int, frame: object) -> None:
        """Signal handler: only set the flag; never raise, so cleanup runs to the end."""
        self.request_stop()

    def _check_stop(self) -> None:
        """Raise StackStoppedError once stopping was asked for."""
        if self._stop_requested:
            raise StackStoppedError("stopped before the stack was ready")

    def stop(self) -> None:
        """Stop the API, the workers and every child process group."""
        atexit.unregister(self.stop)
        try:
            self._stop_in_process()
        finally:
            # The children go even when stopping something in process failed.
            self._stop_children()
            if self._function_log is not None:
                self._function_log.close()
                self._function_log = None
            if self._own_log_dir:
                shutil.rmtree(self.log_dir, ignore_errors=True)
            self._started = False
            self._stop_requested = False

    def _stop_in_process(self) -> None:
        """Stop the pollers, the API, the workers and the webhook receiver."""
        # Pollers stop first so no new batch starts; closing the pools ends running ones.
        for source in self.event_sources:
            source.request_stop()
        if self.api is not None:
            self.api.stop()
            self.api = None
        for pool in self.pools.values():
            pool.close()
        self.pools.clear()
        for source in self.event_sources:
            source.join()
        self.event_sources = []
        if self.webhook_receiver is not None:
            self.webhook_receiver.stop()
            self.webhook_receiver = None

    def _stop_children(self) -> None:
        """SIGTERM every child group, then SIGKILL what is left after the grace time."""
        for child in self._children:
            self._signal(child, signal.SIGTERM)
        grace_end = time.monotonic() + STOP_GRACE_SECONDS
        for child in self._children:
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.0, grace_end - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("child did not stop in time, killing it: %s", child.name)
            # Anything the child left in its group goes too.
            self._signal(child, signal.SIGKILL)
            child.process.wait()
            if child.log_file is not None:
                child.log_file.close()
        self._children = []

    def wait(self) -> None:
        """Serve until SIGINT, SIGTERM or SIGHUP, request_stop(), or a child's death."""
        with stop_signals(self):
            while not self._stop_requested:
                for child in self._children:
                    if child.process is not None and child.process.poll() is not None:
                        raise StackError(
                            f"{child.name} exited with status {child.process.returncode}"
                            f"\n{child.tail()}"
                        )
                time.sleep(POLL_SECONDS)

    # Pieces -------------------------------------------------------------------

    def _new_pool(self, logical_id: str, *, start: bool) -> FunctionPool:
        """Create the worker pool of one function with the stack's endpoints."""
        output: IO[bytes] | None = self._function_log if start else None
        return FunctionPool(
            self.template.function(logical_id),
            FUNCTION_EXTRA_ENV,
            aws_endpoint_url=self.moto_url,
            sagemaker_runtime_url=self.sagemaker_url,
            max_workers=self.max_workers,
            stdout=output,
            stderr=output,
        )

    def _resolved_template(self) -> SamTemplate:
        """Load the template with its resources resolved to those in moto."""
        return load_template(
            self._template_path,
            self._parameter_overrides,
            {logical_id: item.local() for logical_id, item in self.provisioned.items()},
        )

    def _provision(self) -> None:
        """Create the template's resources in moto and resolve the template with them."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        secret_values = dict.fromkeys(
            webhook_secret_ids(self.base_template), self.webhook_secret
        )
        try:
            self.provisioned = provision(
                self.base_template, self.moto_url, secret_values=secret_values
            )
            moto_client("sqs", self.moto_url).create_queue(QueueName=SAMPLE_REPLY_QUEUE)
        except (BotoCoreError, ClientError, ProvisionError, TemplateError) as error:
            raise StackError(
                f"could not create the template's resources: {error}"
            ) from error
        self.template = self._resolved_template()

    def _start_webhook_receiver(self) -> None:
        """Start the webhook receiver; the stack still runs if it cannot load."""
        try:
            receiver = WebhookReceiver(self.webhook_secret, self.ports.webhook)
        except ImportError as error:
            # The receiver checks signatures with the functions' code, which may be
            # mid-edit; the rest of the stack does not need it.
            log.warning("webhook receiver not started: %s", error)
            return
        self.webhook_receiver = receiver.start()

    def _start_event_sources(self) -> None:
        """Start a poller set for every SQS event of the template's functions."""
        queue_urls = {
            item.arn: item.ref for item in self.provisioned.values() if item.type == QUEUE
        }
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            self.event_sources = sqs_event_sources(
                self.template, self.pools, queue_urls, self.moto_url
            )
        except (EventSourceError, BotoCoreError, ClientError) as error:
            raise StackError(f"SQS event source refused: {error}") from error
        for source in self.event_sources:
            source.start()

    def _warm(self, logical_id: str) -> None:
        """Cold-start one worker so the first request is fast and import errors show early."""
        try:
            errors = self.pools[logical_id].warm(1)
        except RuntimeError:
            # The pool was closed because startup failed elsewhere.
            return
        if errors:
            self.warm_errors[logical_id] = errors
            log.warning("function failed to initialise: %s", logical_id)

    def _check_ports(self) -> None:
        """Fail early, and clearly, when a port is taken."""
        busy = [
            f"{getattr(self.ports, name)} ({variable})"
            for name, variable in PORT_VARIABLES.items()
            if not _port_is_free(getattr(self.ports, name))
        ]
        if busy:
            raise StackError(
                "ports already in use: "
                + ", ".join(busy)
                + "; stop what holds them or choose other ports"
            )

    def _plan_children(self) -> list[_Child]:
        """Describe the subprocesses of the stack."""
        python = sys.executable
        ports = self.ports
        moto = "offline.moto_server" if self.mended_moto else "moto.server"
        children = [
            _Child(
                "moto",
                [python, "-m", moto, "-H", LOOPBACK, "-p", str(ports.moto)],
                ports.moto,
                lambda: _http_status(ports.moto, "/moto-api/") is not None,
                is_moto=True,
            )
        ]
        for model in sorted(set(MODEL_ENDPOINTS.values())):
            port = ports.model_port(model)
            children.append(
                _Child(
                    f"container {model}",
                    [python, "-m", "offline.containers", model, "--port", str(port)],
                    port,
                    functools.partial(_pings, port),
                )
            )
        runtime = [
            python,
            "-m",
            "offline.sagemaker_runtime",
            "--port",
            str(ports.sagemaker),
        ]
        for name, url in self.endpoints.items():
            runtime += ["--endpoint", f"{name}={url}"]
        if self.container_timeout is not None:
            runtime += ["--container-timeout", str(self.container_timeout)]
        runtime += ["--s3-endpoint", self.moto_url]
        if self.async_output_path and self.async_failure_path:
            runtime += [
                "--async-output", self.async_output_path,
                "--async-failure", self.async_failure_path,
            ]  # fmt: skip
        children.append(
            _Child(
                "sagemaker runtime",
                runtime,
                ports.sagemaker,
                lambda: _accepts(ports.sagemaker),
            )
        )
        return children

    def _child_env(self) -> dict[str, str]:
        """Environment of the children: this one, made safe for offline use."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE"))
        }
        pythonpath = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env.update(DUMMY_CREDENTIALS)
        env.update(
            AWS_EC2_METADATA_DISABLED="true",
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_ENDPOINT_URL=self.moto_url,
            PYTHONPATH=os.pathsep.join(pythonpath),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _launch(self, child: _Child) -> None:
        """Start a child in its own process group, its output in a log file or inherited."""
        # moto logs every request: it always goes to a file.
        if self.quiet or child.name == "moto":
            child.log_path = self.log_dir / f"{child.name.replace(' ', '-')}.log"
            child.log_file = child.log_path.open("ab")
        log.info("starting %s on port %d", child.name, child.port)
        child.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            child.argv,
            cwd=str(ROOT),
            env=self._child_env(),
            stdin=subprocess.DEVNULL,
            stdout=child.log_file,
            stderr=subprocess.STDOUT if child.log_file is not None else None,
            # Its own session, so a group kill takes what it started; and the kernel
            # ends it should the stack die without stopping it.
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509 - lock-free, see hook
        )

    @staticmethod
    def _signal(child: _Child, signum: int) -> None:
        """Signal a child's whole process group if it is still there."""
        if child.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signum)

    def _wait_ready(
        self, deadline: float, children: Sequence[_Child] | None = None
    ) -> None:
        """Poll children (all by default) until ready; fail on an early exit or timeout."""
        chosen = self._children if children is None else children
        pending = [child for child in chosen if not child.is_ready]
        while pending:
            self._check_stop()
            for child in list(pending):
                assert child.process is not None
                if child.process.poll() is not None:
                    raise StackError(
                        f"{child.name} exited with status {child.process.returncode} "
                        f"before it was ready:\n{child.tail()}"
                    )
                if child.ready():
                    child.is_ready = True
                    pending.remove(child)
                    log.info("ready: %s", child.name)
            if pending and time.monotonic() > deadline:
                names = ", ".join(child.name for child in pending)
                raise StackError(
                    f"not ready after {self.startup_timeout:.0f} s: {names}\n"
                    + "\n".join(child.tail() for child in pending)
                )
            if pending:
                time.sleep(0.05)

    # Reporting ----------------------------------------------------------------

    def summary(self) -> str:
        """Describe what is up and where, with sample requests."""
        lines = [f"Offline stack is up ({STACK_NAME}, {REGION}):", ""]
        for api in self.template.apis():
            lines.append(
                f"  REST API {api.logical_id}: {self.api_url}/{api.stage_name}"
                f"  (also at the root, {self.api_url})"
            )
            for route in self.template.routes():
                if route.api_logical_id == api.logical_id:
                    lines.append(
                        f"    {route.method:<7} {route.path}  -> {route.function_logical_id}"
                    )
        lines.append("    (IAM authorization is not checked locally)")
        for function in self.template.functions():
            errors = self.warm_errors.get(function.logical_id)
            status = "warm" if self.prewarm else "cold"
            if errors:
                status = f"INIT FAILED: {errors[0]}"
            lines.append(
                f"  function {function.logical_id}: {function.handler}"
                f" ({function.timeout} s, up to {self.max_workers} workers, {status})"
            )
        lines.append(f"  SageMaker Runtime: {self.sagemaker_url}")
        for name, url in self.endpoints.items():
            lines.append(f"    endpoint {name:<18} -> {url}")
        lines.append(f"  moto: {self.moto_url}")
        lines += self._resource_lines()
        lines.append(f"    async output:  {self.async_output_path or '(none)'}")
        lines.append(f"    async failure: {self.async_failure_path or '(none)'}")
        for source in self.event_sources:
            config = source.config
            state = "enabled" if config.enabled else "disabled"
            lines.append(
                f"  SQS -> {config.function_logical_id}: {config.queue_name} (batch "
                f"{config.batch_size}, {config.max_concurrency} pollers, {state})"
            )
        if self.webhook_receiver is not None:
            lines.append(
                f"  webhook receiver: {self.webhook_receiver.url}  "
                f"(GET {self.webhook_receiver.url}/deliveries)"
            )
        else:
            lines.append("  webhook receiver: not started (see the warning above)")
        lines.append(f"  logs: {self.log_dir}")
        curl = self._sample_curls()
        if curl:
            lines += ["", "Try:", *curl]
        return "\n".join(lines)

    def _resource_lines(self) -> list[str]:
        """Describe the resources created in moto, by kind."""
        labels = {
            "AWS::S3::Bucket": "bucket",
            "AWS::DynamoDB::Table": "table",
            "AWS::SQS::Queue": "queue",
            "AWS::SecretsManager::Secret": "secret",
        }
        lines: list[str] = []
        for logical_id, item in self.provisioned.items():
            label = labels.get(item.type, item.type)
            where = f"{item.name}  {item.ref}" if item.ref != item.name else item.name
            lines.append(f"    {label:<6} {logical_id}: {where}")
        return lines

    def _sample_curls(self) -> list[str]:
        """Build sample curl commands for the first route."""
        routes = self.template.routes()
        if not routes:
            return []
        route = routes[0]
        api = next(
            api for api in self.template.apis() if api.logical_id == route.api_logical_id
        )
        method = "POST" if route.method == "ANY" else route.method
        samples = [
            ("echo", "application/json", '{"hello": "world"}'),
            ("breast-cancer-xgb", "text/csv", SAMPLE_CSV_ROW),
        ]
        commands: list[str] = []
        for endpoint, content_type, body in samples:
            path = route.path.replace("{endpoint}", endpoint)
            for segment in path.split("/"):
                if segment.startswith("{"):
                    path = path.replace(segment, "example")
            commands.append(
                f"  curl -sS -X {method} {self.api_url}/{api.stage_name}{path} "
                f"-H 'Content-Type: {content_type}' --data-binary '{body}'"
            )
        return commands


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    defaults = StackPorts.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m offline.stack",
        description="Run the gateway offline: moto, model containers, SageMaker Runtime "
        "stand-in and the template's API on 127.0.0.1.",
    )
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, like sam local --parameter-overrides",
    )
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    for name, variable in PORT_VARIABLES.items():
        parser.add_argument(
            f"--{name}-port",
            type=int,
            default=getattr(defaults, name),
            help=f"port of {name} (env {variable}, default %(default)s)",
        )
    parser.add_argument("--max-workers", type=int, default=DEFAULT_MAX_WORKERS)
    parser.add_argument("--container-timeout", type=float, default=None)
    parser.add_argument(
        "--quiet", action="store_true", help="send all output to log files"
    )
    parser.add_argument(
        "--no-prewarm", action="store_true", help="no cold start at startup"
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the offline stack until interrupted."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    ports = StackPorts(**{name: getattr(args, f"{name}_port") for name in PORT_VARIABLES})
    try:
        stack = OfflineStack(
            ports,
            parse_parameter_overrides(args.parameter_overrides),
            args.template,
            quiet=args.quiet,
            max_workers=args.max_workers,
            prewarm=not args.no_prewarm,
            container_timeout=args.container_timeout,
        )
    except (TemplateError, StackError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    status = 0
    # From here on a signal only asks to stop: startup gives up at its next check,
    # signals during the cleanup cannot cut it short, and late ones (make forwards
    # SIGTERM) cannot turn the clean exit into a failure: the handlers stay.
    with stop_signals(stack, restore=False):
        try:
            stack.start()
            print(stack.summary(), flush=True)
            print("\nCtrl-C stops everything.", flush=True)
            stack.wait()
        except StackStoppedError:
            pass
        except StackError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
        finally:
            # After SIGHUP the terminal may be gone: the cleanup must not depend on it.
            with contextlib.suppress(OSError):
                print("stopping the offline stack", file=sys.stderr, flush=True)
            stack.stop()
    return status


@contextlib.contextmanager
def stop_signals(stack: OfflineStack, *, restore: bool = True) -> Iterator[None]:
    """Route SIGINT, SIGTERM and SIGHUP to the stack's stop flag while the block runs.

    The handler takes no lock (a nested signal cannot deadlock it) and never raises
    (a second Ctrl-C cannot interrupt the cleanup). The previous handlers come back
    afterwards unless restore is false. Off the main thread, where handlers cannot
    be installed, nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, stack._on_signal) for signum in STOP_SIGNALS
    }
    try:
        yield
    finally:
        if restore:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


if __name__ == "__main__":
    exit_status = main()
    # Everything is stopped. Interpreter exit puts back the default handlers, which
    # a late signal (make forwards SIGTERM) would turn into a failed exit: ignore them.
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, signal.SIG_IGN)
    sys.exit(exit_status)
