"""Parsing the Authorization header and presigned query parameters."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.core.model import RequestHead
from proxy.core.sigv4.auth import (
    AuthParseError,
    AuthParseErrorKind,
    CredentialScope,
    SigV4Authorization,
    ambiguous_credentials,
    parse_authorization,
    parse_presigned,
    presigned_parameters,
)

HEADER = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, "
    "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
)


def test_parse_header() -> None:
    auth = parse_authorization(HEADER)
    assert auth.credential == CredentialScope("AKIDEXAMPLE", "20150830", "us-east-1", "iam", "aws4_request")
    assert auth.credential.scope == "20150830/us-east-1/iam/aws4_request"
    assert auth.signed_headers == ("content-type", "host", "x-amz-date")
    assert auth.signed_headers_line == "content-type;host;x-amz-date"
    assert auth.signature.startswith("5d672d79")
    assert not auth.presigned


def test_parse_header_without_spaces_and_in_any_order() -> None:
    expected = parse_authorization(HEADER)
    compact = HEADER.replace(", ", ",")
    components = compact.split(" ", 1)[1].split(",")
    reordered = "AWS4-HMAC-SHA256 " + ",".join(reversed(components))
    for value in (compact, reordered):
        auth = parse_authorization(value)
        assert (auth.credential, auth.signed_headers, auth.signature, auth.raw) == (
            expected.credential,
            expected.signed_headers,
            expected.signature,
            value,
        )


@pytest.mark.parametrize(
    ("value", "missing"),
    [
        ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc", ("Credential",)),
        ("AWS4-HMAC-SHA256 Credential=a/b/c/d/e", ("Signature", "SignedHeaders")),
        ("AWS4-HMAC-SHA256", ("Credential", "Signature", "SignedHeaders")),
    ],
)
def test_missing_components_listed_in_aws_order(value: str, missing: tuple[str, ...]) -> None:
    with pytest.raises(AuthParseError) as caught:
        parse_authorization(value)
    assert caught.value.kind is AuthParseErrorKind.MISSING_COMPONENTS
    assert caught.value.missing == missing
    assert caught.value.raw == value


def test_credential_must_have_five_parts() -> None:
    value = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/iam, SignedHeaders=host, Signature=abc"
    with pytest.raises(AuthParseError) as caught:
        parse_authorization(value)
    assert caught.value.kind is AuthParseErrorKind.MALFORMED_CREDENTIAL
    assert caught.value.value == "AKID/20150830/us-east-1/iam"


@pytest.mark.parametrize("value", ["AWS AKID:c2ln", "AWS4-ECDSA-P256-SHA256 Credential=x", "Bearer t"])
def test_other_schemes_are_unsupported(value: str) -> None:
    with pytest.raises(AuthParseError) as caught:
        parse_authorization(value)
    assert caught.value.kind is AuthParseErrorKind.UNSUPPORTED_ALGORITHM
    assert caught.value.value == value.split(maxsplit=1)[0]


PRESIGNED = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice"
    "%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=e93c787ed7f371d5c6b165c1b38ede9550f4dce4144713e844b25b7192d3865d"
)


def test_presigned() -> None:
    params = presigned_parameters("a=1&" + PRESIGNED)
    assert params is not None
    auth = parse_presigned(params)
    assert auth.presigned
    assert auth.credential.access_key_id == "AKIDEXAMPLE"
    assert auth.amz_date == "20150830T123600Z"
    assert auth.expires == "3600"
    assert auth.signed_headers == ("host",)


def test_not_presigned() -> None:
    assert presigned_parameters("") is None
    assert presigned_parameters("list-type=2&prefix=X-Amz-") is None


def test_presigned_missing_parameters() -> None:
    params = presigned_parameters(PRESIGNED.replace("X-Amz-Expires=3600&", ""))
    assert params is not None
    with pytest.raises(AuthParseError) as caught:
        parse_presigned(params)
    assert caught.value.kind is AuthParseErrorKind.MISSING_QUERY_PARAMETERS
    assert caught.value.missing == ("X-Amz-Expires",)
    assert caught.value.presigned


def reference_parse(value: str) -> SigV4Authorization:
    """The Authorization parse without the memoised fast path: every component, the last of each wins."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise AuthParseError(AuthParseErrorKind.UNSUPPORTED_ALGORITHM, value=algorithm, raw=value)
    found: dict[str, str] = {}
    for component in rest.split(","):
        name, sep, item = component.strip().partition("=")
        if sep and name in ("Credential", "SignedHeaders", "Signature"):
            found[name] = item
    missing = tuple(name for name in ("Credential", "Signature", "SignedHeaders") if name not in found)
    if missing:
        raise AuthParseError(AuthParseErrorKind.MISSING_COMPONENTS, missing=missing, raw=value)
    return SigV4Authorization(
        credential=CredentialScope.parse(found["Credential"], raw=value),
        signed_headers=tuple(found["SignedHeaders"].split(";")),
        signature=found["Signature"],
        signed_headers_line=found["SignedHeaders"],
        raw=value,
    )


