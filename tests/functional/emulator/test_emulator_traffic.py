"""The demo traffic generator sends its realistic mix to the emulator: successes, not-found errors,
throttling, a skewed client (accepted at 7 minutes, rejected at 20) and a bad signature."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import orjson
from aiohttp import web

from proxy.emulator import EXAMPLE_CREDENTIAL, run_demo_traffic

REQUESTS = 250


def error_code(response: web.Response) -> str | None:
    body = response.body if isinstance(response.body, bytes) else b""
    if response.status < 300:
        return None
    if body.startswith(b"{"):
        document = orjson.loads(body)
        return str(document.get("error", {}).get("errorCode") or document["__type"])
    found = re.search(rb"<Code>([^<]+)</Code>", body)
    return found.group(1).decode() if found else str(response.status)


async def test_demo_traffic_mix(start_emulator: Any) -> None:
    seen: Counter[str] = Counter()
    messages: list[str] = []
    stop = asyncio.Event()

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        assert isinstance(response, web.Response)
        code = error_code(response)
        seen[code or "OK"] += 1
        if code == "InvalidSignatureException":
            messages.append(orjson.loads(response.body)["message"])  # type: ignore[arg-type]
        if sum(seen.values()) >= REQUESTS:
            stop.set()
        return response

    emulator = await start_emulator(middlewares=(record,))
    await asyncio.wait_for(
        run_demo_traffic(
            emulator.url, EXAMPLE_CREDENTIAL, duration=None, rate_per_second=2000, seed=3, stop=stop
        ),
        timeout=60,
    )
    assert seen["OK"] > REQUESTS / 3
    for code in ("GatewayNotFound", "VolumeNotFound", "NoSuchKey", "ThrottlingException", "SlowDown"):
        assert seen[code] > 0, (code, seen)
    assert any(message.startswith("Signature expired: ") for message in messages), messages
    assert any(
        message.startswith("The request signature we calculated does not match") for message in messages
    )
    state = emulator.state
    assert len(state.storagegateway.gateways) == 1 and len(state.storagegateway.volumes) == 1
    (bucket,) = state.s3.buckets.values()
    assert bucket.name.startswith("sigwatch-demo-") and bucket.objects


async def test_demo_traffic_stops_after_its_duration(emulator: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await run_demo_traffic(
        emulator.url, EXAMPLE_CREDENTIAL, duration=0.3, rate_per_second=50, seed=1, stop=stop
    )
    assert loop.time() - started < 30  # it returned by itself
    assert emulator.state.storagegateway.gateways
