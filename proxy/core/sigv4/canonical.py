"""The SigV4 canonical request and string to sign, byte for byte as AWS (and botocore) build them.

Task 1 of SigV4: "Rearrange your HTTP request into a canonical format" (seed 000):

    HTTPRequestMethod \\n CanonicalURI \\n CanonicalQueryString \\n CanonicalHeaders \\n
    SignedHeaders \\n HexEncode(Hash(RequestPayload))

Every function here is on the hot path of each request: plain string operations, a fast path that
returns the input untouched when nothing needs encoding, no regular expressions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from urllib.parse import quote, unquote_to_bytes

from proxy.core.model import RequestHead
from proxy.core.sigv4.auth import ALGORITHM

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_ECDSA_PAYLOAD = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
STREAMING_ECDSA_PAYLOAD_TRAILER = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"
# The non-hex values S3 accepts in x-amz-content-sha256, in the order its InvalidArgument message lists them.
SPECIAL_PAYLOAD_HASHES = (
    UNSIGNED_PAYLOAD,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_ECDSA_PAYLOAD,
    STREAMING_ECDSA_PAYLOAD_TRAILER,
)
# Those whose body is aws-chunked (framed in signed or unsigned chunks, its length in
# x-amz-decoded-content-length).
AWS_CHUNKED_PAYLOADS = frozenset(value for value in SPECIAL_PAYLOAD_HASHES if value.startswith("STREAMING-"))

# RFC 3986 unreserved characters: "URI-encode every byte except the unreserved characters:
# 'A'-'Z', 'a'-'z', '0'-'9', '-', '.', '_', and '~'."
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_PATH_SAFE = _UNRESERVED | {"/"}
_RAW_PATH_SAFE = _PATH_SAFE | {"%"}
_HEX = frozenset("0123456789abcdef")


def is_sha256_hex(value: str) -> bool:
    """64 lower-case hex digits, the form SigV4 writes a payload hash in."""
    return len(value) == 64 and _HEX.issuperset(value)


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, plus "AWS services require consecutive slashes to be removed" (botocore).

    `/a/./b/../c//d/` -> `/a/c/d/`.
    """
    if not path:
        return "/"
    if "//" not in path and "/." not in path:
        return path
    output: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if output:
                output.pop()
        else:
            output.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and output else ""
    return first + "/".join(output) + last


def canonical_uri(path: str, *, normalize: bool) -> str:
    """The canonical URI of a path as it appeared on the request line.

    Every service but S3 (`normalize=True`): "Normalize URI paths according to RFC 3986. Remove
    redundant and relative path components." and then URI-encode the result, which encodes an already
    percent-encoded path a second time (`%20` -> `%2520`), exactly as botocore's SigV4Auth does.

    S3 (`normalize=False`): "you do not normalize URI paths for requests to Amazon S3" and the path is
    encoded only once, so the path is used exactly as sent; a byte that cannot appear raw on a request
    line (a space, non-ASCII) is encoded, an existing `%XX` escape is kept.
    """
    if not path:
        return "/"
    if normalize:
        path = remove_dot_segments(path)
        return path if _PATH_SAFE.issuperset(path) else quote(_raw_bytes(path), safe="/~")
    return path if _RAW_PATH_SAFE.issuperset(path) else quote(_raw_bytes(path), safe="/~%")


def _raw_bytes(text: str) -> bytes:
    """The bytes a request-line text came from (undecodable bytes travel as surrogates, see
    RequestHead): encoding them with plain UTF-8 would raise instead of encoding the byte."""
    return text.encode("utf-8", "surrogateescape")


def _encode_query_component(text: str) -> str:
    """Decode then re-encode one query key or value ("URI-encode each parameter name and value")."""
    if _UNRESERVED.issuperset(text):
        return text
    return quote(unquote_to_bytes(_raw_bytes(text)), safe="-_.~")


def canonical_query(query: str, *, drop_signature: bool = False, drop_security_token: bool = False) -> str:
    """The canonical query string: decode, re-encode, sort by key then value.

    "Sort the parameter names by character code point in ascending order. Parameters with duplicate
    names should be sorted by value." A parameter without `=` gets an empty value (`key=`). For a
    presigned URL "the Canonical Query String must include all the query parameters ... except for
    X-Amz-Signature" (`drop_signature=True`). Some services expect X-Amz-Security-Token to be added
    "at the end, after you calculate the signature" (suite: post-sts-header-after): `drop_security_token`.
    """
    if not query:
        return ""
    pairs: list[tuple[str, str]] = []
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if (drop_signature and key == "X-Amz-Signature") or (
            drop_security_token and key == "X-Amz-Security-Token"
        ):
            continue
        pairs.append((_encode_query_component(key), _encode_query_component(value)))
    pairs.sort()
    return "&".join([f"{key}={value}" for key, value in pairs])


def canonical_header_value(values: Iterable[str]) -> str:
    """ "Lowercase(HeaderName) + ':' + Trimall(HeaderValue)"; a header sent more than once is one line,
    its values joined with commas in arrival order ("value2,value2,value1" in the suite)."""
    return ",".join([" ".join(value.split()) for value in values])


def canonical_headers(head: RequestHead, signed_headers: Iterable[str]) -> str:
    """The canonical headers block (each line ends with a newline) for the headers the client signed.

    The names come from SignedHeaders as sent; a signed header absent from the request yields
    `name:` (the client signed a value this request does not carry, so the signature will not match).
    """
    lines = []
    for name in signed_headers:
        values = head.get_all(name)
        if len(values) == 1:
            value = values[0]
            # Fast path: nothing to trim or collapse (no outer spaces, no runs, no tab / CR / LF).
            if value and value[0] != " " and value[-1] != " " and "  " not in value and value.isprintable():
                lines.append(f"{name}:{value}\n")
                continue
        lines.append(f"{name}:{canonical_header_value(values)}\n")
    return "".join(lines)


def canonical_request(  # noqa: PLR0917 - the six lines of the canonical request, in order
    method: str, uri: str, query: str, headers_block: str, signed_headers_line: str, payload_hash: str
) -> str:
    """Join the six parts; `headers_block` ends with a newline, hence the blank line before SignedHeaders."""
    return f"{method}\n{uri}\n{query}\n{headers_block}\n{signed_headers_line}\n{payload_hash}"


def string_to_sign(amz_date: str, scope: str, canonical: str, algorithm: str = ALGORITHM) -> str:
    """Task 2: "the algorithm, the time stamp, the credential scope, and a hash of the canonical request"."""
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{algorithm}\n{amz_date}\n{scope}\n{digest}"


def has_no_body(head: RequestHead) -> bool:
    """A request that announces an empty body: no Transfer-Encoding and Content-Length absent or 0."""
    if head.has("transfer-encoding"):
        return False
    length = head.get("content-length")
    return length is None or length.strip() == "0"
