"""The request path counts in plain accumulators; they are folded into the prometheus children before
every collection (a scrape in one process is exact), and in multiprocess mode on a timer, when a worker
goes idle and at its exit (the aggregated scrape lags at most the timer)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from observability_support import new_metrics, record, value
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from proxy.observability.metrics import DURATION_BUCKETS, FOLD_INTERVAL_SECONDS, SKEW_BUCKETS
from proxy.record import RequestRecord
from tests.support.net import wait_until

REPO = Path(__file__).resolve().parents[2]
SUPPORT = str(Path(__file__).parent)
LABELS = {"service": "storagegateway", "operation": "ListGateways"}


def random_records(count: int, seed: int) -> list[RequestRecord]:
    rng = random.Random(seed)
    return [
        record(
            duration_seconds=rng.random() * rng.choice([0.001, 0.1, 5.0, 100.0]),
            skew_seconds=rng.uniform(-1000.0, 1000.0),
            bytes_in=rng.randrange(5000),
        )
        for _ in range(count)
    ]


def sequential_sum(amounts: list[float]) -> float:
    """What prometheus-client's own `observe` would hold: the amounts added one by one, in order."""
    total = 0.0
    for amount in amounts:
        total += amount
    return total


def bucket(amounts: list[float], le: float) -> float:
    return float(sum(1 for amount in amounts if amount <= le))


def test_a_scrape_is_exact_after_any_number_of_requests() -> None:
    metrics, registry = new_metrics()
    records = random_records(997, seed=3)
    for item in records[:500]:
        metrics.observe(item)
    generate_latest(registry)  # a scrape in between: the next one must still count everything once
    for item in records[500:]:
        metrics.observe(item)

    durations = [r.duration_seconds for r in records]
    skews = [r.skew_seconds for r in records if r.skew_seconds is not None]
    assert value(registry, "sigwatch_requests_total", **LABELS, status_class="2xx", outcome="ok") == 997
    duration = "sigwatch_request_duration_seconds"
    # exactly the float prometheus-client gets by adding each observation in turn (no reassociation)
    assert value(registry, f"{duration}_sum", **LABELS) == sequential_sum(durations)
    for le in DURATION_BUCKETS:
        assert value(registry, f"{duration}_bucket", **LABELS, le=str(le)) == bucket(durations, le)
    assert value(registry, f"{duration}_bucket", **LABELS, le="+Inf") == 997
    skew = "sigwatch_clock_skew_seconds"  # no _sum: prometheus-client leaves it out with negative buckets
    assert value(registry, f"{skew}_count", service="storagegateway") == len(skews)
    for le in SKEW_BUCKETS:
        assert value(registry, f"{skew}_bucket", service="storagegateway", le=str(le)) == bucket(skews, le)
    assert value(registry, "sigwatch_request_body_bytes_total", service="storagegateway") == sum(
        r.bytes_in for r in records
    )


def test_scrapes_from_another_thread_lose_nothing_and_never_go_back() -> None:
    metrics, registry = new_metrics()
    records = random_records(3000, seed=11)
    seen: list[float] = []
    done = threading.Event()

    def scrape() -> None:
        while not done.is_set():
            seen.append(
                value(registry, "sigwatch_requests_total", **LABELS, status_class="2xx", outcome="ok")
            )

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for item in records:
            metrics.in_flight.inc()
            metrics.observe(item)
            metrics.in_flight.dec()
    finally:
        done.set()
        scraper.join(timeout=30)
    assert seen == sorted(seen)  # a counter as scraped never decreases
    assert value(registry, "sigwatch_requests_total", **LABELS, status_class="2xx", outcome="ok") == 3000
    assert value(registry, "sigwatch_request_duration_seconds_sum", **LABELS) == sequential_sum(
        [r.duration_seconds for r in records]
    )
    assert value(registry, "sigwatch_in_flight_requests") == 0


WORKER = """
import asyncio, sys
sys.path.insert(0, sys.argv[2])
from prometheus_client import CollectorRegistry
from observability_support import record
from proxy.observability.metrics import Metrics, enable_multiprocess

enable_multiprocess(sys.argv[1])
requests, mode = int(sys.argv[3]), sys.argv[4]

async def main():
    metrics = Metrics(CollectorRegistry())
    metrics.in_flight.inc()  # a request in flight: the worker is busy, only the timer folds
    for _ in range(requests):
        metrics.observe(record())
    if mode == "idle":
        metrics.in_flight.dec()  # nothing in flight: the next loop turn folds
    if mode == "exit":
        return  # the loop ends before the timer: the exit folds
    print("observed", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

asyncio.run(main())
"""


def aggregated_requests(directory: Path) -> float:
    """sigwatch_requests_total as the --workers parent's /metrics would sum it from the workers' files."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    found = registry.get_sample_value(
        "sigwatch_requests_total", {**LABELS, "status_class": "2xx", "outcome": "ok"}
    )
    return 0.0 if found is None else found


def start_worker(directory: Path, requests: int, mode: str) -> subprocess.Popen[str]:
    env = {key: v for key, v in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(directory), SUPPORT, str(requests), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


@pytest.mark.parametrize("mode", ["busy", "idle"])
def test_a_running_worker_s_counts_reach_the_aggregated_scrape(tmp_path: Path, mode: str) -> None:
    """busy: by the timer (FOLD_INTERVAL_SECONDS); idle: by the next loop turn. The worker still runs."""
    worker = start_worker(tmp_path, 25, mode)
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "observed", worker.stderr.read() if worker.stderr else ""
        wait_until(
            lambda: aggregated_requests(tmp_path) == 25,
            10 * FOLD_INTERVAL_SECONDS + 5,
            "the worker's 25 requests in the aggregated scrape",
        )
        assert worker.poll() is None  # folded while running, not at exit
    finally:
        worker.communicate(input="stop\n", timeout=30)
    assert worker.returncode == 0


def test_a_worker_s_last_counts_are_folded_at_its_exit(tmp_path: Path) -> None:
    worker = start_worker(tmp_path, 7, "exit")
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    assert aggregated_requests(tmp_path) == 7
