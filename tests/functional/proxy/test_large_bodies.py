"""200 MiB each way through a real `sigwatch run` process: byte-exact, with bounded proxy memory."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.sigwatch import SigwatchProcess

SIZE = 200 * 1024 * 1024
BLOCK = hashlib.sha256(b"sigwatch").digest() * 2048  # 64 KiB, not all one byte


def body_blocks() -> Iterator[bytes]:
    for index in range(SIZE // len(BLOCK)):
        yield index.to_bytes(8, "big") + BLOCK[8:]


def expected_sha256() -> str:
    digest = hashlib.sha256()
    for block in body_blocks():
        digest.update(block)
    return digest.hexdigest()


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest.fixture
async def sigwatch_process(
    aiohttp_raw_server: Any, tmp_path: Path
) -> AsyncIterator[tuple[str, int, dict[str, str]]]:
    received: dict[str, str] = {}

    async def upstream(request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "PUT":
            digest = hashlib.sha256()
            async for chunk in request.content.iter_chunked(1 << 20):
                digest.update(chunk)
            received["sha256"] = digest.hexdigest()
            return web.Response(text="stored")
        response = web.StreamResponse(headers={"Content-Length": str(SIZE)})
        await response.prepare(request)
        for block in body_blocks():
            await response.write(block)
        await response.write_eof()
        return response

    server = await aiohttp_raw_server(upstream)
    upstream_url = str(server.make_url("")).rstrip("/")
    process = SigwatchProcess(["run", "--upstream", upstream_url, "--log-format", "json"], tmp_path)
    # The upstream runs on this test's loop: start and stop the process without blocking it.
    await asyncio.to_thread(process.__enter__)
    try:
        yield process.url, process.pid, received
    finally:
        await asyncio.to_thread(process.stop)


@pytest.mark.slow
async def test_200_mib_each_way_byte_exact_with_bounded_memory(
    sigwatch_process: tuple[str, int, dict[str, str]],
) -> None:
    url, pid, received = sigwatch_process
    expected = expected_sha256()
    baseline = rss_kib(pid, "VmRSS")

    async def upload() -> AsyncIterator[bytes]:
        for block in body_blocks():
            yield block

    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.put(
            url + "/bucket/big-object",
            data=upload(),
            headers={"Content-Length": str(SIZE), "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
        ) as response:
            assert response.status == 200, await response.text()
        assert received["sha256"] == expected

        digest = hashlib.sha256()
        size = 0
        async with session.get(url + "/bucket/big-object") as response:
            assert response.status == 200
            async for chunk in response.content.iter_chunked(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        assert size == SIZE
        assert digest.hexdigest() == expected

    peak = rss_kib(pid, "VmHWM")
    print(f"proxy RSS: baseline {baseline} KiB, peak {peak} KiB after {2 * SIZE >> 20} MiB")
    # 400 MiB moved; the proxy's peak resident memory grew by far less than one body.
    assert peak - baseline < 64 * 1024, f"peak {peak} KiB vs baseline {baseline} KiB"
