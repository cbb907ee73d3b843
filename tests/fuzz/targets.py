"""Fuzz entry points shared by the hypothesis properties (tests/unit/sigv4, tests/unit/errors) and the
atheris harness (tests/fuzz/run.py): each takes arbitrary bytes, drives one parser of the pure core,
and checks what must hold whatever the input.

- A parser raises nothing but its documented parse error (AuthParseError, ChunkedError); the error-body
  extractor and the date parsers raise nothing at all.
- Nothing is buffered past its limit: the aws-chunked decoder holds at most one size line or one
  trailer section; the extractor's fields stay within their cap and it examines no more than its limit.
- Canonicalization is total and stable: canonicalizing a canonical query or path again changes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from proxy.core.errors.extract import DEFAULT_DECODED_LIMIT, _extract
from proxy.core.model import Protocol, RequestHead
from proxy.core.sigv4.auth import (
    AuthParseError,
    SigV4Authorization,
    ambiguous_credentials,
    authorization_algorithm,
    parse_authorization,
    parse_presigned,
    presigned_parameters,
)
from proxy.core.sigv4.canonical import (
    canonical_headers,
    canonical_query,
    canonical_uri,
    remove_dot_segments,
)
from proxy.core.sigv4.chunked import (
    AwsChunkedDecoder,
    AwsChunkedVerifier,
    ChunkData,
    ChunkedError,
    ChunkSigning,
    StreamEnd,
)
from proxy.core.sigv4.dates import parse_amz_date, parse_http_date

MAX_CHUNK = 4096
MAX_LINE = 256
MAX_TRAILER = 1024
_SIGNING = ChunkSigning(
    signing_key=b"k" * 32,
    amz_date="20130524T000000Z",
    scope="20130524/us-east-1/s3/aws4_request",
    seed_signature="4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
)
_CONTENT_HASHES = (
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
)
_ERROR_FIELD_CAP = 1024


def text(data: bytes) -> str:
    """Bytes as the handler turns header bytes into text (undecodable bytes kept as surrogates)."""
    return data.decode("utf-8", "surrogateescape")


def _check_auth(auth: SigV4Authorization) -> None:
    scope = auth.credential
    assert "/".join((scope.access_key_id, scope.scope)).count("/") == 4
    assert auth.signed_headers == tuple(auth.signed_headers_line.split(";"))


def authorization(data: bytes) -> None:
    """parse_authorization: a SigV4Authorization or an AuthParseError, nothing else."""
    value = text(data)
    authorization_algorithm(value)
    try:
        auth = parse_authorization(value)
    except AuthParseError:
        return
    _check_auth(auth)
    assert auth.raw == value


def presigned(data: bytes) -> None:
    """presigned_parameters / parse_presigned / ambiguous_credentials on an arbitrary query string."""
    query = text(data)
    parameters = presigned_parameters(query)
    if parameters is not None:
        assert all(key.startswith("X-Amz-") for key in parameters)
        with contextlib.suppress(AuthParseError):
            _check_auth(parse_presigned(parameters))
    head = RequestHead.build("GET", "/key?" + query, [("Host", "s3.amazonaws.com")])
    problem = ambiguous_credentials(head)
    assert problem is None or "sigwatch does not guess" in problem


def canonical(data: bytes) -> None:
    """canonical_uri / canonical_query / canonical_headers: total, and stable once canonical."""
    raw = text(data)
    path, _, rest = raw.partition("?")
    query, _, header_text = rest.partition("\n")
    path = "/" + path.lstrip("/")
    for normalize in (True, False):
        uri = canonical_uri(path, normalize=normalize)
        assert uri.startswith("/") or uri == ""
    normalized = remove_dot_segments(path)
    assert remove_dot_segments(normalized) == normalized
    for drop in (False, True):
        once = canonical_query(query, drop_signature=drop, drop_security_token=drop)
        assert canonical_query(once) == once
        pairs = [pair.partition("=") for pair in once.split("&")] if once else []
        assert [(k, v) for k, _, v in pairs] == sorted((k, v) for k, _, v in pairs)
    headers = []
    for line in header_text.split("\n"):
        name, _, value = line.partition(":")
        headers.append((name, value))
    head = RequestHead.build("GET", "/", headers)
    names = [name.lower() for name, _ in headers]
    block = canonical_headers(head, names)
    assert block.count("\n") == len(names)


def chunked(data: bytes) -> None:
    """The aws-chunked decoder and verifier over arbitrary bytes fed in arbitrary pieces."""
    if not data:
        return
    selector, cut, body = data[0], data[1:2], data[2:]
    step = (cut[0] if cut else 7) + 1
    decoder = AwsChunkedDecoder(
        max_chunk_bytes=MAX_CHUNK, max_line_bytes=MAX_LINE, max_trailer_bytes=MAX_TRAILER
    )
    verifier = AwsChunkedVerifier(
        _CONTENT_HASHES[selector % 3],
        signing=_SIGNING if selector & 4 else None,
        decoded_length=len(body) // 2 if selector & 8 else None,
        declared_trailers=("x-amz-checksum-crc32",) if selector & 16 else (),
        max_chunk_bytes=MAX_CHUNK,
        min_chunk_bytes=16,
    )
    fed = decoded = 0
    decoder_failed = verifier_failed = False
    for start in range(0, len(body), step):
        piece = body[start : start + step]
        fed += len(piece)
        if not decoder_failed:
            try:
                events = decoder.feed(piece)
            except ChunkedError:
                decoder_failed = True
            else:
                decoded += sum(len(e.data) for e in events if isinstance(e, ChunkData))
                assert len(decoder._line) <= max(MAX_LINE, MAX_TRAILER)  # bounded buffering
                assert decoder.decoded_length == decoded <= fed
        if not verifier_failed:
            try:
                verifier.feed(piece)
            except ChunkedError:
                verifier_failed = True
    if not decoder_failed:
        try:
            for event in decoder.finish():
                assert not isinstance(event, StreamEnd) or event.decoded_length == decoded
        except ChunkedError:
            pass
    if not verifier_failed:
        with contextlib.suppress(ChunkedError):
            verifier.finish()


def dates(data: bytes) -> None:
    """The two date parsers: None or an aware datetime."""
    value = text(data)
    for parsed in (parse_amz_date(value), parse_http_date(value)):
        assert parsed is None or parsed.tzinfo is not None


_PROTOCOLS = list(Protocol)


def error_body(data: bytes) -> None:
    """The error-body extractor: never raises, caps what it keeps, examines at most `limit` bytes."""
    if len(data) < 4:
        return
    protocol = _PROTOCOLS[data[0] % len(_PROTOCOLS)]
    status = 100 + int.from_bytes(data[1:3], "big") % 500
    limit = None if data[3] & 1 else data[3] * 8
    headers: list[tuple[str, str]] = []
    if data[3] & 2:
        headers.append(("Content-Type", "application/json" if data[3] & 4 else "application/xml"))
    if data[3] & 8:
        headers.append(("x-amzn-query-error", "Code;Sender"))
    if data[3] & 16:
        headers.append(("Content-Encoding", "gzip"))
    body = data[4:]
    info = _extract(
        protocol,
        status,
        headers,
        body,
        truncated=bool(data[3] & 32),
        limit=limit,
        max_decoded=DEFAULT_DECODED_LIMIT,
    )
    assert info.code is None or len(info.code) <= _ERROR_FIELD_CAP
    assert len(info.message) <= _ERROR_FIELD_CAP + 64
    if limit is not None and not info.compressed:
        assert info.bytes_examined <= limit


TARGETS: dict[str, Callable[[bytes], None]] = {
    "authorization": authorization,
    "presigned": presigned,
    "canonical": canonical,
    "chunked": chunked,
    "dates": dates,
    "error_body": error_body,
}


# -- what the coverage-guided fuzzer starts from: tokens (libFuzzer -dict) and valid seed inputs --------

_AUTH_TOKENS = (
    "AWS4-HMAC-SHA256",
    "AWS4-ECDSA-P256-SHA256",
    "Credential=",
    "SignedHeaders=",
    "Signature=",
    "aws4_request",
    ", ",
    "/",
    ";",
)
DICTIONARY: dict[str, tuple[str, ...]] = {
    "authorization": _AUTH_TOKENS,
    "presigned": (
        "X-Amz-Algorithm=",
        "X-Amz-Credential=",
        "X-Amz-Signature=",
        "X-Amz-Date=",
        "X-Amz-SignedHeaders=",
        "X-Amz-Expires=",
        "X-Amz-Security-Token=",
        "&",
        "%2F",
        "AWS4-HMAC-SHA256",
        "aws4_request",
    ),
    "canonical": ("/", "..", ".", "//", "%2F", "%25", "?", "&", "=", "+", "~", "\n", ":", "%E2%82%AC"),
    "chunked": (
        ";chunk-signature=",
        "\r\n",
        "0\r\n",
        "x-amz-checksum-crc32:",
        "x-amz-trailer-signature:",
        "400",
    ),
    "dates": ("T", "Z", "GMT", "UTC", " -0000", "Sun, ", "Sunday, ", "Nov", ":", "20130524T000000Z"),
    "error_body": (
        '{"__type":"',
        '"message":"',
        '"code":"',
        "<Error>",
        "<Code>",
        "</Code>",
        "<Message>",
        "<ErrorResponse>",
        "<Response><Errors>",
        "<RequestId>",
        "#",
        ":http://",
        "<!DOCTYPE",
        "<!ENTITY",
    ),
}
DICTIONARY["all"] = tuple(token for tokens in DICTIONARY.values() for token in tokens)

_SIGNATURE = "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
SEEDS: dict[str, tuple[bytes, ...]] = {
    "authorization": (
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature={_SIGNATURE}"
        ).encode(),
    ),
    "presigned": (
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fs3%2F"
            "aws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
            f"&X-Amz-Signature={_SIGNATURE}"
        ).encode(),
    ),
    "canonical": (b"/a/./b/../c//d?b=2&a=1&a=%2F\nHost:example.com\nX-Amz-Date: 20150830T123600Z",),
    "chunked": (
        b"\x00\x10"
        + b"a;chunk-signature="
        + _SIGNATURE.encode()
        + b"\r\n0123456789\r\n0;chunk-signature="
        + _SIGNATURE.encode()
        + b"\r\n\r\n",
        b"\x12\x03a\r\n0123456789\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
    ),
    "dates": (b"20150830T123600Z", b"Sun, 06 Nov 1994 08:49:37 GMT", b"Sunday, 06-Nov-94 08:49:37 GMT"),
    "error_body": (
        b"\x00\x01\x90\x03" + b'{"__type":"com.amazon#ValidationException:http://x","message":"m"}',
        b"\x02\x01\x90\x03<Error><Code>NoSuchKey</Code><Message>m</Message><RequestId>r</RequestId></Error>",
        b"\x03\x01\x90\x0b<ErrorResponse><Error><Type>Sender</Type><Code>C</Code></Error></ErrorResponse>",
    ),
}
SEEDS["all"] = tuple(bytes([index]) + seed for index, name in enumerate(TARGETS) for seed in SEEDS[name])
