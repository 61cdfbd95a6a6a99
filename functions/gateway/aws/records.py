"""Inference records and result locations in the gateway's DynamoDB table.

One table holds two kinds of item: ``inference#<id>`` (the record) and
``location#<s3 uri>`` (which inference an S3 result belongs to). Every change that
decides an outcome is a conditional write, so duplicates and races settle in the table.
"""

import contextlib
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, cast

from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.aws import clients
from gateway.core import errors
from gateway.models.records import (
    Callback,
    CallbackKind,
    Delivery,
    InferenceRecord,
    Status,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_CONDITION_FAILED = "ConditionalCheckFailedException"
_FIELDS = {
    "inference_id": "inferenceId",
    "endpoint": "endpoint",
    "status": "status",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
    "input_location": "inputLocation",
    "request_ttl_seconds": "requestTtlSeconds",
    "invocation_timeout_seconds": "invocationTimeoutSeconds",
    "request_id": "requestId",
    "output_location": "outputLocation",
    "failure_location": "failureLocation",
    "completed_at": "completedAt",
    "result_location": "resultLocation",
    "result_content_type": "resultContentType",
    "result_size": "resultSize",
    "failure_reason": "failureReason",
    "delivery": "delivery",
    "owner": "owner",
}


def create_client() -> "DynamoDBClient":
    """Create a DynamoDB client with botocore's standard retries."""
    return cast(
        "DynamoDBClient", clients.create("dynamodb", Config(retries={"mode": "standard"}))
    )


class InferenceRecords:
    """Reads and writes inference records and their result locations."""

    def __init__(self, client: "DynamoDBClient", table: str, retention_days: int) -> None:
        self.client = client
        self._table = table
        self._retention_seconds = retention_days * 86_400

    def create(self, record: InferenceRecord) -> None:
        """Store a new pending record; an inference id in use is a conflict.

        An id whose submission failed is free again: SageMaker took no work under it,
        and the caller's retry (the queue's redelivery, a client's after a 429) may
        use it. The new record replaces the failed one.
        """
        item = _to_item(record)
        item["pk"] = f"inference#{record.inference_id}"
        item["expiresAt"] = record.created_at // 1000 + self._retention_seconds
        try:
            self.client.put_item(
                TableName=self._table,
                Item={k: _serialize(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(pk) OR submissionFailed = :yes",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
        except ClientError as error:
            if _code(error) == _CONDITION_FAILED:
                raise errors.InferenceIdConflictError(record.inference_id) from error
            raise

    def get(self, inference_id: str) -> InferenceRecord | None:
        """Read a record, or None when there is none."""
        response = self.client.get_item(
            TableName=self._table,
            Key={"pk": {"S": f"inference#{inference_id}"}},
            ConsistentRead=True,
        )
        if "Item" not in response:
            return None
        return _from_item({k: _deserialize(v) for k, v in response["Item"].items()})

    def link_submission(
        self, inference_id: str, output: str, failure: str, now: int
    ) -> list[str]:
        """Store where SageMaker will write and link both places to the inference.

        One transaction in the usual case. When it fails, because an object is
        already there (it landed before the link) or for any other reason (SageMaker
        has the job by now, so the link must not be lost), each place is linked on
        its own, and the places whose objects arrived first are returned, to be
        replayed.
        """
        expires = now // 1000 + self._retention_seconds
        link = "SET inferenceId = :id, expiresAt = if_not_exists(expiresAt, :expires)"
        values = {":id": inference_id, ":expires": expires}
        actions: list[Any] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": f"inference#{inference_id}"}},
                    "UpdateExpression": "SET outputLocation = :output, "
                    "failureLocation = :failure, updatedAt = :now",
                    "ExpressionAttributeValues": {
                        ":output": {"S": output},
                        ":failure": {"S": failure},
                        ":now": {"N": str(now)},
                    },
                }
            }
        ]
        for location in (output, failure):
            actions.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": {"S": f"location#{location}"}},
                        "UpdateExpression": link,
                        "ConditionExpression": "attribute_not_exists(arrivedAt)",
                        "ExpressionAttributeValues": {
                            k: _serialize(v) for k, v in values.items()
                        },
                    }
                }
            )
        linked = False
        with contextlib.suppress(ClientError):
            self.client.transact_write_items(TransactItems=actions)
            linked = True
        if linked:
            return []

        self.client.update_item(**actions[0]["Update"])
        return [
            location
            for location in (output, failure)
            if "arrivedAt" in self._upsert_location(location, link, values)
        ]

    def record_arrival(self, location: str, now: int) -> str | None:
        """Note that an object arrived at a location; return its inference id if known."""
        item = self._upsert_location(
            location,
            "SET arrivedAt = if_not_exists(arrivedAt, :now), "
            "expiresAt = if_not_exists(expiresAt, :expires)",
            {":now": now, ":expires": now // 1000 + self._retention_seconds},
        )
        inference_id = item.get("inferenceId")
        return str(inference_id) if inference_id is not None else None

    def fail_submission(
        self, inference_id: str, reason: str, now: int, created_at: int
    ) -> None:
        """Mark the record a submission created (``created_at``) failed because
        SageMaker refused it; its id may be used again (:meth:`create`)."""
        # A result that finished it first stands, and so does a record made since by
        # a new submission under the same id (a retried write may land late).
        with contextlib.suppress(_ConflictError):
            self._update(
                inference_id,
                "SET #status = :failed, failureReason = :reason, updatedAt = :now, "
                "completedAt = :now, submissionFailed = :yes",
                {
                    ":failed": Status.FAILED.value,
                    ":reason": reason,
                    ":now": now,
                    ":pending": Status.PENDING.value,
                    ":created": created_at,
                    ":yes": True,
                },
                condition="#status = :pending AND createdAt = :created",
            )

    def complete(
        self,
        inference_id: str,
        *,
        status: Status,
        result_location: str,
        content_type: str | None,
        size: int | None,
        failure_reason: str | None,
        delivery: Delivery,
        now: int,
    ) -> tuple[bool, InferenceRecord | None]:
        """Finish a pending record; say whether this call did, and how it now reads."""
        values: dict[str, Any] = {
            ":status": status.value,
            ":location": result_location,
            ":delivery": delivery.value,
            ":now": now,
            ":pending": Status.PENDING.value,
        }
        expression = (
            "SET #status = :status, resultLocation = :location, delivery = :delivery, "
            "completedAt = :now, updatedAt = :now"
        )
        optional = {
            "resultContentType": content_type,
            "resultSize": size,
            "failureReason": failure_reason,
        }
        for name, value in optional.items():
            if value is not None:
                expression += f", {name} = :{name}"
                values[f":{name}"] = value
        try:
            item = self._update(
                inference_id, expression, values, condition="#status = :pending"
            )
        except _ConflictError as conflict:
            current = conflict.item
            return False, _from_item(current) if current else self.get(inference_id)
        return True, _from_item(item) if item else self.get(inference_id)

    def claim_delivery(self, inference_id: str, now: int, lease_ms: int) -> bool:
        """Take the right to deliver; a crashed delivery's lease runs out and is taken over."""
        try:
            self._update(
                inference_id,
                "SET delivery = :delivering, deliveryLeaseUntil = :until, updatedAt = :now",
                {
                    ":delivering": Delivery.DELIVERING.value,
                    ":pending": Delivery.PENDING.value,
                    ":until": now + lease_ms,
                    ":now": now,
                },
                condition="delivery = :pending OR "
                "(delivery = :delivering AND deliveryLeaseUntil < :now)",
            )
        except _ConflictError:
            return False
        return True

    def finish_delivery(self, inference_id: str, outcome: Delivery, now: int) -> None:
        """Record how the delivery ended."""
        self._update(
            inference_id,
            "SET delivery = :outcome, updatedAt = :now REMOVE deliveryLeaseUntil",
            {":outcome": outcome.value, ":now": now},
        )

    def _update(
        self,
        inference_id: str,
        expression: str,
        values: dict[str, Any],
        condition: str | None = None,
    ) -> dict[str, Any]:
        """Update a record and return it as it now is (as it was, in a conflict)."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": f"inference#{inference_id}"}},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": {k: _serialize(v) for k, v in values.items()},
            "ConditionExpression": condition or "attribute_exists(pk)",
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if "#status" in expression or (condition and "#status" in condition):
            params["ExpressionAttributeNames"] = {"#status": "status"}
        try:
            response = self.client.update_item(**params)
        except ClientError as error:
            if _code(error) == _CONDITION_FAILED:
                raise _ConflictError(_plain(error.response.get("Item"))) from error
            raise
        return _plain(response.get("Attributes"))

    def _upsert_location(
        self, location: str, expression: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        response = self.client.update_item(
            TableName=self._table,
            Key={"pk": {"S": f"location#{location}"}},
            UpdateExpression=expression,
            ExpressionAttributeValues={k: _serialize(v) for k, v in values.items()},
            ReturnValues="ALL_NEW",
        )
        return {k: _deserialize(v) for k, v in response.get("Attributes", {}).items()}


class _ConflictError(Exception):
    """A conditional write lost; ``item`` is the record as it was, when known."""

    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("condition failed")
        self.item = item


def _plain(item: Any) -> dict[str, Any]:
    return {k: _deserialize(v) for k, v in (item or {}).items()}


def _serialize(value: Any) -> dict[str, Any]:
    """A value in DynamoDB's attribute form (the records hold no other kinds)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, dict):
        return {"M": {name: _serialize(item) for name, item in value.items()}}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"no DynamoDB form for {type(value).__name__}")


