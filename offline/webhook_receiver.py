"""A local webhook receiver: records signed deliveries and fails on request.

``python -m offline.webhook_receiver --port 8090`` (port 0 picks a free one) listens on
127.0.0.1 and accepts ``POST`` on any path. Each request is checked with the gateway's
own ``verify_signature`` against the secret (WEBHOOK_SECRET, default
``local-dev-secret``) and recorded: path, query, X-Idempotency-Key, whether
X-Signature is valid, the JSON body, the time and the status answered. A request
whose signature is not valid is answered 401 (``--accept-unsigned`` answers 200).

The callback URL's query string makes the receiver misbehave:

- ``?fail_first=N``: the first N requests to that path answer 503;
- ``?fail_rate=0.3``: that share of the requests answers 503;
- ``?status=NNN``: every request answers NNN;
- ``?delay_ms=N``: wait that long before answering (for timeouts).

``GET /deliveries`` (optionally ``?path=/x``) answers the recorded list as JSON;
``DELETE /deliveries`` clears it and the fail_first counters.

In Python::

    with WebhookReceiver(secret="s") as receiver:
        url = receiver.url + "/hooks/a?fail_first=2"
        ...
        receiver.wait_for("/hooks/a", count=1, timeout=10)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8090
SIGNING_KEY_VARIABLE = "WEBHOOK_SECRET"
# The documented offline default, never used outside this machine.
DEFAULT_SECRET = "local-dev-secret"  # noqa: S105
DELIVERIES_PATH = "/deliveries"
# Deliveries are small JSON envelopes; anything larger is refused.
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_DELAY_MS = 600_000
_FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"

Verifier = Callable[[str, str, bytes, float], bool]


def secret_from_env() -> str:
    """Return the offline stack's webhook secret (WEBHOOK_SECRET or the default)."""
    return os.environ.get(SIGNING_KEY_VARIABLE) or DEFAULT_SECRET


def _gateway_verifier() -> Verifier:
    """Load the gateway's verify_signature from functions/: one rule for both sides."""
    if str(_FUNCTIONS_DIR) not in sys.path:
        sys.path.append(str(_FUNCTIONS_DIR))
    from gateway.core.webhooks import verify_signature  # noqa: PLC0415

    def verify(secret: str, header: str, body: bytes, now: float) -> bool:
        """Check one X-Signature value."""
        return bool(verify_signature(secret, header, body, now=now))

    return verify


class _Server(ThreadingHTTPServer):
    """Threaded HTTP server on 127.0.0.1 that carries its receiver."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    receiver: WebhookReceiver

    def server_bind(self) -> None:
        """Bind without the reverse lookup HTTPServer does, to stay off DNS."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = LOOPBACK
        self.server_port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A sender that hangs up after its answer is normal; anything else is logged."""
        error = sys.exc_info()[1]
        if isinstance(
            error, BrokenPipeError | ConnectionResetError | ConnectionAbortedError
        ):
            log.debug("sender closed the connection")
            return
        super().handle_error(request, client_address)


class WebhookReceiver:
    """Records webhook deliveries and answers them as the callback URL asks."""

    def __init__(
        self,
        secret: str | None = None,
        port: int = 0,
        *,
        reject_invalid: bool = True,
        verifier: Verifier | None = None,
    ) -> None:
        self.secret = secret if secret is not None else secret_from_env()
        self.reject_invalid = reject_invalid
        self._verify = verifier or _gateway_verifier()
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._records: list[dict[str, Any]] = []
        self._counts: dict[str, int] = {}
        self._random = random.Random()

    # Lifecycle ----------------------------------------------------------------

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> WebhookReceiver:
        """Listen on 127.0.0.1 and serve on a daemon thread."""
        if self._server is not None:
            return self
        server = _Server((LOOPBACK, self._requested_port), _Handler)
        server.receiver = self
        self._server = server
        # A short poll interval keeps stop() quick.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()
        log.info("webhook receiver listening on port %d", self.port)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    @property
    def port(self) -> int:
        """Return the port the receiver listens on."""
        if self._server is None:
            raise RuntimeError("the webhook receiver is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Return the receiver's base URL (append any path)."""
        return f"http://{LOOPBACK}:{self.port}"

    # Records ------------------------------------------------------------------

    def deliveries(self, path: str | None = None) -> list[dict[str, Any]]:
        """Return the recorded requests, oldest first (those to one path if given)."""
        with self._cond:
            return [
                dict(record)
                for record in self._records
                if path is None or record["path"] == path
            ]

    def accepted(self, path: str | None = None) -> list[dict[str, Any]]:
        """Return the recorded requests that were answered with a 2xx status."""
        return [
            record
            for record in self.deliveries(path)
            if 200 <= int(record["status"]) < 300
        ]

    def wait_for(
        self,
        path: str | None,
        count: int = 1,
        timeout: float = 10.0,
        *,
        accepted: bool = True,
    ) -> list[dict[str, Any]]:
        """Wait for count deliveries to path (accepted ones unless told); return them."""
        deadline = time.monotonic() + timeout

        def matching() -> list[dict[str, Any]]:
            """Select the records that count."""
            return [
                dict(record)
                for record in self._records
                if (path is None or record["path"] == path)
                and (not accepted or 200 <= int(record["status"]) < 300)
            ]

        with self._cond:
            while True:
                found = matching()
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{len(found)} of {count} deliveries to {path} "
                        f"after {timeout:.1f} s"
                    )
                self._cond.wait(remaining)

    def clear(self) -> None:
        """Forget every delivery and every fail_first counter."""
        with self._cond:
            self._records.clear()
            self._counts.clear()

    # Requests -----------------------------------------------------------------

    def handle_delivery(
        self, path: str, query: str, headers: Any, body: bytes
    ) -> tuple[int, float]:
        """Record one delivery; return the status to answer and the delay before it."""
        options = parse_qs(query, keep_blank_values=True)
        signature = headers.get("X-Signature")
        valid = bool(signature) and self._verify(
            self.secret, str(signature), body, time.time()
        )
        parsed: Any = None
        text: str | None = None
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            text = body.decode("utf-8", "replace")
        with self._cond:
            number = self._counts.get(path, 0) + 1
            self._counts[path] = number
            status = self._status(options, number, valid)
            record: dict[str, Any] = {
                "path": path,
                "query": query,
                "attempt": number,
                "idempotencyKey": headers.get("X-Idempotency-Key"),
                "signature": signature,
                "signatureValid": valid,
                "contentType": headers.get("Content-Type"),
                "userAgent": headers.get("User-Agent"),
                "body": parsed,
                "receivedAt": time.time(),
                "status": status,
            }
            if text is not None:
                record["rawBody"] = text
            self._records.append(record)
            self._cond.notify_all()
        delay = _option_int(options, "delay_ms", 0, 0, MAX_DELAY_MS) / 1000
        log.info(
            "webhook delivery path=%s status=%d signature_valid=%s", path, status, valid
        )
        return status, delay

    def _status(self, options: dict[str, list[str]], number: int, valid: bool) -> int:
        """Decide the answer: status, then fail_first, fail_rate, then the signature."""
        forced = _option_int(options, "status", 0, 100, 599)
        if forced:
            return forced
        if number <= _option_int(options, "fail_first", 0, 0, 1_000_000):
            return 503
        rate = _option_float(options, "fail_rate", 0.0)
        if rate > 0 and self._random.random() < rate:
            return 503
        if self.reject_invalid and not valid:
            return 401
        return 200


