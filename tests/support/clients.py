"""boto3 clients for test endpoints, and requests botocore would not send on its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.sigwatch import EXAMPLE_KEY_ID, EXAMPLE_SECRET

REGION = "us-east-1"


def boto_client(
    service: str,
    endpoint_url: str,
    *,
    key_id: str = EXAMPLE_KEY_ID,
    secret: str = EXAMPLE_SECRET,
    verify: str | bool | None = None,
    **config: Any,
) -> Any:
    """A boto3 client aimed at `endpoint_url`: one attempt per call (each call is one request), path-style
    S3 (test endpoints are IP addresses); `verify=None` follows the environment (AWS_CA_BUNDLE)."""
    options: dict[str, Any] = {"retries": {"total_max_attempts": 1}}
    if service == "s3":
        options["s3"] = {"addressing_style": "path"}
    options.update(config)
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(**options),
        verify=verify,
    )


def client_error(call: Callable[[], Any]) -> dict[str, Any]:
    """The parsed error response botocore raises for `call` (fails when the call succeeds)."""
    try:
        call()
    except ClientError as error:
        return dict(error.response)
    raise AssertionError("the call succeeded; an error was expected")


def list_gateways_sent_as(client: Any, target: str | None, body: bytes) -> dict[str, Any]:
    """A ListGateways call whose x-amz-target (None: removed) and body are replaced before signing:
    the response of the error it gets (it must get one)."""

    def rewrite(request: Any, **_: Any) -> None:
        request.data = body
        if target is None:
            del request.headers["X-Amz-Target"]
        else:
            request.headers.replace_header("X-Amz-Target", target)

    event = "before-sign.storagegateway.ListGateways"
    client.meta.events.register_first(event, rewrite)
    try:
        return client_error(client.list_gateways)
    finally:
        client.meta.events.unregister(event, rewrite)
