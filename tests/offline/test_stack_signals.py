"""``python -m offline.stack`` under signals: clean stops, and no orphans even on SIGKILL.

Each test runs the real command (as ``make run`` does) on free loopback ports, so
each costs one stack start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from offline.stack import PORT_VARIABLES

# Children are found through /proc, and only Linux has PR_SET_PDEATHSIG.
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="needs Linux (/proc, prctl)"
)
ROOT = Path(__file__).resolve().parents[2]
READY_LINE = b"Ctrl-C stops everything."
STARTUP_SECONDS = 150.0
# Ports of the stack's child processes (the API and the receiver live in the stack).
CHILD_PORTS = ("moto", "sagemaker", "xgb", "echo")


@dataclass
class RunningStack:
    """A stack process, its children and where it writes."""

    process: subprocess.Popen[bytes]
    ports: dict[str, int]
    output: Path
    children: list[int]

    def text(self) -> str:
        """Return everything the stack printed so far."""
        return self.output.read_text(errors="replace")


def free_ports(count: int) -> list[int]:
    """Pick distinct free loopback ports."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_is_free(port: int) -> bool:
    """Tell whether nothing listens on a loopback port any more."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def children_of(pid: int) -> list[int]:
    """Return the pids whose parent is pid (from /proc)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Tell whether a pid still runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    """Poll a condition until it holds or the time is up."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


@pytest.fixture
def running_stack(tmp_path: Path) -> Iterator[RunningStack]:
    """Start the stack as make run does; whatever is left at the end is killed."""
    ports = dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True))
    env = {
        **os.environ,
        "AWS_EC2_METADATA_DISABLED": "true",
        **{PORT_VARIABLES[name]: str(port) for name, port in ports.items()},
    }
    output = tmp_path / "stack.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "offline.stack", "--quiet", "--no-prewarm"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    stack = RunningStack(process, ports, output, [])
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while READY_LINE not in output.read_bytes():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the stack did not come up:\n{stack.text()}")
            time.sleep(0.2)
        stack.children = children_of(process.pid)
        yield stack
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        # Each child leads its own process group: take any leftover group down.
        for pid in stack.children:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


def test_repeated_signals_stop_everything_cleanly(running_stack: RunningStack) -> None:
    process = running_stack.process
    assert running_stack.children

    # make forwards SIGTERM, people press Ctrl-C again: signals keep landing, the
    # first ones back to back, through the whole cleanup and the exit.
    deadline = time.monotonic() + 60
    sent = 0
    while process.poll() is None and time.monotonic() < deadline:
        process.send_signal(signal.SIGINT if sent % 3 == 2 else signal.SIGTERM)
        sent += 1
        time.sleep(0.0 if sent < 3 else 0.05)

    assert sent > 3
    assert process.wait(timeout=5) == 0, running_stack.text()
    text = running_stack.text()
    assert "Traceback" not in text
    assert "stopping the offline stack" in text
    assert not [pid for pid in running_stack.children if alive(pid)]
    for name in CHILD_PORTS:
        assert port_is_free(running_stack.ports[name]), name


def test_sigkill_of_the_stack_leaves_no_children(running_stack: RunningStack) -> None:
    running_stack.process.kill()
    running_stack.process.wait()

    for name in CHILD_PORTS:
        port = running_stack.ports[name]
        assert wait_until(lambda port=port: port_is_free(port), 10), name
    assert wait_until(
        lambda: not [pid for pid in running_stack.children if alive(pid)], 10
    )
