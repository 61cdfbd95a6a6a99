"""Signed webhook delivery to callers' URLs, never to an address that is not public.

A callback URL is checked when it is accepted and again before every attempt: its
host must be, or resolve only to, globally routable addresses, and the connection
goes to exactly the address that was checked, so a name that changes its answer
between the check and the connection (DNS rebinding) reaches nothing private.
"""

import hashlib
import hmac
import http.client
import io
import ipaddress
import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger

from gateway.core.errors import CallbackRefusedError

logger = Logger(child=True)

type IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
type Resolver = Callable[[str, int], Sequence[str]]
type Connector = Callable[[IPAddress, int, float], socket.socket]

USER_AGENT = "inference-gateway"

_DEFAULT_PORTS = {"https": 443, "http": 80}
_MAX_URL_LENGTH = 2048
_PORT = re.compile(r"[0-9]{1,5}")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# A last label like these makes a host an IPv4 address in inet_aton's spellings
# (decimal, octal, hex, short forms); such a host is never looked up as a name.
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")
# Suffixes of names that only mean something inside a network: loopback, mDNS,
# cloud-internal DNS (metadata.google.internal, ec2.internal), reverse zones.
_LOCAL_SUFFIXES = frozenset(
    {"localhost", "local", "localdomain", "internal", "arpa", "invalid", "onion"}
)
_METADATA_NAMES = frozenset({"metadata.goog", "metadata.google.internal"})


def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


