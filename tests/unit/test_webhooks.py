"""Webhook delivery: the address guard, signing and retries, with no real network.

Name resolution and the transport are stubs in every test here: a refused address
is at most recorded, so even a broken guard could not send a packet.
"""

import contextlib
import hashlib
import hmac
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

import pytest

from gateway.core.errors import CallbackRefusedError
from gateway.core.webhooks import (
    CallbackPolicy,
    DeliveryResult,
    HttpClientTransport,
    Timeouts,
    WebhookResponse,
    WebhookSender,
    WebhookTarget,
    check_webhook_url,
    resolve_host,
    sign,
    verify_signature,
)

PUBLIC = "93.184.216.34"
SECRET = "test-signing-secret"
PAYLOAD = b'{"inferenceId":"inf-1","status":"Completed"}'
NOW = 1_760_000_000
KEY = "inf-1"
STRICT = CallbackPolicy()
DEVELOPMENT = CallbackPolicy(allow_loopback=True)
ANSWERS = {
    "hooks.example.test": [PUBLIC],
    "example.test": [PUBLIC],
    "private.example.test": ["10.1.2.3"],
    "mixed.example.test": [PUBLIC, "192.168.0.5"],
    "metadata.example.test": ["169.254.169.254"],
    "linklocal6.example.test": ["fe80::1%eth0"],
}

type Answer = int | tuple[int, dict[str, str]] | BaseException


class StubResolver:
    """Answers from a table, or one scripted answer per call, and records each name."""

    def __init__(self, *script: list[str] | OSError) -> None:
        self.script = list(script)
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if self.script:
            answer = self.script.pop(0)
            if isinstance(answer, OSError):
                raise answer
            return answer
        if host not in ANSWERS:
            raise socket.gaierror(socket.EAI_NONAME, "unknown name")
        return ANSWERS[host]


@dataclass
class Sent:
    target: WebhookTarget
    headers: dict[str, str]
    body: bytes
    timeouts: Timeouts


