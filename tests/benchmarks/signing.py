"""Requests signed the way an SDK signs them, as raw HTTP/1.1 bytes for wrk and the harness's clients.

Heads are signed by botocore with the date of "now" (valid for the 15-minute clock window; the harness
signs again before every load run). The aws-chunked upload's chunk signatures are computed here, from
the AWS rule itself rather than from sigwatch's code, so the proxy is checked against an independent
implementation.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# The example key of the AWS documentation (public on purpose); written to the credentials file the
# sigwatch contenders verify with.
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
USER_AGENT = "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux lang/python#3.11 sigwatch-bench"
GATEWAY_ARN = "arn:aws:storagegateway:us-east-1:111122223333:gateway/sgw-12A3456B"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class RawRequest:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def head_bytes(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1", *(f"{n}: {v}" for n, v in self.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def wire(self) -> bytes:
        return self.head_bytes() + self.body

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


def credentials_file(path: Path) -> Path:
    """An AWS shared-credentials file with the benchmark key, mode 0600 as sigwatch requires."""
    path.write_text(
        f"[default]\naws_access_key_id = {ACCESS_KEY_ID}\naws_secret_access_key = {SECRET_ACCESS_KEY}\n"
    )
    path.chmod(0o600)
    return path


def botocore_signed(
    method: str,
    host: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
    *,
    service: str,
    signer: type[botocore.auth.SigV4Auth] = botocore.auth.SigV4Auth,
) -> RawRequest:
    """Sign with botocore now; the head in the order an SDK's HTTP client sends it (Host first)."""
    request = AWSRequest(method=method, url=f"http://{host}{target}", headers=headers, data=body)
    signer(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), service, REGION).add_auth(request)
    prepared = request.prepare()
    sent = [("Host", host)]
    for name, value in prepared.headers.items():
        sent.append((name, value.decode() if isinstance(value, bytes) else value))
    if body and not any(name.lower() == "content-length" for name, _ in sent):
        sent.append(("Content-Length", str(len(body))))
    return RawRequest(method, target, tuple(sent), body)


def storage_gateway(host: str, operation: str, body: bytes) -> RawRequest:
    """A Storage Gateway JSON 1.1 call with the headers boto3 sends (retry and invocation headers)."""
    return botocore_signed(
        "POST",
        host,
        "/",
        {
            "X-Amz-Target": f"StorageGateway_20130630.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
            "User-Agent": USER_AGENT,
            "amz-sdk-invocation-id": str(uuid.uuid4()),
            "amz-sdk-request": "attempt=1; max=3",
        },
        body,
        service="storagegateway",
    )


def list_gateways(host: str) -> RawRequest:
    """Answered 200 by the upstream."""
    return storage_gateway(host, "ListGateways", b"{}")


def describe_gateway(host: str) -> RawRequest:
    """Answered 400 GatewayNotFound by the upstream (an error sigwatch extracts and classifies)."""
    return storage_gateway(
        host, "DescribeGatewayInformation", b'{"GatewayARN": "' + GATEWAY_ARN.encode() + b'"}'
    )


def rotation(host: str, error_every: int) -> list[RawRequest]:
    """The requests wrk sends in turn: `error_every - 1` ListGateways then one failing call (0: none)."""
    if error_every <= 0:
        return [list_gateways(host)]
    return [list_gateways(host)] * (error_every - 1) + [describe_gateway(host)]


def lua_string(data: bytes) -> str:
    """A Lua string literal of any bytes (decimal escapes for everything not plainly printable)."""
    out = []
    for byte in data:
        char = chr(byte)
        if 32 <= byte < 127 and char not in '"\\':
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def write_lua_requests(path: Path, requests: list[RawRequest]) -> Path:
    """The REQUESTS_FILE of lua/signed.lua."""
    path.write_text("return {\n" + ",\n".join(lua_string(r.wire()) for r in requests) + "\n}\n")
    return path


