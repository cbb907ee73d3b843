"""Print µs per request for Metrics.observe and log_request (JSON to a null sink), alone and together.

    .venv/bin/python tools/bench_observe.py [--requests N]

Target (issue 6): metrics + one log line ≤ 15 µs per request. Figures are the best of several rounds
(the machine is shared; the minimum is the least disturbed measure).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.catalogs import load_builtin_catalogs
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
    for _ in range(min(requests, 2000)):
        action()
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(requests):
            action()
        best = min(best, (time.perf_counter() - started) / requests)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20000, help="requests per round (default 20000)")
    args = parser.parse_args()
    with open(os.devnull, "w", encoding="utf-8") as null:
        configure_logging("json", "info", stream=null)
        logger = get_logger()
        metrics = Metrics(CollectorRegistry(), metric_code=lambda c: metric_code(c, CATALOGS))
        print(f"µs per request (best of {ROUNDS} rounds of {args.requests}):")
        for name, record in (("ok", ok_record()), ("error", error_record())):
            observe = best_microseconds(partial(metrics.observe, record), args.requests)
            log = best_microseconds(partial(log_request, logger, record), args.requests)
            both = best_microseconds(partial(observe_and_log, metrics, logger, record), args.requests)
            print(f"  {name:5}  Metrics.observe {observe:5.1f}   log_request {log:5.1f}   both {both:5.1f}")
        configure_logging("json", "warning", stream=null)
        quiet = get_logger()
        record = ok_record()
        disabled = best_microseconds(lambda: log_request(quiet, record), args.requests)
        print(f"  log_request with the level off (warning): {disabled:5.2f}")


if __name__ == "__main__":
    main()
