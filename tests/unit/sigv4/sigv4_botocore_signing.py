"""Sign requests with botocore itself (at a fixed time) and turn them into the proxy's RequestHead.

botocore is the reference signer: what it produces, AWS accepts. The clock is fixed by replacing the
single function botocore.auth reads the time from, for the duration of one signing call.
"""

from __future__ import annotations

from datetime import datetime
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from proxy.core.model import RequestHead

SIGNERS = {
    ("header", False): botocore.auth.SigV4Auth,
    ("header", True): botocore.auth.S3SigV4Auth,
    ("query", False): botocore.auth.SigV4QueryAuth,
    ("query", True): botocore.auth.S3SigV4QueryAuth,
}


def botocore_sign(
    method: str,
    url: str,
    headers: list[tuple[str, str]] | dict[str, str],
    body: bytes,
    *,
    service: str,
    region: str,
    when: datetime,
    access_key: str,
    secret: str,
    token: str | None = None,
    presign: bool = False,
    expires: int = 3600,
    s3: bool | None = None,
) -> tuple[RequestHead, bytes, AWSRequest]:
    """Sign with botocore's SigV4 (S3 variant when `s3`), return (head as sent, body, botocore request)."""
    is_s3 = (service == "s3") if s3 is None else s3
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    credentials = Credentials(access_key, secret, token)
    signer_class = SIGNERS[("query" if presign else "header", is_s3)]
    signer = (
        signer_class(credentials, service, region, expires=expires)
        if presign
        else signer_class(credentials, service, region)
    )
    naive_utc = when.replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=naive_utc):
        signer.add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    sent: list[tuple[str, str]] = []
    if "host" not in {name.lower() for name in prepared.headers}:
        sent.append(("Host", botocore.auth._host_from_url(prepared.url)))
    for name, value in prepared.headers.items():
        sent.append((name, value.decode() if isinstance(value, bytes) else value))
    raw_body = prepared.body or b""
    if isinstance(raw_body, str):
        raw_body = raw_body.encode()
    head = RequestHead(method=method, path=parts.path or "/", query=parts.query, headers=tuple(sent))
    return head, raw_body, request
