"""Request validation: an ordered list of small named checks over a request head (pure, sans-IO).

The handler builds a CheckContext, calls validate(), answers `result.first_error` in enforce mode, and
streams the body through `payload_verifier(ctx, result)`. Adding a check touches no handler: a new
module and one entry in DEFAULT_CHECKS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from proxy.core.checks import clock, headers, payload, signature, structure
from proxy.core.checks.base import (
    Analysis,
    Check,
    CheckContext,
    NamedCheck,
    SignatureState,
    ValidationResult,
    ValidationSettings,
    analysis,
    finding,
)
from proxy.core.checks.errors import Dialect, Failure, aws_error, dialect_of
from proxy.core.checks.payload import PayloadVerifier, payload_verifier
from proxy.core.frozen import slot_constructor
from proxy.core.model import Finding, Protocol, RequestHead, RequestIdentity
from proxy.core.sigv4.auth import presigned_parameters
from proxy.core.sigv4.canonical import has_no_body

__all__ = [
    "DEFAULT_CHECKS",
    "Analysis",
    "Check",
    "CheckContext",
    "Dialect",
    "Failure",
    "NamedCheck",
    "PayloadVerifier",
    "SignatureState",
    "ValidationResult",
    "ValidationSettings",
    "analysis",
    "aws_error",
    "dialect_of",
    "finding",
    "needs_body",
    "payload_verifier",
    "validate",
]

# In the order AWS applies them as far as its answers show: a request missing its credentials is
# answered MissingAuthenticationToken before anything about its operation; a malformed header before
# its date; the date window before the secret is looked up; the signature before the payload.
DEFAULT_CHECKS: tuple[Check, ...] = (
    headers.HOST,
    structure.PRESENT,
    structure.PARSE,
    structure.DATE,
    headers.TARGET,
    headers.CONTENT_TYPE,
    headers.ACTION,
    headers.VERSION,
    structure.SCOPE,
    structure.SIGNED_HEADERS,
    structure.EXPIRES,
    headers.CONTENT_SHA256,
    headers.DECODED_CONTENT_LENGTH,
    clock.WINDOW,
    clock.PRESIGNED,
    signature.ACCESS_KEY,
    signature.VERIFY,
    payload.BUFFERED,
)

_FORM = "application/x-www-form-urlencoded"
# Enum members as module globals for the hot path: an Enum class attribute costs ~70 ns in Python 3.11
# (EnumType defines __getattr__: every class attribute look-up takes the slow path), a global ~8 ns.
_QUERY, _EC2, _UNKNOWN, _S3 = Protocol.QUERY, Protocol.EC2, Protocol.UNKNOWN, Dialect.S3


def _runners(checks: Sequence[Check]) -> tuple[Callable[[CheckContext], Finding | None], ...]:
    """What to call for each check: a NamedCheck's function itself (one call less per check)."""
    return tuple(check.run if type(check) is NamedCheck else check for check in checks)


_DEFAULT_RUNNERS = _runners(DEFAULT_CHECKS)
_make_result = slot_constructor(ValidationResult)


def validate(ctx: CheckContext, checks: Sequence[Check] = DEFAULT_CHECKS) -> ValidationResult:
    """Run `checks` in order; every check runs (observe mode reports them all)."""
    findings: list[Finding] = []
    for run in _DEFAULT_RUNNERS if checks is DEFAULT_CHECKS else _runners(checks):
        result = run(ctx)
        if result is not None:
            findings.append(result)
    info = analysis(ctx)
    auth = info.auth
    return _make_result(
        tuple(findings),
        info.skew_seconds,
        info.signature_state,
        auth.credential.access_key_id if auth is not None else None,
        info.signing,
        info.payload_hash,
        info.dialect,
    )


def needs_body(head: RequestHead, identity: RequestIdentity) -> bool:
    """Must the handler buffer the (bounded) body before validate()?

    Yes when the canonical request needs the body's actual hash (a signed request without
    x-amz-content-sha256, except an S3 presigned URL, which signs UNSIGNED-PAYLOAD), and for a form
    body that may carry the Query Action. No for everything streamed and checked incrementally.
    """
    if has_no_body(head):
        return False
    protocol = identity.protocol
    if protocol is _QUERY or protocol is _EC2 or protocol is _UNKNOWN:
        content_type = (head.get("content-type") or "").split(";", 1)[0].strip().lower()
        if content_type == _FORM:
            return True
    if head.has("x-amz-content-sha256"):
        return False
    presigned = presigned_parameters(head.query) is not None
    if not head.has("authorization") and not presigned:
        return False
    s3 = dialect_of(identity) is _S3
    return not (s3 and presigned)
