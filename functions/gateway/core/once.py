"""Queue requests are answered once per requestId, whatever SQS redelivers.

A batch claims all its requests in one write before it runs any. A request already
answered is not run again; one being answered elsewhere, or whose claim could not be
made, is tried later; a requestId sent again with different content is refused. A claim
lapses at the invocation's deadline, so the claims of a function that stopped midway
are taken over by the next delivery.

Outcomes are written as requests finish, several at a time: a finished request's
outcome waits a moment for the others still running, and what finishes while one write
is out goes into the next. A batch whose requests end together writes once, and an
outcome is stored moments after its reply is sent, not at the end of a long batch (a
function stopped by its timeout keeps what it finished).
"""

import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aws_lambda_powertools import Logger

from gateway.aws.claims import EntryStatus, RequestClaims, RequestEntry, Settled

logger = Logger(child=True)

# How long a finished request's outcome waits for the requests still running, so that
# requests ending together share one write.
GATHER_SECONDS = 0.05


class RequestInProgressError(Exception):
    """The request is being answered elsewhere (or may be): try it again later."""


class Standing(StrEnum):
    """What a batch may do with one of its requests."""

    NEW = "new"
    ANSWERED = "answered"
    IN_PROGRESS = "in progress elsewhere"
    REUSED = "requestId used for a different request"


@dataclass(frozen=True, slots=True)
class Claim:
    """One request of a batch and what the batch may do with it."""

    request_id: str
    fingerprint: str
    standing: Standing
    # The stored outcome of a request answered before.
    outcome: str | None = None


def fingerprint(document: Mapping[str, Any]) -> str:
    """A digest of a request's content, the same whatever the order of its fields."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class BatchClaims:
    """The claims of one batch: taken together, settled as their requests finish."""

    def __init__(
        self, store: RequestClaims, claims: Sequence[Claim], clock: Callable[[], int]
    ) -> None:
        self.claims = list(claims)
        self._store = store
        self._clock = clock
        self._open = {c.request_id for c in claims if c.standing is Standing.NEW}
        self._settled: list[Settled] = []
        self._released: list[str] = []
        self._running = 0
        self._changed = threading.Condition()
        self._writing = False

    def start(self, claim: Claim) -> None:
        """Say a claimed request is running: finished ones wait a moment for it."""
        with self._changed:
            self._running += 1

    def settle(self, claim: Claim, outcome: str) -> None:
        """Keep a request's final outcome: a redelivery finds it and stops there."""
        with self._changed:
            self._finish(claim)
            self._settled.append(Settled(claim.request_id, claim.fingerprint, outcome))
        self._write_pending()

    def release(self, claim: Claim) -> None:
        """Give up a claim, so the request's retry is not taken for a duplicate."""
        with self._changed:
            self._finish(claim)
            self._released.append(claim.request_id)
        self._write_pending()

    def close(self) -> None:
        """Release the claims of requests that never ran (a stopped FIFO group)."""
        with self._changed:
            self._released.extend(sorted(self._open))
            self._open.clear()
        self._write_pending()

    def _finish(self, claim: Claim) -> None:
        if claim.request_id in self._open:
            self._open.discard(claim.request_id)
            self._running = max(self._running - 1, 0)
            self._changed.notify_all()

    def _write_pending(self) -> None:
        """Write what is pending, unless another thread is writing: it will take it."""
        with self._changed:
            if self._writing:
                return
            self._writing = True
            self._changed.wait_for(lambda: self._running == 0, timeout=GATHER_SECONDS)
        while True:
            with self._changed:
                settled, released = self._settled, self._released
                self._settled, self._released = [], []
                if not settled and not released:
                    self._writing = False
                    return
            try:
                self._store.settle(settled, released, now_ms=self._clock())
            except Exception:
                # The requests were answered: their claims lapse at the deadline.
                logger.exception(
                    "request outcomes not stored",
                    settled=len(settled),
                    released=len(released),
                )


def claim_batch(
    requests: Sequence[tuple[str, str]],
    store: RequestClaims,
    *,
    deadline_ms: int,
    clock: Callable[[], int],
) -> BatchClaims:
    """Claim a batch's requests, given as (requestId, fingerprint) pairs, in one write.

    A requestId that comes again later in the same batch is not claimed twice: it is
    tried again later, or refused when its content differs.
    """
    first: dict[str, str] = {}
    for request_id, digest in requests:
        first.setdefault(request_id, digest)

    found: Mapping[str, RequestEntry | None] = {}
    if first:
        try:
            found = store.claim(list(first.items()), now_ms=clock(), until_ms=deadline_ms)
        except Exception:
            logger.exception("requests could not be claimed; they will be retried")
            unknown = RequestEntry(EntryStatus.IN_PROGRESS)
            found = dict.fromkeys(first, unknown)

    claims: list[Claim] = []
    seen: set[str] = set()
    for request_id, digest in requests:
        if request_id in seen:
            standing = (
                Standing.IN_PROGRESS if first[request_id] == digest else Standing.REUSED
            )
            claims.append(Claim(request_id, digest, standing))
            continue
        seen.add(request_id)
        claims.append(_claim(request_id, digest, found[request_id]))
    return BatchClaims(store, claims, clock)


def _claim(request_id: str, digest: str, entry: RequestEntry | None) -> Claim:
    if entry is None:
        return Claim(request_id, digest, Standing.NEW)
    if entry.fingerprint is not None and entry.fingerprint != digest:
        return Claim(request_id, digest, Standing.REUSED)
    if entry.status is EntryStatus.COMPLETED:
        return Claim(request_id, digest, Standing.ANSWERED, entry.outcome)
    return Claim(request_id, digest, Standing.IN_PROGRESS)
