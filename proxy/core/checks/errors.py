"""The one place that says what AWS answers, per protocol, for every authentication/validation failure.

Every check asks `aws_error(Failure.X, dialect, **fields)`; nothing else in the proxy spells an AWS
error code, status or message for these failures. Messages are verbatim from real AWS responses
(issue 3's reference texts, seed 000's exception table); where a reference gives only a code, the
message is the one AWS is known to send and the source column of the table says so.

Dialects: AWS JSON (Coral) answers 400 with `XxxException` codes; REST-JSON services answer the same
codes with 403; Query (and non-S3 REST-XML) answers `SignatureDoesNotMatch` and friends with 403/400;
EC2 has its own codes; S3 has the richest errors, with extra elements (StringToSign, RequestTime, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from proxy.core.model import AwsError, Protocol, RequestIdentity


class Dialect(StrEnum):
    JSON = "json"
    REST_JSON = "rest-json"
    QUERY = "query"
    EC2 = "ec2"
    S3 = "s3"


def dialect_of(identity: RequestIdentity) -> Dialect:
    """S3 (and S3 Control: signing name `s3`) speak S3 errors; REST-XML otherwise answers Query-style."""
    if identity.signing_name == "s3" or identity.service in ("s3", "s3control"):
        return _S3
    protocol = identity.protocol
    if protocol is _PROTOCOL_JSON:  # by identity first: hashing an Enum member runs Python code
        return _JSON
    return _DIALECTS.get(protocol, _JSON)


# Enum members as module globals for the hot path: an Enum class attribute costs ~70 ns in Python 3.11
# (EnumType defines __getattr__: every class attribute look-up takes the slow path), a global ~8 ns.
_S3, _JSON, _PROTOCOL_JSON = Dialect.S3, Dialect.JSON, Protocol.JSON

_DIALECTS = {
    Protocol.JSON: Dialect.JSON,
    Protocol.REST_JSON: Dialect.REST_JSON,
    Protocol.QUERY: Dialect.QUERY,
    Protocol.EC2: Dialect.EC2,
    Protocol.REST_XML: Dialect.QUERY,
}


class Failure(StrEnum):
    MISSING_AUTHENTICATION = "missing_authentication"
    INCOMPLETE_SIGNATURE = "incomplete_signature"  # fields: missing (tuple), authorization, date_missing
    CREDENTIAL_MALFORMED = "credential_malformed"  # fields: value, presigned
    UNSUPPORTED_AUTHORIZATION = "unsupported_authorization"  # fields: authorization
    MULTIPLE_AUTHENTICATION = "multiple_authentication"  # fields: authorization
    PRESIGNED_PARAMETERS_MISSING = "presigned_parameters_missing"  # fields: missing
    PRESIGNED_EXPIRES_INVALID = "presigned_expires_invalid"  # fields: value, reason (nan|negative|too_long)
    DATE_MISSING = "date_missing"
    DATE_MALFORMED = "date_malformed"  # fields: value, presigned
    SCOPE_DATE = "scope_date"  # fields: scope_date, request_day, amz_date, presigned
    SCOPE_REGION = "scope_region"  # fields: region, expected, presigned
    SCOPE_SERVICE = "scope_service"  # fields: service, expected, presigned
    SCOPE_TERMINATOR = "scope_terminator"  # fields: terminator, presigned
    HOST_NOT_SIGNED = "host_not_signed"
    HEADERS_NOT_SIGNED = "headers_not_signed"  # fields: headers (tuple)
    SIGNATURE_EXPIRED = "signature_expired"  # fields: request_amz, raw, now, max_skew
    SIGNATURE_NOT_YET_CURRENT = "signature_not_yet_current"  # fields: request_amz, raw, now, max_skew
    PRESIGNED_EXPIRED = "presigned_expired"  # fields: request_amz, expires, now, expires_at
    PRESIGNED_NOT_YET_VALID = "presigned_not_yet_valid"  # fields: request_amz, now, max_skew
    UNKNOWN_ACCESS_KEY = "unknown_access_key"  # fields: access_key_id
    INVALID_TOKEN = "invalid_token"
    SIGNATURE_MISMATCH = "signature_mismatch"  # fields: access_key_id, string_to_sign, provided, canonical
    CONTENT_SHA256_MISSING = "content_sha256_missing"
    CONTENT_SHA256_INVALID = "content_sha256_invalid"  # fields: value
    CONTENT_SHA256_MISMATCH = "content_sha256_mismatch"  # fields: declared, computed
    DECODED_LENGTH_INVALID = "decoded_length_invalid"  # fields: value
    CHUNK_SIGNATURE_MISMATCH = "chunk_signature_mismatch"  # fields: access_key_id, string_to_sign, provided
    CHUNK_TOO_SMALL = "chunk_too_small"  # fields: chunk, size, minimum
    CHUNK_TOO_LARGE = "chunk_too_large"
    BODY_INCOMPLETE = "body_incomplete"
    TRAILER_MALFORMED = "trailer_malformed"
    CHECKSUM_MISMATCH = "checksum_mismatch"  # fields: algorithm
    MISSING_ACTION = "missing_action"
    INVALID_ACTION = "invalid_action"
    UNKNOWN_OPERATION = "unknown_operation"  # fields: service
    MISSING_VERSION = "missing_version"
    WRONG_CONTENT_TYPE = "wrong_content_type"  # fields: service
    MISSING_HOST = "missing_host"


# -- messages (verbatim) ------------------------------------------------------------------------------

MISMATCH_CORAL = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
MISMATCH_S3 = (
    "The request signature we calculated does not match the signature you provided. Check your key and "
    "signing method."
)
INVALID_TOKEN_CORAL = "The security token included in the request is invalid."
HOST_MUST_BE_SIGNED = "'Host' must be a 'SignedHeader' in the AWS Authorization."
HEADERS_NOT_SIGNED = "There were headers present in the request which were not signed"
S3_DATE_REQUIRED = "AWS authentication requires a valid Date or x-amz-date header"
S3_PRESIGNED_REQUIRED = (
    "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
    "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
)
S3_CREDENTIAL_FORMAT = (
    'the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
)
S3_HEADER_MALFORMED = "The authorization header is malformed; "
S3_QUERY_CREDENTIAL = "Error parsing the X-Amz-Credential parameter; "
S3_CONTENT_SHA256_VALUES = (
    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
    "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid "
    "sha256 value."
)
# Seed 000, exception table (Storage Gateway).
MISSING_ACTION = "The request is missing an action or operation parameter."
INVALID_ACTION = "The requested action or operation is invalid."
UNKNOWN_OPERATION_SGW = (
    "An unknown operation was specified. Valid operations are listed in Operations in AWS Storage Gateway."
)
UNKNOWN_OPERATION = "An unknown operation was specified."


def _coral(code: str, message: str, dialect: Dialect) -> AwsError:
    """An AWS JSON / REST-JSON error: the same code, 400 for JSON and 403 for REST-JSON."""
    return AwsError(code=code, status=403 if dialect is Dialect.REST_JSON else 400, message=message)


def _signature_family(dialect: Dialect, message: str) -> AwsError:
    """Coral's signature failures: InvalidSignatureException (JSON) / SignatureDoesNotMatch (Query)."""
    if dialect in (Dialect.JSON, Dialect.REST_JSON):
        return _coral("InvalidSignatureException", message, dialect)
    return AwsError("SignatureDoesNotMatch", 403, message)


