"""Canonicalization rules beyond the official suites: S3 paths, double encoding, queries, headers."""

from __future__ import annotations

import pytest

from proxy.core.model import RequestHead
from proxy.core.sigv4.canonical import (
    canonical_headers,
    canonical_query,
    canonical_uri,
    has_no_body,
    is_sha256_hex,
    remove_dot_segments,
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("", "/"),
        ("/a/./b/../c", "/a/c"),
        ("//example//", "/example/"),
        ("/example/..", "/"),
        ("/a/b/", "/a/b/"),
        ("/..", "/"),
    ],
)
def test_remove_dot_segments(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


def test_non_s3_path_is_normalized_then_encoded_again() -> None:
    assert canonical_uri("/a%20b/./c//d", normalize=True) == "/a%2520b/c/d"
    assert canonical_uri("/a b", normalize=True) == "/a%20b"


def test_s3_path_exactly_as_sent() -> None:
    assert canonical_uri("/bucket/my-object//example//photo.user", normalize=False) == (
        "/bucket/my-object//example//photo.user"
    )
    assert canonical_uri("/b/a%20b/c~d%2Be/./..", normalize=False) == "/b/a%20b/c~d%2Be/./.."
    assert canonical_uri("/b/raw space", normalize=False) == "/b/raw%20space"


def test_query_decoded_reencoded_sorted() -> None:
    assert canonical_query("b=2&a=2&a=1&c") == "a=1&a=2&b=2&c="
    assert canonical_query("prefix=x%20y&k=a+b&t=%7e") == "k=a%2Bb&prefix=x%20y&t=~"
    assert canonical_query("x=%2f") == "x=%2F"
    assert canonical_query("a=1&X-Amz-Signature=abc", drop_signature=True) == "a=1"
    assert canonical_query("a=1&X-Amz-Signature=abc") == "X-Amz-Signature=abc&a=1"
    assert canonical_query("a=1&&b=2&") == "a=1&b=2"


def test_headers_trimmed_collapsed_joined_in_arrival_order() -> None:
    head = RequestHead.build(
        "GET", "/", [("My-Header", "  b   c "), ("Host", "h"), ("my-header", "a"), ("Other", "x")]
    )
    assert canonical_headers(head, ("host", "my-header")) == "host:h\nmy-header:b c,a\n"
    assert canonical_headers(head, ("absent",)) == "absent:\n"


def test_helpers() -> None:
    assert is_sha256_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert not is_sha256_hex("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855")
    assert not is_sha256_hex("UNSIGNED-PAYLOAD")
    assert has_no_body(RequestHead.build("GET", "/", []))
    assert has_no_body(RequestHead.build("PUT", "/", [("Content-Length", "0")]))
    assert not has_no_body(RequestHead.build("PUT", "/", [("Content-Length", "5")]))
    assert not has_no_body(RequestHead.build("PUT", "/", [("Transfer-Encoding", "chunked")]))
