"""A running sigwatch (ProxyServer, in process): its live /metrics pass promtool, and every kind of
log line it writes has the keys of the log schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from observability_support import EXAMPLE_KEY_ID, promtool_check_metrics

from proxy.core.model import Credential
from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.traffic import run_demo_traffic
from proxy.observability.logs import COMMON_KEYS, REQUIRED_KEYS
from proxy.server.demo import start_emulator
from proxy.server.runtime import ProxyServer
from tests.support.net import free_port
from tests.support.sigwatch import start_in_process

EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CREDENTIALS = {EXAMPLE_KEY_ID: Credential(EXAMPLE_KEY_ID, EXAMPLE_SECRET)}


closed_port = free_port  # nothing listens on a port just freed
start_sigwatch = start_in_process


def url(address: tuple[str, int] | None) -> str:
    assert address is not None
    return f"http://{address[0]}:{address[1]}"


@pytest.fixture
async def demo_sigwatch() -> AsyncIterator[ProxyServer]:
    """sigwatch (enforce mode) in front of the emulator, after a burst of the demo's traffic mix."""
    runner, emulator_url = await start_emulator(
        EmulatorSettings(credentials=dict(CREDENTIALS)), "127.0.0.1:0"
    )
    server = await start_sigwatch(emulator_url, validation={"mode": "enforce"})
    try:
        credential = CREDENTIALS[EXAMPLE_KEY_ID]
        await run_demo_traffic(
            url(server.proxy_address),
            credential,
            duration=2.0,
            rate_per_second=60,
            seed=7,
            stop=asyncio.Event(),
        )
        yield server
    finally:
        await server.stop(grace=1.0)
        await runner.cleanup()


async def test_live_metrics_endpoint_passes_promtool_check_metrics(demo_sigwatch: ProxyServer) -> None:
    metrics_url = url(demo_sigwatch.admin_address) + "/metrics"
    async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        exposition = await response.read()
    text = exposition.decode()
    # the demo mix reached every kind of metric
    for family in (
        "sigwatch_requests_total",
        "sigwatch_upstream_errors_total",
        "sigwatch_validation_findings_total",
        "sigwatch_rejections_total",
        "sigwatch_signature_verifications_total",
        "sigwatch_clock_skew_seconds_bucket",
        "sigwatch_request_body_bytes_total",
    ):
        assert f"\n{family}{{" in text, family
    assert promtool_check_metrics(exposition) == ""


async def test_every_line_kind_has_the_keys_of_the_log_schema(logs: Any) -> None:
    """started, upstream_down, request, header_timeout, shutdown and stopped, from a real server."""
    server = await start_sigwatch(f"http://127.0.0.1:{closed_port()}", limits={"header_timeout": 0.3})
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url(server.proxy_address) + "/",
            data=b"{}",
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "StorageGateway_20130630.ListGateways",
            },
        ) as response,
    ):
        assert response.status == 502
    assert server.proxy_address is not None
    reader, writer = await asyncio.open_connection(*server.proxy_address)
    writer.write(b"POST / HTTP/1.1\r\nHost: example.com\r\n")  # and never the end of the head
    await writer.drain()
    await asyncio.wait_for(reader.read(), timeout=5)  # the listener gives up and closes
    writer.close()
    await server.stop(grace=1.0)

    events = logs.events()
    kinds = [event["event"] for event in events]
    for kind, required in REQUIRED_KEYS.items():
        if kind == "upstream_reachable":
            continue  # the upstream never answers here
        lines = [event for event in events if event["event"] == kind]
        assert lines, f"no {kind!r} line among {kinds}"
        for line in lines:
            assert required <= set(line), f"{kind} line misses {sorted(required - set(line))}"
    for event in events:
        assert set(event) >= COMMON_KEYS
        assert list(event)[:3] == ["time", "level", "event"]
    assert kinds.count("request") == 1
