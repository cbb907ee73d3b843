"""Payload integrity (issue 3, check 5).

- A declared hex x-amz-content-sha256 must be the body's SHA-256 (S3: XAmzContentSHA256Mismatch).
  When the handler buffered the body, `payload.sha256` compares it in validate(); otherwise the
  streaming verifier hashes the body as it is forwarded and answers at the end.
- UNSIGNED-PAYLOAD is accepted as is.
- `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]` / `STREAMING-UNSIGNED-PAYLOAD-TRAILER`
  (`Content-Encoding: aws-chunked`) are decoded and verified chunk by chunk (sigv4.chunked); the first
  bad chunk is reported from `feed()`, so the handler can abort the upstream request.
- For JSON/Query requests without the header the body hash is part of the canonical request: a
  tampered body shows up as a signature mismatch.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from proxy.core.checks.base import CheckContext, NamedCheck, SignatureState, ValidationResult, finding
from proxy.core.checks.errors import Failure
from proxy.core.model import Finding, Severity
from proxy.core.sigv4.canonical import (
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
    is_sha256_hex,
)
from proxy.core.sigv4.chunked import AwsChunkedVerifier, ChunkedError, ChunkedErrorKind, decoded_length
from proxy.core.sigv4.signing import signatures_equal

CHECK = "payload.sha256"
CHUNKED_CHECK = "payload.chunked"
_STREAMING = (STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER)


class PayloadVerifier(Protocol):
    """Sees the raw body as it is forwarded (unchanged); the first finding is returned once."""

    def feed(self, data: bytes) -> Finding | None: ...

    def finish(self) -> Finding | None: ...


def _mismatch(ctx: CheckContext, declared: str, computed: str) -> Finding:
    return finding(
        ctx,
        CHECK,
        Failure.CONTENT_SHA256_MISMATCH,
        f"x-amz-content-sha256 declares {declared[:12]}..., the body hashes to {computed[:12]}...",
        declared=declared,
        computed=computed,
    )


def _buffered(ctx: CheckContext) -> Finding | None:
    declared = (ctx.request.get("x-amz-content-sha256") or "").strip()
    if ctx.body_sha256 is None or not is_sha256_hex(declared.lower()):
        return None
    if signatures_equal(ctx.body_sha256, declared.lower()):
        return None
    return _mismatch(ctx, declared, ctx.body_sha256)


class Sha256Verifier:
    """Hash the body while it streams; compare with the declared x-amz-content-sha256 at the end."""

    def __init__(self, ctx: CheckContext, declared: str) -> None:
        self._ctx = ctx
        self._declared = declared
        self._hash = hashlib.sha256()

    def feed(self, data: bytes) -> Finding | None:
        self._hash.update(data)
        return None

    def finish(self) -> Finding | None:
        computed = self._hash.hexdigest()
        if signatures_equal(computed, self._declared.lower()):
            return None
        return _mismatch(self._ctx, self._declared, computed)


_CHUNK_FAILURES = {
    ChunkedErrorKind.SIGNATURE_MISMATCH: Failure.CHUNK_SIGNATURE_MISMATCH,
    ChunkedErrorKind.TRAILER_SIGNATURE_MISMATCH: Failure.CHUNK_SIGNATURE_MISMATCH,
    ChunkedErrorKind.CHUNK_TOO_SMALL: Failure.CHUNK_TOO_SMALL,
    ChunkedErrorKind.CHUNK_TOO_LARGE: Failure.CHUNK_TOO_LARGE,
    ChunkedErrorKind.LINE_TOO_LONG: Failure.CHUNK_TOO_LARGE,
    ChunkedErrorKind.TRAILER_TOO_LARGE: Failure.TRAILER_MALFORMED,
    ChunkedErrorKind.TRAILER_MISSING: Failure.TRAILER_MALFORMED,
    ChunkedErrorKind.CHECKSUM_MISMATCH: Failure.CHECKSUM_MISMATCH,
    ChunkedErrorKind.MALFORMED: Failure.BODY_INCOMPLETE,
    ChunkedErrorKind.TRUNCATED: Failure.BODY_INCOMPLETE,
    ChunkedErrorKind.LENGTH_MISMATCH: Failure.BODY_INCOMPLETE,
}


class ChunkedVerifier:
    """aws-chunked: each chunk checked as soon as its last byte arrives; the first problem is reported.

    `verified` tells how many chunk signatures checked out (0 when the secret is unknown: framing,
    trailer checksums and the decoded length are still checked).
    """

    def __init__(self, ctx: CheckContext, result: ValidationResult, content_sha256: str) -> None:
        self._ctx = ctx
        self._access_key_id = result.access_key_id or ""
        head = ctx.request
        declared_length = head.get("x-amz-decoded-content-length") or ""
        trailers = tuple((head.get("x-amz-trailer") or "").split(",")) if head.has("x-amz-trailer") else ()
        self._verifier = AwsChunkedVerifier(
            content_sha256,
            signing=result.chunk_signing,
            decoded_length=decoded_length(declared_length),
            declared_trailers=trailers,
            max_chunk_bytes=ctx.settings.max_chunk_bytes,
            min_chunk_bytes=ctx.settings.min_chunk_bytes,
        )
        self._failed = False

    @property
    def verified(self) -> int:
        return self._verifier.chunks_verified

    def feed(self, data: bytes) -> Finding | None:
        if self._failed:
            return None
        try:
            self._verifier.feed(data)
        except ChunkedError as error:
            return self._report(error)
        return None

    def finish(self) -> Finding | None:
        if self._failed:
            return None
        try:
            self._verifier.finish()
        except ChunkedError as error:
            return self._report(error)
        unverified = self._verifier.unverified_checksums
        if unverified:
            return finding(
                self._ctx,
                CHUNKED_CHECK,
                Failure.CHECKSUM_MISMATCH,
                f"Trailer checksum {', '.join(unverified)} not verified (algorithm not available).",
                severity=Severity.INFO,
                algorithm=unverified[0].removeprefix("x-amz-checksum-"),
            )
        return None

    def _report(self, error: ChunkedError) -> Finding:
        self._failed = True
        failure = _CHUNK_FAILURES[error.kind]
        debug: tuple[tuple[str, str], ...] = ()
        if error.string_to_sign:
            debug = (
                ("string_to_sign", _without_previous_signature(error.string_to_sign)),
                ("signature_provided_prefix", error.provided[:8]),
            )
        return finding(
            self._ctx,
            CHUNKED_CHECK,
            failure,
            f"aws-chunked body: {error.detail}.",
            debug=debug,
            access_key_id=self._access_key_id,
            string_to_sign=error.string_to_sign,
            provided=error.provided,
            chunk=error.chunk_index if error.chunk_index is not None else "",
            size=error.provided,
            minimum=self._ctx.settings.min_chunk_bytes,
            algorithm=error.name.removeprefix("x-amz-checksum-"),
        )


def payload_verifier(ctx: CheckContext, result: ValidationResult) -> PayloadVerifier | None:
    """The streaming verifier this request's body needs, or None (nothing to check while streaming)."""
    declared = (ctx.request.get("x-amz-content-sha256") or "").strip()
    if declared in _STREAMING:
        if declared != STREAMING_UNSIGNED_PAYLOAD_TRAILER and result.signature_state != SignatureState.VALID:
            # Chunk signatures chain from a verified seed; without one, check the framing only.
            result = ValidationResult(
                findings=result.findings,
                skew_seconds=result.skew_seconds,
                signature_state=result.signature_state,
                access_key_id=result.access_key_id,
            )
        return ChunkedVerifier(ctx, result, declared)
    if is_sha256_hex(declared.lower()) and ctx.body_sha256 is None:
        return Sha256Verifier(ctx, declared)
    return None


BUFFERED = NamedCheck(CHECK, _buffered)


def _without_previous_signature(string_to_sign: str) -> str:
    """A chunk's string to sign, its 4th line (the previous signature: for the first chunk the request's
    own signature) cut to a prefix, so a log line never holds a full signature."""
    lines = string_to_sign.split("\n")
    if len(lines) > 3 and len(lines[3]) > 8:
        lines[3] = lines[3][:8] + "…"
    return "\n".join(lines)
