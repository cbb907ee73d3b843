"""Property tests of extraction: random bytes and near-valid JSON / XML never make it raise, it never reads
past its limit, and on near-valid documents it agrees with botocore wherever botocore gives a string code.

The public extract_error has a last-resort catch-all; these properties exercise `_extract`, the logic
under it, so that a bug cannot hide behind the catch-all.
"""

from __future__ import annotations

import gzip
import json
from typing import Any
from xml.sax.saxutils import escape

import botocore.parsers
import botocore.session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3 import HTTPHeaderDict

from proxy.core.errors.extract import DEFAULT_DECODED_LIMIT, ErrorInfo, _extract, extract_error
from proxy.core.model import Protocol

PROTOCOLS = list(Protocol)
SESSION = botocore.session.get_session()
# One operation per protocol for botocore's parser (its output shape matters little for errors).
REFERENCE = {
    Protocol.JSON: ("dynamodb", "GetItem"),
    Protocol.REST_JSON: ("lambda", "GetFunction"),
    Protocol.REST_XML: ("s3", "GetObject"),
    Protocol.QUERY: ("sts", "GetCallerIdentity"),
    Protocol.EC2: ("ec2", "DescribeInstances"),
}
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

statuses = st.sampled_from([300, 301, 304, 400, 403, 404, 409, 429, 500, 502, 503, 504]) | st.integers(
    100, 599
)
header_values = st.text(max_size=40)
headers = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "Content-Type",
                "content-encoding",
                "x-amzn-RequestId",
                "x-amz-request-id",
                "x-amz-id-2",
                "x-amzn-query-error",
                "X-Amzn-ErrorType",
            ]
        ),
        header_values
        | st.sampled_from(["gzip", "deflate", "br", "identity", "gzip, br", "Code;Sender", ";", "A#B:c"]),
    ),
    max_size=5,
)
codes = st.text(alphabet=st.characters(codec="utf-8"), max_size=30) | st.sampled_from(
    ["NoSuchKey", "com.amazon.coral#ValidationException:http://x/", "a#b#c", "", ":", "#"]
)
texts = st.text(max_size=60)


def run(
    protocol: Protocol, status: int, header_list: list[tuple[str, str]], body: bytes, **options: Any
) -> ErrorInfo:
    return _extract(
        protocol,
        status,
        header_list,
        body,
        truncated=options.get("truncated", False),
        limit=options.get("limit"),
        max_decoded=options.get("max_decoded", DEFAULT_DECODED_LIMIT),
    )


@PROPERTY
@given(st.sampled_from(PROTOCOLS), statuses, headers, st.binary(max_size=2048), st.booleans())
def test_random_bytes_never_raise(
    protocol: Protocol, status: int, header_list: list[tuple[str, str]], body: bytes, truncated: bool
) -> None:
    info = run(protocol, status, header_list, body, truncated=truncated)
    assert info.status == status
    assert info.bytes_examined == len(body)


@PROPERTY
@given(st.sampled_from(PROTOCOLS), statuses, st.binary(max_size=4096), st.sampled_from(["gzip", "deflate"]))
def test_random_compressed_bodies_never_raise(
    protocol: Protocol, status: int, payload: bytes, encoding: str
) -> None:
    body = gzip.compress(payload) if encoding == "gzip" else payload
    run(protocol, status, [("Content-Encoding", encoding)], body, max_decoded=512)


# --- near-valid documents ---------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def json_documents(draw: st.DrawFn) -> bytes:
    doc: dict[str, object] = {}
    if draw(st.booleans()):
        doc["__type"] = draw(codes | json_scalars)
    for key in draw(st.lists(st.sampled_from(["message", "Message", "code", "Code", "error"]), max_size=3)):
        doc[key] = draw(
            st.fixed_dictionaries({"errorCode": codes, "errorDetails": json_values}) | json_values | texts
        )
    return json.dumps(doc).encode()


def xml_leaf(name: str, value: str) -> str:
    return f"<{name}>{escape(value)}</{name}>"