def _option_int(
    options: dict[str, list[str]], name: str, default: int, low: int, high: int
) -> int:
    """Read an integer query option; a bad value is ignored."""
    try:
        value = int(options[name][-1])
    except (KeyError, ValueError):
        return default
    return value if low <= value <= high else default


def _option_float(options: dict[str, list[str]], name: str, default: float) -> float:
    """Read a share (0..1) from the query; a bad value is ignored."""
    try:
        value = float(options[name][-1])
    except (KeyError, ValueError):
        return default
    return value if 0.0 <= value <= 1.0 else default


class _Handler(BaseHTTPRequestHandler):
    """HTTP side: POST anywhere records; GET and DELETE /deliveries inspect."""

    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "offline-webhook-receiver"
    sys_version = ""
    timeout = 60

    def do_POST(self) -> None:
        """Record a delivery."""
        split = urlsplit(self.path)
        length = self._length()
        if length is None:
            self._send(400, {"message": "bad Content-Length"}, close=True)
            return
        if length > MAX_BODY_BYTES:
            self._send(413, {"message": "body too large"}, close=True)
            return
        body = self.rfile.read(length) if length else b""
        receiver = self.server.receiver
        status, delay = receiver.handle_delivery(
            split.path or "/", split.query, self.headers, body
        )
        if delay:
            time.sleep(delay)
        answer = {"received": True} if 200 <= status < 300 else {"message": "refused"}
        self._send(status, answer)

    def do_GET(self) -> None:
        """List deliveries."""
        split = urlsplit(self.path)
        if split.path != DELIVERIES_PATH:
            self._send(404, {"message": "not found"})
            return
        wanted = parse_qs(split.query).get("path", [None])[-1]
        self._send(200, self.server.receiver.deliveries(wanted))

    def do_DELETE(self) -> None:
        """Clear deliveries."""
        if urlsplit(self.path).path != DELIVERIES_PATH:
            self._send(404, {"message": "not found"})
            return
        self.server.receiver.clear()
        self._send(204, None)

    def _length(self) -> int | None:
        """Read Content-Length (chunked bodies are not accepted)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return length if length >= 0 else None

    def _send(self, status: int, payload: Any, *, close: bool = False) -> None:
        """Write a JSON answer (none for 204)."""
        body = b"" if status == 204 else json.dumps(payload).encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep http.server's access log at debug level."""
        log.debug("webhook receiver message: %s", format % args)


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m offline.webhook_receiver",
        description="Local webhook receiver that records signed deliveries.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--accept-unsigned",
        action="store_true",
        help="answer 200 even when X-Signature is not valid",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    receiver = WebhookReceiver(port=args.port, reject_invalid=not args.accept_unsigned)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with receiver:
        print(f"webhook receiver on {receiver.url}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
