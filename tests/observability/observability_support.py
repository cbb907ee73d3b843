"""Records, classifications and registry readers shared by the observability tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from proxy.catalogs import load_builtin_catalogs
from proxy.core.catalog import Catalogs
from proxy.core.errors.classify import Classification, classify, metric_code
from proxy.core.errors.extract import extract_error
from proxy.core.model import AwsError, Finding, Protocol, Severity
from proxy.observability.metrics import Metrics
from proxy.record import RequestRecord

EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
_CATALOGS: list[Catalogs] = []


def catalogs() -> Catalogs:
    if not _CATALOGS:
        _CATALOGS.append(load_builtin_catalogs())
    return _CATALOGS[0]


def new_metrics() -> tuple[Metrics, CollectorRegistry]:
    """Metrics on a fresh registry, with the real catalogs' bounded code labels."""
    registry = CollectorRegistry()
    known = catalogs()
    return Metrics(registry, metric_code=lambda c: metric_code(c, known)), registry


def record(**fields: Any) -> RequestRecord:
    """A successful Storage Gateway call; `fields` override any RequestRecord field."""
    values: dict[str, Any] = {
        "request_id": "5d1b0c3e9f2a4e6b8c7d0a1b2c3d4e5f",
        "started_at": time.time(),
        "client": "127.0.0.1",
        "method": "POST",
        "mode": "observe",
        "protocol": "json",
        "service": "storagegateway",
        "operation": "ListGateways",
        "region": "us-east-1",
        "access_key_id": EXAMPLE_KEY_ID,
        "signature_state": "valid",
        "status": 200,
        "upstream_status": 200,
        "duration_seconds": 0.0042,
        "upstream_duration_seconds": 0.0031,
        "bytes_in": 2,
        "bytes_out": 31,
    }
    values.update(fields)
    return RequestRecord(**values)


def storagegateway_error(exception: str, operation_error: str | None, operation: str) -> Classification:
    """A Storage Gateway error as the upstream sends it (AWS JSON 1.1), extracted and classified."""
    body: dict[str, Any] = {"__type": exception, "message": "The specified gateway was not found."}
    if operation_error is not None:
        body["error"] = {"errorCode": operation_error}
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", "req-1")]
    info = extract_error(Protocol.JSON, 400, headers, orjson.dumps(body))
    return classify(info, "storagegateway", operation, catalogs())


def s3_error(code: str, status: int) -> Classification:
    body = f"<Error><Code>{code}</Code><Message>m</Message><RequestId>r</RequestId></Error>".encode()
    info = extract_error(Protocol.REST_XML, status, [("Content-Type", "application/xml")], body)
    return classify(info, "s3", "GetObject", catalogs())


def populated_metrics() -> tuple[Metrics, CollectorRegistry]:
    """Metrics after one request of each kind: every sigwatch series exists."""
    metrics, registry = new_metrics()
    metrics.in_flight.inc()
    metrics.connection_event("header_timeout")
    error = storagegateway_error("InvalidGatewayRequestException", "GatewayNotFound", "ListGateways")
    skewed = finding("clock.window", Severity.WARNING, "RequestTimeTooSkewed")
    metrics.observe(
        record(status=400, outcome="error", classification=error, findings=(skewed,), skew_seconds=-320.0)
    )
    mismatch = finding("signature.verify", Severity.ERROR, "SignatureDoesNotMatch")
    metrics.observe(
        record(mode="enforce", status=403, outcome="rejected", findings=(mismatch,), retry_attempt=2)
    )
    metrics.observe(record(status=502, outcome="upstream_failure", upstream_failure="reset", retry_attempt=1))
    return metrics, registry


def finding(check: str, severity: Severity, code: str, explanation: str = "") -> Finding:
    return Finding(
        check=check,
        severity=severity,
        error=AwsError(code=code, status=400, message=code),
        explanation=explanation or f"{check} failed",
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """A sample's value; 0 when the labelled series does not exist."""
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def promtool_check_metrics(exposition: bytes) -> str:
    """What `promtool check metrics` says about an exposition (empty when all is well)."""
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, timeout=60, check=False
    )
    said = (result.stdout + result.stderr).decode().strip()
    return said if said or result.returncode == 0 else f"exit status {result.returncode}"


def require_tool(name: str) -> str:
    """The path of an external tool (installed by .ci/install-tools.sh), or a skip saying why."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (the Debian package prometheus; `make tools` installs it)")
    return path