def _deserialize(attribute: Mapping[str, Any]) -> Any:
    """A value from DynamoDB's attribute form."""
    [(kind, raw)] = attribute.items()
    if kind == "N":
        return int(raw) if raw.lstrip("-").isdigit() else float(raw)
    if kind == "M":
        return {name: _deserialize(item) for name, item in raw.items()}
    if kind == "L":
        return [_deserialize(item) for item in raw]
    if kind == "NULL":
        return None
    return raw


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _to_item(record: InferenceRecord) -> dict[str, Any]:
    values = asdict(record)
    item = {_FIELDS[k]: v for k, v in values.items() if k in _FIELDS and v is not None}
    item["status"] = record.status.value
    item["delivery"] = record.delivery.value
    if record.callback is not None:
        item["callback"] = {
            "kind": record.callback.kind.value,
            "target": record.callback.target,
        }
    return item


def _from_item(item: dict[str, Any]) -> InferenceRecord:
    names = {v: k for k, v in _FIELDS.items()}
    values: dict[str, Any] = {names[k]: v for k, v in item.items() if k in names}
    for field in ("created_at", "updated_at", "completed_at", "result_size"):
        if values.get(field) is not None:
            values[field] = int(values[field])
    for field in ("request_ttl_seconds", "invocation_timeout_seconds"):
        values[field] = int(values[field])
    values["status"] = Status(values["status"])
    values["delivery"] = Delivery(values.get("delivery", Delivery.NONE.value))
    callback = item.get("callback")
    if callback:
        values["callback"] = Callback(CallbackKind(callback["kind"]), callback["target"])
    return InferenceRecord(**values)
