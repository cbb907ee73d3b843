"""Signature verification when the access key's secret is known (issue 3, checks 4 and 6).

An unknown access key is AWS's UnrecognizedClientException / InvalidClientTokenId / InvalidAccessKeyId
in enforce mode; in observe mode the request is marked `unverifiable` (an info finding) and the
structural checks still run. On a mismatch the finding's debug carries the canonical request and the
string to sign the proxy computed, so a developer can diff them against the client's; never a secret,
never the full provided signature (AWS itself echoes the latter in S3's error body: that stays in the
AwsError, which is the wire contract).
"""

from __future__ import annotations

from proxy.core.checks.base import Analysis, CheckContext, NamedCheck, SignatureState, analysis, finding
from proxy.core.checks.errors import Failure
from proxy.core.frozen import slot_constructor
from proxy.core.model import Finding, Severity
from proxy.core.sigv4.canonical import EMPTY_SHA256, UNSIGNED_PAYLOAD, has_no_body
from proxy.core.sigv4.chunked import ChunkSigning
from proxy.core.sigv4.signing import compute_request_signature, request_signature, signatures_equal


def payload_hash(ctx: CheckContext, info: Analysis) -> str | None:
    """The payload hash the canonical request ends with, or None when it needs an unbuffered body.

    x-amz-content-sha256 when sent (botocore: "if 'X-Amz-Content-SHA256' in request.headers");
    UNSIGNED-PAYLOAD for an S3 presigned URL; else the body's SHA-256.
    """
    declared = ctx.request.get("x-amz-content-sha256")
    if declared is not None:
        return declared.strip()
    if info.s3 and info.auth is not None and info.auth.presigned:
        return UNSIGNED_PAYLOAD
    if ctx.body_sha256 is not None:
        return ctx.body_sha256
    if has_no_body(ctx.request):
        return EMPTY_SHA256
    return None


def _provided_token(ctx: CheckContext, info: Analysis) -> str | None:
    if info.auth is not None and info.auth.presigned:
        return info.auth.security_token
    return ctx.request.get("x-amz-security-token")


def _access_key(ctx: CheckContext) -> Finding | None:
    info = analysis(ctx)
    auth = info.auth
    if auth is None:
        return None
    name = "signature.access_key"
    credential = ctx.credentials.get(auth.access_key_id)
    if credential is None:
        if info.signature_state == SignatureState.NOT_CHECKED:
            info.signature_state = SignatureState.UNVERIFIABLE
        return finding(
            ctx,
            name,
            Failure.UNKNOWN_ACCESS_KEY,
            f"Access key {auth.access_key_id!r} is not among the known credentials: signature not verified.",
            severity=Severity.ERROR if ctx.enforce else Severity.INFO,
            access_key_id=auth.access_key_id,
        )
    info.credential = credential
    if credential.session_token is not None and not signatures_equal(
        credential.session_token, _provided_token(ctx, info) or ""
    ):
        return finding(
            ctx,
            name,
            Failure.INVALID_TOKEN,
            f"The security token sent with {auth.access_key_id!r} is not the session token of that key.",
            access_key_id=auth.access_key_id,
        )
    return None


def _verify(ctx: CheckContext) -> Finding | None:
    info = analysis(ctx)
    auth, credential, date = info.auth, info.credential, info.date
    if auth is None or credential is None or date is None or date.moment is None:
        return None
    name = "signature.verify"
    hashed = payload_hash(ctx, info)
    if hashed is None:
        info.signature_state = SignatureState.UNVERIFIABLE
        return finding(
            ctx,
            name,
            Failure.SIGNATURE_MISMATCH,
            "The signature covers the body's hash, and the body was not buffered: not verified.",
            severity=Severity.INFO,
            access_key_id=auth.access_key_id,
        )
    info.payload_hash = hashed
    amz_date = date.amz
    computed = request_signature(
        ctx.request, auth, credential, amz_date, hashed, not info.s3, ctx.settings.key_cache, False
    )
    matched = computed.matches(auth.signature)
    if not matched and auth.presigned and auth.security_token is not None and not info.s3:
        # Some services expect X-Amz-Security-Token appended after signing (suite: post-sts-header-after).
        retry = compute_request_signature(
            ctx.request,
            auth,
            credential,
            amz_date=amz_date,
            payload_hash=hashed,
            normalize_path=True,
            cache=ctx.settings.key_cache,
            drop_security_token=True,
        )
        if retry.matches(auth.signature):
            computed, matched = retry, True
    if matched:
        if info.signature_state == SignatureState.NOT_CHECKED:
            info.signature_state = SignatureState.VALID
        info.signing = _make_chunk_signing(
            computed.signing_key, amz_date, auth.credential.scope, auth.signature
        )
        return None
    info.signature_state = SignatureState.INVALID
    return finding(
        ctx,
        name,
        Failure.SIGNATURE_MISMATCH,
        f"The signature does not match the one computed with the known secret of {auth.access_key_id!r}; "
        "compare the canonical request and string to sign (debug) with the client's.",
        debug=(
            ("canonical_request", computed.canonical_request),
            ("string_to_sign", computed.string_to_sign),
            ("signature_provided_prefix", auth.signature[:8]),
        ),
        access_key_id=auth.access_key_id,
        string_to_sign=computed.string_to_sign,
        provided=auth.signature,
        canonical=computed.canonical_request,
    )


_make_chunk_signing = slot_constructor(ChunkSigning)

ACCESS_KEY = NamedCheck("signature.access_key", _access_key)
VERIFY = NamedCheck("signature.verify", _verify)
