"""Hostile input for the SigV4 parsers, canonicalization, dates and the aws-chunked decoder: hypothesis
drives the fuzz entry points of tests/fuzz/targets.py (the atheris harness runs the same ones), with raw
bytes and with near-valid structures mutated one piece at a time. Each target raises nothing but its
documented parse error and buffers nothing past its limits (see the targets' docstrings)."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sigv4_chunk_frames import signed_chunked_body

from proxy.core.model import RequestHead
from proxy.core.sigv4.auth import ambiguous_credentials
from proxy.core.sigv4.canonical import canonical_query, canonical_uri
from tests.fuzz.targets import authorization, canonical, chunked, dates, presigned

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Characters that matter to these parsers, plus anything.
SPICY = st.sampled_from([*"/=,; \t%&?#+.~-_:\r\n\x00é\udcff", "%2F", "%zz", "%", "aws4_request", "X-Amz-"])
spicy_text = st.lists(SPICY | st.text(max_size=4), max_size=40).map("".join)


@FUZZ
@given(st.binary(max_size=600))
@example(b"AWS4-HMAC-SHA256 Credential=,Signature=,SignedHeaders=")
@example(b"AWS4-HMAC-SHA256 " + b"Credential=" * 500)
@example(
    "AWS4-HMAC-SHA256 Credential=\udcff/a/b/c/d, SignedHeaders=host, Signature=00".encode(
        "utf-8", "surrogateescape"
    )
)
def test_authorization_header_bytes(data: bytes) -> None:
    authorization(data)


components = st.tuples(
    st.sampled_from(["Credential", "SignedHeaders", "Signature", "credential", "Signature ", "X"])
    | spicy_text,
    st.sampled_from(["=", "", "==", " = "]),
    spicy_text,
)


@FUZZ
@given(
    st.sampled_from(["AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", "AWS", "Bearer", "", "aws4-hmac-sha256"])
    | spicy_text,
    st.lists(components, max_size=6),
    st.sampled_from([",", ", ", " ,", ";", ",,"]),
)
def test_near_valid_authorization_headers(
    algorithm: str, parts: list[tuple[str, str, str]], separator: str
) -> None:
    value = algorithm + " " + separator.join(name + eq + item for name, eq, item in parts)
    authorization(value.encode("utf-8", "surrogateescape"))
    head = RequestHead.build("GET", "/", [("Host", "h"), ("Authorization", value)])
    ambiguous_credentials(head)  # never raises


PRESIGNED_KEYS = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
    "X-Amz-Security-Token",
]


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(PRESIGNED_KEYS) | spicy_text, st.sampled_from(["=", ""]), spicy_text),
        max_size=10,
    )
)
@example([("X-Amz-Credential", "=", "%ZZ%2F%FF")])
@example([("X-Amz-Expires", "=", "9" * 5000)])
def test_near_valid_presigned_queries(pairs: list[tuple[str, str, str]]) -> None:
    query = "&".join(key + eq + value for key, eq, value in pairs)
    presigned(query.encode("utf-8", "surrogateescape"))


@FUZZ
@given(st.binary(max_size=600))
def test_presigned_query_bytes(data: bytes) -> None:
    presigned(data)


@FUZZ
@given(spicy_text, spicy_text, st.lists(st.tuples(spicy_text, spicy_text), max_size=5))
@example("/caf\udce9/../%2e%2e//x", "a=\udcff&b=%ff&=&&c", [("X-Amz-Date", " a  b ")])
def test_canonicalization_is_total_and_stable(path: str, query: str, headers: list[tuple[str, str]]) -> None:
    header_text = "\n".join(f"{name.replace(':', '')}:{value}".replace("\n", " ") for name, value in headers)
    canonical(
        f"{path.replace('?', '')}?{query.replace(chr(10), '')}\n{header_text}".encode(
            "utf-8", "surrogateescape"
        )
    )


def test_undecodable_bytes_in_a_path_or_query_are_encoded_not_raised() -> None:
    """The pure-Python HTTP parser lets such bytes through as surrogates (RequestHead keeps them)."""
    assert canonical_uri("/caf\udce9", normalize=False) == "/caf%E9"
    assert canonical_uri("/a/../caf\udce9", normalize=True) == "/caf%E9"
    assert canonical_query("k=caf\udce9") == "k=caf%E9"


@FUZZ
@given(st.binary(max_size=600))
def test_dates(data: bytes) -> None:
    dates(data)


@FUZZ
@given(st.binary(max_size=2000))
def test_aws_chunked_bytes(data: bytes) -> None:
    chunked(data)


_KEY = b"k" * 32
VALID_BODY, _ = signed_chunked_body(
    b"z" * 300,
    100,
    key=_KEY,
    amz_date="20130524T000000Z",
    scope="20130524/us-east-1/s3/aws4_request",
    seed="4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    trailer="x-amz-checksum-crc32:AAAAAA==",
)
mutation = st.tuples(
    st.integers(0, len(VALID_BODY)),
    st.sampled_from(["flip", "insert", "delete", "cut"]),
    st.binary(min_size=1, max_size=8),
)


@FUZZ
@given(st.integers(0, 255), st.integers(0, 255), st.lists(mutation, max_size=4))
def test_mutated_aws_chunked_bodies(selector: int, cut: int, mutations: list[tuple[int, str, bytes]]) -> None:
    body = bytearray(VALID_BODY)
    for offset, how, data in mutations:
        position = min(offset, len(body))
        if how == "flip" and position < len(body):
            body[position] ^= data[0] or 1
        elif how == "insert":
            body[position:position] = data
        elif how == "delete":
            del body[position : position + len(data)]
        elif how == "cut":
            del body[position:]
    chunked(bytes([selector, cut]) + bytes(body))
