"""aws-chunked: the S3 documentation example (seed, every chunk, final chunk), trailers, limits, splits.

The example body is generated here from its documented parameters (66560 bytes of 'a', 64 KiB chunks);
the signatures computed with this implementation must equal the documented ones.
"""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime

import pytest
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum, Sha256Checksum
from hypothesis import given, settings
from hypothesis import strategies as st
from sigv4_botocore_signing import botocore_sign
from sigv4_chunk_frames import signed_chunked_body

from proxy.core.model import RequestHead
from proxy.core.sigv4.auth import parse_authorization
from proxy.core.sigv4.canonical import (
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    string_to_sign,
)
from proxy.core.sigv4.chunked import (
    AwsChunkedDecoder,
    AwsChunkedVerifier,
    ChunkData,
    ChunkedError,
    ChunkedErrorKind,
    ChunkSigning,
    StreamEnd,
    TrailerField,
)
from proxy.core.sigv4.signing import derive_signing_key, sign

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
AMZ_DATE = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOCUMENTED_CHUNKS = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
KEY = derive_signing_key(SECRET, "20130524", "us-east-1", "s3")
PAYLOAD = b"a" * 66560
HEADERS = [
    ("Host", "s3.amazonaws.com"),
    ("x-amz-date", AMZ_DATE),
    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
    ("x-amz-content-sha256", STREAMING_PAYLOAD),
    ("Content-Encoding", "aws-chunked"),
    ("x-amz-decoded-content-length", "66560"),
    ("Content-Length", "66824"),
]
SIGNED = (
    "content-encoding",
    "content-length",
    "host",
    "x-amz-content-sha256",
    "x-amz-date",
    "x-amz-decoded-content-length",
    "x-amz-storage-class",
)


def signed_body(
    payload: bytes, chunk_size: int, seed: str, *, trailer: str | None = None
) -> tuple[bytes, list[str]]:
    return signed_chunked_body(
        payload, chunk_size, key=KEY, amz_date=AMZ_DATE, scope=SCOPE, seed=seed, trailer=trailer
    )


def test_seed_signature_matches_the_documentation() -> None:
    head = RequestHead.build("PUT", "/examplebucket/chunkObject.txt", HEADERS)
    creq = canonical_request(
        "PUT",
        canonical_uri(head.path, normalize=False),
        canonical_query(head.query),
        canonical_headers(head, SIGNED),
        ";".join(SIGNED),
        STREAMING_PAYLOAD,
    )
    assert sign(KEY, string_to_sign(AMZ_DATE, SCOPE, creq)) == SEED


def test_botocore_produces_the_same_seed_signature() -> None:
    # SigV4Auth keeps a preset X-Amz-Content-SHA256 (S3SigV4Auth would replace it with a body hash).
    head, _, _ = botocore_sign(
        "PUT",
        "https://s3.amazonaws.com/examplebucket/chunkObject.txt",
        {name: value for name, value in HEADERS if name not in ("Host", "x-amz-date")},
        b"",
        service="s3",
        region="us-east-1",
        when=datetime(2013, 5, 24, tzinfo=UTC),
        access_key=ACCESS_KEY,
        secret=SECRET,
        s3=False,
    )
    assert parse_authorization(head.get("authorization") or "").signature == SEED


def test_chunk_signatures_match_the_documentation() -> None:
    wire, signatures = signed_body(PAYLOAD, 65536, SEED)
    assert tuple(signatures) == DOCUMENTED_CHUNKS
    assert len(wire) == 66824  # the documented Content-Length


def _verifier(content_sha256: str = STREAMING_PAYLOAD, **kwargs: object) -> AwsChunkedVerifier:
    options: dict[str, object] = {
        "signing": ChunkSigning(KEY, AMZ_DATE, SCOPE, SEED),
        "decoded_length": 66560,
        "max_chunk_bytes": 1 << 20,
    }
    options.update(kwargs)
    return AwsChunkedVerifier(content_sha256, **options)  # type: ignore[arg-type]


