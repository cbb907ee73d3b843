"""SigV4 structure, checkable without any secret (issue 3, check 3).

Algorithm, the three Authorization components, a Credential of 5 parts, a parseable request date,
scope date equal to the request's YYYYMMDD, region and service consistent with the endpoint,
terminator `aws4_request`, `host` signed (and for S3 every x-amz-* header present), presigned
parameters complete with X-Amz-Expires in 1..604800.
"""

from __future__ import annotations

from proxy.core.checks.base import CheckContext, NamedCheck, SignatureState, analysis, finding
from proxy.core.checks.errors import Failure
from proxy.core.frozen import remember
from proxy.core.identify import host_region
from proxy.core.model import Finding, Protocol, Severity
from proxy.core.sigv4.auth import ALGORITHM_V4A, TERMINATOR, AuthParseErrorKind


def _present(ctx: CheckContext) -> Finding | None:
    """No Authorization header and no presigned parameters: AWS's "missing authentication token".

    S3 serves anonymous requests (public objects), so an unsigned S3 request is only noted.
    """
    info = analysis(ctx)
    name = "auth.present"
    if info.authorization is not None and info.presigned is not None and info.s3:
        return finding(
            ctx,
            name,
            Failure.MULTIPLE_AUTHENTICATION,
            "Both an Authorization header and presigned X-Amz-* query parameters.",
            authorization=info.authorization,
        )
    if info.authorization is not None or info.presigned is not None or info.auth_error is not None:
        return None
    if info.s3:
        return finding(
            ctx,
            name,
            Failure.MISSING_AUTHENTICATION,
            "An unsigned (anonymous) S3 request.",
            severity=Severity.INFO,
        )
    if ctx.identity.protocol is Protocol.UNKNOWN:
        # Nothing tells which service this is (an unsigned request to a custom endpoint): it may be an
        # anonymous S3 request, which AWS serves. Report it, never reject it.
        return finding(
            ctx,
            name,
            Failure.MISSING_AUTHENTICATION,
            "An unsigned request to an unidentified service.",
            severity=Severity.WARNING,
        )
    return finding(
        ctx,
        name,
        Failure.MISSING_AUTHENTICATION,
        "No Authorization header and no presigned X-Amz-* parameters.",
    )


def _parse(ctx: CheckContext) -> Finding | None:
    info = analysis(ctx)
    error = info.auth_error
    if error is None:
        return None
    name = "auth.parse"
    if error.kind is AuthParseErrorKind.UNSUPPORTED_ALGORITHM:
        # SigV4A everywhere, and SigV2 on S3 (header "AWS <key>:<signature>", or the AWSAccessKeyId /
        # Signature / Expires query string), are valid AWS schemes this proxy does not verify: mark
        # them, do not reject them.
        if error.value == ALGORITHM_V4A or (info.s3 and error.value == "AWS"):
            info.signature_state = SignatureState.UNVERIFIABLE
            scheme = "SigV2 query-string authentication" if error.presigned else error.value
            return finding(
                ctx,
                name,
                Failure.UNSUPPORTED_AUTHORIZATION,
                f"Signed with {scheme}, which sigwatch does not verify.",
                severity=Severity.INFO,
                authorization=info.authorization or "",
            )
        info.signature_state = SignatureState.INVALID
        return finding(
            ctx,
            name,
            Failure.UNSUPPORTED_AUTHORIZATION,
            f"Unsupported authorization scheme {error.value!r}.",
            authorization=info.authorization or "",
        )
    info.signature_state = SignatureState.INVALID
    if error.kind is AuthParseErrorKind.MISSING_COMPONENTS:
        return finding(
            ctx,
            name,
            Failure.INCOMPLETE_SIGNATURE,
            f"The Authorization header lacks {', '.join(error.missing)}.",
            missing=error.missing,
            date_missing=info.date is None,
            authorization=error.raw,
        )
    if error.kind is AuthParseErrorKind.MALFORMED_CREDENTIAL:
        return finding(
            ctx,
            name,
            Failure.CREDENTIAL_MALFORMED,
            f"Credential {error.value!r} does not have 5 slash-delimited parts.",
            value=error.value,
            presigned=error.presigned,
        )
    return finding(
        ctx,
        name,
        Failure.PRESIGNED_PARAMETERS_MISSING,
        f"The presigned URL lacks {', '.join(error.missing)}.",
        missing=error.missing,
    )


def _date(ctx: CheckContext) -> Finding | None:
    """A request date is required ("either the HTTP Date or the AWS x-amz-date header") and must parse."""
    info = analysis(ctx)
    if info.auth is None:
        return None
    name = "auth.date"
    if info.date is None:
        info.signature_state = SignatureState.INVALID
        return finding(
            ctx,
            name,
            Failure.DATE_MISSING,
            "A signed request with neither x-amz-date nor Date.",
            authorization=info.authorization or "",
        )
    if info.date.moment is None:
        info.signature_state = SignatureState.INVALID
        return finding(
            ctx,
            name,
            Failure.DATE_MALFORMED,
            f"The {info.date.source} value {info.date.raw!r} is not a valid timestamp.",
            value=info.date.raw,
            presigned=info.auth.presigned,
        )
    return None