def outcome(parse: Callable[[str], SigV4Authorization], value: str) -> object:
    try:
        return parse(value)
    except AuthParseError as error:
        return (error.kind, error.missing, error.value, error.raw, error.presigned)


_COMPONENT = st.sampled_from(
    [
        "Credential=AKID/20150830/us-east-1/iam/aws4_request",
        "Credential=OTHER/20150830/eu-west-1/sts/aws4_request",
        "Credential=AKID/20150830/us-east-1/iam",
        "Credential=",
        "SignedHeaders=host;x-amz-date",
        "SignedHeaders=content-type;host",
        "SignedHeaders=",
        "Signature=" + "a" * 64,
        "Signature=" + "b" * 64,
        "Signature=",
        " Signature=c ",
        "Signature =d",
        "Signature",
        "Other=1",
        "",
    ]
)


@given(st.lists(_COMPONENT, max_size=6), st.sampled_from([", ", ",", " , "]))
def test_memoised_parse_equals_the_full_parse(components: list[str], separator: str) -> None:
    """The memo of the components before a trailing Signature changes nothing: same object, same error."""
    value = "AWS4-HMAC-SHA256 " + separator.join(components)
    assert outcome(parse_authorization, value) == outcome(reference_parse, value)
    assert outcome(parse_authorization, value) == outcome(reference_parse, value)  # memo hit


def test_memoised_parse_keeps_each_request_signature_and_raw() -> None:
    first = parse_authorization(HEADER)
    second = parse_authorization(HEADER[:-64] + "0" * 64)
    assert first.credential is second.credential  # the part before Signature was parsed once
    assert (second.signature, second.raw) == ("0" * 64, HEADER[:-64] + "0" * 64)
    assert first.signature == HEADER[-64:]


def reference_ambiguity(head: RequestHead) -> str | None:
    """ambiguous_credentials without its shortcuts (no repeated header, memoised components)."""
    for name in ("host", "authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"):
        if len(head.get_all(name)) > 1:
            return name
    if not head.has("x-amz-date") and len(head.get_all("date")) > 1:
        return "Date"
    authorization = head.get("authorization")
    if authorization is not None:
        seen: set[str] = set()
        for component in authorization.strip().partition(" ")[2].split(","):
            name, sep, _ = component.strip().partition("=")
            if sep and name in ("Credential", "SignedHeaders", "Signature"):
                if name in seen:
                    return name
                seen.add(name)
    return None


_HEADERS = st.lists(
    st.tuples(
        st.sampled_from(["Host", "host", "X-Amz-Date", "Date", "date", "X-Amz-Security-Token", "Other"]),
        st.sampled_from(["a", "b"]),
    ),
    max_size=5,
)


@given(st.lists(_COMPONENT, max_size=6), st.sampled_from([", ", ","]), _HEADERS)
def test_ambiguous_credentials_names_what_the_full_scan_names(
    components: list[str], separator: str, headers: list[tuple[str, str]]
) -> None:
    value = "AWS4-HMAC-SHA256 " + separator.join(components)
    head = RequestHead.build("GET", "/", [*headers, ("Authorization", value)])
    expected = reference_ambiguity(head)
    for _ in range(2):  # cold, then from the memo
        found = ambiguous_credentials(head)
        if expected is None:
            assert found is None
        else:
            assert found is not None
            assert f"Send {expected} once." in found
