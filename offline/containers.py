"""Model servers that follow the SageMaker inference container contract, for offline use.

Run as ``python -m offline.containers {xgb|echo} --port N``; the server listens on
127.0.0.1 only and answers ``GET /ping`` and ``POST /invocations``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import numpy as np

LOOPBACK = "127.0.0.1"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
FAULT_HEADER = "X-Offline-Fault"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"

# Echo directive -> service-level error code the runtime stand-in should raise.
FAULTS = {
    "throttle": "ThrottlingException",
    "not-ready": "ModelNotReadyException",
    "unavailable": "ServiceUnavailable",
    "internal": "InternalFailure",
    "dependency": "InternalDependencyException",
}

_NO_BODY_STATUSES = frozenset({204, 304})
_DRAIN_CHUNK = 64 * 1024
# Beyond this much unread body we drop the connection instead of draining it.
_MAX_DRAIN = 64 * 1024 * 1024

log = logging.getLogger("offline.containers")


class BadRequestError(Exception):
    """Request that cannot be parsed at the HTTP level."""


class LoopbackHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP/1.1 server bound to 127.0.0.1."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__((LOOPBACK, port), handler)

    def server_bind(self) -> None:
        """Bind without the reverse lookup HTTPServer does, to stay off DNS."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = LOOPBACK
        self.server_port = self.server_address[1]

    @property
    def port(self) -> int:
        """Port the server is bound to (useful when started with port 0)."""
        return int(self.server_address[1])

    def start(self) -> threading.Thread:
        """Serve on a daemon thread and return it."""
        thread = threading.Thread(
            target=self.serve_forever, name="http-serve", daemon=True
        )
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()
        self.server_close()


