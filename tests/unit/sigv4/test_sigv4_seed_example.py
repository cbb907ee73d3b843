"""Seed 000 "Example Signature Calculation" (Storage Gateway ListGateways), computed two ways.

The document's request, canonical request and derived-key recipe are right; its string to sign and
signature are not: they are the values of the same request signed for us-east-1 (host
storagegateway.us-east-1.amazonaws.com, scope .../us-east-1/...), left unchanged when the example was
moved to us-east-2. The test computes the us-east-2 values with this implementation and with botocore,
and shows the document's two values are exactly the us-east-1 ones.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sigv4_botocore_signing import botocore_sign

from proxy.core.model import RequestHead
from proxy.core.sigv4.auth import parse_authorization
from proxy.core.sigv4.canonical import (
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    string_to_sign,
)
from proxy.core.sigv4.signing import derive_signing_key, sign

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
WHEN = datetime(2012, 9, 10, tzinfo=UTC)
SIGNED = ("content-type", "host", "x-amz-date", "x-amz-target")

# As printed in the document.
DOC_CANONICAL_REQUEST = """POST
/

content-type:application/x-amz-json-1.1
host:storagegateway.us-east-2.amazonaws.com
x-amz-date:20120910T000000Z
x-amz-target:StorageGateway_20120630.ListGateways

content-type;host;x-amz-date;x-amz-target
44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"""
DOC_STRING_TO_SIGN_HASH = "92c0effa6f9224ac752ca179a04cecbede3038b0959666a8160ab452c9e51b3e"
DOC_SIGNATURE = "6d4c40b8f2257534dbdca9f326f147a0a7a419b63aff349d9d9c737c9a0f4c81"
# What the document's request really signs to (this implementation and botocore agree).
CORRECT_STRING_TO_SIGN_HASH = "18cc088f88c13acbf84a299c94eddee5b046b3559ddc23bff53df39275d4be2a"
CORRECT_SIGNATURE = "b75875f1b50bcd33adc15a528e1536e3132680e340c27ece692eb3e6340fbab5"


def _head(region: str) -> RequestHead:
    return RequestHead.build(
        "POST",
        "/",
        [
            ("Host", f"storagegateway.{region}.amazonaws.com"),
            ("x-amz-Date", "20120910T000000Z"),
            ("Content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "StorageGateway_20120630.ListGateways"),
        ],
    )


def _compute(region: str) -> tuple[str, str, str]:
    head = _head(region)
    creq = canonical_request(
        head.method,
        canonical_uri(head.path, normalize=True),
        canonical_query(head.query),
        canonical_headers(head, SIGNED),
        ";".join(SIGNED),
        hashlib.sha256(b"{}").hexdigest(),
    )
    sts = string_to_sign("20120910T000000Z", f"20120910/{region}/storagegateway/aws4_request", creq)
    key = derive_signing_key(SECRET, "20120910", region, "storagegateway")
    return creq, sts, sign(key, sts)


def test_canonical_request_matches_the_document() -> None:
    creq, _, _ = _compute("us-east-2")
    assert creq == DOC_CANONICAL_REQUEST


def test_string_to_sign_and_signature_are_the_correct_us_east_2_values() -> None:
    creq, sts, signature = _compute("us-east-2")
    assert sts.splitlines() == [
        "AWS4-HMAC-SHA256",
        "20120910T000000Z",
        "20120910/us-east-2/storagegateway/aws4_request",
        CORRECT_STRING_TO_SIGN_HASH,
    ]
    assert hashlib.sha256(creq.encode()).hexdigest() == CORRECT_STRING_TO_SIGN_HASH
    assert signature == CORRECT_SIGNATURE
    assert signature != DOC_SIGNATURE


def test_botocore_agrees_with_the_correct_values() -> None:
    head, body, request = botocore_sign(
        "POST",
        "https://storagegateway.us-east-2.amazonaws.com/",
        {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "StorageGateway_20120630.ListGateways",
        },
        b"{}",
        service="storagegateway",
        region="us-east-2",
        when=WHEN,
        access_key=ACCESS_KEY,
        secret=SECRET,
    )
    auth = parse_authorization(head.get("authorization") or "")
    assert auth.signed_headers == SIGNED
    assert auth.signature == CORRECT_SIGNATURE
    assert body == b"{}"
    assert request.headers["X-Amz-Date"] == "20120910T000000Z"


def test_the_document_values_belong_to_us_east_1() -> None:
    """The document's string-to-sign hash and signature are the us-east-1 ones: the wrong values."""
    creq, sts, signature = _compute("us-east-1")
    assert hashlib.sha256(creq.encode()).hexdigest() == DOC_STRING_TO_SIGN_HASH
    assert sts.endswith(DOC_STRING_TO_SIGN_HASH)
    assert signature == DOC_SIGNATURE
