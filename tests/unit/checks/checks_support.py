"""Build requests signed by botocore for the check tests, and run them through validate() as the handler
does (identify, buffer the body when needs_body says so, validate, stream the rest)."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sigv4"))  # the shared signing helpers

from sigv4_botocore_signing import botocore_sign

from proxy.core.checks import (
    CheckContext,
    ValidationResult,
    ValidationSettings,
    needs_body,
    payload_verifier,
    validate,
)
from proxy.core.identify import identify
from proxy.core.model import Credential, Finding, RequestHead
from proxy.core.services import ServiceIndex
from proxy.service_models import load_service_index

__all__ = ["botocore_sign"]  # re-exported: the check tests sign through this module's sys.path set-up

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
CREDENTIALS = {ACCESS_KEY: Credential(ACCESS_KEY, SECRET)}
INDEX: ServiceIndex = load_service_index()

# One representative request per protocol family.
REQUESTS: dict[str, dict[str, object]] = {
    "storagegateway": {
        "method": "POST",
        "url": "https://storagegateway.us-east-1.amazonaws.com/",
        "headers": {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "StorageGateway_20130630.ListGateways",
        },
        "body": b"{}",
        "service": "storagegateway",
    },
    "dynamodb": {
        "method": "POST",
        "url": "http://127.0.0.1:8000/",
        "headers": {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
        },
        "body": b"{}",
        "service": "dynamodb",
    },
    "lambda": {
        "method": "GET",
        "url": "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/f",
        "headers": {},
        "body": b"",
        "service": "lambda",
    },
    "sts": {
        "method": "POST",
        "url": "https://sts.amazonaws.com/",
        "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        "body": b"Action=GetCallerIdentity&Version=2011-06-15",
        "service": "sts",
    },
    "s3": {
        "method": "PUT",
        "url": "http://127.0.0.1:9000/bucket/some%20key.txt",
        "headers": {},
        "body": b"hello world",
        "service": "s3",
    },
}


@dataclass(frozen=True)
class Signed:
    head: RequestHead
    body: bytes

    def with_headers(self, *changes: tuple[str, str | None]) -> Signed:
        """Replace (value) or drop (None) headers by case-insensitive name; new names are appended."""
        headers = list(self.head.headers)
        for name, value in changes:
            present = [i for i, (n, _) in enumerate(headers) if n.lower() == name.lower()]
            for index in reversed(present):
                del headers[index]
            if value is not None:
                headers.insert(present[0] if present else len(headers), (name, value))
        return replace(
            self, head=RequestHead(self.head.method, self.head.path, self.head.query, tuple(headers))
        )

    def with_query(self, query: str) -> Signed:
        return replace(self, head=RequestHead(self.head.method, self.head.path, query, self.head.headers))


def signed(
    kind: str,
    *,
    when: datetime = WHEN,
    secret: str = SECRET,
    access_key: str = ACCESS_KEY,
    presign: bool = False,
    token: str | None = None,
    region: str = "us-east-1",
    expires: int = 3600,
    **overrides: object,
) -> Signed:
    spec = {**REQUESTS[kind], **overrides}
    body = spec["body"]
    assert isinstance(body, bytes)
    url = str(spec["url"])
    headers = dict(spec["headers"])  # type: ignore[call-overload]
    if presign and spec["service"] == "sts":
        url, body, headers = url + "?" + body.decode(), b"", {}
    elif presign and spec["service"] != "s3":
        body = b""  # a presigned URL signs the body's hash; S3 signs UNSIGNED-PAYLOAD instead
    head, raw, _ = botocore_sign(
        str(spec["method"]),
        url,
        headers,
        b"" if presign else body,
        service=str(spec["service"]),
        region=region,
        when=when,
        access_key=access_key,
        secret=secret,
        token=token,
        presign=presign,
        expires=expires,
    )
    return Signed(head, body if presign else raw)


def context(
    request: Signed,
    *,
    now: datetime = WHEN,
    enforce: bool = True,
    credentials: dict[str, Credential] | None = None,
    settings: ValidationSettings | None = None,
) -> CheckContext:
    """What the handler builds: identify (with the form body when buffered), body hash when buffered."""
    head, body = request.head, request.body
    identity = identify(head, INDEX)
    body_sha256 = None
    if needs_body(head, identity) or not body:
        body_sha256 = hashlib.sha256(body).hexdigest()
        identity = identify(head, INDEX, form_body=body)
    return CheckContext(
        request=head,
        identity=identity,
        now=now,
        settings=settings or ValidationSettings(),
        credentials=CREDENTIALS if credentials is None else credentials,
        body_sha256=body_sha256,
        enforce=enforce,
        services=INDEX,
    )


def run(request: Signed, **kwargs: object) -> ValidationResult:
    return validate(context(request, **kwargs))  # type: ignore[arg-type]


def stream(
    request: Signed, chunks: list[bytes] | None = None, **kwargs: object
) -> tuple[ValidationResult, Finding | None]:
    """validate(), then stream the body through the payload verifier; the first streaming finding."""
    ctx = context(request, **kwargs)  # type: ignore[arg-type]
    result = validate(ctx)
    verifier = payload_verifier(ctx, result)
    if verifier is None:
        return result, None
    for piece in chunks if chunks is not None else [request.body]:
        found = verifier.feed(piece)
        if found is not None:
            return result, found
    return result, verifier.finish()


def errors(result: ValidationResult) -> list[tuple[str, str]]:
    return [(f.check, f.code) for f in result.findings if f.severity.value == "error"]
