"""`sigwatch run --workers 2`: connections spread over both workers, /metrics counts each request once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.functional.proxy.test_forwarding import free_port

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
    port, admin = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "run",
            "--workers",
            "2",
            "--listen",
            f"127.0.0.1:{port}",
            "--admin",
            f"127.0.0.1:{admin}",
            "--upstream",
            str(server.make_url("")).rstrip("/"),
            "--log-format",
            "json",
        ],
        # Files, not pipes: a pipe nobody reads fills up and blocks the workers' log writes.
        stdout=(tmp_path / "stdout").open("wb"),
        stderr=(tmp_path / "stderr").open("wb"),
        env={**os.environ, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"http://127.0.0.1:{admin}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("workers never became ready")
            workers = children_of(process.pid)
            workers = [
                pid
                for pid in workers
                if "sigwatch" in Path(f"/proc/{pid}/cmdline").read_text()
                or "multiprocessing" in Path(f"/proc/{pid}/cmdline").read_text()
            ]
            assert len(workers) >= 2, workers

            # A fresh connection per request, so the kernel's SO_REUSEPORT balancing is exercised.
            connector_free = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(connector=connector_free) as fresh:

                async def one(index: int) -> int:
                    async with fresh.get(f"http://127.0.0.1:{port}/item/{index}") as response:
                        await response.read()
                        return response.status

                statuses = await asyncio.gather(*(one(i) for i in range(REQUESTS)))
            assert statuses == [200] * REQUESTS

            inode_ports = local_ports_by_inode()
            served_by = {
                pid: {inode_ports[i] for i in socket_inodes(pid) if i in inode_ports} for pid in workers
            }
            per_worker = {pid: sum(1 for p in peers if p in ports) for pid, ports in served_by.items()}
            assert sum(per_worker.values()) == REQUESTS, per_worker
            assert sum(1 for count in per_worker.values() if count > 0) >= 2, per_worker

            async with session.get(f"http://127.0.0.1:{admin}/metrics") as response:
                text = await response.text()
            assert sample_sum(text, "sigwatch_requests_total") == REQUESTS
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert process.returncode == 0, (tmp_path / "stderr").read_text()[-3000:]
    lines = [line for line in (tmp_path / "stdout").read_text().splitlines() if '"event":"request"' in line]
    assert len(lines) == REQUESTS  # logged exactly once each, across both workers
    assert children_of(process.pid) == []
