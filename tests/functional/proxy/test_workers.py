"""`sigwatch run --workers 2`: connections spread over both workers, /metrics counts each request once."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.sigwatch import SigwatchProcess

REQUESTS = 120


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return found


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def local_ports_by_inode() -> dict[str, int]:
    ports = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            ports[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    return ports


def sample_sum(metrics_text: str, name: str) -> float:
    pattern = re.compile(rf"^{name}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(metrics_text))


@pytest.mark.slow
async def test_two_workers_share_the_port_and_metrics_count_each_request_once(
    aiohttp_raw_server: Any, tmp_path: Path
) -> None:
    peers: list[int] = []

    async def upstream(request: web.BaseRequest) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        peers.append(int(peer[1]) if peer else 0)
        return web.Response(text="ok")

    server = await aiohttp_raw_server(upstream)
    upstream_url = str(server.make_url("")).rstrip("/")
    process = SigwatchProcess(
        ["run", "--workers", "2", "--upstream", upstream_url, "--log-format", "json"],
        tmp_path,
        ready_path="/readyz",  # the parent's readiness waits for every worker to listen
    )
    await asyncio.to_thread(process.__enter__)  # the upstream runs on this loop: don't block it
    try:
        workers = [
            pid
            for pid in children_of(process.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(workers) == 2, workers

        # A fresh connection per request, so the kernel's SO_REUSEPORT balancing is exercised.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:

            async def one(index: int) -> int:
                async with fresh.get(f"{process.url}/item/{index}") as response:
                    await response.read()
                    return response.status

            statuses = await asyncio.gather(*(one(i) for i in range(REQUESTS)))
        assert statuses == [200] * REQUESTS

        inode_ports = local_ports_by_inode()
        served_by = {pid: {inode_ports[i] for i in socket_inodes(pid) if i in inode_ports} for pid in workers}
        per_worker = {pid: sum(1 for p in peers if p in ports) for pid, ports in served_by.items()}
        assert sum(per_worker.values()) == REQUESTS, per_worker
        assert all(count > 0 for count in per_worker.values()), per_worker

        # A worker folds its counts into the shared files on its next loop turn when idle (every 0.5 s
        # when busy): the aggregated scrape may lag one turn, so it is polled (bounded) until it settles.
        counted = 0.0
        async with aiohttp.ClientSession() as session:
            for _ in range(50):
                async with session.get(f"{process.admin}/metrics") as response:
                    counted = sample_sum(await response.text(), "sigwatch_requests_total")
                if counted >= REQUESTS:
                    break
                await asyncio.sleep(0.1)
        assert counted == REQUESTS
    finally:
        await asyncio.to_thread(process.stop)
    assert children_of(process.pid) == []
    assert len(process.lines("request")) == REQUESTS  # logged exactly once each, across both workers
