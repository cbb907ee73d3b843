"""Issue 5 (and 3's payload checks), end to end: boto3's s3 client through sigwatch (enforce mode) against
the emulator: bucket and object lifecycle, a multipart upload, and aws-chunked uploads, with their
payloads verified on the way (no findings; a tampered chunk is refused before the upstream stores it).

aws-chunked uploads two ways:
- boto3's own: over https botocore sends PutObject as `STREAMING-UNSIGNED-PAYLOAD-TRAILER` with a CRC32
  trailer. sigwatch listens on plain http here, so the test makes botocore pick the trailer form it
  would pick over TLS (one context flag); the bytes on the wire are botocore's own encoder's.
- signed chunks (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, what the Java/Go SDKs send over http): botocore
  signs the head, each chunk's signature is computed here from the SigV4 specification with hmac.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import zlib
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from e2e_proxy_support import (
    EXAMPLE_KEY_ID,
    EXAMPLE_SECRET,
    REGION,
    Counted,
    RunningEmulator,
    RunningSigwatch,
    assert_classified,
    boto,
    client_error,
    line_for,
)

from proxy.emulator import SERVICES_KEY

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def assert_all_clean(lines: list[dict[str, Any]]) -> None:
    assert [
        (line["operation"], line["sigv4"], line["findings"])
        for line in lines
        if line["sigv4"] != "valid" or line["findings"]
    ] == []


def test_bucket_and_object_lifecycle(enforce_proxy: RunningSigwatch, logs: Any) -> None:
    clients = Counted()
    s3 = clients.client("s3", enforce_proxy.url)
    bucket = "e2e-lifecycle"
    s3.create_bucket(Bucket=bucket)
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=bucket)
    body = bytes(range(256)) * 4096  # 1 MiB
    put = s3.put_object(Bucket=bucket, Key="data/blob.bin", Body=body, Metadata={"owner": "e2e"})
    assert put["ETag"] == '"' + hashlib.md5(body).hexdigest() + '"'
    got = s3.get_object(Bucket=bucket, Key="data/blob.bin")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"owner": "e2e"}
    ranged = s3.get_object(Bucket=bucket, Key="data/blob.bin", Range="bytes=256-511")
    assert ranged["Body"].read() == bytes(range(256))
    s3.put_object(Bucket=bucket, Key="data/ü ni+code %2F.txt", Body=b"odd key")
    s3.copy_object(Bucket=bucket, Key="copy.bin", CopySource=f"{bucket}/data/blob.bin")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="data/")["Contents"]]
    assert keys == ["data/blob.bin", "data/ü ni+code %2F.txt"]
    assert s3.get_object(Bucket=bucket, Key="data/ü ni+code %2F.txt")["Body"].read() == b"odd key"
    not_empty = client_error(lambda: s3.delete_bucket(Bucket=bucket))
    assert not_empty["Error"]["Code"] == "BucketNotEmpty"
    assert_classified(logs, not_empty)
    for key in ("data/blob.bin", "data/ü ni+code %2F.txt", "copy.bin"):
        s3.delete_object(Bucket=bucket, Key=key)
    missing = client_error(lambda: s3.get_object(Bucket=bucket, Key="copy.bin"))
    assert missing["Error"]["Code"] == "NoSuchKey"
    assert_classified(logs, missing)
    s3.delete_bucket(Bucket=bucket)
    gone = client_error(lambda: s3.list_objects_v2(Bucket=bucket))
    assert gone["Error"]["Code"] == "NoSuchBucket"
    assert_classified(logs, gone)
    assert_all_clean(clients.lines(logs))


def test_multipart_upload(enforce_proxy: RunningSigwatch, emulator: RunningEmulator, logs: Any) -> None:
    clients = Counted()
    s3 = clients.client("s3", enforce_proxy.url)
    bucket = "e2e-multipart"
    s3.create_bucket(Bucket=bucket)
    parts_data = [b"a" * (5 * MIB), b"b" * (5 * MIB), b"tail"]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="big.bin")["UploadId"]
    parts = [
        {
            "PartNumber": number,
            "ETag": s3.upload_part(
                Bucket=bucket, Key="big.bin", UploadId=upload_id, PartNumber=number, Body=data
            )["ETag"],
        }
        for number, data in enumerate(parts_data, start=1)
    ]
    listed = s3.list_parts(Bucket=bucket, Key="big.bin", UploadId=upload_id)
    assert [p["Size"] for p in listed["Parts"]] == [len(d) for d in parts_data]
    wrong_order = client_error(
        lambda: s3.complete_multipart_upload(
            Bucket=bucket, Key="big.bin", UploadId=upload_id, MultipartUpload={"Parts": parts[::-1]}
        )
    )
    assert wrong_order["Error"]["Code"] == "InvalidPartOrder"
    assert_classified(logs, wrong_order)
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="big.bin", UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    digests = b"".join(hashlib.md5(data).digest() for data in parts_data)
    assert done["ETag"] == f'"{hashlib.md5(digests).hexdigest()}-3"'
    stored = emulator.app[SERVICES_KEY].s3.buckets[bucket].objects["big.bin"].data
    assert hashlib.sha256(stored).digest() == hashlib.sha256(b"".join(parts_data)).digest()
    lines = clients.lines(logs)
    assert_all_clean(lines)
    assert sum(line["bytes_in"] for line in lines if line["operation"] == "UploadPart") == sum(
        map(len, parts_data)
    )


def chunked_like_over_tls(params: Any, **_: Any) -> None:
    """botocore's choice over https (httpchecksum.resolve_request_checksum_algorithm): a trailing
    checksum for streaming input. Over http it sends the checksum in a header; flip that one choice."""
    algorithm = params["context"].get("checksum", {}).get("request_algorithm")
    if isinstance(algorithm, dict):
        algorithm["in"] = "trailer"


def test_boto3_aws_chunked_upload_with_trailing_checksum(
    enforce_proxy: RunningSigwatch, emulator: RunningEmulator, logs: Any
) -> None:
    clients = Counted()
    s3 = clients.client("s3", enforce_proxy.url)
    s3.create_bucket(Bucket="e2e-trailer")
    sent: dict[str, str] = {}
    s3.meta.events.register("before-call.s3.PutObject", chunked_like_over_tls)
    s3.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **_: sent.update(
            {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        ),
    )
    data = bytes(range(256)) * 600
    put = s3.put_object(Bucket="e2e-trailer", Key="trailer.bin", Body=data)
    assert sent["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert "aws-chunked" in sent["content-encoding"]
    assert sent["x-amz-trailer"] == "x-amz-checksum-crc32"
    got = s3.get_object(Bucket="e2e-trailer", Key="trailer.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"]
    assert emulator.app[SERVICES_KEY].s3.buckets["e2e-trailer"].objects["trailer.bin"].data == data
    lines = clients.lines(logs)
    assert_all_clean(lines)
    upload = next(line for line in lines if line["operation"] == "PutObject")
    assert upload["bytes_in"] > len(data)  # the framed body passed, framing and trailer included


# -- signed chunks ------------------------------------------------------------------------------------


class StreamingSigV4(S3SigV4Auth):  # type: ignore[misc]
    """botocore's S3 signer, declaring signed chunks instead of hashing the body."""

    def payload(self, request: Any) -> str:
        return "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_chunked_put(url: str, data: bytes, chunk_size: int) -> tuple[dict[str, str], bytes]:
    """A PUT with a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` body: head signed by botocore, each chunk's
    signature chained from the previous one (the seed: the head's), as the SigV4 documentation says:
    string to sign = AWS4-HMAC-SHA256-PAYLOAD, date, scope, previous signature, hash(""), hash(chunk)."""
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    framed_length = sum(len(f"{len(c):x};chunk-signature=") + 64 + 2 + len(c) + 2 for c in chunks)
    request = AWSRequest(
        method="PUT",
        url=url,
        headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(data)),
            "Content-Length": str(framed_length),
        },
    )
    StreamingSigV4(Credentials(EXAMPLE_KEY_ID, EXAMPLE_SECRET), "s3", REGION).add_auth(request)
    headers = dict(request.headers.items())
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    key = _hmac(
        _hmac(_hmac(_hmac(b"AWS4" + EXAMPLE_SECRET.encode(), amz_date[:8]), REGION), "s3"), "aws4_request"
    )
    previous = headers["Authorization"].rsplit("Signature=", 1)[1]
    body = b""
    for chunk in chunks:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                amz_date,
                scope,
                previous,
                EMPTY_SHA256,
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        body += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + b"\r\n"
    assert len(body) == framed_length
    return headers, body


