"""sigwatch as an HTTP(S) proxy: a running ProxyServer, the emulator over plain HTTP and over TLS
(test certificates from trustme), clients configured through the proxy environment variables."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp.test_utils import TestServer

from proxy.core.model import Credential
from proxy.emulator.app import build_emulator_app
from proxy.emulator.settings import EmulatorSettings
from proxy.server.runtime import ProxyServer
from tests.conftest import EXAMPLE_KEY_ID, EXAMPLE_SECRET, LogSink
from tests.support.clients import boto_client as shared_boto_client
from tests.support.sigwatch import start_in_process

REGION = "us-east-1"
WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY00"
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "AWS_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


@dataclass(frozen=True)
class TlsMaterial:
    """A throwaway CA (the emulator's "public" PKI) and the emulator's certificate for 127.0.0.1."""

    ca_file: Path  # trust this to verify the emulator
    server_context: ssl.SSLContext

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture(scope="session")
def test_tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.configure_cert(context)
    ca_file = tmp_path_factory.mktemp("trustme") / "emulator-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsMaterial(ca_file=ca_file, server_context=context)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No proxy or CA variable from the machine leaks in; sigwatch's own CA lives under tmp_path."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config_home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    return config_home / "sigwatch"


@dataclass
class Emulator:
    server: TestServer
    scheme: str

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


StartEmulator = Callable[..., Awaitable[Emulator]]


@pytest.fixture
def start_emulator(aiohttp_server: Any) -> StartEmulator:
    async def start(*, ssl_context: ssl.SSLContext | None = None) -> Emulator:
        settings = EmulatorSettings(credentials={EXAMPLE_KEY_ID: Credential(EXAMPLE_KEY_ID, EXAMPLE_SECRET)})
        server = await aiohttp_server(build_emulator_app(settings), host="127.0.0.1", ssl=ssl_context)
        return Emulator(server, "https" if ssl_context is not None else "http")

    return start


StartSigwatch = Callable[..., Awaitable[ProxyServer]]


@pytest.fixture
async def start_sigwatch(clean_environment: Path) -> AsyncIterator[StartSigwatch]:
    """sigwatch on free loopback ports with {section: {key: value}} overrides; its upstream is a
    closed port unless given (forward mode never uses it)."""
    servers: list[ProxyServer] = []

    async def start(upstream: str = "http://127.0.0.1:9", /, **sections: dict[str, Any]) -> ProxyServer:
        server = await start_in_process(upstream, **sections)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop(grace=1.0)


def boto_client(
    service: str, endpoint_url: str, *, secret: str = EXAMPLE_SECRET, verify: str | bool | None = None
) -> Any:
    """A boto3 client reading the proxy and CA variables of the environment (verify=None), no retries."""
    return shared_boto_client(service, endpoint_url, secret=secret, verify=verify)


def request_lines(logs: LogSink, **match: Any) -> list[dict[str, Any]]:
    """The `request` log lines whose fields equal `match`."""
    return [
        event
        for event in logs.events("request")
        if all(event.get(key) == value for key, value in match.items())
    ]


async def wait_for_lines(logs: LogSink, count: int = 1, **match: Any) -> list[dict[str, Any]]:
    """Wait (bounded) until `count` matching request lines exist: a tunnel is logged when it closes."""
    for _ in range(500):
        lines = request_lines(logs, **match)
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {count} request line(s) matching {match}: {logs.events('request')}")


def finding_checks(line: dict[str, Any]) -> set[str]:
    return {finding["check"] for finding in line["findings"]}


def metric_total(server: ProxyServer, name: str) -> float:
    total = 0.0
    for metric in server.registry.collect():
        for sample in metric.samples:
            if sample.name == name:
                total += sample.value
    return total
