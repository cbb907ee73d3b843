"""`sigwatch emulate` and `sigwatch demo`: the emulator alone, or emulator + proxy (+ traffic)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from proxy.config import Settings, split_address
from proxy.core.catalog import Catalogs
from proxy.core.model import Credential
from proxy.emulator.app import build_emulator_app
from proxy.emulator.faults import load_scenario
from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.traffic import run_demo_traffic
from proxy.observability.logs import get_logger
from proxy.server.runtime import ProxyServer, load_catalogs, wait_for_signal


def emulator_settings(settings: Settings, credentials: Mapping[str, Credential]) -> EmulatorSettings:
    scenario = load_scenario(Path(settings.emulator.scenario)) if settings.emulator.scenario else None
    return EmulatorSettings(credentials=dict(credentials), scenario=scenario, seed=settings.emulator.seed)


async def start_emulator(
    settings: EmulatorSettings, address: str, catalogs: Catalogs | None = None
) -> tuple[web.AppRunner, str]:
    """The emulator on `address`; `catalogs` (default: the built-in ones) are the errors it can be made to
    send, so give it the proxy's merged catalogs and every code sigwatch knows can be forced."""
    runner = web.AppRunner(build_emulator_app(settings, catalogs=catalogs), access_log=None)
    await runner.setup()
    host, port = split_address(address)
    await web.TCPSite(runner, host, port).start()
    bound = runner.addresses[0]
    return runner, f"http://{bound[0]}:{bound[1]}"


async def serve_emulator(settings: Settings, credentials: Mapping[str, Credential]) -> int:
    """`sigwatch emulate`: the emulated endpoint until SIGTERM/SIGINT."""
    logger = get_logger()
    runner, url = await start_emulator(
        emulator_settings(settings, credentials), settings.emulator.address, load_catalogs(settings)
    )
    logger.info("emulator_started", endpoint=url, keys=len(credentials))
    try:
        await wait_for_signal()
    finally:
        await runner.cleanup()
        logger.info("stopped")
    return 0


def demo_banner(proxy_url: str, metrics_url: str, emulator_url: str, credential: Credential) -> str:
    return f"""
sigwatch demo is running.

  proxy (point your client here):  {proxy_url}
  emulator (the upstream):         {emulator_url}
  metrics:                         {metrics_url}/metrics   health: {metrics_url}/healthz

  example credentials (AWS's documented example key):
    export AWS_ACCESS_KEY_ID={credential.access_key_id}
    export AWS_SECRET_ACCESS_KEY={credential.secret_access_key}
    export AWS_DEFAULT_REGION=us-east-1

  try:
    aws storagegateway list-gateways --endpoint-url {proxy_url}
    aws s3 mb s3://demo-bucket --endpoint-url {proxy_url}
    python -c "import boto3; print(boto3.client('storagegateway',
                endpoint_url='{proxy_url}').list_gateways())"

Ctrl-C stops it.
"""


def start_traffic(endpoint_url: str, credential: Credential, stop: asyncio.Event) -> asyncio.Task[None]:
    """The demo traffic generator aimed at `endpoint_url`, until `stop` is set."""
    get_logger().info("demo_traffic_started", endpoint=endpoint_url)
    return asyncio.create_task(
        run_demo_traffic(endpoint_url, credential, duration=None, rate_per_second=5.0, seed=0, stop=stop)
    )


async def serve_traffic(endpoint_url: str, credentials: Mapping[str, Credential]) -> int:
    """`sigwatch demo --endpoint-url URL`: only the traffic generator, aimed at a running proxy."""
    stop = asyncio.Event()
    generator = start_traffic(endpoint_url, next(iter(credentials.values())), stop)
    waiter = asyncio.create_task(wait_for_signal())
    await asyncio.wait({generator, waiter}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await generator
    return 0


async def serve_demo(settings: Settings, credentials: Mapping[str, Credential], *, traffic: bool) -> int:
    """`sigwatch demo`: emulator + proxy in one process (same example keys), optionally with traffic."""
    runner, emulator_url = await start_emulator(
        emulator_settings(settings, credentials), settings.emulator.address, load_catalogs(settings)
    )
    server = ProxyServer(settings, credentials)
    await server.start()
    assert server.proxy_address is not None and server.admin_address is not None
    proxy_url = "http://{}:{}".format(*server.proxy_address)
    admin_url = "http://{}:{}".format(*server.admin_address)
    example = next(iter(credentials.values()))
    # The banner is for the person at the terminal; it shows only the public example key.
    print(demo_banner(proxy_url, admin_url, emulator_url, example), flush=True)
    stop = asyncio.Event()
    generator = start_traffic(proxy_url, example, stop) if traffic else None
    try:
        await wait_for_signal()
    finally:
        stop.set()
        if generator is not None:
            generator.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await generator
        await server.stop()
        await runner.cleanup()
    return 0
