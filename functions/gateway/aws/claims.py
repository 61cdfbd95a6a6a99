"""Claims on queue requests in the idempotency table, a batch at a time.

One item per requestId: ``inProgress`` while a function answers it, then
``completed`` with its outcome. A batch's requests are claimed in one transaction; when
some already have an item, the transaction is refused as a whole and its cancellation
reasons say which, so the others are claimed again without them. Outcomes need no
condition (the claim already decided who runs a request) and are written with
``BatchWriteItem``.
"""

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# DynamoDB takes at most 100 actions in one transaction, 25 in one batch write.
MAX_TRANSACTION_ITEMS = 100
MAX_BATCH_WRITE_ITEMS = 25
# Writes DynamoDB left unprocessed (throttled) are sent again, backing off.
SETTLE_ATTEMPTS = 4
RETRY_DELAY_SECONDS = 0.025

_CANCELLED = "TransactionCanceledException"
_CLAIMABLE = (
    "attribute_not_exists(id) OR expiration < :now_s"
    " OR (#status = :in_progress AND inProgressUntil < :now_ms)"
)


class EntryStatus(StrEnum):
    """Where a request stands in the table."""

    IN_PROGRESS = "inProgress"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class RequestEntry:
    """What the table holds about one request (``fingerprint`` names its content)."""

    status: EntryStatus
    fingerprint: str | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    """A request's final outcome, kept so a redelivery is answered from it."""

    request_id: str
    fingerprint: str
    outcome: str


class RequestClaims:
    """Claims requests and records their outcomes."""

    def __init__(
        self, client: "DynamoDBClient", table: str, retention_seconds: int
    ) -> None:
        self.client = client
        self._table = table
        self._retention_seconds = retention_seconds

    def claim(
        self, requests: Sequence[tuple[str, str]], *, now_ms: int, until_ms: int
    ) -> dict[str, RequestEntry | None]:
        """Claim requests given as (requestId, fingerprint) pairs, ids all distinct.

        Each id maps to None when this call claimed it, or to the entry that stood in
        the way. A claim in progress past ``inProgressUntil`` was abandoned (its
        function stopped) and is taken over; ``until_ms`` is when this one lapses.
        """
        found: dict[str, RequestEntry | None] = {}
        for chunk in _chunks(requests, MAX_TRANSACTION_ITEMS):
            pending = list(chunk)
            while pending:
                refused = self._claim_all(pending, now_ms, until_ms)
                if refused is None:
                    found.update((request_id, None) for request_id, _ in pending)
                    break
                found.update(refused)
                pending = [item for item in pending if item[0] not in refused]
        return found

    def settle(
        self, settled: Sequence[Settled], released: Sequence[str], *, now_ms: int
    ) -> None:
        """Store final outcomes and drop the claims of requests to be tried again."""
        expires = now_ms // 1000 + self._retention_seconds
        writes: list[Any] = [
            {
                "PutRequest": {
                    "Item": {
                        "id": {"S": _key(item.request_id)},
                        "status": {"S": EntryStatus.COMPLETED.value},
                        "fingerprint": {"S": item.fingerprint},
                        "outcome": {"S": item.outcome},
                        "expiration": {"N": str(expires)},
                    }
                }
            }
            for item in settled
        ]
        writes.extend(
            {"DeleteRequest": {"Key": {"id": {"S": _key(request_id)}}}}
            for request_id in released
        )
        for chunk in _chunks(writes, MAX_BATCH_WRITE_ITEMS):
            self._write(list(chunk))

    def _claim_all(
        self, requests: Sequence[tuple[str, str]], now_ms: int, until_ms: int
    ) -> dict[str, RequestEntry | None] | None:
        """Claim every request at once; None if that worked, else the ones in the way."""
        values = {
            ":now_s": {"N": str(now_ms // 1000)},
            ":now_ms": {"N": str(now_ms)},
            ":in_progress": {"S": EntryStatus.IN_PROGRESS.value},
        }
        expires = str(now_ms // 1000 + self._retention_seconds)
        actions: list[Any] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        "id": {"S": _key(request_id)},
                        "status": {"S": EntryStatus.IN_PROGRESS.value},
                        "fingerprint": {"S": fingerprint},
                        "inProgressUntil": {"N": str(until_ms)},
                        "expiration": {"N": expires},
                    },
                    "ConditionExpression": _CLAIMABLE,
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": values,
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            for request_id, fingerprint in requests
        ]
        try:
            self.client.transact_write_items(TransactItems=actions)
        except ClientError as error:
            if _code(error) != _CANCELLED:
                raise
            reasons = error.response.get("CancellationReasons", [])
        else:
            return None

        refused: dict[str, RequestEntry | None] = {}
        for (request_id, _), reason in zip(requests, reasons, strict=False):
            code = reason.get("Code") or "None"
            if code == "ConditionalCheckFailed":
                refused[request_id] = _entry(reason.get("Item"))
            elif code != "None":
                # Another transaction on the same item, or throttling: someone is at
                # it now, or it may pass later; either way, not claimed here.
                refused[request_id] = RequestEntry(EntryStatus.IN_PROGRESS)
        if not refused:
            # Refused without naming an item: nothing is claimed, try later.
            busy = RequestEntry(EntryStatus.IN_PROGRESS)
            refused = {request_id: busy for request_id, _ in requests}
        return refused

    def _write(self, writes: list[Any]) -> None:
        pending: Any = {self._table: writes}
        for attempt in range(SETTLE_ATTEMPTS):
            if attempt:
                time.sleep(RETRY_DELAY_SECONDS * 2**attempt)
            response = self.client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems")
            if not pending:
                return
        raise UnsettledError(sum(len(items) for items in pending.values()))


class UnsettledError(Exception):
    """DynamoDB left some writes unprocessed, however often they were sent."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} writes left unprocessed")


def _key(request_id: str) -> str:
    return f"request#{request_id}"


def _entry(item: Mapping[str, Any] | None) -> RequestEntry:
    if not item:
        return RequestEntry(EntryStatus.IN_PROGRESS)
    status = item.get("status", {}).get("S")
    return RequestEntry(
        EntryStatus.COMPLETED
        if status == EntryStatus.COMPLETED.value
        else EntryStatus.IN_PROGRESS,
        fingerprint=item.get("fingerprint", {}).get("S"),
        outcome=item.get("outcome", {}).get("S"),
    )


def _chunks[Item](items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
