"""Load generators: wrk with lua/signed.lua, and a small asyncio one for machines without wrk.

Both send the same pre-signed raw requests over keep-alive connections and return a LoadResult with
the same fields (wrk counts a non-2xx/3xx answer as a "status" error; so does the Python one).
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).resolve().parent / "lua" / "signed.lua"
WRK = shutil.which("wrk")


@dataclass
class LoadResult:
    tool: str
    connections: int
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int] = field(default_factory=dict)
    cpu_s: float | None = None  # the contender's CPU time (utime + stime) over the run
    # the load side's CPU time over the run: the load generator's own and the upstream's
    load_cpu_s: float | None = None
    # CPUs' worth of time other processes of the machine used during the run (other people's work)
    foreign_cpus: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def cpu_us_per_request(self) -> float | None:
        return _per_request(self.cpu_s, self.requests)

    @property
    def load_cpu_us_per_request(self) -> float | None:
        return _per_request(self.load_cpu_s, self.requests)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rps"] = round(self.rps, 1)
        data["cpu_us_per_request"] = self.cpu_us_per_request
        data["load_cpu_us_per_request"] = self.load_cpu_us_per_request
        return data


def _per_request(cpu_s: float | None, requests: int) -> float | None:
    return cpu_s / requests * 1e6 if cpu_s is not None and requests else None


def run_wrk(
    port: int,
    requests_file: Path,
    *,
    connections: int,
    duration: float,
    threads: int = 1,
    max_requests: int = 0,
    cpus: str | None = None,
) -> LoadResult:
    """One wrk run against 127.0.0.1:port; the figures come from the script's BENCH_JSON line."""
    assert WRK is not None
    command = [
        WRK,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        f"http://127.0.0.1:{port}/",
        "--",
        str(requests_file),
    ]
    if max_requests:
        command.append(str(max(1, max_requests // threads)))
    if cpus is not None:
        from tests.benchmarks.processes import pinned

        command = pinned(command, cpus)
    before = _children_cpu_seconds()
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=False)
    wrk_cpu = _children_cpu_seconds() - before  # wrk is the only child reaped meanwhile
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    figures = json.loads(line.removeprefix("BENCH_JSON "))
    latency = figures["latency_us"]
    return LoadResult(
        tool="wrk",
        connections=connections,
        requests=figures["requests"],
        duration_s=figures["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        errors={k: v for k, v in figures["errors"].items() if v},
        load_cpu_s=wrk_cpu,
    )


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the Python fallback -----------------------------------------------------------------------------------


async def _connection(
    port: int, requests: list[bytes], deadline: float, latencies: list[float], errors: dict[str, int]
) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        errors["connect"] = errors.get("connect", 0) + 1
        return
    turn = 0
    try:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            writer.write(requests[turn % len(requests)])
            turn += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not 200 <= status < 400:
                errors["status"] = errors.get("status", 0) + 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        errors["read"] = errors.get("read", 0) + 1
    finally:
        writer.close()


async def _python_load(port: int, requests: list[bytes], connections: int, duration: float) -> LoadResult:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    started = time.monotonic()
    deadline = started + duration
    await asyncio.gather(
        *(_connection(port, requests, deadline, latencies, errors) for _ in range(connections))
    )
    elapsed = time.monotonic() - started
    ordered = sorted(latencies) or [0.0]

    def percentile(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return LoadResult(
        tool="python",
        connections=connections,
        requests=len(latencies),
        duration_s=elapsed,
        p50_ms=statistics.median(ordered) * 1000,
        p90_ms=percentile(90),
        p99_ms=percentile(99),
        max_ms=ordered[-1] * 1000,
        errors=errors,
    )


def run_python_load(port: int, requests: list[bytes], *, connections: int, duration: float) -> LoadResult:
    """The asyncio load generator (a few thousand requests per second at most: enough for a smoke run)."""
    return asyncio.run(_python_load(port, requests, connections, duration))
