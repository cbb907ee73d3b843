"""The emulator authenticates as AWS does (the proxy's verifier, enforce mode): a wrong secret, an
unknown key, a skewed clock and a missing Authorization get the authentic errors through botocore."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from botocore import UNSIGNED
from emulator_functional_support import EXAMPLE_KEY_ID, boto_client, client_error

WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGSECRET"


def calls(url: str, **client_options: Any) -> dict[str, dict[str, Any]]:
    sg = boto_client("storagegateway", url, **client_options)
    s3 = boto_client("s3", url, **client_options)
    return {
        "storagegateway": client_error(sg.list_gateways),
        "s3": client_error(s3.list_buckets),
    }


def summary(response: dict[str, Any]) -> tuple[str, int]:
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


async def test_wrong_secret(emulator: Any) -> None:
    errors = await asyncio.to_thread(calls, emulator.url, secret=WRONG_SECRET)
    assert summary(errors["storagegateway"]) == ("InvalidSignatureException", 400)
    assert errors["storagegateway"]["Error"]["Message"].startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    s3 = errors["s3"]
    assert summary(s3) == ("SignatureDoesNotMatch", 403)
    assert s3["Error"]["AWSAccessKeyId"] == EXAMPLE_KEY_ID
    assert s3["Error"]["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert "CanonicalRequest" in s3["Error"]


async def test_unknown_access_key(emulator: Any) -> None:
    errors = await asyncio.to_thread(calls, emulator.url, key_id="AKIAUNKNOWNKEY000000")
    assert summary(errors["storagegateway"]) == ("UnrecognizedClientException", 400)
    assert (
        errors["storagegateway"]["Error"]["Message"]
        == "The security token included in the request is invalid."
    )
    assert summary(errors["s3"]) == ("InvalidAccessKeyId", 403)


@pytest.mark.parametrize("minutes", [20, -20])
async def test_skewed_clock(start_emulator: Any, minutes: int) -> None:
    """The emulator's clock is 20 minutes off the client's: outside AWS's 15-minute window."""
    emulator = await start_emulator()
    emulator.clock.offset = timedelta(minutes=minutes)
    errors = await asyncio.to_thread(calls, emulator.url)
    assert summary(errors["storagegateway"]) == ("InvalidSignatureException", 400)
    expected = "Signature expired: " if minutes > 0 else "Signature not yet current: "
    assert errors["storagegateway"]["Error"]["Message"].startswith(expected)
    s3 = errors["s3"]
    assert summary(s3) == ("RequestTimeTooSkewed", 403)
    assert s3["Error"]["MaxAllowedSkewMilliseconds"] == "900000"


async def test_skew_inside_the_window_is_accepted(start_emulator: Any) -> None:
    emulator = await start_emulator()
    emulator.clock.offset = timedelta(minutes=7)
    listed = await asyncio.to_thread(lambda: boto_client("storagegateway", emulator.url).list_gateways())
    assert listed["Gateways"] == []


async def test_missing_authorization(emulator: Any) -> None:
    errors = await asyncio.to_thread(calls, emulator.url, signature_version=UNSIGNED)
    assert summary(errors["storagegateway"]) == ("MissingAuthenticationTokenException", 400)
    assert summary(errors["s3"]) == ("AccessDenied", 403)


async def test_authentication_can_be_turned_off(start_emulator: Any) -> None:
    emulator = await start_emulator(authenticate=False)
    listed = await asyncio.to_thread(
        lambda: boto_client("storagegateway", emulator.url, secret=WRONG_SECRET).list_gateways()
    )
    assert listed["Gateways"] == []