# -- S3 --------------------------------------------------------------------------------------------------


def s3_get(host: str, path: str) -> RawRequest:
    """GetObject as boto3 signs it over http (x-amz-content-sha256 of the empty body)."""
    return botocore_signed(
        "GET", host, path, {"User-Agent": USER_AGENT}, b"", service="s3", signer=botocore.auth.S3SigV4Auth
    )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(date: str) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = _hmac(("AWS4" + SECRET_ACCESS_KEY).encode(), date)
    for part in (REGION, "s3", "aws4_request"):
        key = _hmac(key, part)
    return key


@dataclass(frozen=True, slots=True)
class ChunkedUpload:
    """A PutObject with an aws-chunked body signed chunk by chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).

    Every chunk carries the same `chunk_size` bytes of data (the last one may be shorter), so the body
    is never held in memory: `frames()` yields (chunk head, data, CRLF) triples to send as they come.
    """

    request: RawRequest
    chunk_heads: tuple[bytes, ...]
    data: bytes
    total: int

    def frames(self) -> Iterator[tuple[bytes, memoryview]]:
        view = memoryview(self.data)
        left = self.total
        for head in self.chunk_heads:
            size = min(len(self.data), left)
            left -= size
            yield head, view[:size]

    @property
    def wire_length(self) -> int:
        return sum(len(h) for h in self.chunk_heads) + self.total + 2 * len(self.chunk_heads)


def chunked_upload(
    host: str, path: str, total: int, chunk_size: int, *, corrupt_chunk: int | None = None
) -> ChunkedUpload:
    """Sign the head with botocore, then chain the chunk signatures from its signature (the seed).

    AWS (S3 API reference, "Signature Calculations for the Authorization Header: Transferring Payload
    in Multiple Chunks"): each chunk is `hex(size);chunk-signature=<sig>\\r\\n<data>\\r\\n`, the last one
    of size 0, and
        string-to-sign = "AWS4-HMAC-SHA256-PAYLOAD\\n" + timestamp + "\\n" + scope + "\\n"
                         + previous signature + "\\n" + sha256("") + "\\n" + sha256(chunk data)
    `corrupt_chunk` (an index) gets a wrong signature: enforce mode must refuse the upload.
    """
    data = hashlib.sha256(b"sigwatch").digest() * (chunk_size // 32) + b"x" * (chunk_size % 32)
    full = min(total, chunk_size)
    sizes = [full] * (total // chunk_size) + ([total % chunk_size] if total % chunk_size else []) + [0]
    hashes = {size: hashlib.sha256(data[:size]).hexdigest() for size in set(sizes)}
    # The framed length depends only on the sizes (signatures are 64 hex digits): sign the head first.
    chunk_head_lengths = sum(len(f"{s:x};chunk-signature=".encode()) + 64 + 2 for s in sizes)
    wire_length = chunk_head_lengths + total + 2 * len(sizes)
    request = botocore_signed(
        "PUT",
        host,
        path,
        {
            "User-Agent": USER_AGENT,
            "Content-Encoding": "aws-chunked",
            "x-amz-content-sha256": STREAMING_PAYLOAD,
            "x-amz-decoded-content-length": str(total),
            "Content-Length": str(wire_length),
        },
        b"",
        service="s3",
    )
    amz_date = request.header("X-Amz-Date") or ""
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    key = signing_key(amz_date[:8])
    previous = (request.header("Authorization") or "").rsplit("Signature=", 1)[1]
    heads = []
    for index, size in enumerate(sizes):
        string_to_sign = "\n".join(
            ("AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY_SHA256, hashes[size])
        )
        previous = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        shown = "0" * 64 if index == corrupt_chunk else previous
        heads.append(f"{size:x};chunk-signature={shown}\r\n".encode())
    upload = ChunkedUpload(request, tuple(heads), data, total)
    assert upload.wire_length == wire_length
    return upload
