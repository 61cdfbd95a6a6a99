"""moto in server mode, with DynamoDB made to hold up under concurrent writers.

``python -m offline.moto_server -H 127.0.0.1 -p PORT`` takes moto.server's arguments.
Three defects of moto 5's DynamoDB show only under load, and all are mended here:

- TransactWriteItems deep-copies every table it touches, to roll back a cancelled
  transaction by putting the copy back. A write from another request thread during
  the copy breaks it ("dictionary changed size during iteration": the call answers
  500), and a rollback puts back a table that misses writes made meanwhile. Every
  DynamoDB request here holds one lock, so each sees the tables still.
- The copy grows with the table (about 90 ms at 4,000 items, under that lock). Here
  a transaction saves only the items it names, and puts those back if it fails.
- Each condition expression is parsed three times per item it guards (about 0.7 ms
  a parse), so a transaction of ten claims took three times as long as one, where
  DynamoDB's latency hardly grows with the items of a transaction. Here a parse is
  reused while its expression, names and values are the same (as for every item of
  one transaction); the trees are only read, and only under the lock.

Other services keep moto's threads: SQS long polls must not wait on each other.
"""

from __future__ import annotations

import contextlib
import copy
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main as moto_main

_DYNAMODB_LOCK = threading.RLock()
# The name under which moto's DynamoDB models module holds the copy module.
_COPY_MODULE = "copy"
_CALL_ACTION = DynamoHandler.call_action
_TRANSACT = DynamoDBBackend.transact_write_items
_PARSE = ConditionExpressionParser.parse
# Parses kept: a few transactions' worth (their values change with every request).
_MAX_PARSES = 64
# A condition (None where a request has none), its names and its values, as JSON.
type _ParseKey = tuple[str | None, str, str]

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


class _ParsedOnce:
    """moto's condition parser, reusing the parse of an expression seen before."""

    def __init__(self) -> None:
        self._parsed: dict[_ParseKey, tuple[Any, list[str], list[str]]] = {}

    def parse(self, parser: ConditionExpressionParser) -> Any:
        """Parse as moto does, or hand back the same tree and the names it found."""
        key = (
            parser.condition_expression,
            json.dumps(parser.expression_attribute_names, sort_keys=True),
            json.dumps(parser.expression_attribute_values, sort_keys=True),
        )
        kept = self._parsed.get(key)
        if kept is None:
            # The tree holds the values it compares with; moto may keep a request's
            # values in an item (a set, later added to in place), so the tree kept
            # gets copies of its own.
            own = ConditionExpressionParser(
                parser.condition_expression,
                copy.deepcopy(parser.expression_attribute_names),
                copy.deepcopy(parser.expression_attribute_values),
            )
            tree = _PARSE(own)  # an invalid expression raises, and is not kept
            if len(self._parsed) >= _MAX_PARSES:
                self._parsed.clear()
            kept = (tree, own.expr_attr_names_found, own.expr_attr_values_found)
            self._parsed[key] = kept
        parser.expr_attr_names_found = list(kept[1])
        parser.expr_attr_values_found = list(kept[2])
        return kept[0]

    def method(self) -> Callable[[ConditionExpressionParser], Any]:
        """``parse`` as a function, to stand in the parser's class."""

        def parse(parser: ConditionExpressionParser) -> Any:
            return self.parse(parser)

        return parse


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
    parsed = _ParsedOnce()
    setattr(dynamodb_models, _COPY_MODULE, _TablesKeptInPlace())
    setattr(DynamoHandler, "call_action", _one_at_a_time)  # noqa: B010
    setattr(DynamoDBBackend, "transact_write_items", _transact_write_items)  # noqa: B010
    setattr(ConditionExpressionParser, "parse", parsed.method())  # noqa: B010
    try:
        yield
    finally:
        setattr(dynamodb_models, _COPY_MODULE, saved_copy)
        setattr(DynamoHandler, "call_action", _CALL_ACTION)  # noqa: B010
        setattr(DynamoDBBackend, "transact_write_items", _TRANSACT)  # noqa: B010
        setattr(ConditionExpressionParser, "parse", _PARSE)  # noqa: B010


def main(argv: list[str] | None = None) -> None:
    """Serve as moto.server does, with the mends in place."""
    with dynamodb_mended():
        moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