def put_raw(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        connection.request("PUT", parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_signed_aws_chunked_upload(
    enforce_proxy: RunningSigwatch, emulator: RunningEmulator, logs: Any
) -> None:
    boto("s3", enforce_proxy.url).create_bucket(Bucket="e2e-signed-chunks")
    url = f"{enforce_proxy.url}/e2e-signed-chunks/signed.bin"
    data = hashlib.sha256(b"seed").digest() * 5000  # 160000 bytes: 64 KiB, 64 KiB, 28928 B, final
    headers, body = signed_chunked_put(url, data, 64 * 1024)
    status, answer_headers, answer = put_raw(url, headers, body)
    assert status == 200, answer
    assert answer_headers["etag"] == '"' + hashlib.md5(data).hexdigest() + '"'
    objects = emulator.app[SERVICES_KEY].s3.buckets["e2e-signed-chunks"].objects
    assert objects["signed.bin"].data == data
    line = line_for(logs, answer_headers["x-sigwatch-request-id"])
    assert (line["sigv4"], line["findings"], line["bytes_in"]) == ("valid", [], len(body))

    # One byte changed in the second chunk: sigwatch refuses it (the chunk's signature no longer
    # matches) before the upstream has the whole body; the stored object is unchanged.
    tampered = body.replace(data[70000:70010], b"0123456789", 1)
    status, answer_headers, answer = put_raw(url, headers, tampered)
    assert status == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in answer
    assert answer_headers["x-sigwatch-origin"] == "proxy"
    line = line_for(logs, answer_headers["x-sigwatch-request-id"])
    assert (line["answered_by"], line["outcome"]) == ("proxy", "rejected")
    assert [(f["check"], f["code"]) for f in line["findings"]] == [
        ("payload.chunked", "SignatureDoesNotMatch")
    ]
    assert objects["signed.bin"].data == data
    # The emulator saw the upload cut short: it drops it quietly (no error line, no traceback).
    assert emulator.settled()
    assert [event["message"] for event in logs.events("library") if event["level"] == "error"] == []


def test_the_log_line_says_the_chunked_payload_was_verified(
    enforce_proxy: RunningSigwatch, logs: Any
) -> None:
    boto("s3", enforce_proxy.url).create_bucket(Bucket="e2e-signed-chunks")
    url = f"{enforce_proxy.url}/e2e-signed-chunks/verified.bin"
    headers, body = signed_chunked_put(url, b"x" * 20000, 8192)
    status, answer_headers, _ = put_raw(url, headers, body)
    assert status == 200
    line = line_for(logs, answer_headers["x-sigwatch-request-id"])
    assert line["payload"] == {"kind": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "verified": True, "chunks": 4}


def signed_trailer_put(url: str, data: bytes, chunk_size: int) -> tuple[dict[str, str], bytes]:
    """A PUT with a `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` body and a CRC32 trailer, per the SigV4
    documentation: chunks signed as above; after the final (empty) chunk the trailer lines, then
    `x-amz-trailer-signature`, signed over AWS4-HMAC-SHA256-TRAILER, date, scope, the final chunk's
    signature and hash("x-amz-checksum-crc32:<base64>\\n")."""
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    checksum = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    trailer = f"x-amz-checksum-crc32:{checksum}"
    framed_length = (
        sum(len(f"{len(c):x};chunk-signature=") + 64 + 2 + len(c) + 2 for c in chunks)
        - 2  # the final chunk is followed by the trailer section, not by its own CRLF
        + len(trailer)
        + 2
        + len("x-amz-trailer-signature:")
        + 64
        + 2
        + 2
    )
    request = AWSRequest(
        method="PUT",
        url=url,
        headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(data)),
            "x-amz-trailer": "x-amz-checksum-crc32",
            "Content-Length": str(framed_length),
        },
    )
    StreamingTrailerSigV4(Credentials(EXAMPLE_KEY_ID, EXAMPLE_SECRET), "s3", REGION).add_auth(request)
    headers = dict(request.headers.items())
    amz_date = headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    key = _hmac(
        _hmac(_hmac(_hmac(b"AWS4" + EXAMPLE_SECRET.encode(), amz_date[:8]), REGION), "s3"), "aws4_request"
    )
    previous = headers["Authorization"].rsplit("Signature=", 1)[1]
    body = b""
    for chunk in chunks:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                amz_date,
                scope,
                previous,
                EMPTY_SHA256,
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        body += (
            f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + chunk + (b"\r\n" if chunk else b"")
        )
    trailer_hash = hashlib.sha256(f"{trailer}\n".encode()).hexdigest()
    to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous, trailer_hash])
    trailer_signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    body += f"{trailer}\r\nx-amz-trailer-signature:{trailer_signature}\r\n\r\n".encode()
    assert len(body) == framed_length
    return headers, body


