"""HTTPS_PROXY with interception: boto3 trusts sigwatch's CA (AWS_CA_BUNDLE), sigwatch terminates TLS,
checks and classifies each call, and forwards it over TLS to the emulator (verified with the test CA)."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import hashlib
import ssl
from pathlib import Path
from typing import Any

import botocore.auth
import pytest
from botocore.exceptions import ClientError

from tests.conftest import LogSink
from tests.functional.forward.conftest import (
    WRONG_SECRET,
    StartEmulator,
    StartSigwatch,
    TlsMaterial,
    boto_client,
    finding_checks,
    request_lines,
    wait_for_lines,
)
from tests.support.sigwatch import proxy_url

ACTIVATION_KEY = "AB1CD-EF2GH-IJ3KL-MN4OP-QR5ST"


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    code = str(caught.value.response["Error"]["Code"])
    # The exception's traceback holds the connection of the failed call out of the client's pool:
    # release it, so that the client closes it with the others instead of leaving it to idle out.
    del caught
    gc.collect()
    return code


async def test_boto3_calls_through_https_proxy_are_checked_classified_and_forwarded(
    *,
    start_emulator: StartEmulator,
    start_sigwatch: StartSigwatch,
    test_tls: TlsMaterial,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogSink,
) -> None:
    emulator = await start_emulator(ssl_context=test_tls.server_context)
    server = await start_sigwatch(forward={"intercept": True, "ca_bundle": str(test_tls.ca_file)})
    sigwatch_ca = clean_environment / "sigwatch-ca.pem"
    assert sigwatch_ca.is_file()  # made on first use, at start-up
    monkeypatch.setenv("HTTPS_PROXY", proxy_url(server))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(sigwatch_ca))

    def calls() -> dict[str, Any]:
        sg = boto_client("storagegateway", emulator.url)
        arn = sg.activate_gateway(
            ActivationKey=ACTIVATION_KEY,
            GatewayName="through-sigwatch",
            GatewayTimezone="GMT",
            GatewayRegion="us-east-1",
            GatewayType="STORED",
        )["GatewayARN"]
        listed = sg.list_gateways()
        missing = error_code(
            lambda: sg.describe_gateway_information(GatewayARN=arn.rsplit("/", 1)[0] + "/sgw-00000000")
        )
        sg.close()
        return {"arn": arn, "listed": listed, "missing": missing}

    result = await asyncio.to_thread(calls)

    # The calls succeeded end to end, and the client saw sigwatch's annotations (it could read them
    # only because sigwatch terminated the TLS the client opened).
    assert [g["GatewayARN"] for g in result["listed"]["Gateways"]] == [result["arn"]]
    headers = result["listed"]["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-sigwatch-signature"] == "valid"
    assert result["missing"] == "InvalidGatewayRequestException"

    lines = request_lines(logs, kind="forward")
    assert [line["operation"] for line in lines] == [
        "ActivateGateway",
        "ListGateways",
        "DescribeGatewayInformation",
    ]
    for line in lines:
        assert line["service"] == "storagegateway"
        assert line["target_host"] == f"127.0.0.1:{emulator.port}"
        assert line["sigv4"] == "valid"
        assert line["access_key_id"] == "AKIAIOSFODNN7EXAMPLE"
    assert [line["status"] for line in lines] == [200, 200, 400]
    error = lines[2]["error"]
    assert error["exception"] == "InvalidGatewayRequestException"
    assert error["operation_error"] == "GatewayNotFound"
    assert error["fault"] == "client"
    # An intercepted tunnel is logged through its requests only.
    assert request_lines(logs, method="CONNECT") == []
    assert request_lines(logs, kind="tunnel") == []


async def test_skewed_and_badly_signed_calls_are_flagged(
    *,
    start_emulator: StartEmulator,
    start_sigwatch: StartSigwatch,
    test_tls: TlsMaterial,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogSink,
) -> None:
    emulator = await start_emulator(ssl_context=test_tls.server_context)
    server = await start_sigwatch(forward={"intercept": True, "ca_bundle": str(test_tls.ca_file)})
    monkeypatch.setenv("HTTPS_PROXY", proxy_url(server))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(clean_environment / "sigwatch-ca.pem"))

    def bad_signature() -> str:
        return error_code(boto_client("storagegateway", emulator.url, secret=WRONG_SECRET).list_gateways)

    assert await asyncio.to_thread(bad_signature) == "InvalidSignatureException"

    # A client whose clock is 20 minutes behind: outside AWS's 15-minute window.
    behind = dt.timedelta(minutes=20)
    real_now = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: real_now(*a, **k) - behind)

    def skewed() -> str:
        return error_code(boto_client("storagegateway", emulator.url).list_gateways)

    skewed_code = await asyncio.to_thread(skewed)
    assert skewed_code in {"InvalidSignatureException", "RequestTimeTooSkewed"}

    # sigwatch knows the real secret: it says the signature is wrong, and shows the canonical request.
    mismatch, skew = request_lines(logs, kind="forward")
    assert (mismatch["operation"], mismatch["sigv4"]) == ("ListGateways", "invalid")
    assert "signature.verify" in finding_checks(mismatch)
    assert "canonical_request" in mismatch["findings"][0]["debug"]
    assert mismatch["error"]["exception"] == "InvalidSignatureException"
    assert mismatch["error"]["category"] == "authentication"
    # The skewed call is signed correctly, but 20 minutes late.
    assert skew["sigv4"] == "valid"
    assert -1260 < skew["skew_seconds"] < -1140
    assert "clock.window" in finding_checks(skew)
    assert skew["error"]["exception"] == skewed_code


async def test_a_client_that_does_not_trust_the_ca_is_told_how(
    start_emulator: StartEmulator,
    start_sigwatch: StartSigwatch,
    test_tls: TlsMaterial,
    logs: LogSink,
) -> None:
    emulator = await start_emulator(ssl_context=test_tls.server_context)
    server = await start_sigwatch(forward={"intercept": True, "ca_bundle": str(test_tls.ca_file)})
    assert server.proxy_address is not None
    reader, writer = await asyncio.open_connection(*server.proxy_address)
    writer.write(
        f"CONNECT 127.0.0.1:{emulator.port} HTTP/1.1\r\nHost: 127.0.0.1:{emulator.port}\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 Connection Established\r\n")
    # This client trusts only the emulator's CA, not sigwatch's: it refuses the handshake.
    with pytest.raises(ssl.SSLCertVerificationError):
        await writer.start_tls(test_tls.client_context(), server_hostname="127.0.0.1")
    writer.close()
    (line,) = await wait_for_lines(logs, kind="tunnel")
    assert line["target_host"] == f"127.0.0.1:{emulator.port}"
    (finding,) = line["findings"]
    assert finding["check"] == "tls"
    assert "sigwatch ca" in finding["explanation"]
    assert "AWS_CA_BUNDLE" in finding["explanation"]


async def test_large_s3_bodies_stream_both_ways_through_interception(
    *,
    start_emulator: StartEmulator,
    start_sigwatch: StartSigwatch,
    test_tls: TlsMaterial,
    clean_environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogSink,
) -> None:
    emulator = await start_emulator(ssl_context=test_tls.server_context)
    server = await start_sigwatch(forward={"intercept": True, "ca_bundle": str(test_tls.ca_file)})
    monkeypatch.setenv("HTTPS_PROXY", proxy_url(server))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(clean_environment / "sigwatch-ca.pem"))
    body = hashlib.sha256(b"seed").digest() * (12 * 1024 * 1024 // 32)  # 12 MiB

    def round_trip() -> bytes:
        s3 = boto_client("s3", emulator.url)
        s3.create_bucket(Bucket="big")
        s3.put_object(Bucket="big", Key="blob", Body=body)
        data: bytes = s3.get_object(Bucket="big", Key="blob")["Body"].read()
        s3.close()
        return data

    assert hashlib.sha256(await asyncio.to_thread(round_trip)).digest() == hashlib.sha256(body).digest()
    put, get = request_lines(logs, kind="forward")[1:]
    assert (put["operation"], put["sigv4"]) == ("PutObject", "valid")
    assert put["bytes_in"] >= len(body)  # botocore may frame it as aws-chunked with a checksum trailer
    assert (get["operation"], get["bytes_out"]) == ("GetObject", len(body))
