"""Required headers per protocol (issue 3, check 1; seed 000 "Required Request Headers").

- every request: Host;
- AWS JSON: `x-amz-target: <TargetPrefix>.<Operation>` naming a real operation (MissingAction /
  InvalidAction / UnknownOperationException, seed 000 exception table) and Content-Type
  `application/x-amz-json-1.1` (1.0 for JSON 1.0 services);
- Query / EC2: Action and Version;
- S3 with SigV4 header authentication: x-amz-content-sha256.
The date header (x-amz-date or Date) is checked with the credentials (structure.py), because its
absence is reported inside AWS's IncompleteSignature message.
"""

from __future__ import annotations

import functools

from proxy.core.checks.base import CheckContext, NamedCheck, analysis, finding
from proxy.core.checks.errors import Failure
from proxy.core.frozen import remember
from proxy.core.model import Finding, Protocol, Severity
from proxy.core.services import target_family
from proxy.core.sigv4.canonical import AWS_CHUNKED_PAYLOADS, SPECIAL_PAYLOAD_HASHES
from proxy.core.sigv4.chunked import decoded_length

_HEX = frozenset("0123456789abcdefABCDEF")
# Enum members as module globals for the hot path: an Enum class attribute costs ~70 ns in Python 3.11
# (EnumType defines __getattr__: every class attribute look-up takes the slow path), a global ~8 ns.
_JSON, _QUERY, _EC2 = Protocol.JSON, Protocol.QUERY, Protocol.EC2


def _host(ctx: CheckContext) -> Finding | None:
    if ctx.request.host:
        return None
    return finding(ctx, "headers.host", Failure.MISSING_HOST, "The request has no Host header.")


def _target(ctx: CheckContext) -> Finding | None:
    """`x-amz-target: StorageGateway_<APIversion>.<Operation>` (seed 000)."""
    if ctx.identity.protocol is not _JSON:
        return None
    name = "headers.target"
    target = ctx.request.get("x-amz-target")
    if not target or not target.strip():
        return finding(
            ctx, name, Failure.MISSING_ACTION, "An AWS JSON request without an x-amz-target header."
        )
    service = analysis(ctx).service
    # A target found well-formed and known for this service stays so: memoised on the index (bounded).
    known = ctx.services.memo("checks.target") if ctx.services is not None else None
    key = (target, service.name if service is not None else None)
    if known is not None and key in known:
        return None
    prefix, dot, operation = target.strip().rpartition(".")
    expected = service.target_prefix if service is not None else None
    malformed = not dot or not prefix or not operation
    if not malformed and expected is not None and target_family(prefix) != target_family(expected):
        malformed = True
    if not malformed and expected is not None and target_family(expected) != expected:
        version = prefix[len(target_family(prefix)) + 1 :]
        malformed = len(version) != 8 or not version.isdigit()
    if malformed:
        shape = (
            f"{target_family(expected)}_<APIversion>.<Operation>"
            if expected
            else "<TargetPrefix>.<Operation>"
        )
        return finding(
            ctx,
            name,
            Failure.INVALID_ACTION,
            f"x-amz-target {target!r} is not of the form {shape}.",
        )
    if service is not None and ctx.services is not None:
        operations = ctx.services.operations(service.name)
        if operations and operation not in operations:
            return finding(
                ctx,
                name,
                Failure.UNKNOWN_OPERATION,
                f"{service.name} has no operation {operation!r} (x-amz-target {target!r}).",
                service=service.name,
            )
    if known is not None:
        remember(known, key, True)
    return None


def _content_type(ctx: CheckContext) -> Finding | None:
    """`Content-Type: application/x-amz-json-1.1` ("for all requests to AWS Storage Gateway", seed 000).

    A warning: what AWS answers to another content type is not in the reference texts, and enforce
    mode must never reject a request AWS would accept.
    """
    if ctx.identity.protocol is not _JSON:
        return None
    service = analysis(ctx).service
    accepted = _accepted_content_types(service.json_version if service is not None else None)
    sent = ctx.request.get("content-type")
    if sent in accepted:  # as sent, the common case: nothing to normalise
        return None
    content_type = (sent or "").split(";", 1)[0].strip().lower()
    if content_type in accepted:
        return None
    return finding(
        ctx,
        "headers.content_type",
        Failure.WRONG_CONTENT_TYPE,
        f"Content-Type is {content_type or 'absent'!r}; this service expects {' or '.join(accepted)}.",
        severity=Severity.WARNING,
        service=service.name if service else None,
    )


