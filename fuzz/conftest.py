"""Fuzzing runs only where nothing can leave the machine, on its own offline stack.

The fuzzers make up callback URLs, input locations and reply queues at random. They
run in a network namespace whose only interface is loopback (``make fuzz`` enters one
before the stack starts), so even a broken guard cannot send a packet anywhere else.
"""

import os
import socket
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from offline.stack import OfflineStack

os.environ.update(
    AWS_EC2_METADATA_DISABLED="true",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="InferenceGatewayFuzz",
)

settings.register_profile(
    "fuzz",
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("fuzz")

# Statuses the API answered, by operation and generation mode.
ANSWERS: defaultdict[str, Counter[int]] = defaultdict(Counter)


def interfaces() -> list[str]:
    """Names of this network namespace's interfaces."""
    return [name for _, name in socket.if_nameindex()]


def pytest_configure(config: pytest.Config) -> None:
    if interfaces() != ["lo"]:
        raise pytest.UsageError(
            "fuzzing needs a network namespace with loopback only "
            f"(found {', '.join(interfaces())}); run it with `make fuzz`"
        )


@pytest.fixture(scope="session")
def offline_stack() -> Iterator[OfflineStack]:
    """The offline stack on free loopback ports, with a short sync limit."""
    # moto mended for concurrent DynamoDB transactions, as the fault campaign runs it.
    with OfflineStack(
        parameter_overrides={"SyncTimeoutSeconds": "2"}, mended_moto=True
    ) as stack:
        yield stack


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ANSWERS:
        return
    terminalreporter.section("answers by operation")
    for operation, statuses in sorted(ANSWERS.items()):
        tally = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
        terminalreporter.write_line(f"{operation}: {tally}")
