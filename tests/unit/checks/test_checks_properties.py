"""Property tests: random requests signed by botocore (header and presigned) verify; flipping any signed
part (method, path, query, a signed header, body, date) fails with that protocol's code."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from checks_support import ACCESS_KEY, SECRET, WHEN, Signed, botocore_sign, stream
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.core.checks import SignatureState
from proxy.core.model import RequestHead
from proxy.core.sigv4.dates import format_amz_date

SERVICES = ("s3", "storagegateway", "sts", "dynamodb")
ENDPOINTS = {
    "s3": "http://127.0.0.1:9000",
    "storagegateway": "http://127.0.0.1:9001",
    "sts": "http://127.0.0.1:9002",
    "dynamodb": "http://127.0.0.1:9003",
}
TARGETS = {
    "storagegateway": ("application/x-amz-json-1.1", "StorageGateway_20130630.ListGateways"),
    "dynamodb": ("application/x-amz-json-1.0", "DynamoDB_20120810.ListTables"),
}
MISMATCH_CODE = {
    "s3": "SignatureDoesNotMatch",
    "storagegateway": "InvalidSignatureException",
    "dynamodb": "InvalidSignatureException",
    "sts": "SignatureDoesNotMatch",
}
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"

segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/?#"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
param = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=10)
header_value = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=20
).filter(lambda s: s.strip() != "")


@dataclass(frozen=True)
class Case:
    service: str
    presign: bool
    request: Signed


@st.composite
def cases(draw: st.DrawFn) -> Case:
    service = draw(st.sampled_from(SERVICES))
    presign = draw(st.booleans())
    segments = draw(st.lists(segment, min_size=1, max_size=3))
    path = "/" + "/".join(quote(part, safe="~") for part in segments)
    if service == "s3":
        path = "/bucket" + path
    params = draw(st.dictionaries(param.map(lambda k: "p" + k), param, max_size=3))
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in params.items())
    headers: dict[str, str] = {}
    body = draw(st.binary(max_size=64))
    method = "POST"
    if service in TARGETS:
        headers["Content-Type"], headers["X-Amz-Target"] = TARGETS[service]
    elif service == "sts":
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
        extra = draw(param)
        body = f"Action=GetCallerIdentity&Version=2011-06-15&Extra={quote(extra, safe='')}".encode()
        path = "/"
    else:
        method = draw(st.sampled_from(["GET", "PUT", "POST", "DELETE"]))
    if not presign:
        headers["X-Custom-Header"] = draw(header_value)
    if presign:
        body = b"" if service != "s3" else body
        if service == "sts":
            query = "Action=GetCallerIdentity&Version=2011-06-15" + ("&" + query if query else "")
            headers, method = {}, "GET"
    url = ENDPOINTS[service] + path + ("?" + query if query else "")
    head, raw, _ = botocore_sign(
        method,
        url,
        headers,
        b"" if presign else body,  # a presigned URL is made without the body (S3 sends it unsigned)
        service=service,
        region="us-east-1",
        when=WHEN,
        access_key=ACCESS_KEY,
        secret=SECRET,
        presign=presign,
    )
    return Case(service, presign, Signed(head, raw if not presign else body))


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(case=cases())
def test_botocore_signed_requests_verify(case: Case) -> None:
    result, streamed = stream(case.request)
    assert result.first_error is None, result.findings
    assert streamed is None
    assert result.signature_state == SignatureState.VALID


def _replace_char(text: str, index: int, start: int) -> str:
    """Replace the character at `index` (at or after `start`) with a different unreserved one."""
    position = start + index % max(len(text) - start, 1)
    if position >= len(text):
        return text + "z"
    current = text[position]
    replacement = "z" if current != "z" else "y"
    if current == "/":
        replacement = "q"
    return text[:position] + replacement + text[position + 1 :]


def _mutate(case: Case, part: str, index: int) -> Signed:
    head, body = case.request.head, case.request.body
    headers = list(head.headers)
    if part == "method":
        other = {"GET": "PUT", "PUT": "GET", "POST": "PUT", "DELETE": "GET"}[head.method]
        return Signed(RequestHead(other, head.path, head.query, head.headers), body)
    if part == "path":
        return Signed(
            RequestHead(head.method, _replace_char(head.path, index, 1), head.query, head.headers), body
        )
    if part == "query":
        pairs = [
            p for p in head.query.split("&") if p and not p.startswith(("X-Amz-", "Action=", "Version="))
        ]
        if pairs:
            changed = pairs[index % len(pairs)]
            query = head.query.replace(changed, changed + "x", 1)
        else:
            query = head.query + ("&" if head.query else "") + "zz=1"
        return Signed(RequestHead(head.method, head.path, query, head.headers), body)
    if part == "header":
        if case.presign:  # only host is signed
            headers = [(n, v.replace(":90", ":91")) if n.lower() == "host" else (n, v) for n, v in headers]
        else:
            headers = [(n, v + "x") if n == "X-Custom-Header" else (n, v) for n, v in headers]
        return Signed(RequestHead(head.method, head.path, head.query, tuple(headers)), body)
    if part == "body":
        if not body:
            changed = b"x"
        elif case.service == "sts":
            changed = body + b"x"  # inside the Extra= value: the Action stays what it was
        else:
            position = index % len(body)
            changed = body[:position] + bytes([body[position] ^ 0x01]) + body[position + 1 :]
        # The body as it would arrive: with its length announced.
        return Signed(head, changed).with_headers(("Content-Length", str(len(changed))))
    later = format_amz_date(WHEN + timedelta(seconds=1))
    if case.presign:
        query = head.query.replace("X-Amz-Date=20240501T120000Z", f"X-Amz-Date={later}")
        return Signed(RequestHead(head.method, head.path, query, head.headers), body)
    headers = [(n, later) if n.lower() == "x-amz-date" else (n, v) for n, v in headers]
    return Signed(RequestHead(head.method, head.path, head.query, tuple(headers)), body)


@PROPERTY_SETTINGS
@given(
    case=cases(),
    part=st.sampled_from(["method", "path", "query", "header", "body", "date"]),
    index=st.integers(min_value=0, max_value=1000),
)
def test_flipping_a_signed_part_fails_with_the_protocols_code(case: Case, part: str, index: int) -> None:
    if part == "body" and case.service == "s3" and case.presign:
        return  # S3 presigned URLs sign UNSIGNED-PAYLOAD: the body is not signed
    tampered = _mutate(case, part, index)
    result, streamed = stream(tampered)
    if part == "body" and case.service == "s3":
        # The signature covers the declared x-amz-content-sha256; the body is checked against it.
        assert result.first_error is None
        assert streamed is not None and streamed.code == "XAmzContentSHA256Mismatch"
        return
    found = result.first_error
    assert found is not None, (part, tampered.head)
    assert (found.check, found.code) == ("signature.verify", MISMATCH_CODE[case.service])
    assert result.signature_state == SignatureState.INVALID