@st.composite
def xml_documents(draw: st.DrawFn) -> bytes:
    shape = draw(st.sampled_from(["s3", "query", "ec2", "other"]))
    code = draw(codes)
    fields = [xml_leaf("Code", code)] if draw(st.booleans()) or shape == "s3" else []
    fields += [
        xml_leaf(name, draw(texts))
        for name in draw(st.lists(st.sampled_from(["Message", "Type", "Key"]), max_size=3))
    ]
    inner = "".join(draw(st.permutations(fields)))
    namespace = draw(st.sampled_from(["", ' xmlns="http://example.com/doc/"']))
    request_id = xml_leaf(draw(st.sampled_from(["RequestId", "RequestID"])), draw(texts))
    if shape == "s3":
        xml = f"<Error{namespace}>{inner}{request_id}</Error>"
    elif shape == "query":
        xml = f"<ErrorResponse{namespace}><Error>{inner}</Error>{request_id}</ErrorResponse>"
    elif shape == "ec2":
        errors = "".join(f"<Error>{inner}</Error>" for _ in range(draw(st.integers(1, 2))))
        xml = f"<Response><Errors>{errors}</Errors>{request_id}</Response>"
    else:
        xml = f"<{draw(st.sampled_from(['html', 'Whatever', 'Errors']))}>{inner}</Whatever>"
    prolog = draw(st.sampled_from(["", '<?xml version="1.0" encoding="UTF-8"?>\n']))
    return (prolog + xml).encode()


@st.composite
def mutated(draw: st.DrawFn, documents: st.SearchStrategy[bytes]) -> bytes:
    """A document, then maybe cut, maybe a byte replaced, maybe bytes inserted."""
    body = draw(documents)
    if body and draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    if body and draw(st.booleans()):
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(body)))
        body = body[:at] + draw(st.binary(max_size=8)) + body[at:]
    return body


near_valid = mutated(json_documents()) | mutated(xml_documents())


@PROPERTY
@given(st.sampled_from(PROTOCOLS), statuses, headers, near_valid, st.booleans())
def test_near_valid_documents_never_raise(
    protocol: Protocol, status: int, header_list: list[tuple[str, str]], body: bytes, truncated: bool
) -> None:
    run(protocol, status, header_list, body, truncated=truncated)


@PROPERTY
@given(st.sampled_from(PROTOCOLS), statuses, near_valid, st.integers(0, 300))
def test_nothing_past_the_limit_is_read(protocol: Protocol, status: int, body: bytes, limit: int) -> None:
    """The result depends only on the first `limit` bytes: the same as handing over just those bytes."""
    full = body + b"\x00TRAILING GARBAGE" * 4
    limited = extract_error(protocol, status, [], full, limit=limit)
    assert limited.bytes_examined <= limit
    assert limited == extract_error(protocol, status, [], full[:limit], body_truncated=len(full) > limit)


NO_CODE = object()  # botocore raised, or its Error is not a dict


def botocore_code(protocol: Protocol, status: int, header_list: list[tuple[str, str]], body: bytes) -> object:
    service, operation = REFERENCE[protocol]
    model = SESSION.get_service_model(service)
    headers_dict = HTTPHeaderDict()
    for name, value in header_list:
        headers_dict.add(name, value)
    response = {"status_code": status, "headers": headers_dict, "body": body, "context": {}}
    try:
        parsed = botocore.parsers.create_parser(model.protocol).parse(
            response, model.operation_model(operation).output_shape
        )
    except Exception:  # botocore crashes on some of these; no code to compare
        return NO_CODE
    error = parsed.get("Error", {})
    return error.get("Code") if isinstance(error, dict) else NO_CODE


parity_headers = st.lists(
    st.tuples(
        st.sampled_from(["x-amzn-query-error", "X-Amzn-ErrorType", "x-amzn-RequestId"]),
        st.sampled_from(["Code;Sender", "AWS.Q.Code;Receiver", "NoSemicolon", ";", "Type:http://x", "A#B"]),
    ),
    max_size=2,
    unique_by=lambda pair: pair[0].lower(),
)


@PROPERTY
@given(
    st.sampled_from(list(REFERENCE)),
    st.sampled_from([400, 403, 404, 409, 500, 503]),
    parity_headers,
    near_valid,
)
def test_agrees_with_botocore_on_near_valid_documents(
    protocol: Protocol, status: int, header_list: list[tuple[str, str]], body: bytes
) -> None:
    expected = botocore_code(protocol, status, header_list, body)
    if not (expected is None or isinstance(expected, str)):
        return  # botocore has no string code here (it raises, or reports a dict/list/number)
    assert extract_error(protocol, status, header_list, body).code == expected
