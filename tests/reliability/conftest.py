"""Fixtures of the reliability tests: sigwatch (the functional tests' `start_proxy`) and a recording
upstream on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.functional.proxy.conftest import start_proxy  # noqa: F401  (the fixture, re-used here)
from tests.reliability.support import Upstream


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, int]]:
    """(recorder, port): a real aiohttp low-level server that records every request it receives."""
    recorder = Upstream()
    server = web.Server(recorder.handler)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    yield recorder, port
    await runner.cleanup()


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"
