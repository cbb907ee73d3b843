"""Requests signed as the SDKs sign them (botocore's signers, AWS's example key), for the reliability
tests' hostile variants: each test takes a valid request and breaks one thing."""

from __future__ import annotations

from typing import Any

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from proxy.core.sigv4.signing import derive_signing_key
from tests.conftest import EXAMPLE_KEY_ID, EXAMPLE_SECRET
from tests.unit.sigv4.sigv4_chunk_frames import signed_chunked_body

REGION = "us-east-1"
STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"

STORAGE_GATEWAY = {
    "method": "POST",
    "path": "/",
    "headers": {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "StorageGateway_20120630.ListGateways",
        "Host": "storagegateway.us-east-1.amazonaws.com",
    },
    "body": b"{}",
    "service": "storagegateway",
}
S3_GET = {
    "method": "GET",
    "path": "/bucket/key",
    "headers": {"Host": "s3.us-east-1.amazonaws.com", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    "body": b"",
    "service": "s3",
}


class _StreamingSigV4(S3SigV4Auth):  # type: ignore[misc]
    """botocore's S3 signer, declaring signed aws-chunked instead of hashing the body."""

    def payload(self, request: Any) -> str:
        return STREAMING


def signed(case: dict[str, Any], base: str, secret: str = EXAMPLE_SECRET) -> dict[str, str]:
    """The headers botocore sends for `case` (the Host in the case is the one signed)."""
    signer = S3SigV4Auth if case["service"] == "s3" else SigV4Auth
    host = case["headers"]["Host"]
    request = AWSRequest(
        method=case["method"],
        url=f"http://{host}{case['path']}",
        data=case["body"],
        headers={k: v for k, v in case["headers"].items() if k != "Host"},
    )
    signer(Credentials(EXAMPLE_KEY_ID, secret), case["service"], REGION).add_auth(request)
    return {"Host": host, **dict(request.headers.items())}


def signed_chunked_put(
    path: str, data: bytes, chunk_size: int, *, decoded_length: str | None = None
) -> tuple[dict[str, str], bytes]:
    """An S3 PUT with a signed aws-chunked body (Content-Length left unsigned so framing can be broken
    without breaking the head's signature)."""
    host = "s3.us-east-1.amazonaws.com"
    request = AWSRequest(
        method="PUT",
        url=f"http://{host}{path}",
        headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(data)) if decoded_length is None else decoded_length,
        },
    )
    _StreamingSigV4(Credentials(EXAMPLE_KEY_ID, EXAMPLE_SECRET), "s3", REGION).add_auth(request)
    headers = dict(request.headers.items())
    amz_date = headers["X-Amz-Date"]
    key = derive_signing_key(EXAMPLE_SECRET, amz_date[:8], REGION, "s3")
    seed = headers["Authorization"].rsplit("Signature=", 1)[1]
    body, _ = signed_chunked_body(
        data,
        chunk_size,
        key=key,
        amz_date=amz_date,
        scope=f"{amz_date[:8]}/{REGION}/s3/aws4_request",
        seed=seed,
    )
    headers["Host"] = host
    return headers, body


def raw_request(
    method: str,
    path: str,
    headers: list[tuple[str, str]] | dict[str, str],
    body: bytes,
    *,
    close: bool = True,
) -> bytes:
    """HTTP/1.1 bytes exactly as given (repeated headers kept), `Content-Length` added for a body, and
    `Connection: close` (the answer then ends with the connection: no waiting to see if more comes)."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    if body and not any(name.lower() == "content-length" for name, _ in pairs):
        pairs.append(("Content-Length", str(len(body))))
    if close:
        pairs.append(("Connection", "close"))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{name}: {value}\r\n" for name, value in pairs)
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + body
