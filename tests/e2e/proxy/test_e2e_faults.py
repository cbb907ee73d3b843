"""The emulator's fault injection through sigwatch: a dropped connection becomes sigwatch's own 502 in
the request's protocol shape (which boto3 retries), an injected server error is classified as retryable,
and both show in the metrics. And the emulator itself takes an upload cut short in its stride."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.retries.standard
import pytest
from e2e_proxy_support import (
    EXAMPLE_CREDENTIALS,
    LoopThread,
    RunningEmulator,
    RunningSigwatch,
    boto,
    client_error,
    request_lines,
    start_emulator,
    start_sigwatch,
)
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy.emulator import EmulatorSettings, load_scenario

pytestmark = pytest.mark.e2e

SCENARIO = """\
seed = 1

[[drop]]
service = "s3"
operations = ["ListBuckets"]
rate = 1.0

[[error]]
service = "storagegateway"
operations = ["ListGateways"]
code = "InternalServerError/GatewayInternalError"
rate = 1.0
"""


@pytest.fixture(scope="module")
def faulty(
    servers: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningEmulator, RunningSigwatch]]:
    scenario = tmp_path_factory.mktemp("scenario") / "faults.toml"
    scenario.write_text(SCENARIO)
    settings = EmulatorSettings(credentials=EXAMPLE_CREDENTIALS, scenario=load_scenario(Path(scenario)))
    emulator = servers.run(start_emulator(settings))
    proxy = servers.run(start_sigwatch(emulator.url, "observe"))
    yield emulator, proxy
    servers.run(proxy.server.stop(grace=1.0))
    servers.run(emulator.runner.cleanup())


def counter(proxy: RunningSigwatch, name: str, **wanted: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(generate_latest(proxy.registry).decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in wanted.items()):
                total += sample.value
    return total


def test_dropped_connections_and_injected_errors(
    faulty: tuple[RunningEmulator, RunningSigwatch], monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    _, proxy = faulty
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda *_: 0)
    retrying = {"retries": {"mode": "standard", "total_max_attempts": 3}}

    dropped = client_error(boto("s3", proxy.url, **retrying).list_buckets)
    assert (dropped["Error"]["Code"], dropped["ResponseMetadata"]["HTTPStatusCode"]) == ("BadGateway", 502)
    assert dropped["ResponseMetadata"]["HTTPHeaders"]["x-sigwatch-origin"] == "proxy"
    assert dropped["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/xml"  # S3's shape
    assert dropped["ResponseMetadata"]["RetryAttempts"] == 2

    failed = client_error(boto("storagegateway", proxy.url, **retrying).list_gateways)
    assert (failed["Error"]["Code"], failed["error"]["errorCode"]) == (
        "InternalServerError",
        "GatewayInternalError",
    )
    assert failed["ResponseMetadata"]["HTTPHeaders"]["x-sigwatch-error-class"] == "server; retryable=true"

    lines = request_lines(logs, 6)  # written (and counted) once each answer is out: wait for all six
    assert [(line["operation"], line["retry_attempt"], line["status"]) for line in lines] == [
        ("ListBuckets", 1, 502),
        ("ListBuckets", 2, 502),
        ("ListBuckets", 3, 502),
        ("ListGateways", 1, 500),
        ("ListGateways", 2, 500),
        ("ListGateways", 3, 500),
    ]
    assert {line["upstream_failure"] for line in lines[:3]} == {"reset"}
    assert counter(proxy, "sigwatch_upstream_connection_failures_total", reason="reset") == 3
    assert all(line["error"]["operation_error"] == "GatewayInternalError" for line in lines[3:])
    assert (
        counter(
            proxy,
            "sigwatch_upstream_errors_total",
            service="storagegateway",
            code="GatewayInternalError",
            category="server",
            retryable="true",
        )
        == 3
    )


def test_the_emulator_drops_an_upload_cut_short_quietly(emulator: RunningEmulator, logs: Any) -> None:
    """A client that goes away in the middle of its body (Ctrl-C during an upload, or sigwatch aborting
    a refused stream) is nothing to answer: no error line with a traceback, and the next call works."""
    signed = boto("s3", emulator.url)
    signed.create_bucket(Bucket="e2e-cut-short")
    host, port = emulator.url.removeprefix("http://").split(":")
    received = len(emulator.received)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"PUT /e2e-cut-short/k HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() + b"\r\n"
            b"Content-Length: 100000\r\n\r\n" + b"x" * 1000
        )
        deadline = time.monotonic() + 10
        while len(emulator.received) == received and time.monotonic() < deadline:
            time.sleep(0.01)  # the emulator is reading the body: now the client goes away
    assert emulator.settled()
    assert [event["message"] for event in logs.events("library") if event["level"] == "error"] == []
    assert signed.list_objects_v2(Bucket="e2e-cut-short")["KeyCount"] == 0
