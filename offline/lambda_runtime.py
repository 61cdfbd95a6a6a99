"""Run Lambda functions locally in worker processes, one event at a time per worker.

Each worker is an execution environment: a Python process started with an
environment built from scratch (the function's template variables, Lambda's
reserved variables, dummy credentials and loopback endpoint URLs). It imports
the handler once (the cold start) and then serves events. The runner and a
worker talk over a private socket pair with length-prefixed frames, so the
handler keeps stdout and stderr for its logs, which reach the runner's own
streams as they do under ``sam local``.

When run as a script (``python -P offline/lambda_runtime.py --worker --fd N``)
this module is the worker; it then uses the standard library only, so that the
function's code directory is the only project code on its import path.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import decimal
import importlib
import json
import logging
import math
import os
import resource
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from offline.template import FunctionSpec

log = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
DEFAULT_AWS_ENDPOINT_URL = "http://127.0.0.1:5000"
DEFAULT_SAGEMAKER_RUNTIME_URL = "http://127.0.0.1:8080"
DEFAULT_MAX_WORKERS = 8
# Lambda's synchronous invoke limits: 6 MiB in, 6 MiB + 100 bytes out.
MAX_REQUEST_BYTES = 6 * 1024 * 1024
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 + 100
# Lambda gives the init phase 10 s before it retries it inside the invoke.
INIT_GRACE_SECONDS = 10.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Credentials moto accepts; real ones must never reach the offline stack.
DUMMY_CREDENTIALS: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

_FRAME_HEADER = struct.Struct("!II")
_SCRIPT = Path(__file__).resolve()


# Framing (shared by runner and worker) -------------------------------------------


def _send_frame(channel: socket.socket, header: Mapping[str, Any], body: bytes) -> None:
    """Write one frame: sizes, a JSON header and an opaque body."""
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    channel.sendall(_FRAME_HEADER.pack(len(header_bytes), len(body)) + header_bytes)
    if body:
        channel.sendall(body)


def _recv_exact(channel: socket.socket, size: int) -> bytes | None:
    """Read exactly size bytes, or None when the peer closed the channel first."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        count = channel.recv_into(view[received:], size - received)
        if count == 0:
            return None
        received += count
    return bytes(buffer)


def _recv_frame(channel: socket.socket) -> tuple[dict[str, Any], bytes] | None:
    """Read one frame, or None when the peer closed the channel."""
    sizes = _recv_exact(channel, _FRAME_HEADER.size)
    if sizes is None:
        return None
    header_size, body_size = _FRAME_HEADER.unpack(sizes)
    header_bytes = _recv_exact(channel, header_size)
    body = _recv_exact(channel, body_size) if body_size else b""
    if header_bytes is None or body is None:
        return None
    return json.loads(header_bytes), body


def _error_payload(
    error_type: str,
    message: str,
    request_id: str | None = None,
    stack: list[str] | None = None,
) -> bytes:
    """Encode an error the way Lambda reports it to the invoker."""
    payload: dict[str, Any] = {"errorMessage": message, "errorType": error_type}
    if request_id is not None:
        payload["requestId"] = request_id
    payload["stackTrace"] = stack or []
    return json.dumps(payload).encode()


# Worker side ---------------------------------------------------------------------


class LambdaContext:
    """The context object handed to the handler, shaped like the Python runtime's."""

    def __init__(
        self, request_id: str, deadline_ms: int, invoked_function_arn: str
    ) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        # The Python runtime reads the memory size from the environment, as a string.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Return the milliseconds left before the function times out."""
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, message: str) -> None:
        """Write a message to the function's log stream."""
        sys.stdout.write(message)


class _InitError(Exception):
    """The handler could not be loaded; carries Lambda's error type and message."""

    def __init__(
        self, error_type: str, message: str, stack: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack or []


def _stack_of(error: BaseException) -> list[str]:
    """Format a traceback as Lambda's stackTrace entries, without the runtime's frames."""
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename != str(_SCRIPT) and not frame.filename.startswith("<frozen ")
    ]
    return traceback.format_list(frames)