def _scope(ctx: CheckContext) -> Finding | None:
    """Scope date == the request's YYYYMMDD; region, service and terminator consistent with the endpoint."""
    info = analysis(ctx)
    auth, date = info.auth, info.date
    if auth is None or date is None or date.moment is None:
        return None
    name = "auth.scope"
    scope = auth.credential
    presigned = auth.presigned
    if scope.date != date.day:
        return finding(
            ctx,
            name,
            Failure.SCOPE_DATE,
            f"Credential scope date {scope.date} differs from the request date {date.amz}.",
            scope_date=scope.date,
            request_day=date.day,
            amz_date=date.amz,
            presigned=presigned,
        )
    expected_region = host_region(ctx.request) or ctx.settings.region
    if expected_region is not None and scope.region != expected_region:
        return finding(
            ctx,
            name,
            Failure.SCOPE_REGION,
            f"Credential scope region {scope.region!r}; this endpoint serves {expected_region!r}.",
            region=scope.region,
            expected=expected_region,
            presigned=presigned,
        )
    service = info.service
    if service is not None and service.signing_name and scope.service != service.signing_name:
        return finding(
            ctx,
            name,
            Failure.SCOPE_SERVICE,
            f"Credential scope service {scope.service!r}; {service.name} signs as {service.signing_name!r}.",
            service=scope.service,
            expected=service.signing_name,
            presigned=presigned,
        )
    if scope.terminator != TERMINATOR:
        return finding(
            ctx,
            name,
            Failure.SCOPE_TERMINATOR,
            f"Credential scope terminator {scope.terminator!r} instead of {TERMINATOR!r}.",
            terminator=scope.terminator,
            presigned=presigned,
        )
    return None


def _signed_headers(ctx: CheckContext) -> Finding | None:
    """`host` must be signed; S3 also requires every x-amz-* header present to be signed."""
    info = analysis(ctx)
    auth = info.auth
    if auth is None:
        return None
    name = "auth.signed_headers"
    signed = _signed_names(auth.signed_headers_line)
    if "host" not in signed:
        return finding(ctx, name, Failure.HOST_NOT_SIGNED, "SignedHeaders does not include host.")
    if info.s3:
        unsigned = sorted(
            header
            for header in ctx.request.header_names
            if header.startswith("x-amz-") and header not in signed
        )
        if unsigned:
            return finding(
                ctx,
                name,
                Failure.HEADERS_NOT_SIGNED,
                f"x-amz-* headers present but not signed: {', '.join(unsigned)}.",
                headers=tuple(unsigned),
            )
    return None


_SIGNED_NAMES: dict[str, frozenset[str]] = {}


def _signed_names(signed_headers_line: str) -> frozenset[str]:
    """The lower-cased names of a SignedHeaders value (memoised: a client repeats the same few)."""
    found = _SIGNED_NAMES.get(signed_headers_line)
    if found is None:
        names = frozenset(header.lower() for header in signed_headers_line.split(";"))
        found = remember(_SIGNED_NAMES, signed_headers_line, names)
    return found


def presigned_expires_seconds(raw: str | None) -> int | None:
    """X-Amz-Expires as an integer (possibly out of range), or None when it is not a number."""
    text = (raw or "").strip()
    digits = text.removeprefix("-")
    # ASCII digits only ('²'.isdigit() is true), and few enough for int() (5 000 digits raise).
    if digits.isascii() and digits.isdigit() and len(digits) <= 18:
        return int(text)
    return None


def _expires(ctx: CheckContext) -> Finding | None:
    """Presigned: "X-Amz-Expires ... Minimum value of 1. Maximum value of 604800 (seven days)"."""
    info = analysis(ctx)
    auth = info.auth
    if auth is None or not auth.presigned:
        return None
    raw = (auth.expires or "").strip()
    name = "auth.expires"
    if presigned_expires_seconds(raw) is None:
        return finding(
            ctx,
            name,
            Failure.PRESIGNED_EXPIRES_INVALID,
            f"X-Amz-Expires {raw!r} is not a number.",
            reason="nan",
        )
    value = presigned_expires_seconds(raw)
    assert value is not None
    if value < 1:
        return finding(
            ctx,
            name,
            Failure.PRESIGNED_EXPIRES_INVALID,
            f"X-Amz-Expires {value} is not positive.",
            reason="negative",
        )
    if value > ctx.settings.max_presign_expires_seconds:
        return finding(
            ctx,
            name,
            Failure.PRESIGNED_EXPIRES_INVALID,
            f"X-Amz-Expires {value} is over {ctx.settings.max_presign_expires_seconds} seconds.",
            reason="too_long",
        )
    return None


PRESENT = NamedCheck("auth.present", _present)
PARSE = NamedCheck("auth.parse", _parse)
DATE = NamedCheck("auth.date", _date)
SCOPE = NamedCheck("auth.scope", _scope)
SIGNED_HEADERS = NamedCheck("auth.signed_headers", _signed_headers)
EXPIRES = NamedCheck("auth.expires", _expires)