class StreamingTrailerSigV4(S3SigV4Auth):  # type: ignore[misc]
    def payload(self, request: Any) -> str:
        return "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"


def test_signed_aws_chunked_upload_with_signed_trailer(
    enforce_proxy: RunningSigwatch, emulator: RunningEmulator, logs: Any
) -> None:
    boto("s3", enforce_proxy.url).create_bucket(Bucket="e2e-signed-trailer")
    url = f"{enforce_proxy.url}/e2e-signed-trailer/trailer.bin"
    data = bytes(range(251)) * 400  # 100400 bytes: 64 KiB, 34864 B, final
    headers, body = signed_trailer_put(url, data, 64 * 1024)
    status, answer_headers, answer = put_raw(url, headers, body)
    assert status == 200, answer
    stored = emulator.app[SERVICES_KEY].s3.buckets["e2e-signed-trailer"].objects["trailer.bin"]
    assert stored.data == data
    line = line_for(logs, answer_headers["x-sigwatch-request-id"])
    assert (line["sigv4"], line["findings"]) == ("valid", [])
    # The trailer's checksum no longer matches the data (one byte changed, chunk signatures redone).
    changed = data[:100] + b"X" + data[101:]
    headers, body = signed_trailer_put(url, changed, 64 * 1024)
    body = body.replace(
        base64.b64encode(zlib.crc32(changed).to_bytes(4, "big")),
        base64.b64encode(zlib.crc32(data).to_bytes(4, "big")),
    )
    status, answer_headers, answer = put_raw(url, headers, body)
    assert (status, answer_headers["x-sigwatch-origin"]) == (403, "proxy")
    assert b"<Code>SignatureDoesNotMatch</Code>" in answer  # the trailer signature covers the checksum


