#!/usr/bin/env python3
"""Print microseconds per SigV4 verification with a warm signing-key cache.

    .venv/bin/python tools/bench_verify.py [--rounds N] [--iterations N]

Figures only, no assertion: the target is 20 µs per verification (parse the Authorization header,
canonical request, string to sign, HMAC with the cached key, constant-time compare). Also printed, for
the same request: the whole validate() pass (CheckContext + every default check + the result),
identify(), RequestHead.from_raw() from the header bytes, and the other core calls the handler makes
per request (ambiguous_credentials + needs_body). Each figure is the best of several rounds (the
machine is shared; the minimum is the least disturbed measure). The requests are signed by botocore.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import botocore.auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from proxy.core.checks import CheckContext, ValidationSettings, needs_body, validate  # noqa: E402
from proxy.core.identify import identify  # noqa: E402
from proxy.core.model import Credential, RequestHead  # noqa: E402
from proxy.core.sigv4.auth import ambiguous_credentials, parse_authorization  # noqa: E402
from proxy.core.sigv4.dates import request_date  # noqa: E402
from proxy.core.sigv4.signing import DEFAULT_KEY_CACHE, compute_request_signature  # noqa: E402
from proxy.service_models import load_service_index  # noqa: E402

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

CASES = {
    "storagegateway (JSON 1.1)": (
        "POST",
        "https://storagegateway.us-east-1.amazonaws.com/",
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "StorageGateway_20130630.ListGateways",
        },
        b"{}",
        "storagegateway",
        botocore.auth.SigV4Auth,
    ),
    "s3 GetObject": (
        "GET",
        "http://127.0.0.1:9000/bucket/photos/2024/cat%20picture.jpg",
        {"Range": "bytes=0-1023"},
        b"",
        "s3",
        botocore.auth.S3SigV4Auth,
    ),
    "sts GetCallerIdentity (Query)": (
        "POST",
        "https://sts.amazonaws.com/",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        b"Action=GetCallerIdentity&Version=2011-06-15",
        "sts",
        botocore.auth.SigV4Auth,
    ),
}


def signed(case: tuple[str, str, dict[str, str], bytes, str, type]) -> tuple[RequestHead, bytes]:
    """Sign one case with botocore at WHEN; the head as an HTTP client sends it."""
    method, url, headers, body, service, signer = case
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        signer(Credentials(ACCESS_KEY, SECRET), service, "us-east-1").add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    sent = [("Host", parts.netloc)] + [
        (k, v.decode() if isinstance(v, bytes) else v) for k, v in prepared.headers.items()
    ]
    return RequestHead(method, parts.path, parts.query, tuple(sent)), body


def best_microseconds(function: Callable[[], object], iterations: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iterations):
            function()
        best = min(best, (time.perf_counter() - start) / iterations)
    return best * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=5000)
    args = parser.parse_args()
    index = load_service_index()
    credentials = {ACCESS_KEY: Credential(ACCESS_KEY, SECRET)}
    settings = ValidationSettings()
    print(
        f"{'request':32} {'verify':>7} {'validate':>9} {'identify':>9} {'from_raw':>9} {'handler':>8}"
        "   (µs; target: verify ≤ 20 µs, warm key cache)"
    )
    credential = credentials[ACCESS_KEY]
    for name, case in CASES.items():
        head, payload = signed(case)
        service = case[4]
        body_sha256 = hashlib.sha256(payload).hexdigest()
        identity = identify(head, index, form_body=payload)
        s3 = service == "s3"

        def verify(head: RequestHead = head, s3: bool = s3, body_sha256: str = body_sha256) -> bool:
            auth = parse_authorization(head.get("authorization") or "")
            date = request_date(head)
            assert date is not None
            computed = compute_request_signature(
                head,
                auth,
                credential,
                amz_date=date.amz,
                payload_hash=head.get("x-amz-content-sha256") or body_sha256,
                normalize_path=not s3,
                cache=DEFAULT_KEY_CACHE,
            )
            return computed.matches(auth.signature)

        def full(
            head: RequestHead = head, identity: object = identity, body_sha256: str = body_sha256
        ) -> object:
            ctx = CheckContext(
                request=head,
                identity=identity,  # type: ignore[arg-type]
                now=WHEN,
                settings=settings,
                credentials=credentials,
                body_sha256=body_sha256,
                enforce=True,
                services=index,
            )
            return validate(ctx)

        raw_headers = [(name.encode("utf-8"), value.encode("utf-8")) for name, value in head.headers]
        target = f"{head.path}?{head.query}" if head.query else head.path

        def from_raw(method: str = head.method, target: str = target, raw: object = raw_headers) -> object:
            return RequestHead.from_raw(method, target, raw)  # type: ignore[arg-type]

        def identify_only(head: RequestHead = head, payload: bytes = payload) -> object:
            return identify(head, index, form_body=payload)

        def handler_calls(head: RequestHead = head, identity: object = identity) -> object:
            return ambiguous_credentials(head), needs_body(head, identity)  # type: ignore[arg-type]

        if RequestHead.from_raw(head.method, target, raw_headers) != head:
            print(f"{name}: from_raw builds another head", file=sys.stderr)
            return 1
        if not verify():
            print(f"{name}: the signature does not verify", file=sys.stderr)
            return 1
        result = full()
        if result.signature_state != "valid":  # type: ignore[attr-defined]
            print(f"{name}: validate() says {result}", file=sys.stderr)
            return 1
        figures = [
            best_microseconds(function, args.iterations, args.rounds)
            for function in (verify, full, identify_only, from_raw, handler_calls)
        ]
        print(
            f"{name:32} "
            + " ".join(f"{figure:{width}.1f}" for figure, width in zip(figures, (7, 9, 9, 9, 8), strict=True))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
