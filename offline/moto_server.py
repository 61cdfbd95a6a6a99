"""moto in server mode, with DynamoDB made to hold up under concurrent writers.

``python -m offline.moto_server -H 127.0.0.1 -p PORT`` takes moto.server's arguments.
Two defects of moto 5's DynamoDB show only under load, and both are mended here:

- TransactWriteItems deep-copies every table it touches, to roll back a cancelled
  transaction by putting the copy back. A write from another request thread during
  the copy breaks it ("dictionary changed size during iteration": the call answers
  500), and a rollback puts back a table that misses writes made meanwhile. Every
  DynamoDB request here holds one lock, so each sees the tables still.
- The copy grows with the table (about 90 ms at 4,000 items, under that lock). Here
  a transaction saves only the items it names, and puts those back if it fails.

Other services keep moto's threads: SQS long polls must not wait on each other.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import threading
from collections.abc import Iterator
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main as moto_main

_DYNAMODB_LOCK = threading.RLock()
# The name under which moto's DynamoDB models module holds the copy module.
_COPY_MODULE = "copy"
_CALL_ACTION = DynamoHandler.call_action
_TRANSACT = DynamoDBBackend.transact_write_items

# One item a transaction names: table, key, and the item as it was (None: absent).
type _Saved = tuple[str, dict[str, Any], dict[str, Any] | None]


class _TablesKeptInPlace:
    """The copy module as moto's DynamoDB uses it, except that tables are not copied."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        """Copy anything but a table; a table stands for itself."""
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _one_at_a_time(self: DynamoHandler) -> Any:
    """Run one DynamoDB action while no other runs."""
    with _DYNAMODB_LOCK:
        return _CALL_ACTION(self)


def _transact_write_items(
    self: DynamoDBBackend, transact_items: list[dict[str, Any]]
) -> None:
    """Run a transaction; if it fails, put back the items it names as they were."""
    with _DYNAMODB_LOCK:
        saved = [_save(self, item) for item in transact_items]
        try:
            _TRANSACT(self, transact_items)
        except Exception:
            for entry in reversed(saved):
                if entry is not None:
                    _restore(self, entry)
            raise


def _save(backend: DynamoDBBackend, transact_item: dict[str, Any]) -> _Saved | None:
    """Remember one named item as it is; None when the operation names none."""
    try:
        op_type, op = next(iter(transact_item.items()))
        table_name = str(op["TableName"])
        table = backend.get_table(table_name)
        if op_type == "Put":
            key_names = [table.hash_key_attr, table.range_key_attr]
            key = {name: op["Item"][name] for name in key_names if name is not None}
        else:
            key = dict(op["Key"])
        current = backend.get_item(table_name, key)
    except Exception:  # moto reports the operation's own error when it runs it
        return None
    before = current.to_json()["Attributes"] if current is not None else None
    return table_name, key, copy.deepcopy(before)


def _restore(backend: DynamoDBBackend, entry: _Saved) -> None:
    """Put one item back as it was before the transaction."""
    table_name, key, before = entry
    if before is not None:
        backend.put_item(table_name, before)
    elif backend.get_item(table_name, key) is not None:
        backend.delete_item(table_name, key)


@contextlib.contextmanager
def dynamodb_mended() -> Iterator[None]:
    """Apply both mends for the duration of the block (tests), then undo them."""
    saved_copy = getattr(dynamodb_models, _COPY_MODULE)
    setattr(dynamodb_models, _COPY_MODULE, _TablesKeptInPlace())
    setattr(DynamoHandler, "call_action", _one_at_a_time)  # noqa: B010
    setattr(DynamoDBBackend, "transact_write_items", _transact_write_items)  # noqa: B010
    try:
        yield
    finally:
        setattr(dynamodb_models, _COPY_MODULE, saved_copy)
        setattr(DynamoHandler, "call_action", _CALL_ACTION)  # noqa: B010
        setattr(DynamoDBBackend, "transact_write_items", _TRANSACT)  # noqa: B010


def main(argv: list[str] | None = None) -> None:
    """Serve as moto.server does, with the mends in place."""
    with dynamodb_mended():
        moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
