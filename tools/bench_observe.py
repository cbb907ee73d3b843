"""Print µs per request for Metrics.observe and log_request (JSON to a null sink), alone and together.

    .venv/bin/python tools/bench_observe.py [--requests N] [--per-turn K]

Target (issue 9): metrics + one log line ≤ 15 µs per request, for a success and for a classified error.
Measured as the server runs them: inside a running event loop (uvloop when installed, as `sigwatch run`),
K requests per loop turn (default 8: a loaded proxy finishes several per turn), so the cost of each
turn's one log write (and its call_soon) is shared by its K lines; the time of the empty turns is
subtracted. Also printed: one request per turn (the concurrency-1 worst case: a write per line) and
the write-through path (no loop running: the CLI, a write per line). Figures are the best of several
rounds (the machine is shared; the minimum is the least disturbed measure).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.catalogs import load_builtin_catalogs
from proxy.cli import run_async
from proxy.core.errors.classify import classify, metric_code
from proxy.core.errors.extract import extract_error
from proxy.core.model import AwsError, Finding, Protocol, Severity
from proxy.observability.logs import configure_logging, get_logger, log_request
from proxy.observability.metrics import Metrics
from proxy.record import OUTCOME_ERROR, OUTCOME_OK, RequestRecord

ROUNDS = 7
CATALOGS = load_builtin_catalogs()


def ok_record() -> RequestRecord:
    """A typical successful Storage Gateway call with SDK retry headers and a verified signature."""
    return RequestRecord(
        request_id="0f" * 16,
        started_at=datetime.now(UTC).timestamp(),
        client="127.0.0.1",
        method="POST",
        mode="observe",
        protocol="json",
        service="storagegateway",
        operation="ListGateways",
        region="us-east-1",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        skew_seconds=-0.4,
        signature_state="valid",
        status=200,
        upstream_status=200,
        duration_seconds=0.0031,
        upstream_duration_seconds=0.0024,
        bytes_in=48,
        bytes_out=312,
        outcome=OUTCOME_OK,
        retry_attempt=1,
        retry_max=3,
        invocation_id="3c5d9d7e-8a1b-4f0e-9a8e-2b7f1c0d4e5a",
        user_agent="Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux lang/python#3.11",
    )


def error_record() -> RequestRecord:
    """A classified Storage Gateway error with one warning finding."""
    record = ok_record()
    record.status = record.upstream_status = 400
    record.outcome = OUTCOME_ERROR
    record.findings = (
        Finding(
            check="date",
            severity=Severity.WARNING,
            error=AwsError("InvalidSignatureException", 400, "Signature expired"),
            explanation="the client's clock is 6 minutes behind",
        ),
    )
    body = (
        b'{"__type": "InvalidGatewayRequestException", "message": "The specified gateway was not found.",'
        b' "error": {"errorCode": "GatewayNotFound"}}'
    )
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", "c0ffee00-0000-4000")]
    info = extract_error(Protocol.JSON, 400, headers, body)
    record.classification = classify(info, "storagegateway", "DescribeGatewayInformation", CATALOGS)
    return record


def observe_and_log(metrics: Metrics, logger: Any, record: RequestRecord) -> None:
    """What the handler does once per request."""
    metrics.observe(record)
    log_request(logger, record)


def best_microseconds(action: Callable[[], None], requests: int) -> float:
    """Without a running loop: every log line is written through."""
    for _ in range(min(requests, 2000)):
        action()
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(requests):
            action()
        best = min(best, (time.perf_counter() - started) / requests)
    return best * 1e6


async def best_in_loop(action: Callable[[], None], requests: int, per_turn: int) -> float:
    """In the running loop, `per_turn` requests per loop turn, less the time of the same empty turns."""
    turns = max(1, requests // per_turn)

    async def run(work: Callable[[], None] | None) -> float:
        started = time.perf_counter()
        for _ in range(turns):
            if work is not None:
                for _ in range(per_turn):
                    work()
            await asyncio.sleep(0)  # the loop's turn: the scheduled log flush runs here
        return time.perf_counter() - started

    await run(action)  # warm-up
    best = float("inf")
    for _ in range(ROUNDS):
        busy = await run(action)
        idle = await run(None)
        best = min(best, (busy - idle) / (turns * per_turn))
    return best * 1e6


async def measure(args: argparse.Namespace, metrics: Metrics, logger: Any) -> None:
    def in_loop(action: Callable[[], None], per_turn: int = args.per_turn) -> Awaitable[float]:
        return best_in_loop(action, args.requests, per_turn)

    print(
        f"µs per request (best of {ROUNDS} rounds of {args.requests}, in the event loop, "
        f"{args.per_turn} per loop turn):"
    )
    for name, record in (("ok", ok_record()), ("error", error_record())):
        observe = await in_loop(partial(metrics.observe, record))
        log = await in_loop(partial(log_request, logger, record))
        both = await in_loop(partial(observe_and_log, metrics, logger, record))
        print(f"  {name:5}  Metrics.observe {observe:5.1f}   log_request {log:5.1f}   both {both:5.1f}")
    for name, record in (("ok", ok_record()), ("error", error_record())):
        single = await in_loop(partial(observe_and_log, metrics, logger, record), per_turn=1)
        print(f"  {name:5}  one request per loop turn: both {single:5.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000, help="requests per round (default 20000)")
    parser.add_argument("--per-turn", type=int, default=8, help="requests per loop turn (default 8)")
    args = parser.parse_args()
    with open(os.devnull, "w", encoding="utf-8") as null:
        configure_logging("json", "info", stream=null)
        logger = get_logger()
        metrics = Metrics(CollectorRegistry(), metric_code=lambda c: metric_code(c, CATALOGS))

        async def in_the_loop() -> int:
            await measure(args, metrics, logger)
            return 0

        run_async(in_the_loop())
        for name, record in (("ok", ok_record()), ("error", error_record())):
            through = best_microseconds(partial(observe_and_log, metrics, logger, record), args.requests)
            print(f"  {name:5}  no loop running (written through): both {through:5.1f}")
        configure_logging("json", "warning", stream=null)
        quiet = get_logger()
        record = ok_record()
        disabled = best_microseconds(lambda: log_request(quiet, record), args.requests)
        print(f"  log_request with the level off (warning): {disabled:5.2f}")


if __name__ == "__main__":
    main()