# IANA's special-purpose registries; the first match names the reason.
_IPV4_SPECIAL = (
    (_net("0.0.0.0/8"), "an unspecified address"),
    (_net("10.0.0.0/8"), "a private address"),
    (_net("100.64.0.0/10"), "a shared (carrier-grade NAT) address"),
    (_net("127.0.0.0/8"), "a loopback address"),
    # Cloud metadata services (169.254.169.254, 169.254.170.2) live here.
    (_net("169.254.0.0/16"), "a link-local address"),
    (_net("172.16.0.0/12"), "a private address"),
    (_net("192.0.0.0/24"), "an IETF protocol address"),
    (_net("192.0.2.0/24"), "a documentation address"),
    (_net("192.88.99.0/24"), "a 6to4 relay address"),
    (_net("192.168.0.0/16"), "a private address"),
    (_net("198.18.0.0/15"), "a benchmarking address"),
    (_net("198.51.100.0/24"), "a documentation address"),
    (_net("203.0.113.0/24"), "a documentation address"),
    (_net("224.0.0.0/4"), "a multicast address"),
    (_net("255.255.255.255/32"), "the broadcast address"),
    (_net("240.0.0.0/4"), "a reserved address"),
)
_IPV6_SPECIAL = (
    (_net("::/128"), "an unspecified address"),
    (_net("::1/128"), "a loopback address"),
    (_net("::/96"), "an IPv4-compatible address"),
    (_net("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_net("100::/64"), "a discard-only address"),
    (_net("2001::/32"), "a Teredo address"),
    (_net("2001::/23"), "an IETF protocol address"),
    (_net("2001:db8::/32"), "a documentation address"),
    (_net("3fff::/20"), "a documentation address"),
    (_net("fc00::/7"), "a unique-local address"),
    (_net("fe80::/10"), "a link-local address"),
    (_net("fec0::/10"), "a site-local address"),
    (_net("ff00::/8"), "a multicast address"),
)
_IPV4_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
_IPV6_LOOPBACK = ipaddress.IPv6Address("::1")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")

# Statuses a receiver sends when the same request may pass later.
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SECONDS = re.compile(r"[0-9]{1,9}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
# Bounds one attempt's connecting time when a name has many addresses.
_MAX_ADDRESSES_PER_ATTEMPT = 3
_RANDOM = random.SystemRandom()


@dataclass(frozen=True)
class CallbackPolicy:
    """Where callbacks may go; loopback only in the offline development stack."""

    allow_loopback: bool = False


@dataclass(frozen=True)
class WebhookTarget:
    """A callback URL that passed the guard, pinned to the addresses checked."""

    scheme: str
    host: str
    port: int
    # Path and query: the query may carry a caller's token, so it stays out of reprs.
    path: str = field(repr=False)
    addresses: tuple[IPAddress, ...]
    url: str = field(repr=False)

    @property
    def authority(self) -> str:
        """The host and, unless it is the scheme's default, the port."""
        return _authority(self.scheme, self.host, self.port)


@dataclass(frozen=True)
class Timeouts:
    """Seconds to wait for a connection, and for the answer (status and headers) in
    all, however slowly its bytes come."""

    connect: float
    read: float


@dataclass(frozen=True)
class WebhookResponse:
    """A receiver's status and headers (names in lower case)."""

    status: int
    headers: Mapping[str, str]


@dataclass(frozen=True)
class DeliveryResult:
    """What became of one webhook; ``retryable`` says a later delivery may pass."""

    delivered: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    retryable: bool = False


class Transport(Protocol):
    """Sends one POST to a checked target and returns the receiver's answer."""

    def __call__(
        self,
        target: WebhookTarget,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
    ) -> WebhookResponse: ...


def resolve_host(host: str, port: int) -> list[str]:
    """Resolve a host name to the addresses a TCP connection could use."""
    found = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in found]


def check_webhook_url(
    url: str, policy: CallbackPolicy, resolve: Resolver = resolve_host
) -> WebhookTarget:
    """Check a callback URL and pin the addresses it may be delivered to.

    Raises CallbackRefusedError for a URL the gateway must not call, and lets the
    resolver's OSError through when a name does not resolve (that may pass later).
    """
    scheme, netloc, path = _split_url(url)
    host_text, bracketed, port_text = _split_authority(netloc)
    port = _port(port_text, scheme)
    host, literal = _host(host_text, bracketed)

    # Plain http is for the offline stack's receiver only; names are not trusted
    # there either, since one could resolve anywhere.
    if scheme == "http" and not (
        policy.allow_loopback and literal is not None and _is_loopback(literal)
    ):
        raise CallbackRefusedError(
            "plain http is accepted only for a loopback address in development"
        )

    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    else:
        _check_name(host)
        addresses = _resolve(host, port, resolve)

    for address in addresses:
        reason = _refusal(address, policy.allow_loopback)
        if reason is not None:
            subject = "the host is" if literal is not None else "the host resolves to"
            raise CallbackRefusedError(f"{subject} {reason}")

    return WebhookTarget(
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        addresses=addresses,
        url=f"{scheme}://{_authority(scheme, host, port)}{path}",
    )


def sign(secret: str, timestamp: int, payload: bytes) -> str:
    """Return the X-Signature value for a payload sent at ``timestamp``."""
    return f"t={timestamp},v1={_digest(secret, timestamp, payload)}"


def verify_signature(
    secret: str,
    header_value: str,
    payload: bytes,
    *,
    now: float,
    tolerance_seconds: float = 300,
) -> bool:
    """Tell whether an X-Signature value signs this payload and is recent enough."""
    timestamps: list[int] = []
    candidates: list[str] = []
    for part in header_value.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and _TIMESTAMP.fullmatch(value):
            timestamps.append(int(value))
        elif key == "v1" and _HEX_DIGEST.fullmatch(value):
            candidates.append(value)

    if len(timestamps) != 1 or not candidates:
        return False
    if abs(now - timestamps[0]) > tolerance_seconds:
        return False

    expected = _digest(secret, timestamps[0], payload)
    # Every candidate is compared, so the time taken says nothing about which matched.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(matches)


def open_connection(address: IPAddress, port: int, timeout: float) -> socket.socket:
    """Connect to one address; nothing is resolved here."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    connection = socket.socket(family, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect((str(address), port))
    except OSError:
        connection.close()
        raise
    return connection


class HttpClientTransport:
    """Posts with http.client to a pinned address; a redirect is only a status."""

    def __init__(
        self,
        ssl_context: ssl.SSLContext | None = None,
        connect: Connector = open_connection,
    ) -> None:
        # Built on the first https delivery: loading the CA bundle costs a cold start.
        self._ssl_context = ssl_context
        self._connect = connect

    def __call__(
        self,
        target: WebhookTarget,
        headers: Mapping[str, str],
        body: bytes,
        timeouts: Timeouts,
    ) -> WebhookResponse:
        """Send one POST and return the status and headers of the answer."""
        connection = _PinnedConnection(
            target, _AnswerWithin(self._open(target, timeouts), timeouts.read)
        )
        try:
            connection.request("POST", target.path, body=body, headers=dict(headers))
            answer = connection.getresponse()
            names = {name.lower(): value for name, value in answer.getheaders()}
            return WebhookResponse(status=answer.status, headers=names)
        finally:
            connection.close()

    def _open(self, target: WebhookTarget, timeouts: Timeouts) -> socket.socket:
        failure: OSError = OSError("the target has no address")
        for address in target.addresses[:_MAX_ADDRESSES_PER_ATTEMPT]:
            try:
                connection = self._connect(address, target.port, timeouts.connect)
            except OSError as error:
                failure = error
                continue

            try:
                if target.scheme == "https":
                    # The name, not the address, is what the certificate must match.
                    if self._ssl_context is None:
                        self._ssl_context = ssl.create_default_context()
                    connection = self._ssl_context.wrap_socket(
                        connection, server_hostname=target.host
                    )
                connection.settimeout(timeouts.read)
            except BaseException:
                connection.close()
                raise
            return connection
        raise failure


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP connection over a socket connected to the checked address."""

    def __init__(self, target: WebhookTarget, connection: "_AnswerWithin") -> None:
        super().__init__(target.host, target.port)
        self._pinned = connection

    def connect(self) -> None:
        self.sock = self._pinned


class _AnswerWithin:
    """A connected socket whose answer must come within a time in all.

    A socket's timeout bounds each wait for data: a receiver sending a header line
    every few seconds would hold a delivery, and the batch it belongs to, until the
    function's own timeout. The answer's reader (``makefile``, which http.client
    calls once the request is sent) gives each wait only what is left.
    """

    def __init__(self, connection: socket.socket, seconds: float) -> None:
        self._connection = connection
        self._seconds = seconds

    def sendall(self, data: bytes) -> None:
        self._connection.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        deadline = time.monotonic() + self._seconds
        return io.BufferedReader(_ReaderUntil(self._connection, deadline))

    def close(self) -> None:
        self._connection.close()


class _ReaderUntil(io.RawIOBase):
    """Reads a socket until a deadline, then times out."""

    def __init__(self, connection: socket.socket, deadline: float) -> None:
        self._connection = connection
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the receiver did not answer in time")
        self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


@dataclass(frozen=True)
class _Outcome:
    delivered: bool = False
    status: int | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None


class WebhookSender:
    """Delivers signed webhooks, retrying only what may pass later.

    Each attempt re-checks the URL, signs with a fresh timestamp and keeps the same
    idempotency key, so a receiver can drop a duplicate after a crash-retry.
    Connection errors, timeouts, 408, 425, 429 and 5xx are retried with full-jitter
    exponential backoff (or the receiver's Retry-After, up to the cap); a 3xx or
    any other 4xx ends the delivery.
    """

    def __init__(
        self,
        secret: Callable[[], str],
        *,
        policy: CallbackPolicy | None = None,
        transport: Transport | None = None,
        resolve: Resolver = resolve_host,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[float], float] | None = None,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_cap: float = 4.0,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._secret = secret
        self._policy = policy or CallbackPolicy()
        self._transport = transport or HttpClientTransport()
        self._resolve = resolve
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter or _full_jitter
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._timeouts = Timeouts(connect=connect_timeout, read=read_timeout)

    def send(
        self,
        target_or_url: WebhookTarget | str,
        payload: bytes,
        *,
        idempotency_key: str,
    ) -> DeliveryResult:
        """POST a signed JSON payload until it is delivered or must be given up."""
        if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise ValueError("the idempotency key must be 1-200 visible ASCII chars")
        url = target_or_url if isinstance(target_or_url, str) else target_or_url.url
        secret = self._secret()
        if not secret:
            raise ValueError("the signing secret is empty")

        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(url, payload, idempotency_key, secret, attempt)
            if (
                outcome.delivered
                or not outcome.retryable
                or attempt >= self._max_attempts
            ):
                break
            self._sleep(self._delay(attempt, outcome.retry_after))

        return DeliveryResult(
            delivered=outcome.delivered,
            attempts=attempt,
            status=outcome.status,
            error=outcome.error,
            retryable=outcome.retryable,
        )

    def _attempt(
        self, url: str, payload: bytes, key: str, secret: str, attempt: int
    ) -> _Outcome:
        try:
            target = check_webhook_url(url, self._policy, self._resolve)
        except CallbackRefusedError as refusal:
            logger.warning("webhook refused", attempt=attempt, reason=refusal.reason)
            return _Outcome(error=f"refused: {refusal.reason}")
        except OSError:
            logger.warning("webhook host did not resolve", attempt=attempt)
            return _Outcome(error="name resolution failed", retryable=True)

        headers = {
            "Host": target.authority,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Signature": sign(secret, int(self._clock()), payload),
            "X-Idempotency-Key": key,
        }
        try:
            response = self._transport(target, headers, payload, self._timeouts)
        except TimeoutError:
            outcome = _Outcome(error="timed out", retryable=True)
        except ssl.SSLCertVerificationError:
            outcome = _Outcome(error="certificate rejected")
        except ssl.SSLError:
            outcome = _Outcome(error="TLS failed", retryable=True)
        except OSError:
            outcome = _Outcome(error="connection failed", retryable=True)
        except http.client.HTTPException:
            outcome = _Outcome(error="invalid response", retryable=True)
        else:
            outcome = _judge(response)

        if outcome.delivered:
            logger.info(
                "webhook delivered",
                host=target.host,
                attempt=attempt,
                status=outcome.status,
                idempotency_key=key,
            )
        else:
            logger.warning(
                "webhook attempt failed",
                host=target.host,
                attempt=attempt,
                status=outcome.status,
                reason=outcome.error,
                retryable=outcome.retryable,
                idempotency_key=key,
            )
        return outcome

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._backoff_cap)
        ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        return self._jitter(ceiling)


def _authority(scheme: str, host: str, port: int) -> str:
    bracketed = f"[{host}]" if ":" in host else host
    if port == _DEFAULT_PORTS[scheme]:
        return bracketed
    return f"{bracketed}:{port}"


def _split_url(url: str) -> tuple[str, str, str]:
    if len(url) > _MAX_URL_LENGTH:
        raise CallbackRefusedError(f"the URL is longer than {_MAX_URL_LENGTH} chars")
    # urlsplit quietly drops some of these, which would let two readings of one URL
    # differ; a URL with them is refused outright.
    if any(char <= " " or char == "\x7f" for char in url):
        raise CallbackRefusedError("the URL contains spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise CallbackRefusedError("the URL is malformed") from None

    if parts.scheme not in _DEFAULT_PORTS:
        raise CallbackRefusedError("the scheme must be https")
    if "@" in parts.netloc:
        raise CallbackRefusedError("the URL must not carry user information")

    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if not path.isascii():
        raise CallbackRefusedError("the path and query must be percent-encoded ASCII")
    return parts.scheme, parts.netloc, path


def _split_authority(netloc: str) -> tuple[str, bool, str | None]:
    if netloc.startswith("["):
        host, bracket, rest = netloc[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise CallbackRefusedError("the URL is malformed")
        return host, True, rest[1:] if rest else None

    host, colon, port = netloc.partition(":")
    return host, False, port if colon else None


def _port(text: str | None, scheme: str) -> int:
    if text is None:
        return _DEFAULT_PORTS[scheme]
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise CallbackRefusedError("the port must be a number from 1 to 65535")
    return int(text)


def _host(text: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    """Return the host's canonical text, and its address when it is a literal."""
    if bracketed:
        if "%" in text:
            raise CallbackRefusedError("IPv6 zone ids are not accepted")
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            raise CallbackRefusedError("the bracketed host is not IPv6") from None
        return str(address), address

    name = _ascii_name(text)
    numeric = _numeric_ipv4(name)
    if numeric is not None:
        return str(numeric), numeric
    return name, None


def _ascii_name(text: str) -> str:
    if not text.isascii():
        # The IDNA mapping folds look-alikes (full-width digits and dots), so the
        # checks below see the name a resolver would be asked for.
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            raise CallbackRefusedError("the host name is not valid") from None
    # The root label changes nothing about where a name points.
    name = text.lower().removesuffix(".")
    if not name:
        raise CallbackRefusedError("the URL has no host")
    return name


def _numeric_ipv4(name: str) -> ipaddress.IPv4Address | None:
    """Read a host the way inet_aton does, or return None for a name."""
    labels = name.split(".")
    if not _NUMBER.fullmatch(labels[-1]):
        return None

    address = _inet_aton(labels)
    if address is None:
        raise CallbackRefusedError("the host looks numeric but is not an address")
    return address


def _inet_aton(labels: list[str]) -> ipaddress.IPv4Address | None:
    if len(labels) > 4 or not all(_NUMBER.fullmatch(label) for label in labels):
        return None
    numbers = [_inet_number(label) for label in labels]
    *leading, last = numbers
    if last is None or any(part is None or part > 255 for part in leading):
        return None
    # The last number fills every byte the others leave: 127.1 is 127.0.0.1.
    if last >= 256 ** (4 - len(leading)):
        return None

    value = last
    for index, part in enumerate(leading):
        value += (part or 0) << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _inet_number(label: str) -> int | None:
    if label.startswith("0x"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8) if set(label) <= set("01234567") else None
    return int(label)


def _check_name(name: str) -> None:
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise CallbackRefusedError("the host name is not valid")
    # A single label is completed by the resolver's search domains, inside the VPC.
    if len(labels) < 2:
        raise CallbackRefusedError("the host name must be fully qualified")
    if labels[-1] in _LOCAL_SUFFIXES or name in _METADATA_NAMES:
        raise CallbackRefusedError("the host name is reserved for local services")


def _resolve(host: str, port: int, resolve: Resolver) -> tuple[IPAddress, ...]:
    addresses: list[IPAddress] = []
    for text in resolve(host, port):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise CallbackRefusedError(
                "the host resolves to an unreadable address"
            ) from None
        if address not in addresses:
            addresses.append(address)

    if not addresses:
        raise CallbackRefusedError("the host name has no addresses")
    return tuple(addresses)


def _is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv4Address):
        return address in _IPV4_LOOPBACK
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped in _IPV4_LOOPBACK
    return address == _IPV6_LOOPBACK and address.scope_id is None


def _refusal(address: IPAddress, allow_loopback: bool) -> str | None:
    """Say why an address must not be called, or return None for a public one."""
    if allow_loopback and _is_loopback(address):
        return None
    if isinstance(address, ipaddress.IPv4Address):
        return _ipv4_refusal(address)
    return _ipv6_refusal(address, allow_loopback)


def _ipv4_refusal(address: ipaddress.IPv4Address) -> str | None:
    reason = _special(address, _IPV4_SPECIAL)
    # Python's own table backs ours up, in case IANA adds a range before we do.
    if reason is None and not address.is_global:
        reason = "a non-public address"
    return reason


def _ipv6_refusal(address: ipaddress.IPv6Address, allow_loopback: bool) -> str | None:
    if address.scope_id is not None:
        return "an address with a zone id"
    # A mapped address is the IPv4 address itself, loopback included.
    if address.ipv4_mapped is not None:
        return _refusal(address.ipv4_mapped, allow_loopback)
    # NAT64 and 6to4 addresses reach the IPv4 address they carry, which decides.
    embedded = _translated_ipv4(address)
    if embedded is not None:
        if _ipv4_refusal(embedded) is None:
            return None
        return "a translated non-public IPv4 address"

    reason = _special(address, _IPV6_SPECIAL)
    if reason is None and address not in _GLOBAL_UNICAST:
        reason = "a reserved address"
    if reason is None and not address.is_global:
        reason = "a non-public address"
    return reason


def _translated_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _special(
    address: IPAddress,
    table: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...],
) -> str | None:
    return next((reason for network, reason in table if address in network), None)


def _judge(response: WebhookResponse) -> _Outcome:
    status = response.status
    if 200 <= status < 300:
        return _Outcome(delivered=True, status=status)
    if status in _RETRYABLE_STATUSES or 500 <= status < 600:
        retry_after = _retry_after(response.headers.get("retry-after"))
        return _Outcome(
            status=status,
            error=f"HTTP {status}",
            retryable=True,
            retry_after=retry_after,
        )
    if 300 <= status < 400:
        return _Outcome(status=status, error="redirect not followed")
    return _Outcome(status=status, error=f"HTTP {status}")


def _retry_after(value: str | None) -> float | None:
    # NOTE: only the seconds form is read; an HTTP date falls back to the backoff.
    if value is None or not _SECONDS.fullmatch(value.strip()):
        return None
    return float(value.strip())


def _digest(secret: str, timestamp: int, payload: bytes) -> str:
    if not secret:
        raise ValueError("the signing secret is empty")
    if timestamp < 0:
        raise ValueError("the timestamp must not be negative")
    message = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _full_jitter(ceiling: float) -> float:
    return _RANDOM.uniform(0.0, ceiling)
