"""Presigned URLs through sigwatch (enforce mode), as boto3 makes them and a browser or curl uses them.

- SigV4 (`X-Amz-*` parameters): verified, including keys that need encoding and response overrides.
- S3's SigV2 query-string form (`AWSAccessKeyId`, `Signature`, `Expires`: what boto3's
  generate_presigned_url makes for S3 by default): a valid AWS scheme sigwatch does not verify. It is
  an S3 request, signed, marked unverifiable, and passed on; not an "unsigned request to an unknown
  service" (the bug this test was written for).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import pytest
from e2e_proxy_support import MotoServer, RunningSigwatch, boto, line_for

pytestmark = pytest.mark.e2e

KEYS = ["plain.txt", "a b+c.txt", "dir/é ü 🎉.txt", "q?x=1&y#frag", "~tilde*star(paren)!'"]


def fetch(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    # urllib would label a body as a form, which moto_server then reads as one (and stores nothing).
    headers = {"Content-Type": "application/octet-stream"} if data is not None else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def test_sigv4_presigned_urls_are_verified(moto: MotoServer, moto_proxy: RunningSigwatch, logs: Any) -> None:
    s3 = boto("s3", moto_proxy.url, signature_version="s3v4")
    s3.create_bucket(Bucket="e2e-presigned-v4")
    for key in KEYS:
        put = s3.generate_presigned_url("put_object", Params={"Bucket": "e2e-presigned-v4", "Key": key})
        status, headers, _ = fetch(put, "PUT", key.encode())
        assert status == 200, key
        line = line_for(logs, headers["x-sigwatch-request-id"])
        assert (line["operation"], line["sigv4"], line["findings"]) == ("PutObject", "valid", []), key
        get = s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": "e2e-presigned-v4",
                "Key": key,
                "ResponseContentDisposition": 'attachment; filename="a b.txt"',
            },
        )
        status, headers, body = fetch(get)
        assert (status, body) == (200, key.encode())
        line = line_for(logs, headers["x-sigwatch-request-id"])
        assert (line["operation"], line["sigv4"], line["findings"]) == ("GetObject", "valid", []), key


def test_sigv2_presigned_url_is_an_unverifiable_s3_request(
    moto: MotoServer, moto_proxy: RunningSigwatch, logs: Any
) -> None:
    s3 = boto("s3", moto_proxy.url)
    s3.create_bucket(Bucket="e2e-presigned-v2")
    s3.put_object(Bucket="e2e-presigned-v2", Key="a b.txt", Body=b"sigv2")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "e2e-presigned-v2", "Key": "a b.txt"})
    assert "AWSAccessKeyId=" in url and "Signature=" in url and "X-Amz-" not in url
    status, headers, body = fetch(url)
    assert (status, body) == (200, b"sigv2")
    line = line_for(logs, headers["x-sigwatch-request-id"])
    assert (line["protocol"], line["service"], line["operation"]) == ("rest-xml", "s3", "GetObject")
    assert line["sigv4"] == "unverifiable"
    assert [(f["check"], f["severity"]) for f in line["findings"]] == [("auth.parse", "info")]
    assert "SigV2" in line["findings"][0]["explanation"]
