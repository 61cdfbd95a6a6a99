"""The SageMaker Runtime stand-in and its model containers, driven through boto3."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from sklearn.datasets import load_breast_cancer

from offline.sagemaker_runtime import ContainerClient, serve

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "offline-async"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) + b"\x00\xff\r\n"
STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_call(port: int, method: str, path: str) -> tuple[int, bytes]:
    """One plain HTTP request to a local server."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(process: subprocess.Popen[bytes], port: int, path: str, log: Path) -> None:
    """Poll until the server answers 200 on path, failing fast if it died."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited early:\n{log.read_text()}")
        try:
            if http_call(port, "GET", path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"server on port {port} not ready:\n{log.read_text()}")


@dataclass
class Stack:
    """Ports and clients of the running offline pieces."""

    runtime_port: int
    echo_port: int
    xgb_port: int
    client: Any
    s3: Any


def aws_session() -> boto3.session.Session:
    """A session with dummy credentials that never looks anything up."""
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def runtime_client(port: int) -> Any:
    """sagemaker-runtime client aimed at the stand-in, without retries."""
    config = Config(retries={"total_max_attempts": 1}, read_timeout=30)
    return aws_session().client(
        "sagemaker-runtime", endpoint_url=f"http://127.0.0.1:{port}", config=config
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start moto, both containers and the stand-in as subprocesses."""
    logs = tmp_path_factory.mktemp("offline-logs")
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true", "PYTHONPATH": str(ROOT)}
    ports = {name: free_port() for name in ("s3", "xgb", "echo", "runtime")}
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = logs / f"{name}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, *args], cwd=ROOT, env=env, stdout=sink, stderr=sink
            )
        processes.append(process)
        return process, log

    try:
        s3_port = str(ports["s3"])
        moto = start("moto", "-m", "moto.server", "-H", "127.0.0.1", "-p", s3_port)
        xgb = start("xgb", "-m", "offline.containers", "xgb", "--port", str(ports["xgb"]))
        echo = start(
            "echo", "-m", "offline.containers", "echo", "--port", str(ports["echo"])
        )
        wait_ready(moto[0], ports["s3"], "/moto-api/", moto[1])
        wait_ready(xgb[0], ports["xgb"], "/ping", xgb[1])
        wait_ready(echo[0], ports["echo"], "/ping", echo[1])
        s3_endpoint = f"http://127.0.0.1:{ports['s3']}"
        runtime = start(
            "runtime",
            "-m",
            "offline.sagemaker_runtime",
            "--port",
            str(ports["runtime"]),
            "--endpoint",
            f"breast-cancer-xgb=http://127.0.0.1:{ports['xgb']}",
            "--endpoint",
            f"echo=http://127.0.0.1:{ports['echo']}",
            "--s3-endpoint",
            s3_endpoint,
            "--async-output",
            f"s3://{BUCKET}/outputs",
            "--async-failure",
            f"s3://{BUCKET}/failures",
        )
        wait_ready(runtime[0], ports["runtime"], "/ping", runtime[1])
        s3 = aws_session().client("s3", endpoint_url=s3_endpoint)
        s3.create_bucket(Bucket=BUCKET)
        yield Stack(
            ports["runtime"],
            ports["echo"],
            ports["xgb"],
            runtime_client(ports["runtime"]),
            s3,
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def csv_rows(indices: list[int]) -> tuple[bytes, list[int]]:
    """CSV payload of breast-cancer rows and their labels."""
    data = load_breast_cancer()
    lines = [",".join(repr(float(v)) for v in data.data[i]) for i in indices]
    return "\n".join(lines).encode(), [int(data.target[i]) for i in indices]


def test_xgb_scores_follow_labels(stack: Stack) -> None:
    data = load_breast_cancer()
    benign = [i for i, label in enumerate(data.target) if label == 1][:3]
    malignant = [i for i, label in enumerate(data.target) if label == 0][:3]
    body, labels = csv_rows(benign + malignant)

    response = stack.client.invoke_endpoint(
        EndpointName="breast-cancer-xgb", Body=body, ContentType="text/csv"
    )

    assert response["ContentType"] == "text/csv"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    scores = [float(line) for line in response["Body"].read().decode().splitlines()]
    for score, label in zip(scores, labels, strict=True):
        assert (score > 0.5) == (label == 1), (score, label)


def test_xgb_json_accept_and_row_count(stack: Stack) -> None:
    body, _ = csv_rows(list(range(10)))

    as_json = stack.client.invoke_endpoint(
        EndpointName="breast-cancer-xgb",
        Body=body,
        ContentType="text/csv",
        Accept="application/json",
    )
    as_csv = stack.client.invoke_endpoint(
        EndpointName="breast-cancer-xgb", Body=body, ContentType="text/csv"
    )

    assert as_json["ContentType"] == "application/json"
    predictions = json.loads(as_json["Body"].read())["predictions"]
    assert len(predictions) == 10
    assert all(set(p) == {"score"} and 0.0 <= p["score"] <= 1.0 for p in predictions)
    assert len(as_csv["Body"].read().decode().splitlines()) == 10


def test_xgb_malformed_csv_is_model_error(stack: Stack) -> None:
    with pytest.raises(stack.client.exceptions.ModelError) as caught:
        stack.client.invoke_endpoint(
            EndpointName="breast-cancer-xgb", Body=b"1,2,3", ContentType="text/csv"
        )

    assert caught.value.response["OriginalStatusCode"] == 400
    assert "expected 30 columns" in caught.value.response["OriginalMessage"]


def test_echo_returns_binary_body_and_records_it(stack: Stack) -> None:
    http_call(stack.runtime_port, "DELETE", "/offline/requests")

    response = stack.client.invoke_endpoint(
        EndpointName="echo",
        Body=PNG,
        ContentType="image/png",
        CustomAttributes="trace=abc",
        InferenceId="png-1",
    )

    assert response["Body"].read() == PNG
    assert response["ContentType"] == "image/png"
    assert response["CustomAttributes"] == "trace=abc"
    recorded = json.loads(http_call(stack.runtime_port, "GET", "/offline/requests")[1])
    assert [
        (r["endpoint"], r["route"], r["inferenceId"], r["size"]) for r in recorded
    ] == [("echo", "sync", "png-1", len(PNG))]


def test_container_status_raises_model_error(stack: Stack) -> None:
    with pytest.raises(stack.client.exceptions.ModelError) as caught:
        stack.client.invoke_endpoint(
            EndpointName="echo", Body=b"x", CustomAttributes="status=400"
        )

    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert error["Error"]["Message"].startswith(
        "Received client error (400) from primary"
    )
    assert error["LogStreamArn"].endswith(":log-group:/aws/sagemaker/Endpoints/echo")


def test_throttle_fault_raises_throttling_exception(stack: Stack) -> None:
    with pytest.raises(ClientError) as caught:
        stack.client.invoke_endpoint(
            EndpointName="echo", Body=b"x", CustomAttributes="fault=throttle"
        )

    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        ("not-ready", "ModelNotReadyException", 429),
        ("unavailable", "ServiceUnavailable", 503),
        ("internal", "InternalFailure", 500),
    ],
)
def test_modelled_service_faults(
    stack: Stack, fault: str, code: str, status: int
) -> None:
    with pytest.raises(getattr(stack.client.exceptions, code)) as caught:
        stack.client.invoke_endpoint(
            EndpointName="echo", Body=b"x", CustomAttributes=f"fault={fault}"
        )

    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_unknown_endpoint_is_validation_error(stack: Stack) -> None:
    with pytest.raises(stack.client.exceptions.ValidationError) as caught:
        stack.client.invoke_endpoint(EndpointName="nope", Body=b"x")

    message = caught.value.response["Error"]["Message"]
    assert message == "Endpoint nope of account 123456789012 not found."


