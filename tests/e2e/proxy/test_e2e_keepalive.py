"""A keep-alive connection stays usable after sigwatch (enforce mode) refuses a request whose body the
client has not sent yet.

botocore sends S3 PutObject / UploadPart with `Expect: 100-continue` and waits for the 100 before it
sends the body. When sigwatch answers such a request itself (a skewed clock here), the client never
sends the body and reuses the connection for its next request, so sigwatch must close that connection
(RFC 9110 §10.1.1: a server that answers with a final status instead of 100 either reads and discards
the rest of the request or closes the connection; here the rest never comes). Otherwise the next
request's bytes are read as the refused request's body and the client waits until it times out.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import botocore.auth
import pytest
from e2e_proxy_support import RunningSigwatch, boto, client_error

pytestmark = pytest.mark.e2e


def test_next_request_after_a_refused_expect_continue_upload(
    enforce_proxy: RunningSigwatch, monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    # Short timeouts: without the fix the next request hangs until the client gives up.
    s3 = boto("s3", enforce_proxy.url, read_timeout=2, connect_timeout=2)
    s3.create_bucket(Bucket="e2e-keepalive")
    sent: list[str | None] = []
    s3.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: sent.append(request.headers.get("Expect"))
    )
    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda *a, **k: real(*a, **k) - timedelta(minutes=30)
    )
    refused = client_error(lambda: s3.put_object(Bucket="e2e-keepalive", Key="big", Body=os.urandom(1 << 20)))
    assert refused["Error"]["Code"] == "RequestTimeTooSkewed"
    assert refused["ResponseMetadata"]["HTTPHeaders"]["x-sigwatch-origin"] == "proxy"
    monkeypatch.undo()
    s3.put_object(Bucket="e2e-keepalive", Key="after", Body=b"the clock is right again")
    assert s3.get_object(Bucket="e2e-keepalive", Key="after")["Body"].read() == b"the clock is right again"
    assert sent[0] in (b"100-continue", "100-continue")