def _load_handler(handler: str) -> Callable[[Any, LambdaContext], Any]:
    """Import the handler named like module.path.function, as the runtime does."""
    module_name, _, function_name = handler.replace("/", ".").rpartition(".")
    if not module_name or not function_name:
        raise _InitError(
            "Runtime.MalformedHandlerName",
            f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise _InitError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_name}': {error}",
            _stack_of(error),
        ) from error
    except SyntaxError as error:
        raise _InitError(
            "Runtime.UserCodeSyntaxError",
            f"Syntax error in module '{module_name}': {error}",
            _stack_of(error),
        ) from error
    except Exception as error:
        raise _InitError(type(error).__name__, str(error), _stack_of(error)) from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise _InitError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return function  # type: ignore[no-any-return]


def _json_default(value: Any) -> Any:
    """Serialise Decimal like the Python runtime; refuse anything else."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _log_runtime_error(error_type: str, message: str, stack: list[str]) -> None:
    """Write an unhandled error to the log stream in the runtime's format."""
    text = f"[ERROR] {error_type}: {message}"
    if stack:
        text += "\nTraceback (most recent call last):\n" + "".join(stack).rstrip("\n")
    print(text, file=sys.stdout, flush=True)


def _run_one(
    handler: Callable[[Any, LambdaContext], Any],
    header: Mapping[str, Any],
    body: bytes,
) -> tuple[bool, bytes]:
    """Run the handler on one event; return (is_error, JSON payload)."""
    request_id = str(header["request_id"])
    context = LambdaContext(request_id, int(header["deadline_ms"]), str(header["arn"]))
    try:
        event = json.loads(body)
        result = handler(event, context)
    except Exception as error:
        stack = _stack_of(error)
        _log_runtime_error(type(error).__name__, str(error), stack)
        return True, _error_payload(type(error).__name__, str(error), request_id, stack)
    try:
        payload = json.dumps(result, default=_json_default).encode()
    except (TypeError, ValueError) as error:
        message = f"Unable to marshal response: {error}"
        _log_runtime_error("Runtime.MarshalError", message, [])
        return True, _error_payload("Runtime.MarshalError", message, request_id)
    if len(payload) > MAX_RESPONSE_BYTES:
        message = (
            "Response payload size exceeded maximum allowed payload size "
            f"({MAX_RESPONSE_BYTES} bytes)."
        )
        return True, _error_payload("Function.ResponseSizeTooLarge", message, request_id)
    return False, payload


def _worker_main(fd: int, spawned_at: float) -> int:
    """Serve events on the channel until the runner closes it."""
    channel = socket.socket(fileno=fd)
    try:
        handler = _load_handler(os.environ.get("_HANDLER", ""))
    except _InitError as error:
        _log_runtime_error(error.error_type, error.message, error.stack)
        payload = _error_payload(error.error_type, error.message, None, error.stack)
        _send_frame(channel, {"type": "init_error"}, payload)
        return 1
    # Like Lambda's Init Duration, this covers the interpreter start and the imports.
    init_ms = max(0.0, time.time() - spawned_at) * 1000
    _send_frame(channel, {"type": "ready", "init_duration_ms": init_ms}, b"")
    memory_size = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    first = True
    while True:
        frame = _recv_frame(channel)
        if frame is None:
            return 0
        header, body = frame
        request_id = str(header["request_id"])
        os.environ["_X_AMZN_TRACE_ID"] = str(header.get("trace_id", ""))
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        began = time.perf_counter()
        is_error, payload = _run_one(handler, header, body)
        duration = (time.perf_counter() - began) * 1000
        max_memory = _peak_memory_mb()
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration)} ms\tMemory Size: {memory_size} MB\t"
            f"Max Memory Used: {max_memory} MB"
        )
        if first:
            report += f"\tInit Duration: {init_ms:.2f} ms"
            first = False
        print(f"END RequestId: {request_id}\n{report}", flush=True)
        _send_frame(
            channel,
            {"type": "result", "error": is_error, "duration_ms": duration},
            payload,
        )


# Runner side ---------------------------------------------------------------------


@dataclass(frozen=True)
class InvokeResult:
    """Outcome of one invocation, as Lambda's Invoke API reports it."""

    request_id: str
    payload_bytes: bytes
    # "Unhandled" when the function failed, like the X-Amz-Function-Error header.
    function_error: str | None = None
    # Status of the Invoke call itself: 200, or 413 when the event is too large.
    status_code: int = 200
    duration_ms: float = 0.0
    init_duration_ms: float | None = None
    timed_out: bool = False

    @property
    def payload(self) -> Any:
        """Return the decoded JSON payload (the handler's result or the error)."""
        return json.loads(self.payload_bytes) if self.payload_bytes else None

    @property
    def ok(self) -> bool:
        """Tell whether the function ran and returned without error."""
        return self.status_code == 200 and self.function_error is None