@functools.cache  # a handful of versions ("1.0", "1.1", None)
def _accepted_content_types(json_version: str | None) -> tuple[str, ...]:
    versions = (json_version,) if json_version else ("1.0", "1.1")
    return tuple(f"application/x-amz-json-{version}" for version in versions)


def _action(ctx: CheckContext) -> Finding | None:
    """Query / EC2: the `Action` parameter (query string or form body) naming a real operation."""
    protocol = ctx.identity.protocol
    if protocol is not _QUERY and protocol is not _EC2:
        return None
    name = "headers.action"
    operation = ctx.identity.operation
    if not operation:
        return finding(ctx, name, Failure.MISSING_ACTION, "A Query request without an Action parameter.")
    service = analysis(ctx).service
    if service is not None and ctx.services is not None:
        operations = ctx.services.operations(service.name)
        if operations and operation not in operations:
            return finding(ctx, name, Failure.INVALID_ACTION, f"{service.name} has no action {operation!r}.")
    return None


def _version(ctx: CheckContext) -> Finding | None:
    """Query / EC2: the `Version` parameter. A warning: AWS's answer to its absence is not in the
    reference texts, and enforce mode must never reject what AWS might accept."""
    identity = ctx.identity
    if identity.protocol is not _QUERY and identity.protocol is not _EC2:
        return None
    if not identity.operation or identity.api_version:
        return None
    return finding(
        ctx,
        "headers.version",
        Failure.MISSING_VERSION,
        "A Query request without a Version parameter.",
        severity=Severity.WARNING,
    )


def _content_sha256(ctx: CheckContext) -> Finding | None:
    """S3 with SigV4 header authentication: "x-amz-content-sha256 ... is required for all AWS Signature
    Version 4 requests", holding a hex SHA-256 or one of the special values."""
    info = analysis(ctx)
    if not info.s3 or info.authorization is None or info.scheme != "AWS4-HMAC-SHA256":
        return None
    name = "headers.content_sha256"
    value = ctx.request.get("x-amz-content-sha256")
    if value is None:
        return finding(
            ctx, name, Failure.CONTENT_SHA256_MISSING, "An S3 SigV4 request without x-amz-content-sha256."
        )
    value = value.strip()
    if value in SPECIAL_PAYLOAD_HASHES or (len(value) == 64 and _HEX.issuperset(value)):
        return None
    return finding(
        ctx,
        name,
        Failure.CONTENT_SHA256_INVALID,
        f"x-amz-content-sha256 {value[:80]!r} is neither a hex SHA-256 nor a streaming/unsigned marker.",
        value=value,
    )


def _decoded_content_length(ctx: CheckContext) -> Finding | None:
    """An aws-chunked upload states its payload's length in x-amz-decoded-content-length ("the length of
    the object in bytes", S3 API reference): one that is not a number of bytes is refused before any byte
    of the body goes upstream."""
    request = ctx.request
    value = request.get("x-amz-decoded-content-length")
    if value is None or (request.get("x-amz-content-sha256") or "").strip() not in AWS_CHUNKED_PAYLOADS:
        return None
    if decoded_length(value) is not None:
        return None
    return finding(
        ctx,
        "headers.decoded_content_length",
        Failure.DECODED_LENGTH_INVALID,
        f"x-amz-decoded-content-length {value[:40]!r} is not a number of bytes.",
        value=value,
    )


HOST = NamedCheck("headers.host", _host)
TARGET = NamedCheck("headers.target", _target)
CONTENT_TYPE = NamedCheck("headers.content_type", _content_type)
ACTION = NamedCheck("headers.action", _action)
VERSION = NamedCheck("headers.version", _version)
CONTENT_SHA256 = NamedCheck("headers.content_sha256", _content_sha256)
DECODED_CONTENT_LENGTH = NamedCheck("headers.decoded_content_length", _decoded_content_length)
