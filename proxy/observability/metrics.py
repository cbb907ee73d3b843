"""Prometheus metrics, all fed from RequestRecord in one call per request.

Conventions (https://prometheus.io/docs/practices/naming/): `sigwatch_` prefix, base units in the name
(seconds, bytes), counters end in `_total`, explicit buckets chosen for each quantity. Labels are
bounded: no access keys, request ids, raw paths or free text; a label value that is not a plain
identifier, or one past a dimension's vocabulary cap, becomes `other` (unknown error codes become
`other` through the catalogs' `metric_code`).

Cost: a labelled child is looked up once per label tuple and cached (`labels()` takes a lock and
validates on every call), so one `observe()` is a handful of dict lookups and lock-protected adds.

Multiprocess (`--workers`): prometheus-client keeps each worker's values in mmap files under
PROMETHEUS_MULTIPROC_DIR; `prepare_multiprocess_dir()` (parent, before the workers start),
`metrics_payload()` (whichever worker answers /metrics) and `worker_exited()` (parent, when a worker
ends) are all the server needs. Gauges declare how workers combine (in-flight: `livesum`).
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import prometheus_client
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
    values,
)

from proxy import __version__
from proxy.record import OUTCOMES, RequestRecord

# `_created` series double every counter's series count for a value nobody graphs (text format 0.0.4
# exposes them as separate gauges). Process-wide, and sigwatch is the only user of prometheus_client.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# Latency of a proxied AWS call: sub-millisecond (local emulator) out to a minute (slow S3 uploads).
DURATION_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
# Signed clock skew (request signing time minus sigwatch's clock: positive = the client is ahead).
# Dense around 0 (x-amz-date has one-second resolution, so a good clock lands in (-1, 1]), then the
# early-warning threshold (5 min), 10 and 14 minutes, and AWS's ±15 minute window, with one bucket
# past it on each side.
# Blind tunnels: one API call (under a second) to long-lived SDK connections (minutes).
TUNNEL_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600)
SKEW_BUCKETS: Final = (
    -1800.0,
    -900.0,
    -840.0,
    -600.0,
    -300.0,
    -120.0,
    -60.0,
    -30.0,
    -10.0,
    -5.0,
    -2.0,
    -1.0,
    0.0,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    840.0,
    900.0,
    1800.0,
)

UNKNOWN: Final = "unknown"  # the request did not say (service or operation not identified)
OTHER: Final = "other"  # a value outside the bounded vocabulary
# Reasons the handler gives for an upstream it could not use (proxy.server.upstream.failure_from).
UPSTREAM_FAILURE_REASONS: Final = ("refused", "dns", "tls", "timeout", "reset", "protocol")
# Connections the listener cuts (proxy.server.listener): over the connection limit, headers too slow.
CONNECTION_EVENTS: Final = ("connection_refused", "header_timeout")
# SDK attempt numbers are labelled 1..9, then "10+": a bounded label however a client is configured.
MAX_ATTEMPT_LABEL: Final = 10

# A label value must look like an identifier (service names, operation names, AWS error codes, check
# names): anything else (spaces, slashes, quotes) is free text and becomes `other`.
_LABEL_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,79}")
# Per dimension, how many distinct values are let through before new ones become `other`. AWS has
# ~400 services and the largest service model ~600 operations; the caps leave room, and bound what a
# hostile client can do with made-up x-amz-target values.
_VOCABULARY_CAPS: Final = {
    "service": 500,
    "operation": 3000,
    "exception": 500,
    "code": 1000,
    "check": 100,
    "signature": 50,
    "event": 50,
}
# Most cached children per metric: past this, children are still used but no longer cached.
_CHILD_CACHE_LIMIT: Final = 20000

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


class _Vocabulary:
    """The values one label dimension has admitted so far, capped."""

    __slots__ = ("cap", "seen")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.seen: set[str] = set()

    def __call__(self, value: str | None, missing: str = UNKNOWN) -> str:
        if value is None or value == "":
            return missing
        if value in self.seen:
            return value
        if len(self.seen) >= self.cap or not _LABEL_VALUE.fullmatch(value):
            return OTHER
        self.seen.add(value)
        return value


class _Children:
    """Labelled children of one metric, cached by their label-value tuple."""

    __slots__ = ("cache", "metric")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self.cache.get(labels)
        if child is None:
            child = self.metric.labels(*labels)
            if len(self.cache) < _CHILD_CACHE_LIMIT:
                self.cache[labels] = child
        return child


class _OperationChildren:
    """The children one (service, operation) pair touches on every request, found with one lookup."""

    __slots__ = (
        "attempts",
        "bytes_in",
        "bytes_out",
        "clock_skew",
        "operation",
        "request_duration",
        "requests",
        "service",
        "signatures",
        "upstream_duration",
    )

    def __init__(self, metrics: Metrics, service: str, operation: str) -> None:
        self.service = service
        self.operation = operation
        self.request_duration = metrics.request_duration.labels(service, operation)
        self.upstream_duration = metrics.upstream_duration.labels(service, operation)
        self.bytes_in = metrics.bytes_in.labels(service)
        self.bytes_out = metrics.bytes_out.labels(service)
        self.clock_skew = metrics.clock_skew.labels(service)
        # Keyed by raw values (status code and outcome, signature state, attempt number): bounded
        # by construction (status < 1000, a few outcomes and states, attempts folded at 10).
        self.requests: dict[tuple[int, str], Any] = {}
        self.signatures: dict[str, Any] = {}
        self.attempts: dict[int, Any] = {}


def _attempt_label(attempt: int) -> str:
    if attempt >= MAX_ATTEMPT_LABEL:
        return f"{MAX_ATTEMPT_LABEL}+"
    return str(attempt) if attempt > 0 else OTHER


class Metrics:
    """Every sigwatch metric, registered in `registry` (a fresh one in tests).

    `metric_code(classification) -> str` maps a classification to its bounded code label (the
    catalogs' `metric_code`, which answers `other` for codes outside the catalog).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        metric_code: Callable[[Any], str] | None = None,
    ) -> None:
        self.registry = registry
        self._metric_code = metric_code
        vocab = {name: _Vocabulary(cap) for name, cap in _VOCABULARY_CAPS.items()}
        self._service = vocab["service"]
        self._operation = vocab["operation"]
        self._exception = vocab["exception"]
        self._code = vocab["code"]
        self._check = vocab["check"]
        self._signature = vocab["signature"]
        self._event = vocab["event"]

        self.requests = Counter(
            "sigwatch_requests",
            "Requests answered, by service, operation, status class (2xx..5xx, none) and outcome.",
            ["service", "operation", "status_class", "outcome"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "sigwatch_request_duration_seconds",
            "Time from the request head to the last byte of the answer, as the client sees it.",
            ["service", "operation"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "sigwatch_upstream_duration_seconds",
            "Time from sending the request upstream to the upstream's response head.",
            ["service", "operation"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "sigwatch_upstream_errors",
            "Error responses from the upstream, classified against the catalogs (code: other when "
            "outside the catalog).",
            ["service", "operation", "exception", "code", "category", "retryable"],
            registry=registry,
        )
        self.findings = Counter(
            "sigwatch_validation_findings",
            "Validation findings, by service, check, severity and mode (observe/enforce).",
            ["service", "check", "severity", "mode"],
            registry=registry,
        )
        self.rejections = Counter(
            "sigwatch_rejections",
            "Requests answered locally with AWS's error in enforce mode, by service, check and code.",
            ["service", "check", "code"],
            registry=registry,
        )
        self.signatures = Counter(
            "sigwatch_signature_verifications",
            "Requests by the outcome of their SigV4 signature check: valid, invalid, unverifiable (secret "
            "unknown), unsigned.",
            ["service", "result"],
            registry=registry,
        )
        self.clock_skew = Histogram(
            "sigwatch_clock_skew_seconds",
            "Signed difference between the request's signing time and sigwatch's clock "
            "(positive: the client is ahead). AWS rejects past 900 seconds either way.",
            ["service"],
            buckets=SKEW_BUCKETS,
            registry=registry,
        )
        self.attempts = Counter(
            "sigwatch_sdk_attempts",
            "Requests carrying `amz-sdk-request: attempt=N`, by service, operation and attempt "
            "(1..9, 10+); attempt > 1 is an SDK retry.",
            ["service", "operation", "attempt"],
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
            "Requests the upstream could not answer (502/504 sent by sigwatch), by reason.",
            ["reason"],
            registry=registry,
        )
        self.connection_events = Counter(
            "sigwatch_connection_events",
            "Client connections cut by sigwatch's listener, by event (header_timeout, connection_refused).",
            ["event"],
            registry=registry,
        )
        self.tunnels = Counter(
            "sigwatch_tunnels",
            "CONNECT tunnels relayed blind (not intercepted: their requests are not seen), by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.tunnel_bytes = Counter(
            "sigwatch_tunnel_bytes",
            "Bytes relayed through blind CONNECT tunnels, by direction (client_to_target, target_to_client).",
            ["direction"],
            registry=registry,
        )
        self.tunnel_duration = Histogram(
            "sigwatch_tunnel_duration_seconds",
            "How long blind CONNECT tunnels stayed open.",
            buckets=TUNNEL_BUCKETS,
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
        self.build_info = Gauge(
            "sigwatch_build_info",
            "Always 1; the labels carry sigwatch's version and the Python version.",
            ["version", "python"],
            registry=registry,
            multiprocess_mode="max",
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        if not multiprocess_enabled():
            # One process: its CPU, memory and file descriptors (in multiprocess mode each worker
            # would report only itself, which misleads: left out there).
            ProcessCollector(registry=registry)

        self._operations: dict[tuple[str | None, str | None], _OperationChildren] = {}
        self._error_children: dict[tuple[Any, ...], Any] = {}
        self._findings = _Children(self.findings)
        self._rejections = _Children(self.rejections)
        self._upstream_failures = _Children(self.upstream_failures)
        self._connection_events = _Children(self.connection_events)
        self._outcomes = frozenset(OUTCOMES)
        # Known reasons and events exist from the start at 0, so rate() and alerts see the first one.
        for reason in UPSTREAM_FAILURE_REASONS:
            self._upstream_failures(reason)
        for event in CONNECTION_EVENTS:
            self._connection_events(self._event(event))

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request: called exactly once per request, after it ended."""
        if record.kind == "tunnel":
            self._observe_tunnel(record)
            return
        children = self._operations.get((record.service, record.operation))
        if children is None:
            children = self._operation_children(record.service, record.operation)
        key = (record.status, record.outcome)
        requests = children.requests.get(key)
        if requests is None:
            requests = children.requests[key] = self._requests_child(children, record)
        requests.inc()
        children.request_duration.observe(record.duration_seconds)
        if record.upstream_duration_seconds is not None:
            children.upstream_duration.observe(record.upstream_duration_seconds)
        if record.bytes_in:
            children.bytes_in.inc(record.bytes_in)
        if record.bytes_out:
            children.bytes_out.inc(record.bytes_out)
        if record.signature_state != "not_checked":
            signature = children.signatures.get(record.signature_state)
            if signature is None:
                signature = self._signature_child(children, record.signature_state)
            signature.inc()
        if record.skew_seconds is not None:
            children.clock_skew.observe(record.skew_seconds)
        if record.retry_attempt is not None:
            attempt = children.attempts.get(record.retry_attempt)
            if attempt is None:
                attempt = self._attempt_child(children, record.retry_attempt)
            attempt.inc()
        if record.findings:
            self._observe_findings(record, children.service)
        if record.upstream_failure is not None:
            reason = record.upstream_failure
            self._upstream_failures(reason if reason in UPSTREAM_FAILURE_REASONS else OTHER).inc()
        if record.classification is not None and record.outcome == "error":
            self._observe_error(record.classification, children.service, children.operation)

    def _observe_tunnel(self, record: RequestRecord) -> None:
        """A blind tunnel is not an AWS request (sigwatch sees only bytes): its own series."""
        self.tunnels.labels(record.outcome if record.outcome in self._outcomes else OTHER).inc()
        self.tunnel_bytes.labels("client_to_target").inc(record.bytes_in)
        self.tunnel_bytes.labels("target_to_client").inc(record.bytes_out)
        self.tunnel_duration.observe(record.duration_seconds)

    # -- first sight of a label combination (then cached) -------------------------------------------

    def _operation_children(self, service: str | None, operation: str | None) -> _OperationChildren:
        children = _OperationChildren(self, self._service(service), self._operation(operation))
        if len(self._operations) < _CHILD_CACHE_LIMIT:  # raw keys: a hostile client cannot grow it forever
            self._operations[(service, operation)] = children
        return children

    def _requests_child(self, children: _OperationChildren, record: RequestRecord) -> Any:
        outcome = record.outcome if record.outcome in self._outcomes else OTHER
        return self.requests.labels(children.service, children.operation, record.status_class, outcome)

    def _signature_child(self, children: _OperationChildren, state: str) -> Any:
        child = children.signatures[state] = self.signatures.labels(children.service, self._signature(state))
        return child

    def _attempt_child(self, children: _OperationChildren, attempt: int) -> Any:
        label = _attempt_label(attempt)
        child = self.attempts.labels(children.service, children.operation, label)
        if label != OTHER and attempt <= MAX_ATTEMPT_LABEL:
            children.attempts[attempt] = child
        return child

    def _observe_findings(self, record: RequestRecord, service: str) -> None:
        mode = record.mode
        for finding in record.findings:
            self._findings(service, self._check(finding.check), finding.severity.value, mode).inc()
        if record.outcome == "rejected":
            # Enforce mode answers with the first error finding (a payload finding may come later).
            rejected = next((f for f in record.findings if f.severity.value == "error"), record.findings[-1])
            self._rejections(service, self._check(rejected.check), self._code(rejected.code)).inc()

    def _observe_error(self, classification: Any, service: str, operation: str) -> None:
        # The labels follow from these facts (and the catalogs, fixed at start-up): look them up once.
        key = (
            service,
            operation,
            classification.exception,
            classification.code,
            classification.operation_error,
            classification.status,
        )
        child = self._error_children.get(key)
        if child is None:
            code = self._metric_code(classification) if self._metric_code is not None else OTHER
            child = self.upstream_errors.labels(
                service,
                operation,
                self._exception(classification.exception),
                self._code(code, OTHER),
                str(classification.category or UNKNOWN),
                "true" if classification.retryable else "false",
            )
            if len(self._error_children) < _CHILD_CACHE_LIMIT:  # raw upstream text: bounded cache
                self._error_children[key] = child
        child.inc()

    def connection_event(self, event: str) -> None:
        """A connection cut by the listener (header_timeout, too_many_connections, ...)."""
        self._connection_events(self._event(event)).inc()


# -- multiprocess mode (--workers) ------------------------------------------------------------------


def multiprocess_enabled() -> bool:
    """True when values live in PROMETHEUS_MULTIPROC_DIR files (every worker's values are summed)."""
    return getattr(values.ValueClass, "_multiprocess", False) is True


def enable_multiprocess(directory: str | os.PathLike[str]) -> None:
    """Store this process's metric values under `directory` from now on (call before `Metrics()`).

    prometheus-client picks its value class when it is first imported; setting the variable later
    needs the class picked again, which this does. Workers forked after this call inherit it.
    """
    os.environ[MULTIPROC_ENV] = os.fspath(directory)
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def prepare_multiprocess_dir(directory: str | os.PathLike[str]) -> Path:
    """Parent process, before starting workers: an empty directory, then `enable_multiprocess`.

    Files left by a previous run would be summed into this run's counters, so they are removed.
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    enable_multiprocess(path)
    return path


def worker_exited(pid: int) -> None:
    """Parent process, when a worker ends: drop its live gauges (in-flight) from the sums."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def metrics_payload(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The body and Content-Type of /metrics: this registry, or every worker's values when multiprocess.

    The classic text format (0.0.4) is understood by every Prometheus from 2.x to 3.x and by promtool.
    """
    if multiprocess_enabled():
        merged = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_PLAIN_0_0_4
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4
