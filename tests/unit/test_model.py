"""RequestHead.from_raw builds the same head as decoding the header bytes and calling build().

The reference is what the handler's request_head() did before from_raw: decode every name and value with
UTF-8 `surrogateescape`, then RequestHead.build (whose __post_init__ indexes the headers).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.core import model
from proxy.core.model import RequestHead


def reference(
    method: str, target: str, raw_headers: Sequence[tuple[bytes, bytes]], scheme: str = "http"
) -> RequestHead:
    headers = tuple(
        (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        for name, value in raw_headers
    )
    return RequestHead.build(method, target, headers, scheme=scheme)


def assert_same_head(built: RequestHead, expected: RequestHead) -> None:
    """Every field, and every index lookup (the index is left out of dataclass equality)."""
    assert built == expected
    assert (built.method, built.path, built.query, built.scheme) == (
        expected.method,
        expected.path,
        expected.query,
        expected.scheme,
    )
    assert built.headers == expected.headers
    assert built.header_names == expected.header_names
    assert dict(built._index) == dict(expected._index)
    for name, _ in expected.headers:
        for spelling in (name, name.lower(), name.upper()):
            assert built.get_all(spelling) == expected.get_all(spelling)
            assert built.get(spelling) == expected.get(spelling)
            assert built.has(spelling) == expected.has(spelling)
    assert built.host == expected.host
    assert built.has_repeated_headers == expected.has_repeated_headers
    assert built.has_repeated_headers == any(
        [name.lower() for name, _ in expected.headers].count(name.lower()) > 1 for name, _ in expected.headers
    )


ODD_HEADERS: dict[str, tuple[str, str, list[tuple[bytes, bytes]]]] = {
    "botocore json": (
        "POST",
        "/",
        [
            (b"Host", b"storagegateway.us-east-1.amazonaws.com"),
            (b"X-Amz-Target", b"StorageGateway_20130630.ListGateways"),
            (b"Content-Type", b"application/x-amz-json-1.1"),
            (b"X-Amz-Date", b"20240501T120000Z"),
            (b"Content-Length", b"2"),
        ],
    ),
    "no headers": ("GET", "/", []),
    "empty target path and query": ("GET", "?", [(b"Host", b"h")]),
    "query kept raw": ("GET", "/a%20b/?x=1&y=%2F&x=0", [(b"Host", b"h")]),
    "empty values": ("GET", "/", [(b"Host", b""), (b"X-Empty", b""), (b"x-empty", b"")]),
    "repeated header, mixed case, in order": (
        "GET",
        "/",
        [(b"X-Amz-Meta-A", b"1"), (b"Host", b"h"), (b"x-amz-meta-a", b"2"), (b"X-AMZ-META-A", b"3")],
    ),
    "repeated host": ("GET", "/", [(b"Host", b"a"), (b"host", b"b")]),
    "invalid utf-8 value (lone continuation, truncated sequence)": (
        "GET",
        "/",
        [(b"Host", b"h"), (b"X-Bin", b"\x80ab\xe2\x82"), (b"X-Next", b"ok")],
    ),
    "invalid utf-8 name": ("GET", "/", [(b"X-\xff\xfe", b"v"), (b"x-\xff\xfe", b"w")]),
    "valid non-ascii": ("GET", "/", [(b"X-Name", "caf\u00e9 \u2603".encode()), ("X-\u00c9".encode(), b"v")]),
    "non-ascii name whose case folds": (
        "GET",
        "/",
        [("X-\u00c9T\u00c9".encode(), b"1"), ("x-\u00e9t\u00e9".encode(), b"2")],
    ),
    "whitespace kept": ("GET", "/", [(b"X-Space", b"  a  b  "), (b"X-Tab", b"\ta\t")]),
    "nul and control bytes": ("GET", "/", [(b"X-Ctl", b"a\x00b\x01")]),
}


@pytest.mark.parametrize("case", ODD_HEADERS, ids=list(ODD_HEADERS))
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_from_raw_equals_decode_then_build(case: str, scheme: str) -> None:
    method, target, raw_headers = ODD_HEADERS[case]
    assert_same_head(
        RequestHead.from_raw(method, target, raw_headers, scheme=scheme),
        reference(method, target, raw_headers, scheme=scheme),
    )


def test_undecodable_bytes_travel_as_surrogates() -> None:
    head = RequestHead.from_raw("GET", "/", [(b"X-Bin", b"a\xffb")])
    assert head.get("x-bin") == "a\udcffb"
    assert head.get("x-bin").encode("utf-8", "surrogateescape") == b"a\xffb"  # type: ignore[union-attr]


def test_repeated_header_keeps_every_value_in_arrival_order() -> None:
    head = RequestHead.from_raw("GET", "/", [(b"A", b"1"), (b"B", b"x"), (b"a", b"2"), (b"A", b"3")])
    assert head.get_all("a") == ("1", "2", "3")
    assert head.get("A") == "1"
    assert head.headers == (("A", "1"), ("B", "x"), ("a", "2"), ("A", "3"))


def test_name_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client inventing header names cannot grow the per-process name memo past its bound."""
    monkeypatch.setattr(model, "_NAMES", {})
    monkeypatch.setattr(model, "_NAMES_MAX", 8)
    raw = [(f"X-Invented-{n}".encode(), b"v") for n in range(40)]
    head = RequestHead.from_raw("GET", "/", raw)
    assert 0 < len(model._NAMES) <= 8
    assert_same_head(head, reference("GET", "/", raw))
    # Names past the bound still decode correctly, and a second request gives the same head.
    assert_same_head(RequestHead.from_raw("GET", "/", raw), reference("GET", "/", raw))


def test_from_raw_head_is_frozen() -> None:
    head = RequestHead.from_raw("GET", "/", [(b"Host", b"h")])
    with pytest.raises(AttributeError):
        head.method = "PUT"  # type: ignore[misc]


_header_bytes = st.binary(max_size=12) | st.sampled_from(
    [b"Host", b"host", b"HOST", b"X-Amz-Date", b"x-amz-date", b"\xc3\x89", b"\xc3\xa9", b"\xff"]
)


@given(
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE"]),
    target=st.text(max_size=20),
    raw_headers=st.lists(st.tuples(_header_bytes, st.binary(max_size=16)), max_size=12),
)
def test_from_raw_equals_decode_then_build_on_any_bytes(
    method: str, target: str, raw_headers: list[tuple[bytes, bytes]]
) -> None:
    assert_same_head(
        RequestHead.from_raw(method, target, raw_headers), reference(method, target, raw_headers)
    )
