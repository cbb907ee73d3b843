"""Every metric, fed from RequestRecord values into a fresh registry."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from observability_support import (
    finding,
    new_metrics,
    populated_metrics,
    promtool_check_metrics,
    record,
    s3_error,
    storagegateway_error,
    value,
)
from prometheus_client import CollectorRegistry, generate_latest

from proxy import __version__
from proxy.core.model import Severity
from proxy.observability import metrics as metrics_module
from proxy.observability.metrics import (
    CONNECTION_EVENTS,
    DURATION_BUCKETS,
    SKEW_BUCKETS,
    UPSTREAM_FAILURE_REASONS,
    metrics_payload,
    multiprocess_enabled,
)
from proxy.record import OUTCOME_ERROR, OUTCOME_REJECTED, OUTCOME_UPSTREAM_FAILURE, OUTCOMES

REPO = Path(__file__).resolve().parents[2]


def requests_count(registry: CollectorRegistry, **labels: str) -> float:
    """sigwatch_requests_total for a successful ListGateways unless `labels` say otherwise."""
    wanted = {
        "service": "storagegateway",
        "operation": "ListGateways",
        "status_class": "2xx",
        "outcome": "ok",
    }
    return value(registry, "sigwatch_requests_total", **{**wanted, **labels})


def test_requests_by_service_operation_status_class_and_outcome() -> None:
    metrics, registry = new_metrics()
    metrics.observe(record())
    metrics.observe(record())
    metrics.observe(record(status=400, outcome=OUTCOME_ERROR, operation="DescribeGatewayInformation"))
    metrics.observe(record(status=0, service=None, operation=None, outcome="client_abort"))

    assert requests_count(registry) == 2
    assert (
        requests_count(registry, operation="DescribeGatewayInformation", status_class="4xx", outcome="error")
        == 1
    )
    assert requests_count(registry, service="unknown", operation="unknown", status_class="none",
                          outcome="client_abort") == 1  # fmt: skip


def test_an_outcome_outside_the_record_constants_is_counted_as_other() -> None:
    metrics, registry = new_metrics()
    metrics.observe(record(outcome="something new"))
    assert requests_count(registry, outcome="other") == 1
    assert "other" not in OUTCOMES


def test_request_and_upstream_duration_histograms_use_the_explicit_buckets() -> None:
    metrics, registry = new_metrics()
    metrics.observe(record(duration_seconds=0.0042, upstream_duration_seconds=0.0031))
    metrics.observe(record(duration_seconds=2.0, upstream_duration_seconds=None))
    labels = {"service": "storagegateway", "operation": "ListGateways"}

    name = "sigwatch_request_duration_seconds"
    assert value(registry, f"{name}_count", **labels) == 2
    assert value(registry, f"{name}_sum", **labels) == pytest.approx(2.0042)
    assert value(registry, f"{name}_bucket", **labels, le="0.0025") == 0
    assert value(registry, f"{name}_bucket", **labels, le="0.005") == 1
    assert value(registry, f"{name}_bucket", **labels, le="2.5") == 2
    assert value(registry, f"{name}_bucket", **labels, le="+Inf") == 2
    # the upstream never answered the second request: only the first is in its histogram
    assert value(registry, "sigwatch_upstream_duration_seconds_count", **labels) == 1
    assert value(registry, "sigwatch_upstream_duration_seconds_bucket", **labels, le="0.005") == 1
    assert list(DURATION_BUCKETS) == sorted(DURATION_BUCKETS)


def test_upstream_errors_are_labelled_from_the_classification() -> None:
    metrics, registry = new_metrics()
    gateway_missing = storagegateway_error(
        "InvalidGatewayRequestException", "GatewayNotFound", "DescribeGatewayInformation"
    )
    metrics.observe(
        record(
            operation="DescribeGatewayInformation",
            status=400,
            outcome=OUTCOME_ERROR,
            classification=gateway_missing,
        )
    )
    assert (
        value(
            registry,
            "sigwatch_upstream_errors_total",
            service="storagegateway",
            operation="DescribeGatewayInformation",
            exception="InvalidGatewayRequestException",
            code="GatewayNotFound",
            category="not_found",
            retryable="false",
        )
        == 1
    )


def test_throttling_is_retryable_and_a_code_outside_the_catalog_becomes_other() -> None:
    metrics, registry = new_metrics()
    slow_down = s3_error("SlowDown", 503)
    invented = s3_error("MyVendorQuirk", 400)
    for classification in (slow_down, invented):
        metrics.observe(
            record(
                service="s3",
                operation="GetObject",
                status=classification.status,
                outcome=OUTCOME_ERROR,
                classification=classification,
            )
        )
    errors = "sigwatch_upstream_errors_total"
    labels = {"service": "s3", "operation": "GetObject"}
    assert value(registry, errors, **labels, exception="SlowDown", code="SlowDown",
                 category=str(slow_down.category), retryable="true") == 1  # fmt: skip
    # The log keeps the real code; the metric label does not let an endpoint invent new series.
    assert invented.code == "MyVendorQuirk"
    assert value(registry, errors, **labels, exception="MyVendorQuirk", code="other",
                 category=str(invented.category), retryable="false") == 1  # fmt: skip


def test_a_classification_is_only_counted_for_upstream_errors() -> None:
    metrics, registry = new_metrics()
    classification = s3_error("NoSuchKey", 404)
    metrics.observe(record(service="s3", status=404, outcome=OUTCOME_REJECTED, classification=classification))
    assert registry.get_sample_value("sigwatch_upstream_errors_total", {"code": "NoSuchKey"}) is None
    assert all(
        sample.value == 0 for family in registry.collect() if family.name == "sigwatch_upstream_errors"
        for sample in family.samples
    )  # fmt: skip


def test_validation_findings_by_service_check_severity_and_mode() -> None:
    metrics, registry = new_metrics()
    skewed = finding("clock.window", Severity.WARNING, "RequestTimeTooSkewed")
    unsigned_host = finding("auth.signed_headers", Severity.ERROR, "IncompleteSignatureException")
    metrics.observe(record(findings=(skewed, unsigned_host)))
    metrics.observe(record(findings=(skewed,), mode="enforce"))
    findings = "sigwatch_validation_findings_total"
    assert value(registry, findings, service="storagegateway", check="clock.window", severity="warning",
                 mode="observe") == 1  # fmt: skip
    assert value(registry, findings, service="storagegateway", check="clock.window", severity="warning",
                 mode="enforce") == 1  # fmt: skip
    assert value(registry, findings, service="storagegateway", check="auth.signed_headers", severity="error",
                 mode="observe") == 1  # fmt: skip


def test_rejections_count_the_first_error_finding_of_a_rejected_request() -> None:
    metrics, registry = new_metrics()
    warning = finding("clock.window", Severity.WARNING, "RequestTimeTooSkewed")
    mismatch = finding("signature.verify", Severity.ERROR, "InvalidSignatureException")
    metrics.observe(
        record(mode="enforce", status=400, outcome=OUTCOME_REJECTED, findings=(warning, mismatch))
    )
    # In observe mode the same findings are not rejections.
    metrics.observe(record(mode="observe", status=200, findings=(warning, mismatch)))
    assert value(registry, "sigwatch_rejections_total", service="storagegateway", check="signature.verify",
                 code="InvalidSignatureException") == 1  # fmt: skip
    assert value(registry, "sigwatch_rejections_total", service="storagegateway", check="clock.window",
                 code="RequestTimeTooSkewed") == 0  # fmt: skip


def test_signature_verifications_by_result() -> None:
    metrics, registry = new_metrics()
    for state in ("valid", "valid", "invalid", "unverifiable", "unsigned", "not_checked"):
        metrics.observe(record(signature_state=state))
    name = "sigwatch_signature_verifications_total"
    assert value(registry, name, service="storagegateway", result="valid") == 2
    assert value(registry, name, service="storagegateway", result="invalid") == 1
    assert value(registry, name, service="storagegateway", result="unverifiable") == 1
    assert value(registry, name, service="storagegateway", result="unsigned") == 1
    # requests whose signature was not looked at are not verifications
    assert registry.get_sample_value(name, {"service": "storagegateway", "result": "not_checked"}) is None


def test_clock_skew_histogram_is_signed_and_reaches_past_fifteen_minutes() -> None:
    metrics, registry = new_metrics()
    for skew in (-0.4, 0.6, -400.0, 870.0, 1000.0):
        metrics.observe(record(skew_seconds=skew))
    metrics.observe(record(skew_seconds=None))  # no date to compare: not observed
    name = "sigwatch_clock_skew_seconds"

    def bucket(le: str) -> float:
        return value(registry, f"{name}_bucket", service="storagegateway", le=le)

    assert value(registry, f"{name}_count", service="storagegateway") == 5
    assert bucket("-300.0") == 1  # 6m40s behind
    assert bucket("-1.0") == 1
    assert bucket("0.0") == 2  # and a good clock a fraction of a second behind
    assert bucket("1.0") == 3
    assert bucket("840.0") == 3
    assert bucket("900.0") == 4  # 14.5 minutes ahead: about to be rejected
    assert bucket("1800.0") == 5  # past AWS's window
    assert tuple(sorted(SKEW_BUCKETS)) == SKEW_BUCKETS
    assert {-900.0, -1.0, 0.0, 1.0, 900.0} <= set(SKEW_BUCKETS)
    assert tuple(-b for b in reversed(SKEW_BUCKETS)) == SKEW_BUCKETS  # symmetric around 0


def test_sdk_attempts_by_attempt_number_with_a_bounded_label() -> None:
    metrics, registry = new_metrics()
    for attempt in (1, 1, 2, 3, 12, 40, 0):
        metrics.observe(record(retry_attempt=attempt, retry_max=3))
    metrics.observe(record(retry_attempt=None))  # no amz-sdk-request header: not an SDK attempt
    labels = {"service": "storagegateway", "operation": "ListGateways"}
    name = "sigwatch_sdk_attempts_total"
    assert value(registry, name, **labels, attempt="1") == 2
    assert value(registry, name, **labels, attempt="2") == 1
    assert value(registry, name, **labels, attempt="3") == 1
    assert value(registry, name, **labels, attempt="10+") == 2
    assert value(registry, name, **labels, attempt="other") == 1


def test_in_flight_gauge() -> None:
    metrics, registry = new_metrics()
    metrics.in_flight.inc()
    metrics.in_flight.inc()
    metrics.in_flight.dec()
    assert value(registry, "sigwatch_in_flight_requests") == 1


def test_upstream_connection_failures_exist_at_zero_and_count_by_reason() -> None:
    metrics, registry = new_metrics()
    name = "sigwatch_upstream_connection_failures_total"
    assert all(
        registry.get_sample_value(name, {"reason": reason}) == 0 for reason in UPSTREAM_FAILURE_REASONS
    )
    metrics.observe(record(status=502, outcome=OUTCOME_UPSTREAM_FAILURE, upstream_failure="refused"))
    metrics.observe(record(status=504, outcome=OUTCOME_UPSTREAM_FAILURE, upstream_failure="timeout"))
    metrics.observe(record(status=502, outcome=OUTCOME_UPSTREAM_FAILURE, upstream_failure="a new reason"))
    assert value(registry, name, reason="refused") == 1
    assert value(registry, name, reason="timeout") == 1
    assert value(registry, name, reason="other") == 1


def test_connection_events() -> None:
    metrics, registry = new_metrics()
    for event in CONNECTION_EVENTS:
        assert registry.get_sample_value("sigwatch_connection_events_total", {"event": event}) == 0
    metrics.connection_event("header_timeout")
    metrics.connection_event("header_timeout")
    metrics.connection_event("a burst of\nfree text")
    assert value(registry, "sigwatch_connection_events_total", event="header_timeout") == 2
    assert value(registry, "sigwatch_connection_events_total", event="other") == 1


def test_body_bytes_in_and_out() -> None:
    metrics, registry = new_metrics()
    metrics.observe(record(bytes_in=100, bytes_out=2048))
    metrics.observe(record(bytes_in=0, bytes_out=0))
    metrics.observe(record(service="s3", bytes_in=5 * 1024 * 1024, bytes_out=0))
    assert value(registry, "sigwatch_request_body_bytes_total", service="storagegateway") == 100
    assert value(registry, "sigwatch_response_body_bytes_total", service="storagegateway") == 2048
    assert value(registry, "sigwatch_request_body_bytes_total", service="s3") == 5 * 1024 * 1024


def test_build_info() -> None:
    _, registry = new_metrics()
    labels = {"version": __version__, "python": platform.python_version()}
    assert value(registry, "sigwatch_build_info", **labels) == 1


def test_free_text_and_identifiers_past_the_vocabulary_cap_become_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(metrics_module._VOCABULARY_CAPS, "operation", 2)
    metrics, registry = new_metrics()
    for operation in ("ListGateways", "DescribeGatewayInformation", "ActivateGateway", "Drop table; --"):
        metrics.observe(record(operation=operation))
    metrics.observe(record(service="storage gateway/../x"))
    operations = {
        sample.labels["operation"]
        for family in registry.collect()
        if family.name == "sigwatch_requests"
        for sample in family.samples
    }
    assert operations == {"ListGateways", "DescribeGatewayInformation", "other"}
    assert requests_count(registry, service="other") == 1


def test_no_label_carries_an_access_key_request_id_or_path() -> None:
    metrics, registry = new_metrics()
    metrics.observe(
        record(
            request_id="feedfacecafebeef",
            access_key_id="AKIAIOSFODNN7EXAMPLE",
            invocation_id="3c5d9d7e-8a1b-4f0e-9a8e-2b7f1c0d4e5a",
            user_agent="Boto3/1.34.0",
            findings=(finding("clock.window", Severity.WARNING, "RequestTimeTooSkewed"),),
            skew_seconds=1.0,
            retry_attempt=1,
        )
    )
    exposition = generate_latest(registry).decode()
    for private in ("feedfacecafebeef", "AKIAIOSFODNN7EXAMPLE", "3c5d9d7e", "Boto3", "127.0.0.1"):
        assert private not in exposition


def test_metrics_payload_is_the_registry_in_the_classic_text_format() -> None:
    metrics, registry = new_metrics()
    metrics.observe(record())
    body, content_type = metrics_payload(registry)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"

    # the same families and samples (process_* values, CPU time and memory, move between two reads)
    def sigwatch_lines(exposition: bytes) -> list[str]:
        return [line for line in exposition.decode().splitlines() if "sigwatch_" in line]

    assert sigwatch_lines(body) == sigwatch_lines(generate_latest(registry))
    assert "process_resident_memory_bytes" in body.decode()
    assert not multiprocess_enabled()


def test_no_created_series_are_exposed() -> None:
    metrics, registry = new_metrics()
    metrics.observe(record())
    assert "_created" not in generate_latest(registry).decode()


def test_promtool_check_metrics_finds_nothing_to_say() -> None:
    """Names, units, suffixes and HELP of every family, with every kind of sample present."""
    _, registry = populated_metrics()
    exposition = generate_latest(registry)
    families = {line.split()[2] for line in exposition.decode().splitlines() if line.startswith("# TYPE")}
    assert {
        "sigwatch_upstream_errors_total",
        "sigwatch_rejections_total",
        "sigwatch_sdk_attempts_total",
    } <= families
    assert promtool_check_metrics(exposition) == ""


MULTIPROCESS_WORKER = textwrap.dedent(
    """
    import os, sys
    from prometheus_client import CollectorRegistry
    from proxy.observability.metrics import Metrics, enable_multiprocess
    sys.path.insert(0, sys.argv[2])
    from observability_support import record

    enable_multiprocess(sys.argv[1])
    metrics = Metrics(CollectorRegistry())
    metrics.observe(record())
    metrics.observe(record(status=400, outcome="error"))
    metrics.in_flight.inc()
    print(os.getpid(), flush=True)
    """
)

MULTIPROCESS_SCRAPE = textwrap.dedent(
    """
    import sys
    from prometheus_client import CollectorRegistry
    from proxy.observability.metrics import metrics_payload, multiprocess_enabled, prepare_multiprocess_dir
    from proxy.observability.metrics import worker_exited

    action = sys.argv[2]
    if action == "prepare":
        prepare_multiprocess_dir(sys.argv[1])
    else:
        from proxy.observability.metrics import enable_multiprocess
        enable_multiprocess(sys.argv[1])
        assert multiprocess_enabled()
        for pid in sys.argv[3:]:
            worker_exited(int(pid))
        body, _ = metrics_payload(CollectorRegistry())
        sys.stdout.write(body.decode())
    """
)


def _python(script: str, *args: str) -> str:
    env = {**os.environ}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-c", script, *args]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60, cwd=REPO, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _sample(exposition: str, prefix: str) -> float:
    (line,) = [line for line in exposition.splitlines() if line.startswith(prefix)]
    return float(line.rsplit(" ", 1)[1])


def test_multiprocess_mode_sums_every_worker_and_drops_dead_workers_from_in_flight(tmp_path: Path) -> None:
    """Three worker processes count into PROMETHEUS_MULTIPROC_DIR; /metrics in any process sums them."""
    directory = tmp_path / "metrics"
    support = str(Path(__file__).parent)
    (tmp_path / "metrics").mkdir()
    (directory / "counter_999999.db").write_bytes(b"stale")  # a previous run's file
    _python(MULTIPROCESS_SCRAPE, str(directory), "prepare")
    assert list(directory.iterdir()) == []
    pids = [_python(MULTIPROCESS_WORKER, str(directory), support).strip() for _ in range(3)]

    exposition = _python(MULTIPROCESS_SCRAPE, str(directory), "scrape")
    ok = (
        'sigwatch_requests_total{operation="ListGateways",outcome="ok",service="storagegateway",'
        'status_class="2xx"}'
    )
    assert _sample(exposition, ok) == 3
    assert _sample(exposition, "sigwatch_in_flight_requests ") == 3
    assert _sample(exposition, "sigwatch_build_info{python=") == 1
    count = 'sigwatch_request_duration_seconds_count{operation="ListGateways",service="storagegateway"}'
    assert _sample(exposition, count) == 6

    after_exit = _python(MULTIPROCESS_SCRAPE, str(directory), "scrape", pids[0])
    assert _sample(after_exit, "sigwatch_in_flight_requests ") == 2  # livesum: the dead worker is gone
    assert _sample(after_exit, ok) == 3  # counters keep what the dead worker counted
    assert promtool_check_metrics(exposition.encode()) == ""
