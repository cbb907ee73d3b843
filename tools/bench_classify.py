#!/usr/bin/env python3
"""Print microseconds per error classification (extract_error + classify + annotation values).

    .venv/bin/python tools/bench_classify.py [--rounds N]

Figures only, no assertion: the target is about 5 µs for a typical JSON error. Each case is timed as the
best of several rounds (the least disturbed by the other processes on the machine).
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from proxy.catalogs import load_builtin_catalogs  # noqa: E402
from proxy.core.catalog import Catalogs  # noqa: E402
from proxy.core.errors.classify import annotation_error, annotation_error_class, classify, metric_code  # noqa: E402
from proxy.core.errors.extract import extract_error  # noqa: E402
from proxy.core.model import Protocol  # noqa: E402

CASES: list[tuple[str, Protocol, str, str, int, list[tuple[str, str]], bytes]] = [
    (
        "json storagegateway two-level",
        Protocol.JSON,
        "storagegateway",
        "DescribeStorediSCSIVolumes",
        400,
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-RequestId", "0c3a3b8c-5d2e-4f0e-9b7a-1f2e3d4c5b6a"),
        ],
        b'{"__type":"InvalidGatewayRequestException","message":"The specified volume was not found.",'
        b'"error":{"errorCode":"VolumeNotFound"}}',
    ),
    (
        "json throttling",
        Protocol.JSON,
        "storagegateway",
        "ListGateways",
        400,
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-RequestId", "0c3a3b8c-5d2e-4f0e-9b7a-1f2e3d4c5b6a"),
        ],
        b'{"__type":"ThrottlingException","message":"Rate exceeded."}',
    ),
    (
        "json unknown service",
        Protocol.JSON,
        "dynamodb",
        "GetItem",
        400,
        [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", "R")],
        b'{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"not found"}',
    ),
    (
        "rest-xml s3 NoSuchKey",
        Protocol.REST_XML,
        "s3",
        "GetObject",
        404,
        [("Content-Type", "application/xml"), ("x-amz-request-id", "4442587FB7D0A2F9"), ("x-amz-id-2", "h")],
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
        b"<Message>The specified key does not exist.</Message><Key>a/b</Key>"
        b"<RequestId>4442587FB7D0A2F9</RequestId><HostId>h</HostId></Error>",
    ),
    ("rest-xml s3 HEAD 404", Protocol.REST_XML, "s3", "HeadObject", 404, [("x-amz-request-id", "R")], b""),
    (
        "query importexport",
        Protocol.QUERY,
        "importexport",
        "GetStatus",
        400,
        [("Content-Type", "text/xml")],
        b'<ErrorResponse xmlns="http://importexport.amazonaws.com/"><Error><Type>Sender</Type>'
        b"<Code>InvalidJobIdException</Code><Message>m</Message></Error><RequestId>r</RequestId></ErrorResponse>",
    ),
    (
        "html 502",
        Protocol.JSON,
        "storagegateway",
        "ListGateways",
        502,
        [("Content-Type", "text/html")],
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    ),
    (
        "json gzip",
        Protocol.JSON,
        "storagegateway",
        "ListGateways",
        400,
        [("Content-Encoding", "gzip")],
        gzip.compress(b'{"__type":"ThrottlingException","message":"Rate exceeded."}'),
    ),
]


def classify_and_annotate(
    catalogs: Catalogs,
    protocol: Protocol,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *context: str,
) -> tuple[str, str, str]:
    """What the handler does per error response: extract, classify, header values, metric label."""
    result = classify(extract_error(protocol, status, headers, body), context[0], context[1], catalogs)
    return annotation_error(result), annotation_error_class(result), metric_code(result, catalogs)


def best_microseconds(function: Callable[[], object], iterations: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iterations):
            function()
        best = min(best, (time.perf_counter() - start) / iterations)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    catalogs = load_builtin_catalogs()
    print(f"{'case':32} {'extract':>8} {'classify':>9} {'all':>8}  (µs, best of {args.rounds})")
    for name, protocol, service, operation, status, headers, body in CASES:
        info = extract_error(protocol, status, headers, body)
        extract_only = partial(extract_error, protocol, status, headers, body)
        classify_only = partial(classify, info, service, operation, catalogs)
        everything = partial(
            classify_and_annotate, catalogs, protocol, status, headers, body, service, operation
        )
        extract_us = best_microseconds(extract_only, args.iterations, args.rounds)
        classify_us = best_microseconds(classify_only, args.iterations, args.rounds)
        all_us = best_microseconds(everything, args.iterations, args.rounds)
        print(f"{name:32} {extract_us:8.2f} {classify_us:9.2f} {all_us:8.2f}")


if __name__ == "__main__":
    main()
