"""The AWS CLI against the emulator (served from a background thread on 127.0.0.1), with the shipped
example credentials file: a Storage Gateway activation, a listing, a documented error, and S3 calls."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from proxy.emulator import EmulatorSettings, build_emulator_app

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
AWS = Path(sys.executable).with_name("aws")


class BackgroundEmulator:
    """The emulator on its own event loop in a daemon thread; stopped by close()."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> str:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        return f"http://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self.runner = web.AppRunner(build_emulator_app(EmulatorSettings()))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    def close(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    emulator = BackgroundEmulator()
    try:
        yield emulator.start()
    finally:
        emulator.close()


@pytest.fixture(scope="module")
def cli_environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not AWS.exists():
        pytest.skip(f"the AWS CLI is not installed next to {sys.executable}")
    config = tmp_path_factory.mktemp("aws") / "config"
    config.write_text("[profile sigwatch-demo]\nregion = us-east-1\noutput = json\n")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment.update(
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(REPO / "config" / "emulator-credentials"),
        AWS_PROFILE="sigwatch-demo",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
    )
    return environment


def aws(environment: dict[str, str], endpoint: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AWS), *arguments, "--endpoint-url", endpoint],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_storagegateway_with_the_aws_cli(endpoint: str, cli_environment: dict[str, str]) -> None:
    activated = aws(
        cli_environment,
        endpoint,
        "storagegateway",
        "activate-gateway",
        "--activation-key",
        "CLI01-CLI02-CLI03-CLI04-CLI05",
        "--gateway-name",
        "cli-gateway",
        "--gateway-timezone",
        "GMT",
        "--gateway-region",
        "us-east-1",
        "--gateway-type",
        "CACHED",
    )
    assert activated.returncode == 0, activated.stderr
    arn = json.loads(activated.stdout)["GatewayARN"]
    listed = aws(cli_environment, endpoint, "storagegateway", "list-gateways")
    assert listed.returncode == 0, listed.stderr
    assert [g["GatewayARN"] for g in json.loads(listed.stdout)["Gateways"]] == [arn]
    missing = aws(
        cli_environment,
        endpoint,
        "storagegateway",
        "describe-gateway-information",
        "--gateway-arn",
        arn.replace(arn.rsplit("/", 1)[1], "sgw-00000000"),
    )
    assert missing.returncode == 255  # AWS CLI v1: a service error exits with 255
    assert "(InvalidGatewayRequestException)" in missing.stderr
    assert "The specified gateway was not found." in missing.stderr


def test_s3_with_the_aws_cli(endpoint: str, cli_environment: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "upload.txt"
    source.write_text("uploaded by the AWS CLI\n")
    made = aws(cli_environment, endpoint, "s3", "mb", "s3://cli-bucket")
    assert made.returncode == 0, made.stderr
    copied = aws(cli_environment, endpoint, "s3", "cp", str(source), "s3://cli-bucket/dir/upload.txt")
    assert copied.returncode == 0, copied.stderr
    listed = aws(cli_environment, endpoint, "s3api", "list-objects-v2", "--bucket", "cli-bucket")
    assert [o["Key"] for o in json.loads(listed.stdout)["Contents"]] == ["dir/upload.txt"]
    missing = aws(cli_environment, endpoint, "s3api", "head-bucket", "--bucket", "no-such-cli-bucket")
    assert missing.returncode == 255 and "(404)" in missing.stderr
