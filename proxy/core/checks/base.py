"""The types every check shares: settings, the per-request context, the check protocol, the result.

A request is analysed once (`analysis(ctx)`: the parsed credentials, the chosen date, the error
dialect) and the analysis is memoised on the context, so adding a check costs one function call, not
another parse. Checks record what validate() reports (skew, signature state, the chunk-signing seed)
on the analysis.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from proxy.core.checks.errors import Dialect, Failure, aws_error, dialect_of
from proxy.core.frozen import slot_constructor
from proxy.core.model import Credential, Finding, RequestHead, RequestIdentity, Severity
from proxy.core.services import ServiceIndex, ServiceInfo
from proxy.core.sigv4.auth import (
    ALGORITHM,
    AuthParseError,
    AuthParseErrorKind,
    SigV4Authorization,
    authorization_algorithm,
    is_sigv2_query,
    parse_authorization,
    parse_presigned,
    presigned_parameters,
)
from proxy.core.sigv4.chunked import ChunkSigning
from proxy.core.sigv4.dates import RequestDate, request_date
from proxy.core.sigv4.signing import DEFAULT_KEY_CACHE, SigningKeyCache

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ValidationSettings:
    """Knobs of the checks (all with AWS's defaults).

    `region`: the region the endpoint serves when its host does not name one (custom endpoints); None
    skips the region check for such hosts.
    """

    max_skew_seconds: float = 900.0
    warn_skew_seconds: float = 300.0
    max_chunk_bytes: int = 16 * MiB
    min_chunk_bytes: int = 8192
    max_presign_expires_seconds: int = 604800
    region: str | None = None
    key_cache: SigningKeyCache = field(default=DEFAULT_KEY_CACHE, compare=False, repr=False)


class SignatureState:
    VALID = "valid"
    INVALID = "invalid"
    UNVERIFIABLE = "unverifiable"
    UNSIGNED = "unsigned"
    NOT_CHECKED = "not_checked"


@dataclass(slots=True)
class Analysis:
    """What the checks share about one request (built once by `analysis(ctx)`)."""

    dialect: Dialect
    s3: bool
    service: ServiceInfo | None
    authorization: str | None
    presigned: dict[str, str] | None
    auth: SigV4Authorization | None
    auth_error: AuthParseError | None
    scheme: str
    date: RequestDate | None
    signature_state: str
    skew_seconds: float | None = None
    credential: Credential | None = None
    signing: ChunkSigning | None = None
    payload_hash: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


_make_analysis = slot_constructor(Analysis)
_S3 = Dialect.S3  # an Enum class attribute costs ~70 ns in Python 3.11, a global ~8


@dataclass(frozen=True, slots=True, init=False)
class CheckContext:
    """Everything a check may look at. `services` (optional) enables the operation-name checks.

    `body_sha256`: hex SHA-256 of the whole body when the handler buffered it, else None.
    """

    request: RequestHead
    identity: RequestIdentity
    now: datetime
    settings: ValidationSettings
    credentials: Mapping[str, Credential]
    body_sha256: str | None
    enforce: bool
    services: ServiceIndex | None = None
    _analysis: Analysis | None = field(default=None, init=False, repr=False, compare=False)  # analysis()

    def __init__(  # noqa: PLR0917 - the dataclass __init__'s signature, kept as it was
        self,
        request: RequestHead,
        identity: RequestIdentity,
        now: datetime,
        settings: ValidationSettings,
        credentials: Mapping[str, Credential],
        body_sha256: str | None,
        enforce: bool,
        services: ServiceIndex | None = None,
    ) -> None:
        """The generated __init__'s signature; the slots are filled through their descriptors instead of
        the frozen __setattr__ detour (one context per request: 0.7 µs instead of 1.3 µs)."""
        (
            set_request,
            set_identity,
            set_now,
            set_settings,
            set_credentials,
            set_body,
            set_enforce,
            set_services,
        ) = _CONTEXT_SLOTS
        set_request(self, request)
        set_identity(self, identity)
        set_now(self, now)
        set_settings(self, settings)
        set_credentials(self, credentials)
        set_body(self, body_sha256)
        set_enforce(self, enforce)
        set_services(self, services)
        _set_analysis(self, None)


_CONTEXT_SLOTS = tuple(
    CheckContext.__dict__[item.name].__set__ for item in dataclasses.fields(CheckContext) if item.init
)
_set_analysis = CheckContext.__dict__["_analysis"].__set__


class Check(Protocol):
    @property
    def name(self) -> str: ...

    def __call__(self, ctx: CheckContext) -> Finding | None: ...


@dataclass(frozen=True, slots=True)
class NamedCheck:
    """A check: a name (for findings, logs and metrics) and the function that runs it."""

    name: str
    run: Callable[[CheckContext], Finding | None]

    def __call__(self, ctx: CheckContext) -> Finding | None:
        return self.run(ctx)


def _service_of(ctx: CheckContext) -> ServiceInfo | None:
    if ctx.services is None or ctx.identity.service is None:
        return None
    return ctx.services.service(ctx.identity.service)


def analysis(ctx: CheckContext) -> Analysis:
    """The request's shared analysis, computed on first use."""
    found = ctx._analysis
    if found is not None:
        return found
    head = ctx.request
    dialect = dialect_of(ctx.identity)
    authorization = head.get("authorization")
    if authorization is not None and not authorization.strip():
        authorization = None  # an empty Authorization header authenticates nothing: as if absent
    presigned = presigned_parameters(head.query)
    auth: SigV4Authorization | None = None
    error: AuthParseError | None = None
    scheme = ""
    signed = authorization is not None or presigned is not None
    if not signed and is_sigv2_query(head.query):
        # Signed, with a scheme sigwatch does not verify (the auth.parse check says so).
        signed, scheme = True, "AWS"
        error = AuthParseError(AuthParseErrorKind.UNSUPPORTED_ALGORITHM, value="AWS", presigned=True)
    elif authorization is not None:
        try:
            auth = parse_authorization(authorization)
            scheme = ALGORITHM  # what a parsed header starts with
        except AuthParseError as caught:
            error = caught
            scheme = authorization_algorithm(authorization)
    elif presigned is not None:
        scheme = presigned.get("X-Amz-Algorithm", ALGORITHM)
        try:
            auth = parse_presigned(presigned)
        except AuthParseError as caught:
            error = caught
    presigned_date = None
    if authorization is None and presigned is not None:
        presigned_date = presigned.get("X-Amz-Date", "")
    state = SignatureState.NOT_CHECKED if signed else SignatureState.UNSIGNED
    result = _make_analysis(  # every field in declaration order (no keywords, no __init__: 0.5 µs less)
        dialect,
        dialect is _S3,
        _service_of(ctx),
        authorization,
        presigned,
        auth,
        error,
        scheme,
        request_date(head, presigned_date),
        state,
        None,  # skew_seconds
        None,  # credential
        None,  # signing
        None,  # payload_hash
        {},  # extra
    )
    _set_analysis(ctx, result)
    return result


def finding(
    ctx: CheckContext,
    check: str,
    failure: Failure,
    explanation: str,
    *,
    severity: Severity = Severity.ERROR,
    debug: tuple[tuple[str, str], ...] = (),
    fields: Mapping[str, object] | None = None,
    **more: object,
) -> Finding:
    """A Finding carrying what AWS would answer for this request's protocol (`fields` and `more` fill
    the message and extra elements)."""
    return Finding(
        check=check,
        severity=severity,
        error=aws_error(failure, analysis(ctx).dialect, **{**(fields or {}), **more}),
        explanation=explanation,
        debug=debug,
    )


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The verdict of validate(): findings in check order and what the metrics and payload verifier need.

    `chunk_signing` (derived key, timestamp, scope, seed signature) is set when the request signature
    was verified: the aws-chunked verifier chains chunk signatures from it. `payload_hash` is the hash
    the canonical request was built with (x-amz-content-sha256, UNSIGNED-PAYLOAD, or the body hash).
    """

    findings: tuple[Finding, ...]
    skew_seconds: float | None
    signature_state: str
    access_key_id: str | None
    chunk_signing: ChunkSigning | None = field(default=None, repr=False)
    payload_hash: str | None = None
    dialect: Dialect = Dialect.JSON

    @property
    def first_error(self) -> Finding | None:
        """The first severity=error finding: what enforce mode answers with."""
        for item in self.findings:
            if item.severity is Severity.ERROR:
                return item
        return None


def is_parse_problem(error: AuthParseError | None) -> bool:
    return error is not None and error.kind is not AuthParseErrorKind.UNSUPPORTED_ALGORITHM