def _peak_memory_mb() -> int:
    """This process's own peak RSS in MB.

    ``ru_maxrss`` would carry the parent's peak across ``exec``; ``VmHWM`` does not.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _check_loopback(name: str, url: str) -> None:
    """Refuse endpoint URLs that would leave this machine."""
    host = urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"{name}={url!r} is not a loopback URL")


def build_environment(
    spec: FunctionSpec,
    extra_env: Mapping[str, str] | None = None,
    *,
    aws_endpoint_url: str = DEFAULT_AWS_ENDPOINT_URL,
    sagemaker_runtime_url: str = DEFAULT_SAGEMAKER_RUNTIME_URL,
) -> dict[str, str]:
    """Build a function's environment from scratch, as Lambda would present it."""
    code_uri = str(spec.code_uri)
    env: dict[str, str] = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME") or str(Path.home()),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "TZ": ":UTC",
        "PYTHONPATH": code_uri,
        "PYTHONUNBUFFERED": "1",
    }
    env.update(spec.environment)
    env.update(
        {
            "LAMBDA_TASK_ROOT": code_uri,
            "_HANDLER": spec.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group_name,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            # As under sam local: Powertools Tracer turns itself off when it sees this.
            "AWS_SAM_LOCAL": "true",
            **DUMMY_CREDENTIALS,
            # Keep a developer's ~/.aws profile out of the function.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL": aws_endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker_runtime_url,
            "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
            "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        }
    )
    env.update(extra_env or {})
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    for key, value in env.items():
        if key.startswith("AWS_ENDPOINT_URL"):
            _check_loopback(key, value)
    return env


def _new_trace_id() -> str:
    """Make an X-Ray trace header for one invocation."""
    epoch = f"{int(time.time()):08x}"
    return (
        f"Root=1-{epoch}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"
    )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill a worker and anything it started, then reap it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@dataclass(eq=False)
class _Worker:
    """A live execution environment owned by a pool."""

    process: subprocess.Popen[bytes]
    channel: socket.socket
    log_stream_name: str
    init_duration_ms: float | None = None
    cold: bool = True

    def kill(self) -> None:
        """End the environment for good."""
        self.channel.close()
        _kill_group(self.process)


class _InitFailedError(Exception):
    """A new worker could not load the handler; carries the invoke result to report."""

    def __init__(self, result_payload: bytes, timed_out: bool, init_ms: float) -> None:
        super().__init__("function init failed")
        self.result_payload = result_payload
        self.timed_out = timed_out
        self.init_ms = init_ms


OutputTarget = int | IO[Any] | None


class FunctionPool:
    """Warm execution environments of one function; invoke() is thread-safe."""

    def __init__(
        self,
        spec: FunctionSpec,
        extra_env: Mapping[str, str] | None = None,
        *,
        aws_endpoint_url: str = DEFAULT_AWS_ENDPOINT_URL,
        sagemaker_runtime_url: str = DEFAULT_SAGEMAKER_RUNTIME_URL,
        max_workers: int = DEFAULT_MAX_WORKERS,
        stdout: OutputTarget = None,
        stderr: OutputTarget = None,
    ) -> None:
        self.spec = spec
        self.environment = build_environment(
            spec,
            extra_env,
            aws_endpoint_url=aws_endpoint_url,
            sagemaker_runtime_url=sagemaker_runtime_url,
        )
        self.max_workers = max_workers
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.function_name}"
        )
        self._stdout = stdout
        self._stderr = stderr
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._slots = 0
        self._closed = False

    # Lifecycle ----------------------------------------------------------------

    def __enter__(self) -> FunctionPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill every worker; invokes still running end with a runtime exit error."""
        with self._cond:
            self._closed = True
            workers = list(self._workers)
            self._workers.clear()
            self._idle.clear()
            self._cond.notify_all()
        for worker in workers:
            worker.kill()

    def warm(self, count: int = 1) -> list[str]:
        """Start up to count idle workers ahead of traffic; return init error messages."""
        errors: list[str] = []
        for _ in range(count):
            if not self._reserve(block=False):
                break
            try:
                worker = self._spawn()
            except _InitFailedError as failure:
                errors.append(json.loads(failure.result_payload).get("errorMessage", ""))
                continue
            self._return(worker)
        return errors

    @property
    def worker_count(self) -> int:
        """Return how many workers are alive or starting."""
        with self._cond:
            return self._slots

    # Invocation ---------------------------------------------------------------

    def invoke(
        self,
        event: Any,
        *,
        request_id: str | None = None,
        trace_id: str | None = None,
    ) -> InvokeResult:
        """Run the function on one event in a free worker (cold-starting one if needed)."""
        request_id = request_id or str(uuid.uuid4())
        body = json.dumps(event, separators=(",", ":")).encode()
        if len(body) > MAX_REQUEST_BYTES:
            message = (
                f"{len(body)} byte payload is too large for the RequestResponse invocation "
                f"type (limit {MAX_REQUEST_BYTES} bytes)"
            )
            log.warning("invoke refused: payload too large (%d bytes)", len(body))
            return InvokeResult(
                request_id,
                _error_payload("RequestEntityTooLargeException", message),
                status_code=413,
            )
        worker = self._take_idle()
        init_ms: float | None = None
        if worker is None:
            try:
                worker = self._spawn()
            except _InitFailedError as failure:
                if failure.timed_out:
                    self._log_timeout(request_id)
                return InvokeResult(
                    request_id,
                    failure.result_payload,
                    function_error="Unhandled",
                    init_duration_ms=failure.init_ms,
                    timed_out=failure.timed_out,
                )
            init_ms = worker.init_duration_ms
        return self._invoke_on(
            worker, request_id, trace_id or _new_trace_id(), body, init_ms
        )

    def _invoke_on(
        self,
        worker: _Worker,
        request_id: str,
        trace_id: str,
        body: bytes,
        init_ms: float | None,
    ) -> InvokeResult:
        """Send one event to a reserved worker and wait for its result or the timeout."""
        timeout = float(self.spec.timeout)
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000 + timeout * 1000)
        header = {
            "type": "invoke",
            "request_id": request_id,
            "deadline_ms": deadline_ms,
            "arn": self.invoked_function_arn,
            "trace_id": trace_id,
        }
        frame: tuple[dict[str, Any], bytes] | None = None
        timed_out = False
        try:
            worker.channel.settimeout(timeout)
            _send_frame(worker.channel, header, body)
            # A wall-clock deadline holds even when a frame trickles in slowly.
            worker.channel.settimeout(max(0.001, started + timeout - time.monotonic()))
            frame = _recv_frame(worker.channel)
        except TimeoutError:
            timed_out = True
        except OSError:
            frame = None
        duration = (time.monotonic() - started) * 1000
        if timed_out:
            self._discard(worker)
            self._log_timeout(request_id)
            message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
            return InvokeResult(
                request_id,
                _error_payload("Sandbox.Timedout", message),
                function_error="Unhandled",
                duration_ms=duration,
                init_duration_ms=init_ms,
                timed_out=True,
            )
        if frame is None:
            status = self._discard(worker)
            log.warning("function worker exited during an invoke (status %s)", status)
            message = (
                f"RequestId: {request_id} Error: Runtime exited with error: "
                f"exit status {status}"
            )
            return InvokeResult(
                request_id,
                _error_payload("Runtime.ExitError", message),
                function_error="Unhandled",
                duration_ms=duration,
                init_duration_ms=init_ms,
            )
        result_header, payload = frame
        self._return(worker)
        return InvokeResult(
            request_id,
            payload,
            function_error="Unhandled" if result_header.get("error") else None,
            duration_ms=float(result_header.get("duration_ms", duration)),
            init_duration_ms=init_ms,
        )

    # Worker management --------------------------------------------------------

    def _reserve(self, block: bool) -> bool:
        """Reserve a slot for a new worker, waiting for one when block is set."""
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError(f"function pool {self.spec.logical_id} is closed")
                if self._slots < self.max_workers:
                    self._slots += 1
                    return True
                if not block:
                    return False
                self._cond.wait()

    def _take_idle(self) -> _Worker | None:
        """Take a warm worker, or reserve a slot for a new one (None), waiting at the cap."""
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError(f"function pool {self.spec.logical_id} is closed")
                if self._idle:
                    # The most recently used worker is the warmest.
                    return self._idle.pop()
                if self._slots < self.max_workers:
                    self._slots += 1
                    return None
                self._cond.wait()

    def _return(self, worker: _Worker) -> None:
        """Put a worker back in the idle list (or end it if the pool closed)."""
        with self._cond:
            if not self._closed and worker in self._workers:
                self._idle.append(worker)
                self._cond.notify()
                return
        worker.kill()

    def _release_slot(self) -> None:
        """Give back a slot reserved for a worker that never started."""
        with self._cond:
            self._slots -= 1
            self._cond.notify()

    def _discard(self, worker: _Worker) -> int | None:
        """End a worker and free its slot; return its exit status."""
        worker.kill()
        with self._cond:
            if worker in self._workers:
                self._workers.discard(worker)
                self._slots -= 1
                self._cond.notify()
        return worker.process.returncode

    def _spawn(self) -> _Worker:
        """Start a worker in a reserved slot and wait for its handler to load.

        The slot is given back on any failure.
        """
        now = datetime.datetime.now(datetime.UTC)
        stream_name = f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        env = dict(self.environment, AWS_LAMBDA_LOG_STREAM_NAME=stream_name)
        parent_end, child_end = socket.socketpair()
        started = time.monotonic()
        try:
            process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    sys.executable,
                    "-P",
                    str(_SCRIPT),
                    "--worker",
                    "--fd",
                    str(child_end.fileno()),
                    "--spawned-at",
                    repr(time.time()),
                ],
                env=env,
                cwd=str(self.spec.code_uri),
                stdin=subprocess.DEVNULL,
                stdout=self._stdout,
                stderr=self._stderr,
                pass_fds=(child_end.fileno(),),
                start_new_session=True,
            )
        except BaseException:
            parent_end.close()
            self._release_slot()
            raise
        finally:
            child_end.close()
        worker = _Worker(process, parent_end, stream_name)
        with self._cond:
            self._workers.add(worker)
            closed = self._closed
        if closed:
            self._discard(worker)
            raise RuntimeError(f"function pool {self.spec.logical_id} is closed")
        init_timeout = INIT_GRACE_SECONDS + float(self.spec.timeout)
        try:
            parent_end.settimeout(init_timeout)
            frame = _recv_frame(parent_end)
        except TimeoutError:
            init_ms = (time.monotonic() - started) * 1000
            self._discard(worker)
            log.warning("function init timed out after %.0f ms", init_ms)
            message = f"Task timed out after {float(self.spec.timeout):.2f} seconds"
            raise _InitFailedError(
                _error_payload("Sandbox.Timedout", message), True, init_ms
            ) from None
        except OSError:
            frame = None
        init_ms = (time.monotonic() - started) * 1000
        if frame is None or frame[0].get("type") != "ready":
            status = self._discard(worker)
            if frame is not None:
                payload = frame[1]
            else:
                message = f"Runtime exited with error: exit status {status}"
                payload = _error_payload("Runtime.ExitError", message)
            log.warning("function init failed for %s", self.spec.logical_id)
            raise _InitFailedError(payload, False, init_ms)
        worker.init_duration_ms = float(frame[0].get("init_duration_ms", init_ms))
        return worker

    def _log_timeout(self, request_id: str) -> None:
        """Write Lambda's timeout line to the function's log stream."""
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        timeout = float(self.spec.timeout)
        line = (
            f"{stamp}Z {request_id} Task timed out after {timeout:.2f} seconds\n"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {timeout * 1000:.2f} ms\t"
            f"Billed Duration: {math.ceil(timeout * 1000)} ms\t"
            f"Memory Size: {self.spec.memory_size} MB\tStatus: timeout\n"
        )
        target = self._stdout
        if target is None:
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        fd = target if isinstance(target, int) else target.fileno()
        # Negative values are subprocess.DEVNULL and friends: nothing to write to.
        if fd >= 0:
            os.write(fd, line.encode())


def main(argv: list[str] | None = None) -> int:
    """Entry point of a worker process."""
    parser = argparse.ArgumentParser(description="Local Lambda execution environment.")
    parser.add_argument("--worker", action="store_true", help="serve events on --fd")
    parser.add_argument(
        "--fd", type=int, required=True, help="inherited socket descriptor"
    )
    parser.add_argument(
        "--spawned-at", type=float, default=None, help="epoch seconds of the spawn"
    )
    args = parser.parse_args(argv)
    if not args.worker:
        parser.error("only --worker mode is supported")
    return _worker_main(args.fd, args.spawned_at or time.time())


if __name__ == "__main__":
    sys.exit(main())