def test_documented_body_verifies_whole_and_byte_by_byte() -> None:
    wire, _ = signed_body(PAYLOAD, 65536, SEED)
    whole = _verifier()
    whole.feed(wire)
    whole.finish()
    assert whole.chunks_verified == 3
    trickle = _verifier()
    for index in range(len(wire)):
        trickle.feed(wire[index : index + 1])
    trickle.finish()
    assert trickle.chunks_verified == 3


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=66824), max_size=8))
def test_any_split_of_the_stream_verifies(cuts: list[int]) -> None:
    wire, _ = signed_body(PAYLOAD, 65536, SEED)
    verifier = _verifier()
    bounds = [0, *sorted(cuts), len(wire)]
    for start, stop in itertools.pairwise(bounds):
        verifier.feed(wire[start:stop])
    verifier.finish()
    assert verifier.chunks_verified == 3


@pytest.mark.parametrize(("offset", "chunk"), [(90, 0), (65600, 0), (66000, 1)])
def test_a_flipped_data_byte_fails_at_its_chunk(offset: int, chunk: int) -> None:
    wire, _ = signed_body(PAYLOAD, 65536, SEED)
    tampered = bytearray(wire)
    tampered[offset] ^= 0x01
    verifier = _verifier()
    with pytest.raises(ChunkedError) as caught:
        verifier.feed(bytes(tampered))
        verifier.finish()
    assert caught.value.kind is ChunkedErrorKind.SIGNATURE_MISMATCH
    assert caught.value.chunk_index == chunk
    assert caught.value.string_to_sign.startswith("AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n")
    assert verifier.chunks_verified == chunk


def test_wrong_seed_fails_the_first_chunk() -> None:
    wire, _ = signed_body(PAYLOAD, 65536, SEED)
    verifier = _verifier(signing=ChunkSigning(KEY, AMZ_DATE, SCOPE, "0" * 64))
    with pytest.raises(ChunkedError) as caught:
        verifier.feed(wire)
    assert caught.value.kind is ChunkedErrorKind.SIGNATURE_MISMATCH and caught.value.chunk_index == 0


def test_limits() -> None:
    wire, _ = signed_body(PAYLOAD, 65536, SEED)
    with pytest.raises(ChunkedError) as caught:
        _verifier(max_chunk_bytes=65535).feed(wire)
    assert caught.value.kind is ChunkedErrorKind.CHUNK_TOO_LARGE
    decoder = AwsChunkedDecoder(max_chunk_bytes=1024, max_line_bytes=64)
    with pytest.raises(ChunkedError) as caught:
        decoder.feed(b"4" * 65)
    assert caught.value.kind is ChunkedErrorKind.LINE_TOO_LONG
    small, _ = signed_body(PAYLOAD, 4096, SEED)
    with pytest.raises(ChunkedError) as caught:
        _verifier().feed(small)
    assert caught.value.kind is ChunkedErrorKind.CHUNK_TOO_SMALL


def test_truncated_and_length_mismatch_and_junk() -> None:
    wire, _ = signed_body(PAYLOAD, 65536, SEED)
    verifier = _verifier()
    verifier.feed(wire[:-100])
    with pytest.raises(ChunkedError) as caught:
        verifier.finish()
    assert caught.value.kind is ChunkedErrorKind.TRUNCATED
    with pytest.raises(ChunkedError) as caught:
        done = _verifier(decoded_length=66561)
        done.feed(wire)
    assert caught.value.kind is ChunkedErrorKind.LENGTH_MISMATCH
    with pytest.raises(ChunkedError) as caught:
        _verifier().feed(wire + b"x")
    assert caught.value.kind is ChunkedErrorKind.MALFORMED
    with pytest.raises(ChunkedError) as caught:
        AwsChunkedDecoder(max_chunk_bytes=10).feed(b"zz;chunk-signature=x\r\n")
    assert caught.value.kind is ChunkedErrorKind.MALFORMED


