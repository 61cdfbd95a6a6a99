"""Run one function on one event file against the running offline stack.

``python -m offline.invoke FUNCTION EVENT_FILE`` (``make invoke``) works like
``sam local invoke FUNCTION -e EVENT_FILE``: the function runs in a fresh local
Lambda worker with the template's environment, its endpoint URLs pointing at
the offline stack (default ports, or MOTO_PORT and SAGEMAKER_PORT, or flags).
The template's buckets, queues, tables and secrets are looked up in (or, if
missing, created in) the running moto, so the environment names the same
resources as the stack's. The response JSON goes to stdout, the function's logs
to stderr; the exit status is 1 when the function fails and 2 when it cannot run
at all.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from offline.lambda_runtime import FunctionPool
from offline.provision import (
    ProvisionError,
    planned_resources,
    provision,
    webhook_secret_ids,
)
from offline.stack import FUNCTION_EXTRA_ENV, LOCAL_PARAMETERS, LOOPBACK, StackPorts
from offline.template import (
    DEFAULT_TEMPLATE,
    SamTemplate,
    TemplateError,
    load_template,
    parse_parameter_overrides,
)
from offline.webhook_receiver import secret_from_env

log = logging.getLogger(__name__)


def _reachable(port: int) -> bool:
    """Tell whether something listens on a loopback port."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return True
    except OSError:
        return False


def _with_resources(
    path: Path, overrides: dict[str, str], moto_url: str, moto_is_up: bool
) -> SamTemplate:
    """Load the template with its resources resolved to those in moto."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    template = load_template(path, overrides)
    resources = planned_resources(template, moto_url)
    if moto_is_up:
        secret_values = dict.fromkeys(webhook_secret_ids(template), secret_from_env())
        try:
            # Idempotent: on a running stack this only looks the resources up.
            resources = provision(template, moto_url, secret_values=secret_values)
        except (BotoCoreError, ClientError, ProvisionError) as error:
            log.warning("resources not looked up in moto: %s", error)
    local = {logical_id: item.local() for logical_id, item in resources.items()}
    return load_template(path, overrides, local)


def _read_event(source: str) -> Any:
    """Read the event JSON from a file, or from stdin for "-"."""
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    return json.loads(text)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    defaults = StackPorts.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m offline.invoke",
        description="Invoke one function of the template on one event, locally.",
    )
    parser.add_argument("function", help="logical id of the function, e.g. ApiFunction")
    parser.add_argument("event", help="event JSON file, or - for stdin")
    parser.add_argument(
        "--parameter-overrides", nargs="+", default=[], metavar="KEY=VALUE"
    )
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("--moto-port", type=int, default=defaults.moto)
    parser.add_argument("--sagemaker-port", type=int, default=defaults.sagemaker)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Invoke, print the response and return the exit status."""
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    for name, port in (
        ("moto", args.moto_port),
        ("SageMaker Runtime", args.sagemaker_port),
    ):
        if not _reachable(port):
            log.warning(
                "offline stack not reachable: %s on port %d (start it: make run)",
                name,
                port,
            )
    moto_url = f"http://{LOOPBACK}:{args.moto_port}"
    try:
        overrides = {
            **LOCAL_PARAMETERS,
            **parse_parameter_overrides(args.parameter_overrides),
        }
        template = _with_resources(
            args.template, overrides, moto_url, _reachable(args.moto_port)
        )
        spec = template.function(args.function)
        event = _read_event(args.event)
    except (TemplateError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # The function's stdout (its logs) joins stderr: stdout carries only the response.
    with FunctionPool(
        spec,
        FUNCTION_EXTRA_ENV,
        aws_endpoint_url=moto_url,
        sagemaker_runtime_url=f"http://{LOOPBACK}:{args.sagemaker_port}",
        max_workers=1,
        stdout=sys.stderr.fileno(),
    ) as pool:
        result = pool.invoke(event)
    sys.stdout.write(result.payload_bytes.decode("utf-8", "replace") + "\n")
    sys.stdout.flush()
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