class BaseHandler(BaseHTTPRequestHandler):
    """Keep-alive request handler with body helpers and one timing hook per request."""

    protocol_version = "HTTP/1.1"
    server_version = "offline"
    sys_version = ""
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this many seconds.
    timeout = 120
    log_requests = False
    logger = log

    _status = 0

    def do_GET(self) -> None:
        """Dispatch a GET request."""
        self._dispatch()

    def do_POST(self) -> None:
        """Dispatch a POST request."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Dispatch a DELETE request."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Dispatch a PUT request."""
        self._dispatch()

    def version_string(self) -> str:
        """Server header value."""
        return self.server_version

    def route(self, method: str, path: str) -> None:
        """Handle one request; subclasses override."""
        self.send(404, b"not found\n")

    def internal_error(self) -> None:
        """Answer an unexpected failure; subclasses may shape the body."""
        self.send(500, b"internal error\n")

    def _dispatch(self) -> None:
        start = time.perf_counter()
        self._status = 0
        path = self.path.split("?", 1)[0]
        try:
            self.route(self.command, path)
        except BadRequestError as exc:
            self.close_connection = True
            self.send(400, f"{exc}\n".encode())
        except Exception:
            self.logger.exception("request handler failed")
            self.close_connection = True
            if not self._status:
                self.internal_error()
        finally:
            if self.log_requests:
                elapsed = (time.perf_counter() - start) * 1000
                self.logger.info(
                    "request %s %s status=%d ms=%.1f",
                    self.command,
                    path,
                    self._status,
                    elapsed,
                )

    def read_body(self, limit: int | None = None) -> bytes | None:
        """Read the request body; None when it is longer than limit (it is drained)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        raw = self.headers.get("Content-Length") or "0"
        try:
            length = int(raw)
        except ValueError:
            raise BadRequestError("invalid Content-Length") from None
        if length < 0:
            raise BadRequestError("invalid Content-Length")
        if limit is not None and length > limit:
            self._drain(length)
            return None
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int | None) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequestError("invalid chunk size") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                break
            total += size
            if total > _MAX_DRAIN:
                raise BadRequestError("request body too large")
            chunk = self.rfile.read(size)
            self.rfile.readline(8)
            if limit is None or total <= limit:
                parts.append(chunk)
        if limit is not None and total > limit:
            return None
        return b"".join(parts)

    def _drain(self, length: int) -> None:
        if length > _MAX_DRAIN:
            self.close_connection = True
            return
        while length > 0:
            chunk = self.rfile.read(min(length, _DRAIN_CHUNK))
            if not chunk:
                break
            length -= len(chunk)

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str | None = TEXT,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send a complete response with an explicit Content-Length."""
        self._status = status
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        has_body = status not in _NO_BODY_STATUSES
        if has_body:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if has_body and body and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(
        self, status: int, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        """Send a JSON response."""
        self.send(status, json.dumps(payload).encode(), JSON, headers)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silence the default access log; _dispatch logs with timing instead."""

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server diagnostics to logging."""
        self.logger.debug("http.server message: %s", format % args)


@dataclass
class Reply:
    """A container answer to one invocation."""

    status: int
    body: bytes
    content_type: str | None = TEXT
    headers: dict[str, str] = field(default_factory=dict)


def text_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    """Build a plain-text reply."""
    return Reply(status, f"{message}\n".encode(), TEXT, dict(headers or {}))


class Model(Protocol):
    """What a container needs from a model."""

    def ready(self) -> bool:
        """Whether the model can answer invocations."""
        ...

    def invoke(self, body: bytes, headers: Message) -> Reply:
        """Answer one invocation."""
        ...


class Stats:
    """Thread-safe invocation counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def begin(self) -> None:
        """Count the start of an invocation."""
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self) -> None:
        """Count the end of an invocation."""
        with self._lock:
            self.in_flight -= 1

    def snapshot(self) -> dict[str, int]:
        """Return the counters as a JSON-ready dict."""
        with self._lock:
            return {
                "requests": self.requests,
                "inFlight": self.in_flight,
                "maxInFlight": self.max_in_flight,
            }

    def reset(self) -> None:
        """Zero the totals; calls still running keep counting as in flight."""
        with self._lock:
            self.requests = 0
            self.max_in_flight = self.in_flight


class EchoModel:
    """Echoes the request, with fault injection driven by custom attributes."""

    def ready(self) -> bool:
        """Always ready."""
        return True

    def invoke(self, body: bytes, headers: Message) -> Reply:
        """Echo the body and Content-Type after applying directives."""
        attributes = headers.get(CUSTOM_ATTRIBUTES)
        echoed = {CUSTOM_ATTRIBUTES: attributes} if attributes is not None else {}
        try:
            directives = parse_directives(attributes or "")
        except ValueError as exc:
            return text_reply(400, f"invalid custom attribute directive: {exc}", echoed)
        delay_ms = directives.get("delay_ms", 0)
        if delay_ms:
            time.sleep(delay_ms / 1000)
        rate = directives.get("fault_rate", 1.0)
        triggered = rate >= 1.0 or random.random() < rate
        fault = directives.get("fault")
        if triggered and fault:
            headers_out = {**echoed, FAULT_HEADER: FAULTS[fault]}
            return text_reply(500, f"injected fault: {fault}", headers_out)
        status = directives.get("status")
        if triggered and status:
            return text_reply(status, f"requested status {status}", echoed)
        content_type = headers.get("Content-Type") or "application/octet-stream"
        return Reply(200, body, content_type, echoed)


def parse_directives(attributes: str) -> dict[str, Any]:
    """Parse echo directives like ``delay_ms=100;status=400`` (unknown keys ignored)."""
    result: dict[str, Any] = {}
    for item in attributes.replace(",", ";").split(";"):
        key, sep, value = item.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep:
            continue
        if key == "delay_ms":
            delay = _parse_int(key, value)
            if not 0 <= delay <= 600_000:
                raise ValueError("delay_ms must be between 0 and 600000")
            result[key] = delay
        elif key == "status":
            status = _parse_int(key, value)
            if not 200 <= status <= 599:
                raise ValueError("status must be between 200 and 599")
            result[key] = status
        elif key == "fault":
            if value not in FAULTS:
                raise ValueError("fault must be one of " + ", ".join(FAULTS))
            result[key] = value
        elif key == "fault_rate":
            try:
                rate = float(value)
            except ValueError:
                raise ValueError("fault_rate must be a number") from None
            if not 0.0 <= rate <= 1.0:
                raise ValueError("fault_rate must be between 0 and 1")
            result[key] = rate
    return result


def _parse_int(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{key} must be an integer") from None


class XGBModel:
    """XGBoost classifier on the breast-cancer data set, trained at start-up."""

    features = 30

    def __init__(self) -> None:
        self._booster: Any = None
        self._loaded = threading.Event()

    def ready(self) -> bool:
        """Whether training has finished."""
        return self._loaded.is_set()

    def load(self) -> None:
        """Train the model; takes about a second."""
        # Imported here so the runtime stand-in can reuse this module without the ML stack.
        from sklearn.datasets import load_breast_cancer  # noqa: PLC0415
        from xgboost import XGBClassifier  # noqa: PLC0415

        data = load_breast_cancer()
        classifier = XGBClassifier(
            n_estimators=40,
            max_depth=3,
            learning_rate=0.3,
            tree_method="hist",
            random_state=42,
            n_jobs=1,
        )
        classifier.fit(data.data, data.target)
        booster = classifier.get_booster()
        # Requests are tiny and arrive on many threads; extra OpenMP threads only add overhead.
        booster.set_param({"nthread": 1})
        self._booster = booster
        self._loaded.set()

    def invoke(self, body: bytes, headers: Message) -> Reply:
        """Score CSV rows and answer one probability of class 1 per row."""
        media = _media_type(headers.get("Content-Type"))
        if media not in ("", "text/csv"):
            return text_reply(415, f"unsupported content type {media!r}; use text/csv")
        accept = _negotiate(headers.get("Accept"))
        if accept is None:
            return text_reply(
                406, "unsupported accept type; use text/csv or application/json"
            )
        try:
            rows = parse_csv(body, self.features)
        except ValueError as exc:
            return text_reply(400, str(exc))
        scores = [float(p) for p in self._booster.inplace_predict(rows)]
        if accept == JSON:
            payload = {"predictions": [{"score": score} for score in scores]}
            return Reply(200, json.dumps(payload).encode(), JSON)
        text = "\n".join(format(score, ".9g") for score in scores)
        return Reply(200, text.encode(), "text/csv")


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _negotiate(accept: str | None) -> str | None:
    if not accept or not accept.strip():
        return "text/csv"
    for part in accept.split(","):
        media = _media_type(part)
        if media in ("text/csv", "text/*", "*/*"):
            return "text/csv"
        if media in (JSON, "application/*"):
            return JSON
    return None


def parse_csv(body: bytes, width: int) -> Any:
    """Parse headerless CSV rows of width numbers into a float32 matrix."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("payload is not UTF-8 text") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(
            f"empty payload; expected rows of {width} comma-separated numbers"
        )
    values: list[list[float]] = []
    for number, line in enumerate(lines, start=1):
        cells = line.split(",")
        if len(cells) != width:
            raise ValueError(f"row {number}: expected {width} columns, got {len(cells)}")
        try:
            values.append([float(cell) for cell in cells])
        except ValueError:
            raise ValueError(f"row {number}: all values must be numbers") from None
    matrix = np.asarray(values, dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise ValueError("all values must be finite numbers")
    return matrix


class ContainerHandler(BaseHandler):
    """HTTP side of the SageMaker container contract."""

    server: ContainerServer

    def route(self, method: str, path: str) -> None:
        """Serve /ping, /invocations and /offline/stats."""
        if path == "/ping" and method == "GET":
            status = 200 if self.server.model.ready() else 503
            self.send(status, b"", None)
        elif path == "/invocations" and method == "POST":
            self._invoke()
        elif path == "/offline/stats" and method == "GET":
            self.send_json(200, self.server.stats.snapshot())
        elif path == "/offline/stats" and method == "DELETE":
            self.server.stats.reset()
            self.send(204, b"", None)
        else:
            self.send(404, b"not found\n")

    def _invoke(self) -> None:
        stats = self.server.stats
        stats.begin()
        try:
            body = self.read_body() or b""
            if not self.server.model.ready():
                reply = text_reply(503, "model is loading")
            else:
                reply = self.server.model.invoke(body, self.headers)
        finally:
            stats.end()
        self.send(reply.status, reply.body, reply.content_type, reply.headers)


class ContainerServer(LoopbackHTTPServer):
    """A model container listening on 127.0.0.1."""

    def __init__(self, port: int, model: Model) -> None:
        self.model = model
        self.stats = Stats()
        super().__init__(port, ContainerHandler)


MODELS: dict[str, Callable[[], Model]] = {"xgb": XGBModel, "echo": EchoModel}


def serve(model_name: str, port: int = 0) -> ContainerServer:
    """Start a container on a daemon thread; the xgb model trains in the background."""
    model = MODELS[model_name]()
    server = ContainerServer(port, model)
    if isinstance(model, XGBModel):
        threading.Thread(
            target=_load, args=(model,), name="model-load", daemon=True
        ).start()
    server.start()
    return server


def _load(model: XGBModel) -> None:
    started = time.perf_counter()
    try:
        model.load()
    except Exception:
        log.exception("model training failed")
        return
    log.info("model ready in %.2fs", time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    server = serve(args.model, args.port)
    # Runners stop servers with SIGTERM; exit through the cleanup below.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    log.info("container %s listening on %s:%d", args.model, LOOPBACK, server.port)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    sys.exit(0)


if __name__ == "__main__":
    sys.exit(main())