def _incomplete(dialect: Dialect, message: str) -> AwsError:
    if dialect in (Dialect.JSON, Dialect.REST_JSON):
        return _coral("IncompleteSignatureException", message, dialect)
    return AwsError("IncompleteSignature", 400, message)


def _s3_credential_problem(presigned: bool, detail: str, extra: tuple[tuple[str, str], ...] = ()) -> AwsError:
    if presigned:
        return AwsError("AuthorizationQueryParametersError", 400, S3_QUERY_CREDENTIAL + detail, extra)
    return AwsError("AuthorizationHeaderMalformed", 400, S3_HEADER_MALFORMED + detail, extra)


def _names(fields: dict[str, object], key: str) -> tuple[str, ...]:
    value = fields.get(key, ())
    return tuple(str(item) for item in value) if isinstance(value, tuple | list) else ()


def _seconds(fields: dict[str, object], key: str, default: float) -> float:
    value = fields.get(key, default)
    return float(value) if isinstance(value, int | float | str) else default


def _window_text(seconds: float) -> str:
    minutes = seconds / 60
    return f"{int(minutes)} min." if minutes == int(minutes) else f"{minutes:g} min."


def _missing_authentication(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.REST_JSON:
        return AwsError("MissingAuthenticationTokenException", 403, "Missing Authentication Token")
    if d is Dialect.JSON:
        return AwsError("MissingAuthenticationTokenException", 400, "Request is missing Authentication Token")
    if d is Dialect.S3:
        return AwsError("AccessDenied", 403, "Access Denied")
    return AwsError("MissingAuthenticationToken", 403, "Request is missing Authentication Token")


def _incomplete_signature(d: Dialect, f: dict[str, object]) -> AwsError:
    missing = _names(f, "missing")
    if d is Dialect.S3:
        if missing:
            return AwsError(
                "AuthorizationHeaderMalformed",
                400,
                S3_HEADER_MALFORMED
                + "the authorization header requires three components: Credential, SignedHeaders, and "
                "Signature.",
            )
        return AwsError("AccessDenied", 403, S3_DATE_REQUIRED)
    parts = [f"Authorization header requires '{name}' parameter." for name in missing]
    if f.get("date_missing"):
        parts.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    parts.append(f"Authorization={f.get('authorization', '')}")
    return _incomplete(d, " ".join(parts))


def _credential_malformed(d: Dialect, f: dict[str, object]) -> AwsError:
    value = str(f.get("value", ""))
    if d is Dialect.S3:
        return _s3_credential_problem(bool(f.get("presigned")), S3_CREDENTIAL_FORMAT)
    return _incomplete(
        d,
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
        f"got '{value}'",
    )


def _unsupported_authorization(d: Dialect, f: dict[str, object]) -> AwsError:
    authorization = str(f.get("authorization", ""))
    if d is Dialect.S3:
        return AwsError(
            "InvalidArgument",
            400,
            "Unsupported Authorization Type",
            (("ArgumentName", "Authorization"), ("ArgumentValue", authorization)),
        )
    return _incomplete_signature(d, {"missing": ("Credential", "Signature", "SignedHeaders"), **f})


def _multiple_authentication(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError(
        "InvalidArgument",
        400,
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string "
        "parameter or the Authorization header should be specified",
        (("ArgumentName", "Authorization"), ("ArgumentValue", str(f.get("authorization", "")))),
    )


def _presigned_parameters_missing(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.S3:
        return AwsError("AuthorizationQueryParametersError", 400, S3_PRESIGNED_REQUIRED)
    missing = _names(f, "missing")
    parts = [f"AWS query-string parameters must include '{name}'." for name in missing]
    return _incomplete(d, " ".join([*parts, "Re-examine the query-string parameters."]))


def _presigned_expires_invalid(d: Dialect, f: dict[str, object]) -> AwsError:
    reason = f.get("reason")
    if reason == "nan":
        message = "X-Amz-Expires should be a number"
    elif reason == "negative":
        message = "X-Amz-Expires must be non-negative"
    else:
        message = (
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be "
            "less than 604800 seconds"
        )
    if d is Dialect.S3:
        return AwsError("AuthorizationQueryParametersError", 400, message)
    return _incomplete(d, message)


def _date_missing(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.S3:
        return AwsError("AccessDenied", 403, S3_DATE_REQUIRED)
    return _incomplete_signature(d, {**f, "missing": (), "date_missing": True})


def _date_malformed(d: Dialect, f: dict[str, object]) -> AwsError:
    value = str(f.get("value", ""))
    if d is Dialect.S3:
        if f.get("presigned"):
            return AwsError(
                "AuthorizationQueryParametersError",
                400,
                "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
            )
        return AwsError("AccessDenied", 403, S3_DATE_REQUIRED)
    return _incomplete(
        d,
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601",
    )


def _scope_date(d: Dialect, f: dict[str, object]) -> AwsError:
    scope_date, day = f.get("scope_date", ""), f.get("request_day", "")
    if d is Dialect.S3:
        detail = f'Invalid credential date "{scope_date}". This date is not the same as X-Amz-Date: "{day}".'
        if f.get("presigned"):
            return AwsError("AuthorizationQueryParametersError", 400, detail)
        return AwsError("AuthorizationHeaderMalformed", 400, S3_HEADER_MALFORMED + detail)
    return _signature_family(
        d,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
        f"'{scope_date}' != '{day}', from '{f.get('amz_date', '')}'.",
    )


def _scope_region(d: Dialect, f: dict[str, object]) -> AwsError:
    region, expected = str(f.get("region", "")), str(f.get("expected", ""))
    if d is Dialect.S3:
        return _s3_credential_problem(
            bool(f.get("presigned")),
            f"the region '{region}' is wrong; expecting '{expected}'",
            (("Region", expected),),
        )
    return _signature_family(d, f"Credential should be scoped to a valid region, not '{region}'. ")


def _scope_service(d: Dialect, f: dict[str, object]) -> AwsError:
    service, expected = f.get("service", ""), f.get("expected", "")
    if d is Dialect.S3:
        return _s3_credential_problem(
            bool(f.get("presigned")), f'incorrect service "{service}". This endpoint belongs to "{expected}".'
        )
    return _signature_family(d, f"Credential should be scoped to correct service: '{expected}'. ")


def _scope_terminator(d: Dialect, f: dict[str, object]) -> AwsError:
    terminator = f.get("terminator", "")
    if d is Dialect.S3:
        return _s3_credential_problem(
            bool(f.get("presigned")), f'incorrect terminal "{terminator}". This endpoint uses "aws4_request".'
        )
    return _signature_family(
        d, f"Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
    )


def _host_not_signed(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.S3:
        return AwsError("AccessDenied", 403, HEADERS_NOT_SIGNED, (("HeadersNotSigned", "host"),))
    return _signature_family(d, HOST_MUST_BE_SIGNED)


def _headers_not_signed(d: Dialect, f: dict[str, object]) -> AwsError:
    headers = ", ".join(_names(f, "headers"))
    return AwsError("AccessDenied", 403, HEADERS_NOT_SIGNED, (("HeadersNotSigned", headers),))


def _skew_error(d: Dialect, f: dict[str, object], message: str) -> AwsError:
    if d is Dialect.S3:
        return AwsError(
            "RequestTimeTooSkewed",
            403,
            "The difference between the request time and the current time is too large.",
            (
                ("RequestTime", str(f.get("raw", ""))),
                ("ServerTime", str(f.get("server_time", ""))),
                ("MaxAllowedSkewMilliseconds", str(int(_seconds(f, "max_skew", 900.0) * 1000))),
            ),
        )
    if d is Dialect.EC2:
        return AwsError("RequestExpired", 400, "Request has expired.")
    return _signature_family(d, message)


def _signature_expired(d: Dialect, f: dict[str, object]) -> AwsError:
    window = _window_text(_seconds(f, "max_skew", 900.0))
    message = (
        f"Signature expired: {f.get('request_amz')} is now earlier than {f.get('bound')} "
        f"({f.get('now_amz')} - {window})"
    )
    return _skew_error(d, f, message)


def _signature_not_yet_current(d: Dialect, f: dict[str, object]) -> AwsError:
    window = _window_text(_seconds(f, "max_skew", 900.0))
    message = (
        f"Signature not yet current: {f.get('request_amz')} is still later than {f.get('bound')} "
        f"({f.get('now_amz')} + {window})"
    )
    return _skew_error(d, f, message)


def _presigned_expired(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.S3:
        return AwsError(
            "AccessDenied",
            403,
            "Request has expired",
            _extra(f, ("X-Amz-Expires", "expires"), ("Expires", "expires_at"), ("ServerTime", "server_time")),
        )
    if d is Dialect.EC2:
        return AwsError("RequestExpired", 400, "Request has expired.")
    window = _window_text(_seconds(f, "expires_seconds", 0.0))
    return _signature_family(
        d,
        f"Signature expired: {f.get('request_amz')} is now earlier than {f.get('bound')} "
        f"({f.get('now_amz')} - {window})",
    )


def _presigned_not_yet_valid(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.S3:
        return AwsError(
            "AccessDenied",
            403,
            "Request is not valid yet",
            _extra(f, ("X-Amz-Date", "request_amz"), ("ServerTime", "server_time")),
        )
    return _signature_not_yet_current(d, f)


def _unknown_access_key(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.S3:
        return AwsError(
            "InvalidAccessKeyId",
            403,
            "The AWS Access Key Id you provided does not exist in our records.",
            _extra(f, ("AWSAccessKeyId", "access_key_id")),
        )
    if d is Dialect.EC2:
        return AwsError("AuthFailure", 401, "AWS was not able to validate the provided access credentials")
    if d is Dialect.QUERY:
        return AwsError("InvalidClientTokenId", 403, INVALID_TOKEN_CORAL)
    return _coral("UnrecognizedClientException", INVALID_TOKEN_CORAL, d)


def _invalid_token(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.S3:
        return AwsError("InvalidToken", 400, "The provided token is malformed or otherwise invalid.")
    return _unknown_access_key(d, f)


def _extra(f: dict[str, object], *elements: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """The extra elements of an error body, (element name, finding field) each, in the wire order."""
    return tuple((element, str(f.get(key, ""))) for element, key in elements)


_MISMATCH_ELEMENTS = (
    ("AWSAccessKeyId", "access_key_id"),
    ("StringToSign", "string_to_sign"),
    ("SignatureProvided", "provided"),
)


def _signature_mismatch(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.S3:
        return AwsError(
            "SignatureDoesNotMatch",
            403,
            MISMATCH_S3,
            _extra(f, *_MISMATCH_ELEMENTS, ("CanonicalRequest", "canonical")),
        )
    return _signature_family(d, MISMATCH_CORAL)


def _chunk_signature_mismatch(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.S3:
        # A chunk's string to sign has no canonical request: S3 sends the first three elements only.
        return AwsError("SignatureDoesNotMatch", 403, MISMATCH_S3, _extra(f, *_MISMATCH_ELEMENTS))
    return _signature_family(d, MISMATCH_CORAL)


def _content_sha256_missing(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError("InvalidRequest", 400, "Missing required header for this request: x-amz-content-sha256")


def _content_sha256_invalid(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError(
        "InvalidArgument",
        400,
        S3_CONTENT_SHA256_VALUES,
        (("ArgumentName", "x-amz-content-sha256"), ("ArgumentValue", str(f.get("value", "")))),
    )


def _content_sha256_mismatch(d: Dialect, f: dict[str, object]) -> AwsError:
    if d is Dialect.S3:
        return AwsError(
            "XAmzContentSHA256Mismatch",
            400,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
            _extra(f, ("ClientComputedContentSHA256", "declared"), ("S3ComputedContentSHA256", "computed")),
        )
    # Elsewhere the declared hash is what was signed: the body is not the signed one.
    return _signature_family(d, MISMATCH_CORAL)


def _decoded_length_invalid(d: Dialect, f: dict[str, object]) -> AwsError:
    # S3 answers an aws-chunked upload whose x-amz-decoded-content-length is not a number as if the length
    # were missing (observed S3 behaviour; S3's error table: MissingContentLength, 411 Length Required).
    return AwsError("MissingContentLength", 411, "You must provide the Content-Length HTTP header.")


def _chunk_too_small(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError(
        "InvalidChunkSizeError",
        403,
        f"Only the last chunk is allowed to have a size less than {f.get('minimum', 8192)} bytes",
        _extra(f, ("Chunk", "chunk"), ("BadChunkSize", "size")),
    )


def _chunk_too_large(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size")


def _body_incomplete(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError(
        "IncompleteBody",
        400,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    )


def _trailer_malformed(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError(
        "MalformedTrailerError",
        400,
        "The request contained trailing data that was not well-formed or did not conform to our published "
        "schema.",
    )


def _checksum_mismatch(d: Dialect, f: dict[str, object]) -> AwsError:
    algorithm = str(f.get("algorithm", "")).upper()
    return AwsError("BadDigest", 400, f"The {algorithm} you specified did not match the calculated checksum.")


def _missing_action(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError("MissingAction", 400, MISSING_ACTION)


def _invalid_action(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError("InvalidAction", 400, INVALID_ACTION)


def _unknown_operation(d: Dialect, f: dict[str, object]) -> AwsError:
    message = UNKNOWN_OPERATION_SGW if f.get("service") == "storagegateway" else UNKNOWN_OPERATION
    return _coral("UnknownOperationException", message, d)


def _missing_version(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError("MissingParameter", 400, "The request must contain the parameter Version.")


def _wrong_content_type(d: Dialect, f: dict[str, object]) -> AwsError:
    return _unknown_operation(d, f)


def _missing_host(d: Dialect, f: dict[str, object]) -> AwsError:
    return AwsError("BadRequest", 400, "Missing required header: Host")


_BUILDERS: dict[Failure, Callable[[Dialect, dict[str, object]], AwsError]] = {
    Failure.MISSING_AUTHENTICATION: _missing_authentication,
    Failure.INCOMPLETE_SIGNATURE: _incomplete_signature,
    Failure.CREDENTIAL_MALFORMED: _credential_malformed,
    Failure.UNSUPPORTED_AUTHORIZATION: _unsupported_authorization,
    Failure.MULTIPLE_AUTHENTICATION: _multiple_authentication,
    Failure.PRESIGNED_PARAMETERS_MISSING: _presigned_parameters_missing,
    Failure.PRESIGNED_EXPIRES_INVALID: _presigned_expires_invalid,
    Failure.DATE_MISSING: _date_missing,
    Failure.DATE_MALFORMED: _date_malformed,
    Failure.SCOPE_DATE: _scope_date,
    Failure.SCOPE_REGION: _scope_region,
    Failure.SCOPE_SERVICE: _scope_service,
    Failure.SCOPE_TERMINATOR: _scope_terminator,
    Failure.HOST_NOT_SIGNED: _host_not_signed,
    Failure.HEADERS_NOT_SIGNED: _headers_not_signed,
    Failure.SIGNATURE_EXPIRED: _signature_expired,
    Failure.SIGNATURE_NOT_YET_CURRENT: _signature_not_yet_current,
    Failure.PRESIGNED_EXPIRED: _presigned_expired,
    Failure.PRESIGNED_NOT_YET_VALID: _presigned_not_yet_valid,
    Failure.UNKNOWN_ACCESS_KEY: _unknown_access_key,
    Failure.INVALID_TOKEN: _invalid_token,
    Failure.SIGNATURE_MISMATCH: _signature_mismatch,
    Failure.CONTENT_SHA256_MISSING: _content_sha256_missing,
    Failure.CONTENT_SHA256_INVALID: _content_sha256_invalid,
    Failure.CONTENT_SHA256_MISMATCH: _content_sha256_mismatch,
    Failure.DECODED_LENGTH_INVALID: _decoded_length_invalid,
    Failure.CHUNK_SIGNATURE_MISMATCH: _chunk_signature_mismatch,
    Failure.CHUNK_TOO_SMALL: _chunk_too_small,
    Failure.CHUNK_TOO_LARGE: _chunk_too_large,
    Failure.BODY_INCOMPLETE: _body_incomplete,
    Failure.TRAILER_MALFORMED: _trailer_malformed,
    Failure.CHECKSUM_MISMATCH: _checksum_mismatch,
    Failure.MISSING_ACTION: _missing_action,
    Failure.INVALID_ACTION: _invalid_action,
    Failure.UNKNOWN_OPERATION: _unknown_operation,
    Failure.MISSING_VERSION: _missing_version,
    Failure.WRONG_CONTENT_TYPE: _wrong_content_type,
    Failure.MISSING_HOST: _missing_host,
}


def aws_error(failure: Failure, dialect: Dialect, **fields: object) -> AwsError:
    """What AWS answers for `failure` in `dialect` (fields fill the message and extra elements)."""
    return _BUILDERS[failure](dialect, fields)