class TamperedStream:
    """botocore's aws-chunked body with one data byte changed on the wire (its CRC32 trailer was
    computed over the original data)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.done = False

    def read(self, amount: int | None = None) -> bytes:
        data: bytes = self.inner.read(amount)
        if not self.done and len(data) > 64:
            self.done = True
            return data[:40] + bytes([data[40] ^ 1]) + data[41:]
        return data


def test_boto3_trailer_with_a_wrong_checksum_is_refused(
    enforce_proxy: RunningSigwatch, emulator: RunningEmulator, logs: Any
) -> None:
    s3 = boto("s3", enforce_proxy.url)
    s3.create_bucket(Bucket="e2e-bad-digest")
    s3.meta.events.register("before-call.s3.PutObject", chunked_like_over_tls)

    def tamper_stream(request: Any, **_: Any) -> None:
        request.body = TamperedStream(request.body)

    s3.meta.events.register_last("before-send.s3.PutObject", tamper_stream)
    response = client_error(
        lambda: s3.put_object(Bucket="e2e-bad-digest", Key="k", Body=bytes(range(256)) * 100)
    )
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == ("BadDigest", 400)
    assert response["Error"]["Message"] == "The CRC32 you specified did not match the calculated checksum."
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-sigwatch-origin"] == "proxy"
    assert "k" not in emulator.app[SERVICES_KEY].s3.buckets["e2e-bad-digest"].objects


def test_multipart_upload_listing_pages(enforce_proxy: RunningSigwatch, logs: Any) -> None:
    """ListMultipartUploads honours max-uploads and the key / upload-id markers, as S3 does: boto3's
    paginator walks the pages and sees every upload once."""
    s3 = boto("s3", enforce_proxy.url)
    s3.create_bucket(Bucket="e2e-upload-pages")
    started = [
        (key, s3.create_multipart_upload(Bucket="e2e-upload-pages", Key=key)["UploadId"])
        for key in ("a.bin", "b.bin", "b.bin", "c.bin", "d.bin")
    ]
    first = s3.list_multipart_uploads(Bucket="e2e-upload-pages", MaxUploads=2)
    assert [(u["Key"], u["UploadId"]) for u in first["Uploads"]] == started[:2]
    assert (first["MaxUploads"], first["IsTruncated"]) == (2, True)
    assert (first["NextKeyMarker"], first["NextUploadIdMarker"]) == started[1]
    # From the middle of b.bin's uploads: the rest of b.bin, then the later keys.
    rest = s3.list_multipart_uploads(
        Bucket="e2e-upload-pages", KeyMarker="b.bin", UploadIdMarker=started[1][1], MaxUploads=10
    )
    assert [(u["Key"], u["UploadId"]) for u in rest["Uploads"]] == started[2:]
    assert rest["IsTruncated"] is False
    # A key marker alone: keys after it.
    after = s3.list_multipart_uploads(Bucket="e2e-upload-pages", KeyMarker="b.bin")
    assert [u["Key"] for u in after["Uploads"]] == ["c.bin", "d.bin"]
    pages = list(
        s3.get_paginator("list_multipart_uploads").paginate(
            Bucket="e2e-upload-pages", PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(page["Uploads"]) for page in pages] == [2, 2, 1]
    assert [(u["Key"], u["UploadId"]) for page in pages for u in page["Uploads"]] == started
