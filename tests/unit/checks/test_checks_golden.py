"""Each check's findings for each protocol, against golden AwsError values (AWS's own texts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from checks_support import (
    ACCESS_KEY,
    SECRET,
    WHEN,
    Signed,
    botocore_sign,
    context,
    errors,
    run,
    signed,
    stream,
)

from proxy.core.checks import SignatureState, validate
from proxy.core.model import AwsError, Credential, Severity

CORAL_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)
S3_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your key and "
    "signing method."
)
INVALID_TOKEN = "The security token included in the request is invalid."


def first_error(request: Signed, **kwargs: object) -> AwsError:
    result = run(request, **kwargs)
    found = result.first_error
    assert found is not None, result.findings
    return found.error


# -- everything valid ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["storagegateway", "dynamodb", "lambda", "sts", "s3"])
@pytest.mark.parametrize("presign", [False, True])
def test_botocore_signed_requests_have_no_findings(kind: str, presign: bool) -> None:
    result, streamed = stream(signed(kind, presign=presign))
    assert result.findings == ()
    assert streamed is None
    assert result.signature_state == SignatureState.VALID
    assert result.access_key_id == ACCESS_KEY
    assert result.skew_seconds == (None if presign else 0.0)


# -- missing / malformed credentials ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "storagegateway",
            AwsError("MissingAuthenticationTokenException", 400, "Request is missing Authentication Token"),
        ),
        ("lambda", AwsError("MissingAuthenticationTokenException", 403, "Missing Authentication Token")),
        ("sts", AwsError("MissingAuthenticationToken", 403, "Request is missing Authentication Token")),
    ],
)
def test_missing_authentication(kind: str, expected: AwsError) -> None:
    request = signed(kind).with_headers(("Authorization", None))
    result = run(request)
    assert result.signature_state == SignatureState.UNSIGNED
    assert result.first_error is not None and result.first_error.check == "auth.present"
    assert result.first_error.error == expected


def test_empty_authorization_header_is_missing_authentication() -> None:
    request = signed("dynamodb").with_headers(("Authorization", " "))
    assert first_error(request) == AwsError(
        "MissingAuthenticationTokenException", 400, "Request is missing Authentication Token"
    )


def test_unsigned_s3_is_anonymous_not_an_error() -> None:
    request = signed("s3", url="https://bucket.s3.amazonaws.com/key").with_headers(("Authorization", None))
    result = run(request)
    assert result.first_error is None
    assert [(f.check, f.severity) for f in result.findings] == [("auth.present", Severity.INFO)]
    assert result.signature_state == SignatureState.UNSIGNED
    # Unsigned to a custom endpoint: nothing says which service it is, so it is never rejected.
    unknown = run(signed("s3").with_headers(("Authorization", None)))
    assert unknown.first_error is None
    assert [(f.check, f.severity) for f in unknown.findings] == [("auth.present", Severity.WARNING)]


INCOMPLETE = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240501/us-east-1/storagegateway/aws4_request"


def test_incomplete_signature_json_lists_each_missing_part_then_the_header() -> None:
    request = signed("storagegateway").with_headers(("Authorization", INCOMPLETE))
    assert first_error(request) == AwsError(
        "IncompleteSignatureException",
        400,
        "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
        f"parameter. Authorization={INCOMPLETE}",
    )


def test_incomplete_signature_with_no_date_lists_the_date_too() -> None:
    value = "AWS4-HMAC-SHA256 Signature=abc"
    request = signed("sts").with_headers(("Authorization", value), ("X-Amz-Date", None))
    assert first_error(request) == AwsError(
        "IncompleteSignature",
        400,
        "Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' "
        "parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={value}",
    )


def test_incomplete_signature_s3() -> None:
    request = signed("s3").with_headers(("Authorization", INCOMPLETE.replace("storagegateway", "s3")))
    assert first_error(request) == AwsError(
        "AuthorizationHeaderMalformed",
        400,
        "The authorization header is malformed; the authorization header requires three components: "
        "Credential, SignedHeaders, and Signature.",
    )


def _replace_credential(request: Signed, credential: str) -> Signed:
    value = request.head.get("authorization") or ""
    start = value.index("Credential=") + len("Credential=")
    end = value.index(",", start)
    return request.with_headers(("Authorization", value[:start] + credential + value[end:]))


def test_credential_with_four_parts() -> None:
    request = _replace_credential(signed("dynamodb"), "AKIDEXAMPLE/20240501/us-east-1/dynamodb")
    assert first_error(request) == AwsError(
        "IncompleteSignatureException",
        400,
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got "
        "'AKIDEXAMPLE/20240501/us-east-1/dynamodb'",
    )
    s3 = _replace_credential(signed("s3"), "AKIDEXAMPLE/20240501/us-east-1/s3")
    assert first_error(s3) == AwsError(
        "AuthorizationHeaderMalformed",
        400,
        "The authorization header is malformed; the Credential is mal-formed; expecting "
        '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".',
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "storagegateway",
            AwsError(
                "IncompleteSignatureException",
                400,
                "Date must be in ISO-8601 'basic format'. Got '2024-05-01T12:00:00Z'. See "
                "http://en.wikipedia.org/wiki/ISO_8601",
            ),
        ),
        (
            "s3",
            AwsError("AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header"),
        ),
    ],
)
def test_malformed_date(kind: str, expected: AwsError) -> None:
    request = signed(kind).with_headers(("X-Amz-Date", "2024-05-01T12:00:00Z"))
    assert first_error(request) == expected


def test_unsupported_schemes() -> None:
    sigv4a = signed("dynamodb").with_headers(
        ("Authorization", "AWS4-ECDSA-P256-SHA256 Credential=AKID/20240501/dynamodb/aws4_request, ...")
    )
    result = run(sigv4a)
    assert result.first_error is None
    assert result.signature_state == SignatureState.UNVERIFIABLE
    sigv2 = signed("s3").with_headers(("Authorization", "AWS AKIDEXAMPLE:c2lnbmF0dXJl"))
    assert run(sigv2).first_error is None
    bearer = signed("s3", url="https://bucket.s3.amazonaws.com/k").with_headers(
        ("Authorization", "Bearer abc")
    )
    assert first_error(bearer) == AwsError(
        "InvalidArgument",
        400,
        "Unsupported Authorization Type",
        (("ArgumentName", "Authorization"), ("ArgumentValue", "Bearer abc")),
    )


# -- scope and signed headers -----------------------------------------------------------------------------


def test_scope_date_mismatch() -> None:
    request = signed("sts").with_headers(("X-Amz-Date", "20240502T000100Z"))
    assert first_error(request, now=datetime(2024, 5, 2, 0, 1, tzinfo=UTC)) == AwsError(
        "SignatureDoesNotMatch",
        403,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        "'20240501' != '20240502', from '20240502T000100Z'.",
    )
    s3 = signed("s3").with_headers(("X-Amz-Date", "20240502T000100Z"))
    assert first_error(s3, now=datetime(2024, 5, 2, 0, 1, tzinfo=UTC)) == AwsError(
        "AuthorizationHeaderMalformed",
        400,
        'The authorization header is malformed; Invalid credential date "20240501". This date is not the '
        "same "
        'as X-Amz-Date: "20240502".',
    )


def test_scope_region_against_the_host() -> None:
    request = signed("storagegateway", url="https://storagegateway.eu-west-1.amazonaws.com/")
    assert first_error(request) == AwsError(
        "InvalidSignatureException", 400, "Credential should be scoped to a valid region, not 'us-east-1'. "
    )
    s3 = signed("s3", url="https://bucket.s3.eu-west-1.amazonaws.com/key")
    assert first_error(s3) == AwsError(
        "AuthorizationHeaderMalformed",
        400,
        "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'",
        (("Region", "eu-west-1"),),
    )


def test_scope_region_from_settings_for_custom_endpoints() -> None:
    from proxy.core.checks import ValidationSettings

    request = signed("dynamodb")
    assert run(request, settings=ValidationSettings(region="us-east-1")).first_error is None
    assert first_error(request, settings=ValidationSettings(region="eu-central-1")) == AwsError(
        "InvalidSignatureException", 400, "Credential should be scoped to a valid region, not 'us-east-1'. "
    )


def test_scope_service_must_be_the_targets() -> None:
    request = signed("storagegateway", service="dynamodb")
    assert first_error(request) == AwsError(
        "InvalidSignatureException", 400, "Credential should be scoped to correct service: 'storagegateway'. "
    )


def test_scope_terminator() -> None:
    request = _replace_credential(signed("sts"), "AKIDEXAMPLE/20240501/us-east-1/sts/aws4_reques")
    assert first_error(request) == AwsError(
        "SignatureDoesNotMatch",
        403,
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_reques'. ",
    )


def _signed_headers(request: Signed, line: str) -> Signed:
    value = request.head.get("authorization") or ""
    start = value.index("SignedHeaders=") + len("SignedHeaders=")
    end = value.index(",", start)
    return request.with_headers(("Authorization", value[:start] + line + value[end:]))


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "storagegateway",
            AwsError(
                "InvalidSignatureException", 400, "'Host' must be a 'SignedHeader' in the AWS Authorization."
            ),
        ),
        (
            "sts",
            AwsError(
                "SignatureDoesNotMatch", 403, "'Host' must be a 'SignedHeader' in the AWS Authorization."
            ),
        ),
        (
            "s3",
            AwsError(
                "AccessDenied",
                403,
                "There were headers present in the request which were not signed",
                (("HeadersNotSigned", "host"),),
            ),
        ),
    ],
)
def test_host_must_be_signed(kind: str, expected: AwsError) -> None:
    request = _signed_headers(signed(kind), "x-amz-date")
    assert first_error(request) == expected


def test_s3_unsigned_amz_headers() -> None:
    request = signed("s3").with_headers(("x-amz-meta-owner", "me"), ("X-Amz-Tagging", "a=b"))
    assert first_error(request) == AwsError(
        "AccessDenied",
        403,
        "There were headers present in the request which were not signed",
        (("HeadersNotSigned", "x-amz-meta-owner, x-amz-tagging"),),
    )
    # Other services accept unsigned x-amz-* headers (botocore adds some after signing).
    assert run(signed("sts").with_headers(("x-amz-meta-owner", "me"))).first_error is None


# -- S3 x-amz-content-sha256 -------------------------------------------------------------------------------


def test_s3_content_sha256_required_and_valid() -> None:
    missing = signed("s3").with_headers(("X-Amz-Content-SHA256", None))
    assert first_error(missing) == AwsError(
        "InvalidRequest", 400, "Missing required header for this request: x-amz-content-sha256"
    )
    invalid = signed("s3").with_headers(("X-Amz-Content-SHA256", "abc"))
    error = first_error(invalid)
    assert (error.code, error.status, error.extra) == (
        "InvalidArgument",
        400,
        (("ArgumentName", "x-amz-content-sha256"), ("ArgumentValue", "abc")),
    )
    assert error.message.startswith(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD"
    )


@pytest.mark.parametrize("value", ["\u00b2", "12a", "-5", "", " ", "1e3", "\u0661\u0662", "1" * 20])
def test_an_aws_chunked_upload_with_a_decoded_length_that_is_not_a_number_is_refused_as_s3_does(
    value: str,
) -> None:
    # Added after signing (an unsigned header is also reported): the decoded length's own finding.
    chunked = signed("s3").with_headers(
        ("X-Amz-Content-SHA256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("X-Amz-Decoded-Content-Length", value),
    )
    (found,) = [f for f in run(chunked).findings if f.check == "headers.decoded_content_length"]
    assert found.error == AwsError(
        "MissingContentLength", 411, "You must provide the Content-Length HTTP header."
    )


def test_a_decimal_decoded_length_or_a_body_that_is_not_aws_chunked_is_left_to_the_other_checks() -> None:
    for headers in (
        (
            ("X-Amz-Content-SHA256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            ("X-Amz-Decoded-Content-Length", "66560"),
        ),
        (("X-Amz-Decoded-Content-Length", "\u00b2"),),  # a plain sha256 body: the header means nothing
    ):
        findings = run(signed("s3").with_headers(*headers)).findings
        assert "headers.decoded_content_length" not in [f.check for f in findings]


def test_s3_content_sha256_mismatch_streaming_and_buffered() -> None:
    request = signed("s3")
    tampered = Signed(request.head, b"hello w0rld")
    result, streamed = stream(tampered)
    assert result.first_error is None  # the signature covers the declared hash, which is unchanged
    assert streamed is not None
    declared = request.head.get("x-amz-content-sha256")
    import hashlib

    assert streamed.error == AwsError(
        "XAmzContentSHA256Mismatch",
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        (
            ("ClientComputedContentSHA256", str(declared)),
            ("S3ComputedContentSHA256", hashlib.sha256(b"hello w0rld").hexdigest()),
        ),
    )
    ctx = context(tampered)
    buffered = validate(
        type(ctx)(
            request=ctx.request,
            identity=ctx.identity,
            now=ctx.now,
            settings=ctx.settings,
            credentials=ctx.credentials,
            body_sha256=hashlib.sha256(b"hello w0rld").hexdigest(),
            enforce=True,
            services=ctx.services,
        )
    )
    assert buffered.first_error is not None and buffered.first_error.error == streamed.error


def test_unsigned_payload_is_accepted() -> None:
    head, body, _ = botocore_sign(
        "PUT",
        "http://127.0.0.1:9000/bucket/k",
        {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"},
        b"anything at all",
        service="s3",
        region="us-east-1",
        when=WHEN,
        access_key=ACCESS_KEY,
        secret=SECRET,
        s3=False,  # SigV4Auth keeps the preset UNSIGNED-PAYLOAD (S3SigV4Auth would hash the body)
    )
    result, streamed = stream(Signed(head, body))
    assert (result.findings, streamed, result.signature_state) == ((), None, SignatureState.VALID)
    assert result.payload_hash == "UNSIGNED-PAYLOAD"


# -- keys, tokens and signatures -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("storagegateway", AwsError("UnrecognizedClientException", 400, INVALID_TOKEN)),
        ("lambda", AwsError("UnrecognizedClientException", 403, INVALID_TOKEN)),
        ("sts", AwsError("InvalidClientTokenId", 403, INVALID_TOKEN)),
        (
            "s3",
            AwsError(
                "InvalidAccessKeyId",
                403,
                "The AWS Access Key Id you provided does not exist in our records.",
                (("AWSAccessKeyId", "AKIDUNKNOWN"),),
            ),
        ),
    ],
)
def test_unknown_access_key(kind: str, expected: AwsError) -> None:
    request = signed(kind, access_key="AKIDUNKNOWN")
    enforced = run(request)
    assert enforced.first_error is not None and enforced.first_error.error == expected
    assert enforced.signature_state == SignatureState.UNVERIFIABLE
    observed = run(request, enforce=False)
    assert observed.first_error is None
    assert [(f.check, f.severity, f.error) for f in observed.findings] == [
        ("signature.access_key", Severity.INFO, expected)
    ]
    assert observed.signature_state == SignatureState.UNVERIFIABLE


def test_observe_mode_still_runs_the_structural_checks() -> None:
    request = _signed_headers(signed("storagegateway", access_key="AKIDUNKNOWN"), "x-amz-date")
    observed = run(request, enforce=False, now=WHEN + timedelta(minutes=20))
    assert errors(observed) == [
        ("auth.signed_headers", "InvalidSignatureException"),
        ("clock.window", "InvalidSignatureException"),
    ]


@pytest.mark.parametrize(
    ("kind", "code", "status", "message"),
    [
        ("storagegateway", "InvalidSignatureException", 400, CORAL_MISMATCH),
        ("dynamodb", "InvalidSignatureException", 400, CORAL_MISMATCH),
        ("lambda", "InvalidSignatureException", 403, CORAL_MISMATCH),
        ("sts", "SignatureDoesNotMatch", 403, CORAL_MISMATCH),
    ],
)
def test_wrong_secret(kind: str, code: str, status: int, message: str) -> None:
    result = run(signed(kind, secret="not-the-secret"))
    found = result.first_error
    assert found is not None and found.check == "signature.verify"
    assert found.error == AwsError(code, status, message)
    assert result.signature_state == SignatureState.INVALID
    debug = dict(found.debug)
    assert debug["canonical_request"].startswith(signed(kind).head.method + "\n")
    assert debug["string_to_sign"].startswith("AWS4-HMAC-SHA256\n20240501T120000Z\n")
    assert SECRET not in found.explanation + repr(found.debug) + repr(found.error)


def test_wrong_secret_s3_echoes_what_aws_echoes() -> None:
    import botocore.auth
    from botocore.credentials import Credentials

    good = signed("s3")
    bad = signed("s3", secret="not-the-secret")
    found = run(bad).first_error
    assert found is not None
    provided = (bad.head.get("authorization") or "").rsplit("Signature=", 1)[1]
    # What botocore itself computes for this request is what S3 echoes back.
    signer = botocore.auth.S3SigV4Auth(Credentials(ACCESS_KEY, SECRET), "s3", "us-east-1")
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(
        method="PUT",
        url="http://127.0.0.1:9000/bucket/some%20key.txt",
        headers={k: v for k, v in good.head.headers if k.lower() in ("x-amz-date", "x-amz-content-sha256")},
        data=good.body,
    )
    request.context["timestamp"] = "20240501T120000Z"
    canonical = signer.canonical_request(request)
    to_sign = signer.string_to_sign(request, canonical)
    assert found.error == AwsError(
        "SignatureDoesNotMatch",
        403,
        S3_MISMATCH,
        (
            ("AWSAccessKeyId", ACCESS_KEY),
            ("StringToSign", to_sign),
            ("SignatureProvided", provided),
            ("CanonicalRequest", canonical),
        ),
    )
    assert provided not in found.explanation + repr(found.debug)


def test_session_token() -> None:
    token = "FQoGZXIvYXdzEXAMPLETOKEN"
    credentials = {ACCESS_KEY: Credential(ACCESS_KEY, SECRET, token)}
    assert run(signed("sts", token=token), credentials=credentials).first_error is None
    assert run(signed("sts", token=token, presign=True), credentials=credentials).first_error is None
    assert first_error(signed("sts"), credentials=credentials) == AwsError(
        "InvalidClientTokenId", 403, INVALID_TOKEN
    )
    assert first_error(signed("s3", token="other"), credentials=credentials) == AwsError(
        "InvalidToken", 400, "The provided token is malformed or otherwise invalid."
    )


# -- JSON target, content type; Query action and version -----------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, AwsError("MissingAction", 400, "The request is missing an action or operation parameter.")),
        (
            "StorageGateway.ListGateways",
            AwsError("InvalidAction", 400, "The requested action or operation is invalid."),
        ),
        ("ListGateways", AwsError("InvalidAction", 400, "The requested action or operation is invalid.")),
        (
            "StorageGateway_20120630.ListGatewayz",
            AwsError(
                "UnknownOperationException",
                400,
                "An unknown operation was specified. Valid operations are listed in Operations in AWS "
                "Storage "
                "Gateway.",
            ),
        ),
    ],
)
def test_storage_gateway_target(target: str | None, expected: AwsError) -> None:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = signed("storagegateway", headers=headers)
    result = run(request)
    assert result.first_error is not None and result.first_error.check == "headers.target"
    assert result.first_error.error == expected
    assert result.signature_state == SignatureState.VALID  # the signature itself is fine


def test_seed_api_version_target_is_accepted() -> None:
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "StorageGateway_20120630.ListGateways",
    }
    assert run(signed("storagegateway", headers=headers)).findings == ()


def test_json_content_type_is_a_warning() -> None:
    headers = {"Content-Type": "application/json", "X-Amz-Target": "StorageGateway_20130630.ListGateways"}
    result = run(signed("storagegateway", headers=headers))
    assert result.first_error is None
    [warning] = result.findings
    assert (warning.check, warning.severity) == ("headers.content_type", Severity.WARNING)
    assert "application/x-amz-json-1.1" in warning.explanation
    dynamo = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "DynamoDB_20120810.ListTables"}
    assert [f.check for f in run(signed("dynamodb", headers=dynamo)).findings] == ["headers.content_type"]


def test_query_action_and_version() -> None:
    missing = signed("sts", body=b"Version=2011-06-15")
    assert first_error(missing) == AwsError(
        "MissingAction", 400, "The request is missing an action or operation parameter."
    )
    unknown = signed("sts", body=b"Action=GetCallerIdentityy&Version=2011-06-15")
    assert first_error(unknown) == AwsError(
        "InvalidAction", 400, "The requested action or operation is invalid."
    )
    no_version = run(signed("sts", body=b"Action=GetCallerIdentity"))
    assert no_version.first_error is None
    assert [(f.check, f.severity, f.code) for f in no_version.findings] == [
        ("headers.version", Severity.WARNING, "MissingParameter")
    ]


# -- presigned -----------------------------------------------------------------------------------------------


def test_presigned_missing_parameters() -> None:
    request = signed("s3", presign=True)
    query = "&".join(p for p in request.head.query.split("&") if not p.startswith("X-Amz-Expires="))
    assert first_error(request.with_query(query)) == AwsError(
        "AuthorizationQueryParametersError",
        400,
        "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
        "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
    )
    sts = signed("sts", presign=True)
    query = "&".join(
        p for p in sts.head.query.split("&") if not p.startswith(("X-Amz-Date=", "X-Amz-Expires="))
    )
    assert first_error(sts.with_query(query)) == AwsError(
        "IncompleteSignature",
        400,
        "AWS query-string parameters must include 'X-Amz-Date'. AWS query-string parameters must include "
        "'X-Amz-Expires'. Re-examine the query-string parameters.",
    )


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        (
            604801,
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be "
            "less "
            "than 604800 seconds",
        ),
        (0, "X-Amz-Expires must be non-negative"),
    ],
)
def test_presigned_expires_range(expires: int, message: str) -> None:
    request = signed("s3", presign=True, expires=expires)
    assert first_error(request) == AwsError("AuthorizationQueryParametersError", 400, message)


def test_presigned_expires_boundaries_accepted() -> None:
    assert run(signed("s3", presign=True, expires=1)).first_error is None
    assert run(signed("s3", presign=True, expires=604800)).first_error is None


def test_presigned_expired_and_not_yet_valid_s3() -> None:
    request = signed("s3", presign=True, expires=3600)
    assert run(request, now=WHEN + timedelta(seconds=3600)).first_error is None
    assert first_error(request, now=WHEN + timedelta(seconds=3601)) == AwsError(
        "AccessDenied",
        403,
        "Request has expired",
        (
            ("X-Amz-Expires", "3600"),
            ("Expires", "2024-05-01T13:00:00Z"),
            ("ServerTime", "2024-05-01T13:00:01Z"),
        ),
    )
    assert run(request, now=WHEN - timedelta(minutes=14, seconds=59)).first_error is None
    assert first_error(request, now=WHEN - timedelta(minutes=15, seconds=1)) == AwsError(
        "AccessDenied",
        403,
        "Request is not valid yet",
        (("X-Amz-Date", "20240501T120000Z"), ("ServerTime", "2024-05-01T11:44:59Z")),
    )


def test_presigned_expired_query() -> None:
    request = signed("sts", presign=True, expires=900)
    assert first_error(request, now=WHEN + timedelta(seconds=901)) == AwsError(
        "SignatureDoesNotMatch",
        403,
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120001Z (20240501T121501Z - 15 "
        "min.)",
    )


def test_s3_header_and_presigned_together() -> None:
    request = signed("s3", presign=True)
    both = request.with_headers(("Authorization", signed("s3").head.get("authorization")))
    error = first_error(both)
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert error.message.startswith("Only one auth mechanism allowed")
