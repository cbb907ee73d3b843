"""End to end: a real Prometheus scrapes a running sigwatch (`sigwatch demo --traffic`, plus a sigwatch
whose upstream is down), and every PromQL query of the Grafana dashboard returns data; the alert and
recording rules of deploy/prometheus/alerts.yml evaluate on the real series without error.

Everything binds 127.0.0.1 on free ports and stops by itself; the test waits at most WAIT_SECONDS for
the data (scrapes every second).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from observability.leak_scan import scan_output
from observability_support import promtool_check_metrics, require_tool

from tests.support.net import free_port, http_get, wait_until

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "grafana" / "dashboards" / "sigwatch.json"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WAIT_SECONDS = 45.0
RATE_INTERVAL = "15s"  # what Grafana would put for $__rate_interval with a 1 s scrape interval
# Dashboard variables as Grafana substitutes them when "All" is selected.
VARIABLES = {"$service": ".*", "$operation": ".*", "$__rate_interval": RATE_INTERVAL}

pytestmark = pytest.mark.slow


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


@contextmanager
def started(name: str, command: list[str], directory: Path, scan: bool) -> Iterator[Process]:
    """A subprocess with its output in files; stopped (SIGTERM, then SIGKILL) however the test ends."""
    stdout, stderr = directory / f"{name}.out", directory / f"{name}.err"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PROMETHEUS_MULTIPROC")}
    with stdout.open("wb") as out, stderr.open("wb") as err:
        popen = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=REPO, env=env)
    process = Process(name, popen, stdout, stderr)
    try:
        yield process
    finally:
        popen.terminate()
        try:
            popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=5)
        if scan:
            scan_output(name, stdout.read_bytes(), stderr.read_bytes())


class PrometheusAPI:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, **params: str) -> Any:
        status, body = http_get(f"{self.base}{path}?{urllib.parse.urlencode(params)}")
        document = json.loads(body)
        assert status == 200 and document["status"] == "success", (path, params, document)
        return document["data"]

    def query(self, expr: str) -> list[Any]:
        data = self.get("/api/v1/query", query=expr)
        result: list[Any] = data["result"]
        return result


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression with the variables substituted) for every query of the dashboard."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, expr
            queries.append((panel["title"], expr))
    return queries


def sdk_traffic(proxy_url: str, dead_proxy_url: str, stop: threading.Event) -> None:
    """What the demo generator does not send: real SDK calls (amz-sdk-request attempt numbers, one call
    throttled and retried by boto3), and calls to the sigwatch whose upstream is down."""
    client = boto3.client(
        "storagegateway",
        endpoint_url=proxy_url,
        region_name="us-east-1",
        aws_access_key_id=EXAMPLE_KEY_ID,
        aws_secret_access_key=EXAMPLE_SECRET,
        config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10),
    )

    def throttle(request: Any, **_: Any) -> None:
        request.headers["x-sigwatch-emulate-error"] = "ThrottlingException"

    down = boto3.client(
        "storagegateway",
        endpoint_url=dead_proxy_url,
        region_name="us-east-1",
        aws_access_key_id=EXAMPLE_KEY_ID,
        aws_secret_access_key=EXAMPLE_SECRET,
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=5, read_timeout=10),
    )
    throttled = False
    while not stop.is_set():
        client.list_gateways()
        if not throttled:
            client.meta.events.register_first("before-sign.storagegateway.ListGateways", throttle)
            with pytest.raises(ClientError) as raised:
                client.list_gateways()
            assert raised.value.response["Error"]["Code"] == "ThrottlingException"
            client.meta.events.unregister("before-sign.storagegateway.ListGateways", throttle)
            throttled = True
        with pytest.raises(ClientError) as failed:
            down.list_gateways()
        assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502
        stop.wait(0.5)


def test_every_dashboard_query_returns_data_from_a_real_prometheus(tmp_path: Path) -> None:
    prometheus = require_tool("prometheus")
    proxy, admin, emulator = free_port(), free_port(), free_port()
    dead_proxy, dead_admin, nobody, prometheus_port = free_port(), free_port(), free_port(), free_port()
    targets = [f"127.0.0.1:{admin}", f"127.0.0.1:{dead_admin}"]
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(ALERTS)],
                "scrape_configs": [
                    {
                        "job_name": "sigwatch",
                        "static_configs": [{"targets": targets, "labels": {"app": "e2e"}}],
                    }
                ],
            }
        )
    )
    sigwatch = [sys.executable, "-m", "proxy"]
    demo_command = [
        *sigwatch,
        *("demo", "--traffic", "--mode", "enforce", "--log-format", "json"),
        *("--listen", f"127.0.0.1:{proxy}", "--admin", f"127.0.0.1:{admin}"),
        *("--emulator", f"127.0.0.1:{emulator}"),
    ]
    dead_command = [
        *sigwatch,
        *("run", "--log-format", "json"),
        *("--listen", f"127.0.0.1:{dead_proxy}", "--admin", f"127.0.0.1:{dead_admin}"),
        *("--upstream", f"http://127.0.0.1:{nobody}"),
    ]
    prometheus_command = [
        prometheus,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
        "--log.level=warn",
    ]
    with ExitStack() as stack:
        demo = stack.enter_context(started("sigwatch demo", demo_command, tmp_path, scan=True))
        dead = stack.enter_context(started("sigwatch run (upstream down)", dead_command, tmp_path, scan=True))
        server = stack.enter_context(started("prometheus", prometheus_command, tmp_path, scan=False))
        for process in (demo, dead, server):
            assert process.popen.poll() is None, f"{process.name} exited:\n{process.output()}"

        def ready(url: str) -> Callable[[], bool]:
            return lambda: http_get(url, timeout=1)[0] == 200

        for process, url in (
            (demo, f"http://127.0.0.1:{admin}/readyz"),
            (dead, f"http://127.0.0.1:{dead_admin}/healthz"),
            (server, f"http://127.0.0.1:{prometheus_port}/-/ready"),
        ):
            try:
                wait_until(ready(url), 30, f"{process.name} at {url}")
            except AssertionError as error:
                status = process.popen.poll()
                raise AssertionError(f"{error} (exit status {status}):\n{process.output()[-3000:]}") from None

        stop = threading.Event()
        errors: list[BaseException] = []

        def run_sdk_traffic() -> None:
            try:
                sdk_traffic(f"http://127.0.0.1:{proxy}", f"http://127.0.0.1:{dead_proxy}", stop)
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        traffic = threading.Thread(target=run_sdk_traffic, daemon=True)
        traffic.start()
        stack.callback(traffic.join, 30)
        stack.callback(stop.set)

        api = PrometheusAPI(f"http://127.0.0.1:{prometheus_port}")
        queries = dashboard_queries()
        empty: list[tuple[str, str]] = []

        def every_query_has_data() -> bool:
            assert not errors, errors
            empty[:] = [(title, expr) for title, expr in queries if not api.query(expr)]
            return not empty

        try:
            wait_until(every_query_has_data, WAIT_SECONDS, "every dashboard query to return data")
        except AssertionError:
            if errors:
                raise errors[0] from None
            lines = "\n".join(f"  {title}: {expr}" for title, expr in empty)
            pytest.fail(f"dashboard queries with no data after {WAIT_SECONDS:.0f}s:\n{lines}")

        # The dashboard's variables list real values.
        services = api.get("/api/v1/label/service/values", **{"match[]": "sigwatch_requests_total"})
        assert {"storagegateway", "s3"} <= set(services)
        operations = api.get(
            "/api/v1/label/operation/values",
            **{"match[]": 'sigwatch_requests_total{service=~"storagegateway"}'},
        )
        assert "ListGateways" in operations and "GetObject" not in operations

        # The rules of alerts.yml evaluate on the real series, and the SLO recording rules have data.
        def rules_evaluated() -> bool:
            groups = api.get("/api/v1/rules")["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return bool(rules) and all(
                rule["health"] == "ok" and rule["lastEvaluation"][:4] != "0001" for rule in rules
            )

        wait_until(rules_evaluated, 15, "every rule of alerts.yml to evaluate")
        groups = api.get("/api/v1/rules")["groups"]
        assert {group["name"] for group in groups} == {"sigwatch-slo", "sigwatch"}
        recorded = "service:sigwatch_requests_5xx:ratio_rate5m"
        wait_until(lambda: bool(api.query(recorded)), 15, f"the recording rule {recorded} to have data")

        # The live /metrics of the running demo, after all that traffic.
        status, exposition = http_get(f"http://127.0.0.1:{admin}/metrics")
        assert status == 200
        assert promtool_check_metrics(exposition) == ""
