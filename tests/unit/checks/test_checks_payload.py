"""Payload checks through validate() and payload_verifier(), as the handler drives them; needs_body()."""

from __future__ import annotations

import io
import zlib
from base64 import b64encode
from datetime import UTC, datetime

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum
from checks_support import INDEX, WHEN, Signed, botocore_sign, context, signed, stream
from sigv4_chunk_frames import signed_chunked_body

from proxy.core.checks import SignatureState, needs_body, payload_verifier, validate
from proxy.core.identify import identify
from proxy.core.model import AwsError, Credential, RequestHead, Severity
from proxy.core.sigv4.signing import derive_signing_key

DOC_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_TIME = datetime(2013, 5, 24, tzinfo=UTC)
DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_KEY = derive_signing_key(DOC_SECRET, "20130524", "us-east-1", "s3")
DOC_CREDENTIALS = {DOC_KEY_ID: Credential(DOC_KEY_ID, DOC_SECRET)}


def documented_upload(payload: bytes = b"a" * 66560, chunk_size: int = 65536) -> Signed:
    """The S3 documentation's streaming PUT, signed by botocore (SigV4Auth keeps the payload marker)."""
    headers = {
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(payload)),
    }
    frame = {"key": DOC_KEY, "amz_date": "20130524T000000Z", "scope": "20130524/us-east-1/s3/aws4_request"}
    # The framed length does not depend on the signatures (64 hex digits each): sign the head first, then
    # chain the chunk signatures from the request's own signature (the seed).
    headers["Content-Length"] = str(len(signed_chunked_body(payload, chunk_size, seed="0" * 64, **frame)[0]))
    head, _, _ = botocore_sign(
        "PUT",
        "https://s3.amazonaws.com/examplebucket/chunkObject.txt",
        headers,
        b"",
        service="s3",
        region="us-east-1",
        when=DOC_TIME,
        access_key=DOC_KEY_ID,
        secret=DOC_SECRET,
        s3=False,
    )
    seed = (head.get("authorization") or "").rsplit("Signature=", 1)[1]
    wire, _ = signed_chunked_body(payload, chunk_size, seed=seed, **frame)
    return Signed(head, wire)


def test_documented_upload_verifies_chunk_by_chunk() -> None:
    request = documented_upload()
    assert (request.head.get("authorization") or "").endswith(DOC_SEED)
    ctx = context(request, now=DOC_TIME, credentials=DOC_CREDENTIALS)
    assert not needs_body(ctx.request, ctx.identity)
    result = validate(ctx)
    assert (result.findings, result.signature_state) == ((), SignatureState.VALID)
    assert result.chunk_signing is not None and result.chunk_signing.seed_signature == DOC_SEED
    verifier = payload_verifier(ctx, result)
    assert verifier is not None
    for start in range(0, len(request.body), 1000):
        assert verifier.feed(request.body[start : start + 1000]) is None
    assert verifier.finish() is None
    assert verifier.verified == 3  # type: ignore[attr-defined]


def test_tampered_chunk_is_reported_before_the_rest_is_forwarded() -> None:
    request = documented_upload()
    body = bytearray(request.body)
    body[100] ^= 0x01
    result, found = stream(
        Signed(request.head, bytes(body)), [bytes(body[:70000])], now=DOC_TIME, credentials=DOC_CREDENTIALS
    )
    assert result.first_error is None
    assert found is not None and (found.check, found.severity) == ("payload.chunked", Severity.ERROR)
    extra = dict(found.error.extra)
    assert (found.error.code, found.error.status, extra["AWSAccessKeyId"]) == (
        "SignatureDoesNotMatch",
        403,
        DOC_KEY_ID,
    )
    assert extra["StringToSign"].startswith("AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n")
    assert extra["SignatureProvided"] == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    assert "ad80c730a21e5b8d" not in found.explanation + repr(found.debug)


def test_chunk_framing_is_checked_without_the_secret() -> None:
    request = documented_upload()
    observed = context(request, now=DOC_TIME, credentials={}, enforce=False)
    result = validate(observed)
    assert result.signature_state == SignatureState.UNVERIFIABLE
    verifier = payload_verifier(observed, result)
    assert verifier is not None
    assert verifier.feed(request.body[:-50]) is None
    found = verifier.finish()
    assert found is not None
    assert found.error == AwsError(
        "IncompleteBody",
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    )