class RecordingTransport:
    """Records each request and answers from a script; it never opens a socket."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers) or [200]
        self.sent: list[Sent] = []

    def __call__(
        self,
        target: WebhookTarget,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
    ) -> WebhookResponse:
        self.sent.append(Sent(target, dict(headers), body, timeouts))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return WebhookResponse(status=status, headers=headers)


def sender_for(
    transport: RecordingTransport,
    resolver: StubResolver | None = None,
    sleeps: list[float] | None = None,
    **options: object,
) -> WebhookSender:
    return WebhookSender(
        lambda: SECRET,
        transport=transport,
        resolve=resolver or StubResolver(),
        sleep=(sleeps if sleeps is not None else []).append,
        clock=lambda: NOW,
        jitter=lambda ceiling: ceiling,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture(autouse=True)
def _no_name_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"unit tests must not resolve names: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


REFUSED = [
    "https://10.0.0.1/h",
    "https://172.16.0.1/h",
    "https://192.168.1.1/h",
    "https://127.0.0.1/h",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/h",
    "https://[fd00::1]/h",
    "https://2130706433/h",
    "https://0x7f000001/h",
    "https://0177.0.0.1/",
    "https://127.1/",
    "https://[::ffff:10.0.0.1]/",
    "https://0.0.0.0/",
    "https://private.example.test/h",
    "https://mixed.example.test/h",
    "http://example.test/",
    "https://user:pw@example.test/",
]
NUMERIC = [url for url in REFUSED if "example.test" not in url]


@pytest.mark.parametrize("url", REFUSED)
def test_refused_address_is_refused_when_checked(url: str) -> None:
    resolver = StubResolver()

    with pytest.raises(CallbackRefusedError) as refused:
        check_webhook_url(url, STRICT, resolve=resolver)

    assert refused.value.code == "CallbackRefused"
    assert refused.value.retryable is False


@pytest.mark.parametrize("url", REFUSED)
def test_refused_address_never_reaches_the_transport(url: str) -> None:
    transport = RecordingTransport(200)
    sender = sender_for(transport)

    result = sender.send(url, PAYLOAD, idempotency_key=KEY)

    assert result.delivered is False
    assert result.retryable is False
    assert result.error is not None
    assert result.error.startswith("refused: ")
    assert transport.sent == []


@pytest.mark.parametrize("url", NUMERIC)
def test_numeric_host_is_read_as_an_address_and_never_looked_up(url: str) -> None:
    resolver = StubResolver()

    with pytest.raises(CallbackRefusedError):
        check_webhook_url(url, STRICT, resolve=resolver)

    assert resolver.asked == []


def test_refusal_does_not_echo_the_credentials_in_the_url() -> None:
    url = "https://admin:hunter2@hooks.example.test/cb"

    with pytest.raises(CallbackRefusedError) as refused:
        check_webhook_url(url, STRICT, resolve=StubResolver())

    assert "hunter2" not in refused.value.message
    assert "admin" not in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://100.64.0.1/",
        "https://198.18.0.1/",
        "https://192.0.2.1/",
        "https://224.0.0.1/",
        "https://255.255.255.255/",
        "https://240.0.0.1/",
        "https://10.1/",
        "https://[fe80::1]/",
        "https://[fe80::1%25eth0]/",
        "https://[::]/",
        "https://[ff02::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:169.254.169.254]/",
        "https://[64:ff9b::a00:1]/",
        "https://[2002:a00:1::]/",
        "https://[2001::1]/",
        "https://[2001:db8::1]/",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://instance-data.ec2.internal/",
        "https://localhost/",
        "https://metadata/",
        "https://metadata.example.test/",
        "https://linklocal6.example.test/",
        # Full-width digits, which IDNA folds to 127.0.0.1.
        "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",
        "https://256.0.0.1/",
        "https://hooks.example.test:0/",
        "https://hooks.example.test:65536/",
        "https://hooks.example.test\\@10.0.0.1/",
        "ftp://hooks.example.test/",
        "https:///cb",
    ],
)
def test_other_special_hosts_and_malformed_urls_are_refused(url: str) -> None:
    resolver = StubResolver()

    with pytest.raises(CallbackRefusedError):
        check_webhook_url(url, STRICT, resolve=resolver)


def test_public_host_is_pinned_to_the_address_that_was_checked() -> None:
    resolver = StubResolver()

    target = check_webhook_url(
        "https://Hooks.Example.Test/cb?job=7#frag", STRICT, resolve=resolver
    )

    assert target.scheme == "https"
    assert target.host == "hooks.example.test"
    assert target.port == 443
    assert target.path == "/cb?job=7"
    assert target.addresses == (IPv4Address(PUBLIC),)
    assert target.url == "https://hooks.example.test/cb?job=7"
    assert resolver.asked == ["hooks.example.test"]


def test_numeric_spelling_of_a_public_address_is_normalised() -> None:
    resolver = StubResolver()

    target = check_webhook_url("https://0x5db8d822:8443/", STRICT, resolve=resolver)

    assert target.host == PUBLIC
    assert target.addresses == (IPv4Address(PUBLIC),)
    assert target.url == f"https://{PUBLIC}:8443/"
    assert resolver.asked == []


def test_public_ipv6_literal_is_allowed() -> None:
    url = "https://[2606:2800:220:1:248:1893:25c8:1946]/cb"

    target = check_webhook_url(url, STRICT, resolve=StubResolver())

    assert target.addresses == (IPv6Address("2606:2800:220:1:248:1893:25c8:1946"),)
    assert target.authority == "[2606:2800:220:1:248:1893:25c8:1946]"


def test_loopback_over_http_is_allowed_in_development() -> None:
    resolver = StubResolver()

    target = check_webhook_url("http://127.0.0.1:8999/cb", DEVELOPMENT, resolver)

    assert target.scheme == "http"
    assert target.addresses == (IPv4Address("127.0.0.1"),)
    assert target.authority == "127.0.0.1:8999"
    assert resolver.asked == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "https://10.0.0.1/",
        "http://192.168.1.1:8999/cb",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/",
        "http://localhost:8999/cb",
        "http://example.test/",
        "https://private.example.test/",
    ],
)
def test_development_policy_still_refuses_everything_but_loopback(url: str) -> None:
    resolver = StubResolver()

    with pytest.raises(CallbackRefusedError):
        check_webhook_url(url, DEVELOPMENT, resolve=resolver)


def test_receiver_failing_twice_then_answering_gets_three_attempts() -> None:
    transport = RecordingTransport(503, 503, 200)
    sleeps: list[float] = []
    sender = sender_for(transport, sleeps=sleeps)

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert result == DeliveryResult(delivered=True, attempts=3, status=200)
    assert len(transport.sent) == 3
    assert sleeps == [0.5, 1.0]


def test_client_error_is_not_retried() -> None:
    transport = RecordingTransport(400, 200)
    sender = sender_for(transport)

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert result.delivered is False
    assert result.retryable is False
    assert (result.attempts, result.status) == (1, 400)
    assert len(transport.sent) == 1


def test_redirect_is_a_failure_and_is_not_followed() -> None:
    transport = RecordingTransport((301, {"location": "https://10.0.0.1/"}), 200)
    sender = sender_for(transport)

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert result.delivered is False
    assert (result.attempts, result.status) == (1, 301)
    assert result.error == "redirect not followed"
    assert [sent.target.host for sent in transport.sent] == ["hooks.example.test"]


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_status_that_may_pass_later_is_retried(status: int) -> None:
    transport = RecordingTransport(status, 204)
    sender = sender_for(transport)

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert result.delivered is True
    assert result.attempts == 2


@pytest.mark.parametrize(
    "failure",
    [ConnectionRefusedError(), TimeoutError(), ssl.SSLError(), OSError()],
)
def test_connection_failure_is_retried(failure: OSError) -> None:
    transport = RecordingTransport(failure, 200)
    sender = sender_for(transport)

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert result.delivered is True
    assert result.attempts == 2


def test_rejected_certificate_is_not_retried() -> None:
    transport = RecordingTransport(ssl.SSLCertVerificationError(), 200)
    sender = sender_for(transport)

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert result.delivered is False
    assert result.error == "certificate rejected"
    assert result.attempts == 1


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    transport = RecordingTransport(
        (429, {"retry-after": "2"}), (503, {"retry-after": "120"}), 200
    )
    sleeps: list[float] = []
    sender = sender_for(transport, sleeps=sleeps)

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert result.delivered is True
    assert sleeps == [2.0, 4.0]


def test_attempts_are_bounded_and_backoff_doubles_up_to_the_cap() -> None:
    transport = RecordingTransport(500)
    sleeps: list[float] = []
    sender = sender_for(transport, sleeps=sleeps, max_attempts=6)

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert result == DeliveryResult(
        delivered=False, attempts=6, status=500, error="HTTP 500", retryable=True
    )
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_default_is_four_attempts_with_full_jitter_under_each_ceiling() -> None:
    transport = RecordingTransport(500)
    sleeps: list[float] = []
    sender = WebhookSender(
        lambda: SECRET,
        transport=transport,
        resolve=StubResolver(),
        sleep=sleeps.append,
    )

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    ceilings = [0.5, 1.0, 2.0]
    assert result.attempts == 4
    assert len(sleeps) == len(ceilings)
    assert all(0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))


def test_url_is_checked_again_before_every_attempt() -> None:
    resolver = StubResolver([PUBLIC], ["10.0.0.7"])
    transport = RecordingTransport(503, 200)
    sender = sender_for(transport, resolver)

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert result.delivered is False
    assert result.retryable is False
    assert result.attempts == 2
    assert resolver.asked == ["hooks.example.test", "hooks.example.test"]
    assert len(transport.sent) == 1


def test_name_that_does_not_resolve_yet_is_retried() -> None:
    resolver = StubResolver(socket.gaierror(socket.EAI_AGAIN, "try again"), [PUBLIC])
    transport = RecordingTransport(200)
    sender = sender_for(transport, resolver)

    result = sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert result.delivered is True
    assert result.attempts == 2
    assert len(transport.sent) == 1


def test_request_goes_to_the_pinned_address_with_the_name_as_host() -> None:
    transport = RecordingTransport(200)
    sender = sender_for(transport, connect_timeout=3.0, read_timeout=10.0)

    sender.send("https://hooks.example.test/cb?job=7", PAYLOAD, idempotency_key=KEY)

    sent = transport.sent[0]
    assert sent.target.addresses == (IPv4Address(PUBLIC),)
    assert sent.target.path == "/cb?job=7"
    assert sent.headers["Host"] == "hooks.example.test"
    assert sent.timeouts == Timeouts(connect=3.0, read=10.0)


def test_request_carries_json_type_agent_signature_and_idempotency_key() -> None:
    transport = RecordingTransport(502, 200)
    sender = sender_for(transport)

    sender.send("https://hooks.example.test:8443/cb", PAYLOAD, idempotency_key=KEY)

    first, second = (sent.headers for sent in transport.sent)
    assert first["Host"] == "hooks.example.test:8443"
    assert first["Content-Type"] == "application/json"
    assert first["User-Agent"] == "inference-gateway"
    assert first["X-Idempotency-Key"] == second["X-Idempotency-Key"] == KEY
    assert first["X-Signature"].startswith(f"t={NOW},v1=")
    assert transport.sent[0].body == PAYLOAD


def test_signature_sent_verifies_for_the_body_sent() -> None:
    transport = RecordingTransport(200)
    sender = sender_for(transport)

    sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    header = transport.sent[0].headers["X-Signature"]
    assert verify_signature(SECRET, header, PAYLOAD, now=NOW) is True


def test_signature_fails_for_a_changed_body() -> None:
    header = sign(SECRET, NOW, PAYLOAD)

    verified = verify_signature(SECRET, header, PAYLOAD + b" ", now=NOW)

    assert verified is False


def test_signature_fails_when_older_than_the_tolerance() -> None:
    header = sign(SECRET, NOW, PAYLOAD)

    verified = verify_signature(SECRET, header, PAYLOAD, now=NOW + 301)

    assert verified is False
    assert verify_signature(SECRET, header, PAYLOAD, now=NOW + 300) is True


def test_signature_fails_for_another_secret() -> None:
    header = sign(SECRET, NOW, PAYLOAD)

    verified = verify_signature("another-secret", header, PAYLOAD, now=NOW)

    assert verified is False


@pytest.mark.parametrize(
    "header",
    [
        "",
        "v1=" + "0" * 64,
        "t=abc,v1=" + "0" * 64,
        f"t={NOW}",
        f"t={NOW},t={NOW},v1=" + "0" * 64,
        f"t={NOW},v1=xyz",
    ],
)
def test_malformed_signature_header_does_not_verify(header: str) -> None:
    verified = verify_signature(SECRET, header, PAYLOAD, now=NOW)

    assert verified is False


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(b"key", b"1.{}", hashlib.sha256).hexdigest()

    header = sign("key", 1, b"{}")

    assert header == f"t=1,v1={expected}"


def test_checked_target_can_be_sent_and_is_checked_again() -> None:
    resolver = StubResolver()
    target = check_webhook_url("https://hooks.example.test/cb", STRICT, resolver)
    transport = RecordingTransport(200)
    sender = sender_for(transport, resolver)

    result = sender.send(target, PAYLOAD, idempotency_key=KEY)

    assert result.delivered is True
    assert resolver.asked == ["hooks.example.test", "hooks.example.test"]


@pytest.mark.parametrize("key", ["", "two words", "a\r\nX-Injected: 1", "k" * 201])
def test_unusable_idempotency_key_is_rejected_before_anything_is_sent(
    key: str,
) -> None:
    transport = RecordingTransport(200)
    sender = sender_for(transport)

    with pytest.raises(ValueError, match="idempotency key"):
        sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=key)

    assert transport.sent == []


class SocketPairReceiver:
    """A receiver on one end of a socket pair; the transport gets the other end."""

    def __init__(self, answer: bytes) -> None:
        self.client, self.server = socket.socketpair()
        self.answer = answer
        self.request = b""
        self.connected_to: list[tuple[object, int, float]] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def connect(self, address: object, port: int, timeout: float) -> socket.socket:
        self.connected_to.append((address, port, timeout))
        return self.client

    def _serve(self) -> None:
        with self.server:
            self.server.settimeout(5)
            while b"\r\n\r\n" not in self.request:
                self.request += self.server.recv(65536)
            head, _, body = self.request.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += self.server.recv(65536)
            self.request = head + b"\r\n\r\n" + body
            self.server.sendall(self.answer)

    def finish(self) -> bytes:
        self.thread.join(timeout=5)
        return self.request


class RecordingContext:
    """Stands in for an SSL context: records the name TLS would check."""

    def __init__(self) -> None:
        self.server_hostnames: list[str | None] = []

    def wrap_socket(
        self, sock: socket.socket, server_hostname: str | None = None
    ) -> socket.socket:
        self.server_hostnames.append(server_hostname)
        return sock


def pinned_target(scheme: str, port: int) -> WebhookTarget:
    return WebhookTarget(
        scheme=scheme,
        host="hooks.example.test",
        port=port,
        path="/cb?job=7",
        addresses=(IPv4Address(PUBLIC),),
        url=f"{scheme}://hooks.example.test:{port}/cb?job=7",
    )


def post(
    transport: HttpClientTransport, target: WebhookTarget, headers: dict[str, str]
) -> WebhookResponse:
    return transport(target, headers, PAYLOAD, Timeouts(connect=3.0, read=10.0))


def test_default_transport_connects_to_the_pinned_address_with_the_name() -> None:
    receiver = SocketPairReceiver(b"HTTP/1.1 204 No Content\r\nX-Seen: yes\r\n\r\n")
    transport = HttpClientTransport(connect=receiver.connect)
    target = pinned_target("http", 8080)

    response = post(transport, target, {"Host": target.authority, "X-Test": "1"})

    request = receiver.finish()
    assert receiver.connected_to == [(IPv4Address(PUBLIC), 8080, 3.0)]
    assert request.startswith(b"POST /cb?job=7 HTTP/1.1\r\n")
    assert b"\r\nHost: hooks.example.test:8080\r\n" in request
    assert request.endswith(PAYLOAD)
    assert response.status == 204
    assert response.headers["x-seen"] == "yes"


def test_default_transport_hands_the_name_to_tls_for_sni_and_certificates() -> None:
    receiver = SocketPairReceiver(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    context = RecordingContext()
    transport = HttpClientTransport(
        ssl_context=context,  # type: ignore[arg-type]
        connect=receiver.connect,
    )
    target = pinned_target("https", 443)

    response = post(transport, target, {"Host": target.authority})

    request = receiver.finish()
    assert context.server_hostnames == ["hooks.example.test"]
    assert receiver.connected_to[0][:2] == (IPv4Address(PUBLIC), 443)
    assert b"\r\nHost: hooks.example.test\r\n" in request
    assert response.status == 200


def test_default_transport_reports_a_redirect_without_following_it() -> None:
    receiver = SocketPairReceiver(
        b"HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/\r\nContent-Length: 0\r\n\r\n"
    )
    transport = HttpClientTransport(connect=receiver.connect)
    target = pinned_target("http", 8080)

    response = post(transport, target, {"Host": target.authority})

    receiver.finish()
    assert response.status == 302
    assert len(receiver.connected_to) == 1


def test_default_transport_tries_the_next_pinned_address_when_one_fails() -> None:
    receiver = SocketPairReceiver(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    attempts: list[object] = []

    def connect(address: object, port: int, timeout: float) -> socket.socket:
        attempts.append(address)
        if len(attempts) == 1:
            raise ConnectionRefusedError()
        return receiver.connect(address, port, timeout)

    transport = HttpClientTransport(connect=connect)
    target = WebhookTarget(
        scheme="http",
        host="hooks.example.test",
        port=8080,
        path="/",
        addresses=(IPv6Address("2606:2800:220:1::1"), IPv4Address(PUBLIC)),
        url="http://hooks.example.test:8080/",
    )

    response = post(transport, target, {"Host": target.authority})

    receiver.finish()
    assert attempts == list(target.addresses)
    assert response.status == 200


def test_default_resolver_returns_the_addresses_getaddrinfo_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[object, ...]] = []

    def fake_getaddrinfo(*args: object, **kwargs: object) -> list[tuple[object, ...]]:
        asked.append(args)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, 443)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:2800::1", 443, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)

    addresses = resolve_host("hooks.example.test", 443)

    assert addresses == [PUBLIC, "2606:2800::1"]
    assert asked == [("hooks.example.test", 443)]


def secret_reader(calls: list[int]) -> Callable[[], str]:
    def read() -> str:
        calls.append(1)
        return SECRET

    return read


def test_secret_is_read_once_per_delivery() -> None:
    calls: list[int] = []
    transport = RecordingTransport(503, 200)
    sender = WebhookSender(
        secret_reader(calls),
        transport=transport,
        resolve=StubResolver(),
        sleep=lambda seconds: None,
    )

    sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert calls == [1]


def test_empty_secret_is_rejected_before_anything_is_sent() -> None:
    transport = RecordingTransport(200)
    sender = WebhookSender(lambda: "", transport=transport, resolve=StubResolver())

    with pytest.raises(ValueError, match="secret"):
        sender.send("https://hooks.example.test/cb", PAYLOAD, idempotency_key=KEY)

    assert transport.sent == []


class TricklingReceiver(SocketPairReceiver):
    """Reads the request, then answers one header line at a time, each in good time."""

    def __init__(self, lines: int, every: float) -> None:
        self.lines = lines
        self.every = every
        super().__init__(b"")

    def _serve(self) -> None:
        with self.server:
            self.server.settimeout(5)
            while PAYLOAD not in self.request:
                self.request += self.server.recv(65536)
            with contextlib.suppress(OSError):  # the client gives up first
                self.server.sendall(b"HTTP/1.1 200 OK\r\n")
                for number in range(self.lines):
                    time.sleep(self.every)
                    self.server.sendall(f"X-Line-{number}: slow\r\n".encode())
                self.server.sendall(b"\r\n")


def test_an_answer_must_come_in_time_however_slowly_its_bytes_trickle() -> None:
    # Every line comes well within the read timeout, the whole answer long after it.
    receiver = TricklingReceiver(lines=40, every=0.1)
    transport = HttpClientTransport(connect=receiver.connect)
    target = pinned_target("http", 8080)

    with pytest.raises(TimeoutError):
        transport(target, {"Host": target.authority}, PAYLOAD, Timeouts(3.0, read=0.5))

    receiver.finish()
