"""Prometheus metrics, all fed from RequestRecord in one call per request.

Conventions (https://prometheus.io/docs/practices/naming/): `sigwatch_` prefix, base units in the name
(seconds, bytes), counters end in `_total`, explicit buckets chosen for each quantity. Labels are
bounded: no access keys, request ids, raw paths or free text; a label value that is not a plain
identifier, or one past a dimension's vocabulary cap, becomes `other` (unknown error codes become
`other` through the catalogs' `metric_code`).

Cost: prometheus-client takes a lock on every update (and in multiprocess mode writes a file), and
`labels()` validates on every call. The request path does neither: each child has an accumulator (a
plain float, or a histogram's sum and bucket counts) found once per label tuple and cached, so one
`observe()` is a handful of dict lookups and float adds. `fold()` writes the accumulators into the
children: a collector registered first in the registry folds before every collection, so /metrics and
`generate_latest` are exact in one process.

Multiprocess (`--workers`): prometheus-client keeps each worker's values in mmap files under
PROMETHEUS_MULTIPROC_DIR; `prepare_multiprocess_dir()` (parent, before the workers start),
`metrics_payload()` (whichever worker answers /metrics) and `worker_exited()` (parent, when a worker
ends) are all the server needs. Gauges declare how workers combine (in-flight: `livesum`). A worker
folds into its files FOLD_INTERVAL_SECONDS after a change and at exit, so the aggregated scrape lags at
most that.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import platform
import re
import threading
import weakref
from bisect import bisect_left
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
# Most entries in a cache keyed by raw request values (service and operation as sent, an upstream's error
# facts): past this, their series are still found, through the label values, but no longer cached.
_CHILD_CACHE_LIMIT: Final = 20000

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# Multiprocess mode: how long a worker's counts may wait before they reach its files (the parent's
# /metrics reads those files, so an aggregated scrape lags at most this).
FOLD_INTERVAL_SECONDS: Final = 0.5


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


class _Count:
    """A counter's value on the request path: a plain float, written to the prometheus child (whose
    value takes a lock per update, and in multiprocess mode writes a file) only when folded.

    The request path is the only writer of `total`; a fold only reads it and sets the child, so a scrape
    folding from another thread in the middle of a request loses nothing. `total` starts from the child's
    value (a worker that reuses a dead worker's pid continues its file) and is added to in the order
    prometheus-client would add, so the exposed float is the same to the last bit.
    """

    __slots__ = ("folded", "total", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.total: float = value.get()
        self.folded = self.total

    def fold(self) -> None:
        total = self.total
        if total != self.folded:
            self.value.set(total)
            self.folded = total


class GaugeValue(_Count):
    """A gauge kept like `_Count` (in-flight requests): `inc`/`dec`/`set` as prometheus-client's Gauge."""

    __slots__ = ("_changed",)

    def __init__(self, value: Any, changed: Callable[[float], None] | None) -> None:
        super().__init__(value)
        self._changed = changed  # multiprocess mode: schedules a fold

    def inc(self, amount: float = 1) -> None:
        self.total += amount
        if self._changed is not None:
            self._changed(self.total)

    def dec(self, amount: float = 1) -> None:
        self.inc(-amount)

    def set(self, value: float) -> None:
        self.total = float(value)
        if self._changed is not None:
            self._changed(self.total)


class _Buckets:
    """A histogram child's sum and bucket counts, kept like `_Count`.

    `observe` is prometheus-client's Histogram.observe: the sum grows by the amount, and the first bucket
    whose upper bound is >= the amount (the last one is +Inf) counts one; found by bisection.
    """

    __slots__ = ("bounds", "bucket_values", "counts", "folded_counts", "folded_sum", "sum", "sum_value")

    def __init__(self, child: Any) -> None:
        self.bounds: tuple[float, ...] = tuple(child._upper_bounds)
        self.sum_value = child._sum
        self.bucket_values: tuple[Any, ...] = tuple(child._buckets)
        self.sum: float = self.sum_value.get()
        self.folded_sum = self.sum
        self.counts: list[float] = [bucket.get() for bucket in self.bucket_values]
        self.folded_counts = list(self.counts)

    def observe(self, amount: float) -> None:
        self.sum += amount
        index = bisect_left(self.bounds, amount)
        if amount <= self.bounds[index]:  # false only for NaN, which prometheus-client puts in no bucket
            self.counts[index] += 1

    def fold(self) -> None:
        total = self.sum
        if total != self.folded_sum:
            self.sum_value.set(total)
            self.folded_sum = total
        counts, folded = self.counts, self.folded_counts
        if counts == folded:
            return
        for index, count in enumerate(counts):
            if count != folded[index]:
                self.bucket_values[index].set(count)
                folded[index] = count


_Accumulator = _Count | _Buckets


class _Family:
    """One labelled metric's accumulators, one per child (by label values), made on first sight.

    Not capped: there is one per prometheus child, which prometheus-client keeps for good anyway (the
    label vocabularies bound both).
    """

    __slots__ = ("every", "make", "metric", "series")

    def __init__(self, metric: Any, make: Callable[[Any], Any], every: list[_Accumulator]) -> None:
        self.metric = metric
        self.make = make  # child -> accumulator
        self.every = every  # every accumulator of the Metrics, in creation order: what a fold walks
        self.series: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        found = self.series.get(labels)
        if found is None:
            found = self.series[labels] = self.make(self.metric.labels(*labels))
            self.every.append(found)
        return found


def _count(child: Any) -> _Count:
    return _Count(child._value)


class _OperationSeries:
    """The accumulators one (service, operation) pair touches on every request, found with one lookup."""

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
        self.request_duration: _Buckets = metrics._request_duration_series(service, operation)
        self.upstream_duration: _Buckets = metrics._upstream_duration_series(service, operation)
        self.bytes_in: _Count = metrics._bytes_in_series(service)
        self.bytes_out: _Count = metrics._bytes_out_series(service)
        self.clock_skew: _Buckets = metrics._clock_skew_series(service)
        # Keyed by raw values (status code and outcome, signature state, attempt number): bounded
        # by construction (status < 1000, a few outcomes and states, attempts folded at 10).
        self.requests: dict[tuple[int, str], _Count] = {}
        self.signatures: dict[str, _Count] = {}
        self.attempts: dict[int, _Count] = {}


class _FoldBeforeCollection:
    """Registered first in the registry, so collecting the registry (generate_latest, get_sample_value)
    folds the request path's counts into the children before any of them is read."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def describe(self) -> list[Any]:
        return []  # no series of its own

    def collect(self) -> list[Any]:
        self._metrics.fold()
        return []


def _fold_at_exit(metrics: weakref.ref[Metrics]) -> None:
    """A worker's last counts reach its multiprocess files before it ends."""
    alive = metrics()
    if alive is not None:
        alive.fold()


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
        self._accumulators: list[_Accumulator] = []
        self._fold_lock = threading.Lock()
        self._multiprocess = multiprocess_enabled()
        self._fold_armed = False  # multiprocess mode: a fold is scheduled (timer or next loop turn)
        self._fold_soon = False
        # First in the registry: every collection folds before the metrics below are read.
        registry.register(_FoldBeforeCollection(self))

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
        in_flight = Gauge(
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
        if not self._multiprocess:
            # One process: its CPU, memory and file descriptors (in multiprocess mode each worker
            # would report only itself, which misleads: left out there).
            ProcessCollector(registry=registry)

        # The request path's side of each metric (blind tunnels, rare, update their children directly).
        every = self._accumulators
        self.in_flight = GaugeValue(in_flight._value, self._in_flight_changed if self._multiprocess else None)
        every.append(self.in_flight)
        self._requests_series = _Family(self.requests, _count, every)
        self._request_duration_series = _Family(self.request_duration, _Buckets, every)
        self._upstream_duration_series = _Family(self.upstream_duration, _Buckets, every)
        self._upstream_errors_series = _Family(self.upstream_errors, _count, every)
        self._findings_series = _Family(self.findings, _count, every)
        self._rejections_series = _Family(self.rejections, _count, every)
        self._signatures_series = _Family(self.signatures, _count, every)
        self._clock_skew_series = _Family(self.clock_skew, _Buckets, every)
        self._attempts_series = _Family(self.attempts, _count, every)
        self._upstream_failures_series = _Family(self.upstream_failures, _count, every)
        self._connection_events_series = _Family(self.connection_events, _count, every)
        self._bytes_in_series = _Family(self.bytes_in, _count, every)
        self._bytes_out_series = _Family(self.bytes_out, _count, every)

        self._operations: dict[tuple[str | None, str | None], _OperationSeries] = {}
        self._error_series: dict[tuple[Any, ...], _Count] = {}
        self._finding_counts: dict[tuple[Any, ...], _Count] = {}
        self._outcomes = frozenset(OUTCOMES)
        # Known reasons and events exist from the start at 0, so rate() and alerts see the first one.
        for reason in UPSTREAM_FAILURE_REASONS:
            self._upstream_failures_series(reason)
        for event in CONNECTION_EVENTS:
            self._connection_events_series(self._event(event))
        if self._multiprocess:
            atexit.register(_fold_at_exit, weakref.ref(self))

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request: called exactly once per request, after it ended."""
        if record.kind == "tunnel":
            self._observe_tunnel(record)
            return
        series = self._operations.get((record.service, record.operation))
        if series is None:
            series = self._operation_series(record.service, record.operation)
        key = (record.status, record.outcome)
        requests = series.requests.get(key)
        if requests is None:
            requests = series.requests[key] = self._requests_count(series, record)
        requests.total += 1
        series.request_duration.observe(record.duration_seconds)
        if record.upstream_duration_seconds is not None:
            series.upstream_duration.observe(record.upstream_duration_seconds)
        if record.bytes_in:
            series.bytes_in.total += record.bytes_in
        if record.bytes_out:
            series.bytes_out.total += record.bytes_out
        if record.signature_state != "not_checked":
            signature = series.signatures.get(record.signature_state)
            if signature is None:
                signature = self._signature_count(series, record.signature_state)
            signature.total += 1
        if record.skew_seconds is not None:
            series.clock_skew.observe(record.skew_seconds)
        if record.retry_attempt is not None:
            attempt = series.attempts.get(record.retry_attempt)
            if attempt is None:
                attempt = self._attempt_count(series, record.retry_attempt)
            attempt.total += 1
        if record.findings:
            self._observe_findings(record, series.service)
        if record.upstream_failure is not None:
            reason = record.upstream_failure
            self._upstream_failures_series(reason if reason in UPSTREAM_FAILURE_REASONS else OTHER).total += 1
        if record.classification is not None and record.outcome == "error":
            self._observe_error(record.classification, series.service, series.operation)
        if self._multiprocess and not self._fold_armed:
            self._changed()

    def _observe_tunnel(self, record: RequestRecord) -> None:
        """A blind tunnel is not an AWS request (sigwatch sees only bytes): its own series."""
        self.tunnels.labels(record.outcome if record.outcome in self._outcomes else OTHER).inc()
        self.tunnel_bytes.labels("client_to_target").inc(record.bytes_in)
        self.tunnel_bytes.labels("target_to_client").inc(record.bytes_out)
        self.tunnel_duration.observe(record.duration_seconds)

    # -- first sight of a label combination (then cached) -------------------------------------------

    def _operation_series(self, service: str | None, operation: str | None) -> _OperationSeries:
        series = _OperationSeries(self, self._service(service), self._operation(operation))
        if len(self._operations) < _CHILD_CACHE_LIMIT:  # raw keys: a hostile client cannot grow it forever
            self._operations[(service, operation)] = series
        return series

    def _requests_count(self, series: _OperationSeries, record: RequestRecord) -> _Count:
        outcome = record.outcome if record.outcome in self._outcomes else OTHER
        count: _Count = self._requests_series(series.service, series.operation, record.status_class, outcome)
        return count

    def _signature_count(self, series: _OperationSeries, state: str) -> _Count:
        count: _Count = self._signatures_series(series.service, self._signature(state))
        series.signatures[state] = count
        return count

    def _attempt_count(self, series: _OperationSeries, attempt: int) -> _Count:
        label = _attempt_label(attempt)
        count: _Count = self._attempts_series(series.service, series.operation, label)
        if label != OTHER and attempt <= MAX_ATTEMPT_LABEL:
            series.attempts[attempt] = count
        return count

    def _observe_findings(self, record: RequestRecord, service: str) -> None:
        mode = record.mode
        for finding in record.findings:
            key = (service, finding.check, finding.severity, mode)
            count = self._finding_counts.get(key)
            if count is None:
                count = self._findings_series(
                    service, self._check(finding.check), finding.severity.value, mode
                )
                if len(self._finding_counts) < _CHILD_CACHE_LIMIT:  # raw check names: bounded cache
                    self._finding_counts[key] = count
            count.total += 1
        if record.outcome == "rejected":
            # Enforce mode answers with the first error finding (a payload finding may come later).
            rejected = next((f for f in record.findings if f.severity.value == "error"), record.findings[-1])
            self._rejections_series(
                service, self._check(rejected.check), self._code(rejected.code)
            ).total += 1

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
        count = self._error_series.get(key)
        if count is None:
            code = self._metric_code(classification) if self._metric_code is not None else OTHER
            count = self._upstream_errors_series(
                service,
                operation,
                self._exception(classification.exception),
                self._code(code, OTHER),
                str(classification.category or UNKNOWN),
                "true" if classification.retryable else "false",
            )
            if len(self._error_series) < _CHILD_CACHE_LIMIT:  # raw upstream text: bounded cache
                self._error_series[key] = count
        count.total += 1

    def connection_event(self, event: str) -> None:
        """A connection cut by the listener (header_timeout, too_many_connections, ...)."""
        self._connection_events_series(self._event(event)).total += 1
        if self._multiprocess and not self._fold_armed:
            self._changed()

    # -- folding into the prometheus children --------------------------------------------------------

    def fold(self) -> None:
        """Write the request path's counts into the prometheus children.

        Done before every collection of the registry (so a scrape in this process is exact) and, in
        multiprocess mode, within FOLD_INTERVAL_SECONDS of a change and at exit (the parent's scrape
        reads the workers' files, so it lags at most that). Folds are serialized: two threads folding at
        once cannot leave an older value behind a newer one.
        """
        with self._fold_lock:
            accumulators = self._accumulators
            for index in range(len(accumulators)):  # the request path may append meanwhile
                accumulators[index].fold()

    def _changed(self) -> None:
        """Multiprocess mode: fold on the event loop FOLD_INTERVAL_SECONDS after the first change since
        the last fold. Without a running loop, the next collection or the process's exit folds."""
        if self._fold_armed:
            return
        loop = asyncio._get_running_loop()
        if loop is None:
            return
        self._fold_armed = True
        loop.call_later(FOLD_INTERVAL_SECONDS, self._fold_on_timer)

    def _fold_on_timer(self) -> None:
        self._fold_armed = False
        self.fold()

    def _in_flight_changed(self, in_flight: float) -> None:
        """Multiprocess mode: a worker with nothing in flight folds on its next loop turn (after the last
        request's observe), so a scrape after a burst of requests sees all of them at once; a busy one
        folds on the timer."""
        if in_flight > 0:
            self._changed()
        elif not self._fold_soon:
            loop = asyncio._get_running_loop()
            if loop is not None:
                self._fold_soon = True
                loop.call_soon(self._fold_on_idle)

    def _fold_on_idle(self) -> None:
        self._fold_soon = False
        self.fold()


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
