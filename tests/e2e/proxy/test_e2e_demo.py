"""The demo, end to end: the traffic generator through sigwatch behaves like an SDK (invocation ids,
`amz-sdk-request` attempts, retries of throttled and 5xx calls), and `sigwatch demo --traffic` as a real
process fills its metrics endpoint within seconds, then stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from e2e_proxy_support import EXAMPLE_CREDENTIALS, EXAMPLE_KEY_ID, LoopThread, RunningSigwatch, request_lines
from observability.leak_scan import scan_output
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy.emulator import run_demo_traffic
from tests.support.net import free_port

pytestmark = pytest.mark.e2e

SIGWATCH = Path(sys.executable).with_name("sigwatch")


def samples(metrics_text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of metric `name` (the counter's `_total` sample)."""
    found = []
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == name:
                found.append((sample.labels, sample.value))
    return found


def attempts_by_label(proxy: RunningSigwatch) -> dict[str, float]:
    counted: dict[str, float] = defaultdict(float)
    for labels, value in samples(generate_latest(proxy.registry).decode(), "sigwatch_sdk_attempts_total"):
        counted[labels["attempt"]] += value
    return counted


def test_demo_traffic_retries_like_an_sdk(
    servers: LoopThread, observe_proxy: RunningSigwatch, logs: Any
) -> None:
    counted_before = attempts_by_label(observe_proxy)  # the proxy (and its registry) is the session's
    stop = asyncio.Event()
    traffic = asyncio.run_coroutine_threadsafe(
        run_demo_traffic(
            observe_proxy.url,
            EXAMPLE_CREDENTIALS[EXAMPLE_KEY_ID],
            duration=None,
            rate_per_second=2000,
            seed=11,
            stop=stop,
        ),
        servers.loop,
    )
    lines = request_lines(logs, 400, timeout=60)
    servers.loop.call_soon_threadsafe(stop.set)
    traffic.result(timeout=30)
    lines = logs.events("request")
    assert len(lines) >= 400

    calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        assert line["retry_max"] == 3 and line["retry_attempt"] in (1, 2, 3), line
        calls[line["invocation_id"]].append(line)
    attempts_per_call = {invocation: len(attempts) for invocation, attempts in calls.items()}
    # Each call's attempts: 1, 2, ... in order; every attempt but the last failed retryably.
    for attempts in calls.values():
        assert [a["retry_attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
        for failed in attempts[:-1]:
            assert failed["error"] is not None and failed["error"]["retryable"] is True, failed
        last = attempts[-1]
        assert len(attempts) == 3 or last["error"] is None or last["error"]["retryable"] is False, last
    assert {2, 3} <= set(attempts_per_call.values())
    retried_codes = {a["error"]["code"] for attempts in calls.values() for a in attempts[:-1]}
    assert {"ThrottlingException", "SlowDown"} <= retried_codes
    # Calls that do not fail retryably are sent once: a signature problem is not retried.
    rejected = [a for attempts in calls.values() for a in attempts if a["sigv4"] == "invalid"]
    assert rejected and all(attempts_per_call[a["invocation_id"]] == 1 for a in rejected)

    counted = attempts_by_label(observe_proxy)
    by_attempt = {label: counted[label] - counted_before.get(label, 0) for label in counted}
    assert by_attempt["2"] > 0 and by_attempt["3"] > 0
    assert sum(by_attempt.values()) == len(lines)


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def demo_is_showing_everything(metrics: str) -> list[str]:
    """What the metrics endpoint does not show yet (empty: everything the demo is for)."""
    missing = []
    requests = sum(value for _, value in samples(metrics, "sigwatch_requests_total"))
    if requests < 20:
        missing.append(f"requests ({requests})")
    codes = {labels["code"] for labels, value in samples(metrics, "sigwatch_upstream_errors_total") if value}
    for code in ("GatewayNotFound", "ThrottlingException", "NoSuchKey"):
        if code not in codes:
            missing.append(f"error code {code} (seen: {sorted(codes)})")
    checks = {
        labels["check"] for labels, value in samples(metrics, "sigwatch_validation_findings_total") if value
    }
    for check in ("clock.window", "signature.verify"):
        if check not in checks:
            missing.append(f"finding {check} (seen: {sorted(checks)})")
    retried = sum(
        value for labels, value in samples(metrics, "sigwatch_sdk_attempts_total") if labels["attempt"] != "1"
    )
    if not retried:
        missing.append("attempts > 1")
    return missing


@pytest.mark.slow
def test_sigwatch_demo_with_traffic_as_a_process(tmp_path: Path) -> None:
    if not SIGWATCH.exists():
        pytest.skip(f"the sigwatch command is not installed next to {sys.executable}")
    proxy, admin, emulator = free_port(), free_port(), free_port()
    output = tmp_path / "demo.out"
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "SIGWATCH_"))
    }
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(SIGWATCH),
                "demo",
                "--traffic",
                "--listen",
                f"127.0.0.1:{proxy}",
                "--admin",
                f"127.0.0.1:{admin}",
                "--emulator",
                f"127.0.0.1:{emulator}",
                "--log-format",
                "json",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    try:
        missing = ["the metrics endpoint"]
        deadline = time.monotonic() + 60
        while missing and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            status, metrics = fetch(f"http://127.0.0.1:{admin}/metrics")
            missing = demo_is_showing_everything(metrics) if status == 200 else ["the metrics endpoint"]
        assert process.poll() is None, output.read_text()
        assert missing == []
        assert fetch(f"http://127.0.0.1:{admin}/readyz")[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise
    text = output.read_text()
    assert returncode == 0, text[-2000:]
    scan_output("sigwatch demo", stdout=text)
    assert f"http://127.0.0.1:{proxy}" in text  # the banner names the endpoint to point clients at
    events = [line for line in text.splitlines() if line.startswith("{")]
    assert any('"event":"stopped"' in line for line in events)
    assert re.search(r'"event":"request".*"retry_attempt":2', text)
