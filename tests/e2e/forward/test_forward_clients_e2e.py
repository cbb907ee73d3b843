"""The AWS CLI and curl, as developers run them: through sigwatch with http_proxy / https_proxy set."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_KEY_ID, EXAMPLE_SECRET, LogSink
from tests.functional.forward.conftest import (
    PROXY_VARIABLES,
    StartEmulator,
    StartSigwatch,
    TlsMaterial,
    request_lines,
)
from tests.support.sigwatch import proxy_url

pytestmark = pytest.mark.e2e

AWS = Path(sys.executable).parent / "aws"
MISSING_GATEWAY = "arn:aws:storagegateway:us-east-1:111122223333:gateway/sgw-12A3456B"


def client_environment(home: Path, **variables: str) -> dict[str, str]:
    """A clean environment: temp AWS config and credentials, no proxy or CA setting but `variables`."""
    (home / ".aws").mkdir(parents=True, exist_ok=True)
    credentials = home / ".aws" / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {EXAMPLE_KEY_ID}\naws_secret_access_key = {EXAMPLE_SECRET}\n"
    )
    config = home / ".aws" / "config"
    config.write_text("[default]\nregion = us-east-1\nmax_attempts = 1\n")
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES and not k.startswith("AWS_")}
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        **variables,
    )
    return env


async def run(*command: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_aws_cli_through_http_proxy(
    start_emulator: StartEmulator, start_sigwatch: StartSigwatch, tmp_path: Path, logs: LogSink
) -> None:
    emulator = await start_emulator()
    server = await start_sigwatch()
    env = client_environment(tmp_path, HTTP_PROXY=proxy_url(server))
    sg = (str(AWS), "storagegateway", "--endpoint-url", emulator.url, "--output", "json")

    status, out, err = await run(*sg, "list-gateways", env=env)
    assert status == 0, err
    assert json.loads(out)["Gateways"] == []
    status, out, err = await run(
        *sg, "describe-gateway-information", "--gateway-arn", MISSING_GATEWAY, env=env
    )
    assert status != 0
    assert "InvalidGatewayRequestException" in err

    listed, missing = request_lines(logs, kind="forward")
    assert (listed["operation"], listed["status"], listed["sigv4"]) == ("ListGateways", 200, "valid")
    assert listed["user_agent"].startswith("aws-cli/")
    assert (missing["operation"], missing["status"]) == ("DescribeGatewayInformation", 400)
    assert missing["error"]["exception"] == "InvalidGatewayRequestException"
    assert missing["error"]["operation_error"] == "GatewayNotFound"


async def test_aws_cli_through_https_proxy_with_interception(
    *,
    start_emulator: StartEmulator,
    start_sigwatch: StartSigwatch,
    test_tls: TlsMaterial,
    clean_environment: Path,
    tmp_path: Path,
    logs: LogSink,
) -> None:
    emulator = await start_emulator(ssl_context=test_tls.server_context)
    server = await start_sigwatch(forward={"intercept": True, "ca_bundle": str(test_tls.ca_file)})
    env = client_environment(
        tmp_path / "home",
        HTTPS_PROXY=proxy_url(server),
        AWS_CA_BUNDLE=str(clean_environment / "sigwatch-ca.pem"),
    )
    status, out, err = await run(
        str(AWS), "storagegateway", "list-gateways", "--endpoint-url", emulator.url, env=env
    )
    assert status == 0, err
    assert json.loads(out)["Gateways"] == []
    (line,) = request_lines(logs, kind="forward")
    assert (line["operation"], line["sigv4"], line["target_host"]) == (
        "ListGateways",
        "valid",
        f"127.0.0.1:{emulator.port}",
    )


def curl_or_skip() -> str:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed on this machine")
    return curl


def curl_sigv4(curl: str, url: str, *extra: str) -> list[str]:
    """curl signing a Storage Gateway ListGateways call itself (--aws-sigv4, curl >= 7.75)."""
    return [
        curl, "-sS", "--max-time", "20", "-i", *extra,
        "--aws-sigv4", "aws:amz:us-east-1:storagegateway", "--user", f"{EXAMPLE_KEY_ID}:{EXAMPLE_SECRET}",
        "-H", "Content-Type: application/x-amz-json-1.1",
        "-H", "X-Amz-Target: StorageGateway_20130630.ListGateways",
        "--data", "{}", url,
    ]  # fmt: skip


async def test_curl_through_http_proxy(
    start_emulator: StartEmulator, start_sigwatch: StartSigwatch, tmp_path: Path, logs: LogSink
) -> None:
    curl = curl_or_skip()
    emulator = await start_emulator()
    server = await start_sigwatch()
    env = client_environment(tmp_path, http_proxy=proxy_url(server))
    status, out, err = await run(*curl_sigv4(curl, emulator.url + "/"), env=env)
    assert status == 0, err
    head, _, body = out.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200")
    assert "x-sigwatch-signature: valid" in head.lower()
    assert json.loads(body) == {"Gateways": []}
    (line,) = request_lines(logs, kind="forward")
    assert (line["operation"], line["sigv4"]) == ("ListGateways", "valid")
    assert line["user_agent"].startswith("curl/")

    # Outside the allowlist: 403, and nothing is sent anywhere.
    status, out, _ = await run(curl, "-sS", "-i", "http://example.com/", env=env)
    assert out.startswith("HTTP/1.1 403")
    assert "x-sigwatch-origin: proxy" in out.lower()


async def test_curl_through_https_proxy_trusting_the_ca(
    *,
    start_emulator: StartEmulator,
    start_sigwatch: StartSigwatch,
    test_tls: TlsMaterial,
    clean_environment: Path,
    tmp_path: Path,
    logs: LogSink,
) -> None:
    curl = curl_or_skip()
    emulator = await start_emulator(ssl_context=test_tls.server_context)
    server = await start_sigwatch(forward={"intercept": True, "ca_bundle": str(test_tls.ca_file)})
    env = client_environment(tmp_path, https_proxy=proxy_url(server))
    cacert = ("--cacert", str(clean_environment / "sigwatch-ca.pem"))
    status, out, err = await run(*curl_sigv4(curl, emulator.url + "/", *cacert), env=env)
    assert status == 0, err
    # curl -i shows the proxy's CONNECT answer, then the intercepted call's.
    assert out.startswith("HTTP/1.1 200 Connection Established")
    assert "x-sigwatch-signature: valid" in out.lower()
    (line,) = request_lines(logs, kind="forward")
    assert (line["operation"], line["sigv4"]) == ("ListGateways", "valid")
