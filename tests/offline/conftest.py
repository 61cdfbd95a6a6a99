"""A moto server on a free loopback port, shared by the offline tests that need AWS."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MOTO_STARTUP_SECONDS = 30.0


def _free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    """Tell whether moto answers on a loopback port."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/moto-api/")
        return connection.getresponse().status > 0
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start moto in server mode on 127.0.0.1 for the session; yield its URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + MOTO_STARTUP_SECONDS
        while not _answers(port):
            if process.poll() is not None:
                pytest.fail(f"moto exited early:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"moto not ready:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