def test_signed_trailer() -> None:
    crc = "x-amz-checksum-crc32:" + _botocore_checksum(Crc32Checksum, PAYLOAD)
    wire, _ = signed_body(PAYLOAD, 65536, SEED, trailer=crc)
    verifier = _verifier(STREAMING_PAYLOAD_TRAILER, declared_trailers=("x-amz-checksum-crc32",))
    verifier.feed(wire)
    verifier.finish()
    assert verifier.chunks_verified == 3
    bad_sig = wire.replace(b"x-amz-trailer-signature:", b"x-amz-trailer-signature:0")[:-4] + b"\r\n\r\n"
    verifier = _verifier(STREAMING_PAYLOAD_TRAILER, declared_trailers=("x-amz-checksum-crc32",))
    with pytest.raises(ChunkedError) as caught:
        verifier.feed(bad_sig)
    assert caught.value.kind is ChunkedErrorKind.TRAILER_SIGNATURE_MISMATCH


def _botocore_checksum(cls: type, data: bytes) -> str:
    checksum = cls()
    checksum.update(data)
    return str(checksum.b64digest())


@pytest.mark.parametrize(
    ("cls", "name"), [(Crc32Checksum, "x-amz-checksum-crc32"), (Sha256Checksum, "x-amz-checksum-sha256")]
)
def test_unsigned_trailer_from_botocore(cls: type, name: str) -> None:
    payload = bytes(range(256)) * 300
    wire = AwsChunkedWrapper(
        io.BytesIO(payload), checksum_cls=cls, checksum_name=name, chunk_size=10000
    ).read()
    verifier = AwsChunkedVerifier(
        STREAMING_UNSIGNED_PAYLOAD_TRAILER,
        signing=None,
        decoded_length=len(payload),
        declared_trailers=(name,),
        max_chunk_bytes=1 << 20,
    )
    verifier.feed(wire)
    verifier.finish()
    tampered = bytearray(wire)
    tampered[100] ^= 0xFF
    verifier = AwsChunkedVerifier(
        STREAMING_UNSIGNED_PAYLOAD_TRAILER,
        signing=None,
        decoded_length=len(payload),
        declared_trailers=(name,),
        max_chunk_bytes=1 << 20,
    )
    with pytest.raises(ChunkedError) as caught:
        verifier.feed(bytes(tampered))
        verifier.finish()
    assert caught.value.kind is ChunkedErrorKind.CHECKSUM_MISMATCH
    assert caught.value.name == name


def test_decoder_events_and_missing_trailer() -> None:
    decoder = AwsChunkedDecoder(max_chunk_bytes=100)
    events = decoder.feed(b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n")
    data = b"".join(bytes(event.data) for event in events if isinstance(event, ChunkData))
    assert data == b"abc"
    assert TrailerField("x-amz-checksum-crc32", "AAAAAA==") in events
    assert isinstance(events[-1], StreamEnd) and events[-1].decoded_length == 3
    verifier = AwsChunkedVerifier(
        STREAMING_UNSIGNED_PAYLOAD_TRAILER,
        signing=None,
        decoded_length=3,
        declared_trailers=("x-amz-checksum-sha1",),
        max_chunk_bytes=100,
    )
    with pytest.raises(ChunkedError) as caught:
        verifier.feed(b"3\r\nabc\r\n0\r\n\r\n")
    assert caught.value.kind is ChunkedErrorKind.TRAILER_MISSING


def test_unsupported_checksum_is_reported_not_guessed() -> None:
    verifier = AwsChunkedVerifier(
        STREAMING_UNSIGNED_PAYLOAD_TRAILER,
        signing=None,
        decoded_length=3,
        declared_trailers=("x-amz-checksum-crc32c",),
        max_chunk_bytes=100,
    )
    verifier.feed(b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n")
    verifier.finish()
    assert verifier.unverified_checksums == ["x-amz-checksum-crc32c"]
    assert "signing_key" not in repr(ChunkSigning(KEY, AMZ_DATE, SCOPE, SEED))