def test_small_chunks_rejected() -> None:
    request = documented_upload(payload=b"a" * 20000, chunk_size=4096)
    _, found = stream(request, now=DOC_TIME, credentials=DOC_CREDENTIALS)
    assert found is not None
    assert found.error == AwsError(
        "InvalidChunkSizeError",
        403,
        "Only the last chunk is allowed to have a size less than 8192 bytes",
        (("Chunk", "0"), ("BadChunkSize", "4096")),
    )


def _unsigned_trailer(payload: bytes, checksum: str) -> Signed:
    wire = AwsChunkedWrapper(
        io.BytesIO(payload), checksum_cls=Crc32Checksum, checksum_name="x-amz-checksum-crc32"
    ).read()
    if checksum:
        wire = wire.replace(
            b"x-amz-checksum-crc32:" + wire.split(b"x-amz-checksum-crc32:")[1][:8],
            b"x-amz-checksum-crc32:" + checksum.encode(),
        )
    head, _, _ = botocore_sign(
        "PUT",
        "http://127.0.0.1:9000/bucket/key",
        {
            "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "Content-Encoding": "aws-chunked",
            "x-amz-trailer": "x-amz-checksum-crc32",
            "x-amz-decoded-content-length": str(len(payload)),
        },
        b"",
        service="s3",
        region="us-east-1",
        when=WHEN,
        access_key="AKIDEXAMPLE",
        secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        s3=False,
    )
    return Signed(head, wire)


def test_unsigned_trailer_checksum() -> None:
    payload = b"0123456789" * 1000
    result, found = stream(_unsigned_trailer(payload, ""))
    assert (result.findings, found, result.signature_state) == ((), None, SignatureState.VALID)
    wrong = b64encode((zlib.crc32(b"other") & 0xFFFFFFFF).to_bytes(4, "big")).decode()
    _, found = stream(_unsigned_trailer(payload, wrong))
    assert found is not None
    assert found.error == AwsError(
        "BadDigest", 400, "The CRC32 you specified did not match the calculated checksum."
    )


def test_sha256_streaming_for_s3_and_buffered_for_json() -> None:
    s3 = signed("s3")
    ctx = context(s3)
    assert ctx.body_sha256 is None  # streamed, checked at the end
    verifier = payload_verifier(ctx, validate(ctx))
    assert verifier is not None and verifier.feed(s3.body) is None and verifier.finish() is None
    json = signed("storagegateway")
    ctx = context(json)
    assert ctx.body_sha256 is not None  # buffered: its hash is part of the canonical request
    assert payload_verifier(ctx, validate(ctx)) is None
    tampered = run_json_tampered()
    assert tampered == ("signature.verify", "InvalidSignatureException")


def run_json_tampered() -> tuple[str, str]:
    request = signed("storagegateway")
    result = validate(context(Signed(request.head, b'{"x":1}')))
    assert result.first_error is not None
    return result.first_error.check, result.first_error.code


@pytest.mark.parametrize(
    ("method", "target", "headers", "expected"),
    [
        ("GET", "/b/k", [("Authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/s3/aws4_request")], False),
        ("PUT", "/b/k", [("Content-Length", "5"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], False),
        (
            "POST",
            "/",
            [
                ("Content-Length", "5"),
                ("Authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/sts/aws4_request"),
            ],
            True,
        ),
        ("POST", "/", [("Content-Length", "5"), ("Content-Type", "application/x-www-form-urlencoded")], True),
        (
            "PUT",
            "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb%2Fc%2Fs3%2Faws4_request",
            [("Content-Length", "5")],
            False,
        ),
        ("PUT", "/b/k", [("Content-Length", "5")], False),
    ],
)
def test_needs_body(method: str, target: str, headers: list[tuple[str, str]], expected: bool) -> None:
    head = RequestHead.build(method, target, [("Host", "127.0.0.1:9000"), *headers])
    assert needs_body(head, identify(head, INDEX)) is expected