def test_long_inference_id_is_validation_error(stack: Stack) -> None:
    with pytest.raises(stack.client.exceptions.ValidationError) as caught:
        stack.client.invoke_endpoint(EndpointName="echo", Body=b"x", InferenceId="i" * 65)

    assert "'inferenceId'" in caught.value.response["Error"]["Message"]


def test_concurrent_calls_overlap(stack: Stack) -> None:
    http_call(stack.echo_port, "DELETE", "/offline/stats")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            stack.client.invoke_endpoint(
                EndpointName="echo", Body=b"x", CustomAttributes="delay_ms=100"
            )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    stats = json.loads(http_call(stack.echo_port, "GET", "/offline/stats")[1])
    assert stats["requests"] == 10
    assert stats["maxInFlight"] == 10


def test_async_writes_output_to_s3(stack: Stack) -> None:
    payload = b'{"hello": "async"}'
    stack.s3.put_object(Bucket=BUCKET, Key="inputs/one.json", Body=payload)

    response = stack.client.invoke_endpoint_async(
        EndpointName="echo",
        InputLocation=f"s3://{BUCKET}/inputs/one.json",
        ContentType="application/json",
        InferenceId="async-id-1",
    )

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["InferenceId"] == "async-id-1"
    output, failure = response["OutputLocation"], response["FailureLocation"]
    assert output.startswith(f"s3://{BUCKET}/outputs/")
    assert output.endswith(".out")
    assert failure.startswith(f"s3://{BUCKET}/failures/")
    assert failure.endswith("-error.out")
    assert "async-id-1" not in output
    assert "async-id-1" not in failure
    key = output.removeprefix(f"s3://{BUCKET}/")
    deadline = time.monotonic() + 10
    while True:
        try:
            written = stack.s3.get_object(Bucket=BUCKET, Key=key)
            break
        except stack.s3.exceptions.NoSuchKey:
            assert time.monotonic() < deadline, "async output never written"
            time.sleep(0.05)
    assert written["Body"].read() == payload
    assert written["ContentType"] == "application/json"


