"""A running sigwatch (ProxyServer on ephemeral ports) in front of a real aiohttp upstream app."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from proxy.server.runtime import ProxyServer
from tests.support.sigwatch import admin_url, proxy_url, start_in_process

__all__ = ["Recorder", "Seen", "StartProxy", "admin_url", "proxy_url", "raw_exchange", "record_request"]


@dataclass
class Seen:
    """What the upstream received, exactly."""

    raw_path: str
    raw_headers: list[tuple[str, str]]
    body_sha256: str
    body_size: int


@dataclass
class Recorder:
    seen: list[Seen] = field(default_factory=list)


async def record_request(request: web.BaseRequest, recorder: Recorder) -> Seen:
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.content.iter_chunked(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    seen = Seen(
        raw_path=request.raw_path,
        raw_headers=[(k.decode(), v.decode()) for k, v in request.raw_headers],
        body_sha256=digest.hexdigest(),
        body_size=size,
    )
    recorder.seen.append(seen)
    return seen


StartProxy = Callable[..., Awaitable[ProxyServer]]


@pytest.fixture
async def start_proxy() -> AsyncIterator[StartProxy]:
    """Start sigwatch in front of `upstream` with config overrides ({section: {key: value}})."""
    servers: list[ProxyServer] = []

    async def start(upstream_url: str, /, **sections: dict[str, Any]) -> ProxyServer:
        server = await start_in_process(upstream_url, **sections)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop(grace=1.0)


async def raw_exchange(server: ProxyServer, data: bytes, *, read_timeout: float = 5.0) -> bytes:
    """Send raw bytes to the proxy and read until it closes (or the timeout)."""
    assert server.proxy_address is not None
    reader, writer = await asyncio.open_connection(*server.proxy_address)
    writer.write(data)
    await writer.drain()
    chunks = []
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), read_timeout)
            if not chunk:
                break
            chunks.append(chunk)
    except TimeoutError:
        pass
    writer.close()
    return b"".join(chunks)
