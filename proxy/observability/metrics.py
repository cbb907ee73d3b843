"""Prometheus metrics, all fed from RequestRecord in one call per request.

Conventions: `sigwatch_` prefix, base units in the name, counters end in `_total`, explicit buckets
chosen for each quantity, bounded labels only (no access keys, request ids, raw paths or free text).
"""

from __future__ import annotations

import platform
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from proxy import __version__
from proxy.record import RequestRecord

# Latency of a proxied AWS call: sub-millisecond (local emulator) out to a minute (slow S3 uploads).
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Signed clock skew: dense around 0, out to and past AWS's ±15 minute window.
SKEW_BUCKETS = (
    -1800,
    -900,
    -600,
    -300,
    -120,
    -60,
    -30,
    -10,
    -5,
    -1,
    0,
    1,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
)
BYTES_BUCKETS = (0, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 8388608, 67108864, 536870912, 5368709120)

UNKNOWN = "unknown"
OTHER = "other"


class Metrics:
    """Every sigwatch metric, registered in `registry` (a fresh one in tests)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        metric_code: Callable[[object], str] | None = None,
    ) -> None:
        self.registry = registry
        self._metric_code = metric_code
        self.requests = Counter(
            "sigwatch_requests",
            "Requests answered, by service, operation, status class and outcome.",
            ["service", "operation", "status_class", "outcome"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "sigwatch_request_duration_seconds",
            "Time from the request head to the last byte of the answer.",
            ["service", "operation"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "sigwatch_upstream_duration_seconds",
            "Time from sending upstream to the upstream's response head.",
            ["service", "operation"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "sigwatch_upstream_errors",
            "Error responses from the upstream, classified against the catalogs.",
            ["service", "operation", "exception", "code", "category", "retryable"],
            registry=registry,
        )
        self.findings = Counter(
            "sigwatch_validation_findings",
            "Validation findings, by check, severity and mode.",
            ["check", "severity", "mode"],
            registry=registry,
        )
        self.rejections = Counter(
            "sigwatch_rejections",
            "Requests answered locally with AWS's error in enforce mode, by check and code.",
            ["check", "code"],
            registry=registry,
        )
        self.clock_skew = Histogram(
            "sigwatch_clock_skew_seconds",
            "Signed difference between the request's signing time and sigwatch's clock.",
            ["service"],
            buckets=SKEW_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "sigwatch_sdk_attempts",
            "Requests by SDK attempt number (amz-sdk-request: attempt=N); attempt > 1 is a retry.",
            ["service", "attempt"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "sigwatch_in_flight_requests",
            "Requests being handled now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.upstream_failures = Counter(
            "sigwatch_upstream_connection_failures",
            "Requests the upstream could not answer, by reason.",
            ["reason"],
            registry=registry,
        )
        self.bytes_in = Counter(
            "sigwatch_request_body_bytes",
            "Request body bytes received from clients.",
            ["service"],
            registry=registry,
        )
        self.bytes_out = Counter(
            "sigwatch_response_body_bytes",
            "Response body bytes sent to clients.",
            ["service"],
            registry=registry,
        )
        self.build = Info("sigwatch_build", "sigwatch version and runtime.", registry=registry)
        self.build.info({"version": __version__, "python": platform.python_version()})

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request: called exactly once per request."""
        service = record.service or UNKNOWN
        operation = record.operation or UNKNOWN
        self.requests.labels(service, operation, record.status_class, record.outcome).inc()
        self.request_duration.labels(service, operation).observe(record.duration_seconds)
        if record.upstream_duration_seconds is not None:
            self.upstream_duration.labels(service, operation).observe(record.upstream_duration_seconds)
        for finding in record.findings:
            self.findings.labels(finding.check, finding.severity.value, record.mode).inc()
        if record.outcome == "rejected" and record.findings:
            first = next((f for f in record.findings if f.severity.value == "error"), record.findings[0])
            self.rejections.labels(first.check, first.code).inc()
        if record.skew_seconds is not None:
            self.clock_skew.labels(service).observe(record.skew_seconds)
        if record.retry_attempt is not None:
            attempt = str(record.retry_attempt) if record.retry_attempt < 10 else "10+"
            self.retries.labels(service, attempt).inc()
        if record.upstream_failure is not None:
            self.upstream_failures.labels(record.upstream_failure).inc()
        classification = record.classification
        if classification is not None and record.outcome == "error":
            self.upstream_errors.labels(
                service,
                operation,
                getattr(classification, "exception", None) or UNKNOWN,
                self._metric_code(classification) if self._metric_code else OTHER,
                getattr(classification, "category", None) or UNKNOWN,
                str(bool(getattr(classification, "retryable", False))).lower(),
            ).inc()
        self.bytes_in.labels(service).inc(record.bytes_in)
        self.bytes_out.labels(service).inc(record.bytes_out)