def test_container_timeout_and_refused_connection(stack: Stack) -> None:
    endpoints = {
        "slow": f"http://127.0.0.1:{stack.echo_port}",
        "gone": f"http://127.0.0.1:{free_port()}",
    }
    server = serve(0, endpoints, container_timeout=0.2)
    try:
        client = runtime_client(server.port)
        with pytest.raises(client.exceptions.ModelError) as timed_out:
            client.invoke_endpoint(
                EndpointName="slow", Body=b"x", CustomAttributes="delay_ms=800"
            )
        with pytest.raises(client.exceptions.ServiceUnavailable):
            client.invoke_endpoint(EndpointName="gone", Body=b"x")
    finally:
        server.stop()

    assert "timed out" in timed_out.value.response["Error"]["Message"]


def test_client_gone_before_a_slow_model_is_one_quiet_line(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="offline.sagemaker_runtime")
    server = serve(0, {"slow": f"http://127.0.0.1:{stack.echo_port}"})
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=0.3)
        # A body big enough that writing it back to a closed socket must fail.
        connection.request(
            "POST",
            "/endpoints/slow/invocations",
            body=b"x" * 5_000_000,
            headers={"X-Amzn-SageMaker-Custom-Attributes": "delay_ms=800"},
        )
        with pytest.raises(TimeoutError):
            connection.getresponse()
        connection.close()
        deadline = time.monotonic() + 10
        while not any("client left" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the stand-in never noticed"
            time.sleep(0.05)
    finally:
        server.stop()

    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]


def test_container_connections_dropped_while_idle_are_replaced():
    """A container closing idle keep-alive connections costs no failed invocation."""

    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 0.2  # idle connections are closed after this long

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = ContainerClient(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        barrier = threading.Barrier(4)

        def call() -> None:
            barrier.wait()
            client.post("/invocations", b"x", {}, timeout=5)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(0.6)  # every pooled connection is closed by the container now

        status, _, body = client.post("/invocations", b"x", {}, timeout=5)

        assert (status, body) == (200, b"ok")
    finally:
        client.close()
        server.shutdown()
        server.server_close()
