"""The benchmark harness of issue 9: sigwatch against its peers in one run, one table, one JSON file.

    .venv/bin/python -m tests.benchmarks.harness [--duration 10] [--runs 3] [--contenders a,b] ...
    make bench                       # installs wrk, nginx-light, mitmproxy, py-spy first

Set-up (everything on 127.0.0.1, every process started here is stopped here, the whole run is bounded
by --max-minutes):
- A fixed upstream, the same for every contender: nginx (one worker, fixed bodies from `return`) when
  installed, else an aiohttp low-level server. A 200 ListGateways answer of ~100 bytes; a 400 Storage
  Gateway error (`InvalidGatewayRequestException` / `GatewayNotFound`) for DescribeGatewayInformation.
- Contenders, one at a time, pinned to CPU 0 (`taskset -c 0`); the load generator, the upstream and
  this harness share CPU 1: direct (no proxy: the ceiling), aiohttp's server with the leanest httptools
  client (what any proxy on aiohttp's server pays at least, tests/benchmarks/floor_proxy.py; not a
  proxy), a bare aiohttp streaming proxy (pooled ClientSession, no checks: the issue's "floor any aiohttp
  proxy pays", tests/benchmarks/bare_proxy.py), sigwatch observe and enforce (every check on,
  signatures really verified with the key of the credentials file, metrics on, JSON logs to a file),
  nginx proxy_pass with a keep-alive pool, and mitmdump in reverse mode, when installed.
- Load: wrk (one thread, lua/signed.lua replaying SigV4 requests botocore signed just before each run;
  every --error-every-th request is the failing call), a warm-up, --runs runs of --duration seconds,
  the median reported; then a concurrency-1 run for the latency floor. Without wrk, an asyncio load
  generator stands in (and the table says so).
- CPU per request: utime + stime of the contender's processes (/proc/<pid>/stat) over a run ÷ requests.
- `--workers 2` against `--workers 1`: nothing pinned (the proxy, wrk and nginx share both cores). The
  load side's CPU per request (wrk's rusage + the upstream's /proc time) gives the ratio two shared
  cores allow at best (`machine_bound`), printed beside the measured one.
- 1 GiB transfers (aiohttp upstream that reads every byte): an aws-chunked upload signed chunk by chunk
  and a download, direct, through the bare proxy and through sigwatch in enforce mode (payload
  verified); throughput, and the proxy's peak RSS (VmHWM, reset just before each transfer).
- The micro-benchmarks of tools/ (verification, classification, metrics + log line), and a py-spy
  profile of sigwatch under load with its top costs.
Results: printed, and written to tests/benchmarks/results/<UTC timestamp>.json (git-ignored), next to
a folder of the same name with the profile (speedscope) and the processes' outputs.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script rather than with -m
    sys.path.insert(0, str(REPO))

from tests.benchmarks import processes as procs  # noqa: E402
from tests.benchmarks.load import WRK, LoadResult, run_python_load, run_wrk  # noqa: E402
from tests.benchmarks.micro import run_micro  # noqa: E402
from tests.benchmarks.profiling import BENCH_VENV, py_spy, start_py_spy, stop_py_spy, summarize  # noqa: E402
from tests.benchmarks.signing import (  # noqa: E402
    chunked_upload,
    credentials_file,
    describe_gateway,
    list_gateways,
    rotation,
    s3_get,
    write_lua_requests,
)
from tests.benchmarks.transfers import Answer, download, exchange, upload  # noqa: E402
from tests.benchmarks.upstreams import (  # noqa: E402
    DOWNLOAD_PATH,
    ERROR_BODY,
    OK_BODY,
    nginx_proxy_config,
    nginx_upstream_config,
)

RESULTS = Path(__file__).resolve().parent / "results"
DIRECT, FLOOR, BARE, OBSERVE, ENFORCE, NGINX, MITM = (
    "direct",
    "aiohttp-floor",
    "bare-aiohttp",
    "sigwatch-observe",
    "sigwatch-enforce",
    "nginx",
    "mitmproxy",
)
CONTENDERS = (DIRECT, FLOOR, BARE, OBSERVE, ENFORCE, NGINX, MITM)
UPLOAD_PATH = "/bench-bucket/uploaded-object"
MB = 1_000_000
GiB = 1 << 30


def _nginx() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _mitmdump() -> str | None:
    candidate = BENCH_VENV / "bin" / "mitmdump"
    return str(candidate) if candidate.exists() else shutil.which("mitmdump")


def _child_env() -> dict[str, str]:
    """The environment of the processes started here: no SIGWATCH_* or AWS_* settings leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("SIGWATCH_", "AWS_"))}


@dataclass
class Running:
    """A contender ready to take load: its port and, unless direct, its process."""

    name: str
    port: int
    service: procs.Service | None
    sigwatch: bool = False
    admin_port: int | None = None

    def pids(self) -> list[int]:
        return self.service.tree() if self.service is not None else []

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


@dataclass
class Options:
    duration: float
    runs: int
    warmup: float
    connections: int
    c1_duration: float
    error_every: int
    contenders: list[str]
    loadgen: str
    upstream: str
    transfer_bytes: int
    chunk_size: int
    transfers: bool
    workers: bool
    profile: bool
    profile_requests: int
    micro: bool
    quick: bool
    keep_logs: bool
    results: Path
    max_minutes: float
    max_foreign_cpu: float
    retries: int


@dataclass
class Bench:
    options: Options
    run_dir: Path
    stamp: str
    env: dict[str, str] = field(default_factory=_child_env)
    upstream_port: int = 0
    upstream_kind: str = ""
    upstream_service: procs.Service | None = None
    report: dict[str, Any] = field(default_factory=dict)

    # -- set-up --------------------------------------------------------------------------------------

    @property
    def use_wrk(self) -> bool:
        return self.options.loadgen == "wrk" or (self.options.loadgen == "auto" and WRK is not None)

    def start_upstream(self, kind: str, cpus: str | None) -> tuple[procs.Service, str]:
        """The fixed upstream: nginx, or the aiohttp server (also the transfers' upstream)."""
        port = procs.free_port()
        nginx = _nginx()
        if kind == "nginx" and nginx is not None:
            prefix = self.run_dir / f"nginx-upstream-{port}"
            prefix.mkdir(parents=True)
            conf = prefix / "nginx.conf"
            conf.write_text(nginx_upstream_config(prefix, port))
            service = procs.start(
                "upstream",
                [nginx, "-p", str(prefix), "-c", str(conf)],
                port,
                cpus=cpus,
                output=prefix / "output.log",
                env=self.env,
            )
            description = f"nginx {_version([nginx, '-v'])} (1 worker, fixed bodies from `return`)"
        else:
            downloads = ("--download-bytes", str(self.options.transfer_bytes))
            service = procs.start(
                "upstream",
                [sys.executable, "-m", "tests.benchmarks.upstreams", "--port", str(port), *downloads],
                port,
                cpus=cpus,
                output=self.run_dir / f"aiohttp-upstream-{port}.log",
                env=self.env,
            )
            description = "aiohttp low-level server (tests/benchmarks/upstreams.py, uvloop)"
        procs.wait_for_port(port, service.process, timeout=20)
        return service, description

    def start_contender(
        self, name: str, upstream_port: int, *, cpus: str | None, workers: int = 1, tag: str = ""
    ) -> Running:
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        if name == DIRECT:
            return Running(name, upstream_port, None)
        port = procs.free_port()
        output = self.run_dir / f"{name}{tag}-{port}.log"
        if name in (BARE, FLOOR):
            module = "tests.benchmarks.bare_proxy" if name == BARE else "tests.benchmarks.floor_proxy"
            command = [sys.executable, "-m", module, "--port", str(port)]
            service = procs.start(
                name, [*command, "--upstream", upstream_url], port, cpus=cpus, output=output, env=self.env
            )
            procs.wait_for_port(port, service.process, timeout=30)
            return Running(name, port, service)
        if name in (OBSERVE, ENFORCE):
            admin = procs.free_port()
            credentials = credentials_file(self.run_dir / "credentials")
            command = [sys.executable, "-m", "proxy", "run", "--listen", f"127.0.0.1:{port}"]
            command += ["--admin", f"127.0.0.1:{admin}", "--upstream", upstream_url]
            command += [
                "--mode",
                "observe" if name == OBSERVE else "enforce",
                "--credentials",
                str(credentials),
            ]
            command += ["--log-format", "json", "--workers", str(workers)]
            service = procs.start(name, command, port, cpus=cpus, output=output, env=self.env)
            procs.wait_for_url(f"http://127.0.0.1:{admin}/readyz", service.process, timeout=60)
            procs.wait_for_port(port, service.process, timeout=10)
            return Running(name, port, service, sigwatch=True, admin_port=admin)
        if name == NGINX:
            nginx = _nginx()
            assert nginx is not None
            prefix = self.run_dir / f"nginx-proxy-{port}"
            prefix.mkdir(parents=True)
            conf = prefix / "nginx.conf"
            conf.write_text(nginx_proxy_config(prefix, port, upstream_port))
            service = procs.start(
                name, [nginx, "-p", str(prefix), "-c", str(conf)], port, cpus=cpus, output=output
            )
            procs.wait_for_port(port, service.process, timeout=20)
            return Running(name, port, service)
        if name == MITM:
            mitmdump = _mitmdump()
            assert mitmdump is not None
            command = [mitmdump, "--mode", f"reverse:{upstream_url}", "--listen-host", "127.0.0.1"]
            command += ["-p", str(port), "-q", "--set", f"confdir={self.run_dir / 'mitmproxy'}"]
            service = procs.start(name, command, port, cpus=cpus, output=output, env=self.env)
            procs.wait_for_port(port, service.process, timeout=60)
            return Running(name, port, service)
        raise ValueError(f"unknown contender {name!r}")

    def available(self, name: str) -> str | None:
        """Why a contender cannot run here, or None."""
        if name == NGINX and _nginx() is None:
            return "nginx is not installed (.ci/install-bench-tools.sh installs nginx-light)"
        if name == MITM and _mitmdump() is None:
            return "mitmdump is not installed (.ci/install-bench-tools.sh installs it in .venv-bench)"
        return None

    # -- checks and load -------------------------------------------------------------------------------

    def check(self, running: Running) -> dict[str, Any]:
        """One request of each kind before the load: the answers are the upstream's, and sigwatch
        really verified the signature and classified the error."""
        host = f"127.0.0.1:{running.port}"
        ok = exchange(running.port, list_gateways(host))
        failed = exchange(running.port, describe_gateway(host))
        problems = []
        if (ok.status, ok.body) != (200, OK_BODY):
            problems.append(f"ListGateways answered {ok.status} {ok.body[:200]!r}")
        if (failed.status, failed.body) != (400, ERROR_BODY):
            problems.append(f"DescribeGatewayInformation answered {failed.status} {failed.body[:200]!r}")
        if running.sigwatch:
            if ok.header("x-sigwatch-signature") != "valid":
                problems.append(f"signature state {ok.header('x-sigwatch-signature')!r}, not 'valid'")
            if ok.header("x-sigwatch-findings"):
                problems.append(f"findings on a clean request: {ok.header('x-sigwatch-findings')}")
            if not failed.header("x-sigwatch-error"):
                problems.append("the upstream error was not classified (no x-sigwatch-error)")
        return {
            "ok": not problems,
            "problems": problems,
            "signature": ok.header("x-sigwatch-signature"),
            "error_class": failed.header("x-sigwatch-error-class"),
            "error": failed.header("x-sigwatch-error"),
        }

    def load(
        self,
        running: Running,
        *,
        connections: int,
        duration: float,
        max_requests: int = 0,
        cpus: str | None = None,
    ) -> LoadResult:
        """Sign the rotation now, run the load, and charge the contender's CPU time to the run.

        The machine is shared: whatever CPU time the machine spent beyond the contender, the upstream,
        the harness and wrk is noted as `foreign_cpus` (in CPUs), so a disturbed run can be redone.
        """
        requests = rotation(f"127.0.0.1:{running.port}", self.options.error_every)
        pids = running.pids()
        upstream_pids = self.upstream_service.tree() if self.upstream_service is not None else []
        before, upstream_before, busy_before, harness_before = (
            procs.cpu_seconds(pids),
            procs.cpu_seconds(upstream_pids),
            procs.machine_busy_seconds(),
            procs.harness_seconds(),
        )
        started = time.monotonic()
        if self.use_wrk:
            lua = write_lua_requests(self.run_dir / f"requests-{running.port}.lua", requests)
            result = run_wrk(
                running.port,
                lua,
                connections=connections,
                duration=duration,
                max_requests=max_requests,
                cpus=cpus,
            )
        else:
            wires = [r.wire() for r in requests]
            result = run_python_load(running.port, wires, connections=connections, duration=duration)
        contender = procs.cpu_seconds(pids) - before
        upstream = procs.cpu_seconds(upstream_pids) - upstream_before
        if pids:
            result.cpu_s = contender
        if result.load_cpu_s is not None:  # wrk's own; add the upstream's
            result.load_cpu_s += upstream
        foreign = (
            procs.machine_busy_seconds()
            - busy_before
            - contender
            - upstream
            - (procs.harness_seconds() - harness_before)
        )
        result.foreign_cpus = max(0.0, foreign) / max(1e-3, time.monotonic() - started)
        return result

    def quiet_load(self, running: Running, discarded: list[LoadResult], **kwargs: Any) -> LoadResult:
        """A load run, redone (up to --retries times per phase) while other processes of the machine
        used more than --max-foreign-cpu CPUs during it."""
        while True:
            result = self.load(running, **kwargs)
            foreign = result.foreign_cpus or 0.0
            if foreign <= self.options.max_foreign_cpu or len(discarded) >= self.options.retries:
                return result
            print(f"    run redone: other processes used {foreign:.2f} CPUs meanwhile", flush=True)
            discarded.append(result)

    def measure(self, contenders: list[Running], *, cpus: str | None = None) -> dict[str, dict[str, Any]]:
        """Warm-up, the runs (median reported), then the concurrency-1 runs, of all contenders at once.

        The runs are interleaved (round 1 of every contender, then round 2, ...) so that other work on
        the shared machine falls on every contender alike rather than on whichever ran at a bad time.
        """
        o = self.options
        discarded: dict[str, list[LoadResult]] = {r.name: [] for r in contenders}
        runs: dict[str, list[LoadResult]] = {r.name: [] for r in contenders}
        c1: dict[str, LoadResult | None] = {r.name: None for r in contenders}
        if o.warmup > 0:
            for running in contenders:
                self.load(running, connections=o.connections, duration=o.warmup, cpus=cpus)
        for round_number in range(o.runs):
            print(f"    round {round_number + 1}/{o.runs}", flush=True)
            for running in contenders:
                runs[running.name].append(
                    self.quiet_load(
                        running,
                        discarded[running.name],
                        connections=o.connections,
                        duration=o.duration,
                        cpus=cpus,
                    )
                )
        if o.c1_duration > 0:
            print("    concurrency 1", flush=True)
            for running in contenders:
                c1[running.name] = self.quiet_load(
                    running, discarded[running.name], connections=1, duration=o.c1_duration, cpus=cpus
                )
        return {name: self._summary(runs[name], c1[name], discarded[name]) for name in runs}

    def _summary(
        self, runs: list[LoadResult], c1: LoadResult | None, discarded: list[LoadResult]
    ) -> dict[str, Any]:
        o = self.options
        cpu = [r.cpu_us_per_request for r in runs if r.cpu_us_per_request is not None]
        load_cpu = [r.load_cpu_us_per_request for r in runs if r.load_cpu_us_per_request is not None]
        utilisation = [r.cpu_s / r.duration_s for r in runs if r.cpu_s is not None]
        # wrk counts each 400 as a "status" error: one request in --error-every is the failing call
        expected_errors = sum(r.requests for r in runs) / o.error_every if o.error_every > 0 else 0
        return {
            "runs": [r.as_json() for r in runs],
            "rps": statistics.median(r.rps for r in runs),
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "cpu_us_per_request": statistics.median(cpu) if cpu else None,
            "load_cpu_us_per_request": statistics.median(load_cpu) if load_cpu else None,
            "cpu_utilisation": statistics.median(utilisation) if utilisation else None,
            "status_errors": sum(r.errors.get("status", 0) for r in runs),
            "status_errors_expected": round(expected_errors),
            "other_errors": sum(v for r in runs for k, v in r.errors.items() if k != "status"),
            "c1": c1.as_json() if c1 is not None else None,
            "foreign_cpus_max": max((r.foreign_cpus or 0.0) for r in [*runs, *([c1] if c1 else [])]),
            "discarded_runs": [r.as_json() for r in discarded],
        }

    # -- phases ------------------------------------------------------------------------------------------

    def run_table(self) -> None:
        """Start every available contender (each idle on CPU 0 until its turn), check it, measure all."""
        rows: dict[str, Any] = {}
        self.report["contenders"] = rows
        started: list[Running] = []
        try:
            for name in self.options.contenders:
                why = self.available(name)
                if why is not None:
                    rows[name] = {"skipped": why}
                    print(f"  {name}: skipped: {why}", flush=True)
                    continue
                print(f"  {name}: starting", flush=True)
                running = self.start_contender(name, self.upstream_port, cpus=str(procs.PROXY_CPU))
                checked = self.check(running)
                if not checked["ok"]:
                    running.stop()
                    rows[name] = {
                        "skipped": "check failed: " + "; ".join(checked["problems"]),
                        "check": checked,
                    }
                    print(f"  {name}: CHECK FAILED: {checked['problems']}", flush=True)
                    continue
                rows[name] = {"check": checked}
                started.append(running)
            for name, row in self.measure(started, cpus=str(procs.LOAD_CPU)).items():
                rows[name].update(row)
        finally:
            for running in started:
                running.stop()
        for running in started:
            row = rows[running.name]
            if running.sigwatch:
                row.update(self._log_figures(running))
            figures = f"{row['rps']:.0f} rps, p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms"
            print(
                f"  {running.name}: {figures} ({len(row['discarded_runs'])} disturbed runs redone)",
                flush=True,
            )
        self._ratios(rows)

    def _log_figures(self, running: Running) -> dict[str, Any]:
        """sigwatch's JSON log: one line per request (counted), then the file goes unless --keep-logs."""
        assert running.service is not None and running.service.output is not None
        path = running.service.output
        lines = requests = 0
        size = path.stat().st_size
        with path.open("rb") as log:
            for line in log:
                lines += 1
                requests += b'"event":"request"' in line
        if not self.options.keep_logs:
            path.unlink()
        return {"log_lines": lines, "log_request_lines": requests, "log_bytes": size}

    def _ratios(self, rows: dict[str, Any]) -> None:
        def figure(name: str, key: str) -> float | None:
            row = rows.get(name) or {}
            if key == "c1_p50_ms":
                return (row.get("c1") or {}).get("p50_ms")
            value = row.get(key)
            return float(value) if value is not None else None

        bare_rps, direct_rps, bare_c1 = figure(BARE, "rps"), figure(DIRECT, "rps"), figure(BARE, "c1_p50_ms")
        for row in rows.values():
            if "rps" not in row:
                continue
            row["x_bare"] = row["rps"] / bare_rps if bare_rps else None
            row["x_direct"] = row["rps"] / direct_rps if direct_rps else None
            c1 = (row.get("c1") or {}).get("p50_ms")
            row["c1_p50_x_bare"] = c1 / bare_c1 if c1 and bare_c1 else None

    def run_workers(self) -> None:
        """sigwatch observe with --workers 1, then 2; nothing pinned: proxy, wrk and nginx share 2 cores."""
        both = "0,1" if procs.CPU_COUNT >= 2 else None
        assert self.upstream_service is not None
        upstream_pids = self.upstream_service.tree()
        procs.set_affinity(upstream_pids, set(range(procs.CPU_COUNT)))
        result: dict[str, Any] = {
            "setup": (
                "sigwatch observe (all checks, metrics, JSON logs to a file) with --workers 1 and 2, runs "
                "interleaved; nothing pinned: sigwatch, wrk (1 thread) and the upstream share both cores, so "
                "the load generator competes with the workers; connections, duration and runs as in the table"
            )
        }
        started: list[Running] = []
        try:
            for workers in (1, 2):
                print(f"  --workers {workers}: starting", flush=True)
                running = self.start_contender(
                    OBSERVE, self.upstream_port, cpus=both, workers=workers, tag=f"-w{workers}"
                )
                running.name = f"workers_{workers}"
                started.append(running)
                result[running.name] = {"check": self.check(running), "processes": len(running.pids())}
            for name, row in self.measure(started, cpus=both).items():
                result[name].update(row)
        finally:
            for running in started:
                running.stop()
            procs.set_affinity(upstream_pids, {procs.LOAD_CPU})
        for running in started:
            result[running.name].update(self._log_figures(running))
            print(f"  --workers {running.name[-1]}: {result[running.name]['rps']:.0f} rps", flush=True)
        one, two = result["workers_1"]["rps"], result["workers_2"]["rps"]
        result["ratio"] = two / one if one else None
        # The ratio above is bounded by the machine, not by sigwatch: wrk and the upstream run on the same
        # two cores. --workers 1 is one process, so it runs at 1 / (its CPU per request); --workers 2 can
        # at best share 2 CPUs with the load side: 2 / (sigwatch's + the load side's CPU per request).
        # The load side's share grows as sigwatch gets cheaper (at ~6k rps wrk and nginx each cost ~20 us
        # a request: little batching), so a faster sigwatch lowers this bound. `machine_bound` is that
        # ratio from the figures measured in these runs, and `scaling_at_equal_cpu` (2 x the CPU per
        # request ratio) what --workers 2 would give with a core each: a second worker should not make a
        # request dearer.
        cpu_one = result["workers_1"].get("cpu_us_per_request")
        cpu_two = result["workers_2"].get("cpu_us_per_request")
        load_two = result["workers_2"].get("load_cpu_us_per_request")
        result["scaling_at_equal_cpu"] = 2 * cpu_one / cpu_two if cpu_one and cpu_two else None
        bound = 2 * cpu_one / (cpu_two + load_two) if cpu_one and cpu_two and load_two else None
        machine_bound = result["machine_bound"] = min(2.0, bound) if bound else None
        result["ratio_of_machine_bound"] = (
            result["ratio"] / machine_bound if machine_bound and result["ratio"] else None
        )
        self.report["workers"] = result

    def run_transfers(self) -> None:
        """1 GiB aws-chunked upload and 1 GiB download: direct, bare proxy, sigwatch enforce."""
        o = self.options
        upstream, description = self.start_upstream("aiohttp", str(procs.LOAD_CPU))
        result: dict[str, Any] = {
            "bytes": o.transfer_bytes,
            "chunk_size": o.chunk_size,
            "upstream": description + ": reads every byte of an upload before answering",
            "client": "raw socket, scatter-gather sends of each signed chunk (tests/benchmarks/transfers.py)",
        }
        try:
            for name in (DIRECT, BARE, ENFORCE):
                print(f"  transfers through {name}", flush=True)
                running = self.start_contender(
                    name, upstream.port, cpus=str(procs.PROXY_CPU), tag="-transfer"
                )
                try:
                    result[name] = self._transfer(running)
                    if running.sigwatch:
                        result["refused_bad_chunk"] = self._refusal(running)
                finally:
                    running.stop()
                if running.sigwatch:
                    result[name].update(self._log_figures(running))
        finally:
            upstream.stop()
        direct = result[DIRECT]
        for name in (BARE, ENFORCE):
            for kind in ("upload", "download"):
                mine, base = result[name][kind], direct[kind]
                mine["x_direct"] = mine["mib_per_s"] / base["mib_per_s"] if base["mib_per_s"] else None
        self.report["transfers"] = result

    def _transfer(self, running: Running) -> dict[str, Any]:
        o = self.options
        host = f"127.0.0.1:{running.port}"
        pid = running.service.pid if running.service is not None else None
        figures: dict[str, Any] = {}
        if pid is not None:
            figures["rss_idle_mb"] = (procs.status_kib(pid, "VmRSS") or 0) * 1024 / MB
            figures["peak_rss_since_start_mb"] = (procs.status_kib(pid, "VmHWM") or 0) * 1024 / MB

        def timed(kind: str, action: Callable[[], Answer]) -> dict[str, Any]:
            """`o.runs` transfers; the median one's figures, every run's seconds and the highest peak RSS
            (a single 1 GiB transfer lasts about a second: one run alone swings by 10% here)."""
            answers: list[Answer] = []
            peaks: list[float] = []
            reset = False
            for _ in range(max(1, o.runs)):
                reset = procs.reset_peak_rss(pid) if pid is not None else False
                answers.append(action())
                if pid is not None:
                    peaks.append((procs.status_kib(pid, "VmHWM") or 0) * 1024 / MB)
            answer = sorted(answers, key=lambda a: a.seconds)[len(answers) // 2]
            entry: dict[str, Any] = {
                "status": answer.status,
                "statuses": [a.status for a in answers],
                "bytes": answer.body_bytes if kind == "download" else o.transfer_bytes,
                "seconds": answer.seconds,
                "runs_seconds": [a.seconds for a in answers],
                "mib_per_s": o.transfer_bytes / (1 << 20) / answer.seconds,
                "signature": answer.header("x-sigwatch-signature"),
                "findings": answer.header("x-sigwatch-findings"),
                "notes": answer.notes,
            }
            if pid is not None:
                entry["peak_rss_mb"] = max(peaks)
                entry["peak_rss_reset"] = reset
            return entry

        body = chunked_upload(host, UPLOAD_PATH, o.transfer_bytes, o.chunk_size)
        figures["upload"] = timed("upload", lambda: upload(running.port, body))
        request = s3_get(host, DOWNLOAD_PATH)
        figures["download"] = timed("download", lambda: download(running.port, request))
        return figures

    def _refusal(self, running: Running) -> dict[str, Any]:
        """Proof the payload is verified: enforce mode refuses an upload with one bad chunk signature."""
        host = f"127.0.0.1:{running.port}"
        bad = chunked_upload(host, UPLOAD_PATH, 1 << 20, self.options.chunk_size, corrupt_chunk=3)
        answer = upload(running.port, bad)
        return {
            "status": answer.status,
            "origin": answer.header("x-sigwatch-origin"),
            "body": answer.body[:300].decode(errors="replace"),
            "refused": answer.status >= 400 and answer.header("x-sigwatch-origin") == "proxy",
        }

    def run_profile(self) -> None:
        """py-spy on sigwatch observe (pinned to CPU 0) for a fixed number of requests under wrk."""
        if py_spy() is None or not self.use_wrk:
            self.report["profile"] = {"skipped": "needs py-spy and wrk (.ci/install-bench-tools.sh)"}
            return
        o = self.options
        running = self.start_contender(OBSERVE, self.upstream_port, cpus=str(procs.PROXY_CPU), tag="-profile")
        output = self.run_dir / "sigwatch-observe.speedscope.json"
        try:
            self.load(
                running, connections=o.connections, duration=max(1.0, o.warmup), cpus=str(procs.LOAD_CPU)
            )
            assert running.service is not None
            spy = start_py_spy(running.service.pid, output)
            time.sleep(1.0)  # py-spy attaches
            # wrk's threads stop at the request count, but wrk itself runs for its whole -d: size -d from
            # the rps measured above (sampling slows sigwatch down), py-spy records no idle samples.
            measured = (self.report.get("contenders", {}).get(OBSERVE) or {}).get("rps") or 500.0
            result = self.load(
                running,
                connections=o.connections,
                duration=min(300.0, 2.0 * o.profile_requests / measured + 3.0),
                max_requests=o.profile_requests,
                cpus=str(procs.LOAD_CPU),
            )
            spy_output = stop_py_spy(spy)
        finally:
            running.stop()
        self._log_figures(running)
        if not output.exists():
            self.report["profile"] = {"skipped": f"py-spy wrote nothing: {spy_output[-1000:]}"}
            return
        summary = summarize(output)
        summary.update(
            {
                "requests": result.requests,
                "rps_while_profiled": result.rps,
                "speedscope": str(output.relative_to(REPO) if output.is_relative_to(REPO) else output),
                "sampler": "py-spy record --rate 250 (pauses the process per sample: whole stacks)",
            }
        )
        self.report["profile"] = summary

    # -- reporting ---------------------------------------------------------------------------------------

    def targets(self) -> list[dict[str, Any]]:
        rows = self.report.get("contenders", {})
        observe = rows.get(OBSERVE, {})
        mitm = rows.get(MITM, {})
        transfers = self.report.get("transfers", {})
        enforce_upload = (transfers.get(ENFORCE) or {}).get("upload", {})
        workers = self.report.get("workers", {})
        micro = (self.report.get("micro") or {}).get("figures", {})
        mitm_ratio = observe["rps"] / mitm["rps"] if observe.get("rps") and mitm.get("rps") else None
        upload_peak = enforce_upload.get("peak_rss_mb")
        size = f"{self.options.transfer_bytes / GiB:g} GiB"
        checks: list[tuple[str, float | None, str, float]] = [
            ("sigwatch observe rps ÷ bare aiohttp rps", observe.get("x_bare"), "≥", 0.8),
            ("sigwatch observe rps ÷ mitmproxy rps", mitm_ratio, "≥", 8.0),
            ("sigwatch observe c1 p50 ÷ bare aiohttp c1 p50", observe.get("c1_p50_x_bare"), "≤", 1.2),
            (f"{size} aws-chunked upload: sigwatch peak RSS (MB)", upload_peak, "≤", 80.0),
            (f"{size} aws-chunked upload: throughput ÷ direct", enforce_upload.get("x_direct"), "≥", 0.5),
            ("--workers 2 rps ÷ --workers 1 rps", workers.get("ratio"), "≥", 1.7),
            ("SigV4 verification µs (warm key cache)", micro.get("verification_us"), "≤", 20.0),
            ("classification of an error body µs", micro.get("classification_us"), "≤", 5.0),
            ("metrics + one log line µs", micro.get("metrics_log_us"), "≤", 15.0),
        ]
        out = []
        for name, value, op, limit in checks:
            met = None if value is None else (value >= limit if op == "≥" else value <= limit)
            out.append({"target": name, "value": value, "op": op, "limit": limit, "met": met})
        return out

    def print_report(self) -> None:
        rows = self.report.get("contenders", {})
        print()
        print(f"upstream: {self.report['upstream']}")
        print(f"load: {self.report['load']}")
        header = (
            f"{'contender':18} {'rps':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU µs/req':>11} "
            f"{'×bare':>6} {'×direct':>8} {'c1 p50 ms':>10} {'c1 ×bare':>9}"
        )
        print(header)
        print("-" * len(header))
        for name, row in rows.items():
            if "rps" not in row:
                print(f"{name:18} skipped: {row.get('skipped')}")
                continue
            c1 = row.get("c1") or {}
            print(
                f"{name:18} {row['rps']:9.0f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f} "
                f"{_fmt(row.get('cpu_us_per_request'), '11.1f')} {_fmt(row.get('x_bare'), '6.2f')} "
                f"{_fmt(row.get('x_direct'), '8.3f')} {_fmt(c1.get('p50_ms'), '10.3f')} "
                f"{_fmt(row.get('c1_p50_x_bare'), '9.2f')}"
            )
        workers = self.report.get("workers")
        if workers:
            print()
            print(f"workers ({workers['setup']}):")
            for key in ("workers_1", "workers_2"):
                row = workers[key]
                print(
                    f"  {key.replace('_', ' '):10} {row['rps']:9.0f} rps  p50 {row['p50_ms']:.2f} ms  "
                    f"CPU {_fmt(row.get('cpu_us_per_request'), '.1f')} µs/req  "
                    f"load side (wrk + upstream) {_fmt(row.get('load_cpu_us_per_request'), '.1f')} µs/req  "
                    f"processes {row['processes']}"
                )
            ratio = _fmt(workers.get("ratio"), ".2f")
            equal_cpu = _fmt(workers.get("scaling_at_equal_cpu"), ".2f")
            bound = _fmt(workers.get("machine_bound"), ".2f")
            print(
                f"  ratio {ratio}; what 2 shared cores allow with that load side: {bound}; "
                f"a core each, from the CPU per request: {equal_cpu}"
            )
        transfers = self.report.get("transfers")
        if transfers:
            print()
            print(f"transfers of {transfers['bytes'] / GiB:.3g} GiB ({transfers['upstream']}):")
            for name in (DIRECT, BARE, ENFORCE):
                t = transfers[name]
                up, down = t["upload"], t["download"]
                print(f"  {name:18} idle RSS {_fmt(t.get('rss_idle_mb'), '.1f')} MB")
                for kind, entry in (("upload", up), ("download", down)):
                    print(
                        f"    {kind:8} {entry['mib_per_s']:7.0f} MiB/s  status {entry['status']}  "
                        f"×direct {_fmt(entry.get('x_direct'), '.2f')}  "
                        f"peak RSS {_fmt(entry.get('peak_rss_mb'), '.1f')} MB  "
                        f"(median of {len(entry.get('runs_seconds', [1]))})"
                    )
            refused = transfers.get("refused_bad_chunk")
            if refused:
                verdict = f"{refused['status']} ({refused['origin']})"
                print(f"  payload verification: a bad chunk signature → {verdict}")
        micro = self.report.get("micro")
        if micro:
            print()
            print("micro-benchmarks (tools/bench_*.py, pinned to the proxy's CPU):")
            for name in ("bench_verify", "bench_classify", "bench_observe"):
                print(f"  $ tools/{name}.py")
                for line in micro["raw"][name].rstrip().splitlines():
                    print(f"    {line}")
        profile = self.report.get("profile")
        if profile and "self" in profile:
            print()
            print(
                f"profile of sigwatch observe ({profile['requests']} requests, "
                f"{profile['samples']:.0f} samples, {profile['speedscope']}):"
            )
            print("  self time by area:")
            for area in profile["areas"][:12]:
                print(f"    {area['percent']:5.1f}%  {area['area']}")
            print("  top self time:")
            for entry in profile["self"][:20]:
                print(f"    {entry['percent']:5.1f}%  {entry['function']}  ({entry['file']})")
            print("  top inclusive time (sigwatch's own functions):")
            own = [e for e in profile["inclusive"] if e["file"].startswith("proxy/") and e["percent"] < 99]
            for entry in own[:15]:
                print(f"    {entry['percent']:5.1f}%  {entry['function']}  ({entry['file']})")
        elif profile:
            print(f"\nprofile: {profile.get('skipped')}")
        print()
        print("targets (issue 9):")
        for target in self.report["targets"]:
            verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
            value = _fmt(target["value"], "8.2f")
            print(f"  {target['target']:50} {value} {target['op']} {target['limit']:<5g} {verdict}")


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        width = "".join(ch for ch in spec.split(".", maxsplit=1)[0] if ch.isdigit())
        return "-".rjust(int(width) if width else 1)
    return format(value, spec)


def _version(command: list[str]) -> str:
    """`nginx -v` → 1.22.1, `wrk -v` → debian/4.1.0-3+b2 (the version word of the first line)."""
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=10)
    first = ((done.stdout + done.stderr).strip().splitlines() or [""])[0]
    if first.startswith("nginx version:"):
        return first.rsplit("/", 1)[-1]
    words = first.split()
    return words[1] if len(words) > 1 else first


def _machine() -> dict[str, Any]:
    import aiohttp

    model = ""
    with contextlib.suppress(OSError):
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    try:
        import uvloop

        loop = f"uvloop {getattr(uvloop, '__version__', '?')}"
    except ImportError:
        loop = "asyncio"
    return {
        "cpus": procs.CPU_COUNT,
        "cpu_model": model,
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "event_loop": loop,
        "pinning": procs.PINNING,
        "load_average": os.getloadavg(),
    }


def _git() -> dict[str, Any]:
    """Which code was measured: the commit, and the files changed in the working tree (other people's
    work in progress runs too, since sigwatch is started from the tree)."""

    def git(*arguments: str) -> str:
        done = subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.rstrip("\n")  # porcelain lines start with a status column that may be a space

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return {"commit": git("rev-parse", "HEAD"), "changed_files": changed}


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=""
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per contender (default 3)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds before the runs")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--c1-duration", type=float, help="concurrency-1 run seconds (default: --duration)")
    parser.add_argument(
        "--error-every",
        type=int,
        default=10,
        help="every Nth request is the failing call (0: none; default 10)",
    )
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated subset, in order")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--upstream", choices=["auto", "nginx", "aiohttp"], default="auto")
    parser.add_argument("--transfer-bytes", type=int, default=GiB, help="size of the upload and download")
    parser.add_argument("--chunk-size", type=int, default=64 * 1024, help="aws-chunked chunk size (64 KiB)")
    parser.add_argument("--no-transfers", action="store_true")
    parser.add_argument("--no-workers", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-micro", action="store_true")
    parser.add_argument(
        "--profile-requests", type=int, default=30000, help="requests profiled (default 30000)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 run of 1 s, no warm-up, 8 connections, small transfers, no workers/profile/micro",
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep sigwatch's JSON logs in the results folder"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON and the run folder go")
    parser.add_argument("--max-minutes", type=float, default=45.0, help="the whole run stops after this")
    parser.add_argument(
        "--max-foreign-cpu",
        type=float,
        default=0.15,
        help="redo a run during which other processes used more than this many CPUs (default 0.15)",
    )
    parser.add_argument("--retries", type=int, default=3, help="most runs redone per contender (default 3)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.runs, args.warmup, args.connections = 1.0, 1, 0.0, 8
        args.transfer_bytes = min(args.transfer_bytes, 4 << 20)
        args.no_workers = args.no_profile = args.no_micro = True
    contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = set(contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {', '.join(CONTENDERS)}")
    if args.loadgen == "wrk" and WRK is None:
        parser.error("wrk is not installed (.ci/install-bench-tools.sh installs it)")
    upstream = args.upstream
    if upstream == "auto":
        upstream = "nginx" if _nginx() is not None else "aiohttp"
    return Options(
        duration=args.duration,
        runs=args.runs,
        warmup=args.warmup,
        connections=args.connections,
        c1_duration=args.duration if args.c1_duration is None else args.c1_duration,
        error_every=args.error_every,
        contenders=contenders,
        loadgen=args.loadgen,
        upstream=upstream,
        transfer_bytes=args.transfer_bytes,
        chunk_size=args.chunk_size,
        transfers=not args.no_transfers,
        workers=not args.no_workers,
        profile=not args.no_profile,
        profile_requests=args.profile_requests,
        micro=not args.no_micro,
        quick=args.quick,
        keep_logs=args.keep_logs,
        results=args.results,
        max_minutes=args.max_minutes,
        max_foreign_cpu=args.max_foreign_cpu,
        retries=args.retries,
    )


def _deadline(_signum: int, _frame: FrameType | None) -> None:
    raise TimeoutError("the benchmark ran past --max-minutes")


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = options.results / stamp
    run_dir.mkdir(parents=True)
    bench = Bench(options, run_dir, stamp)
    atexit.register(procs.stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGALRM, _deadline)
    signal.alarm(max(1, int(options.max_minutes * 60)))
    pinned = procs.pin_harness()
    started = time.monotonic()
    report = bench.report
    report.update(
        {
            "started": stamp,
            "machine": _machine(),
            "git": _git(),
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(options).items()},
            "pinning": (
                f"contender on CPU {procs.PROXY_CPU} (taskset); load generator, upstream and harness on CPU "
                f"{procs.LOAD_CPU}"
                if pinned
                else "none (needs 2 CPUs and taskset)"
            ),
        }
    )
    if bench.use_wrk:
        report["load"] = (
            f"wrk {_version([WRK or 'wrk', '-v'])}, 1 thread, {options.connections} "
            f"connections, warm-up {options.warmup:g} s, {options.runs} × {options.duration:g} s (median), "
            f"c1 {options.c1_duration:g} s; 1 request in {options.error_every} fails upstream (400)"
        )
    else:
        report["load"] = (
            f"Python asyncio load generator (wrk missing or not chosen), "
            f"{options.connections} connections, {options.runs} × {options.duration:g} s; "
            f"1 request in {options.error_every} fails upstream (400)"
        )
    status = 0
    try:
        print(f"benchmark {stamp}: {report['pinning']}", flush=True)
        bench.upstream_service, report["upstream"] = bench.start_upstream(
            options.upstream, str(procs.LOAD_CPU)
        )
        bench.upstream_port = bench.upstream_service.port
        print("contenders:", flush=True)
        bench.run_table()
        if options.workers:
            bench.run_workers()
        bench.upstream_service.stop()
        if options.transfers:
            bench.run_transfers()
        if options.profile:
            print("profile:", flush=True)
            bench.upstream_service, _ = bench.start_upstream(options.upstream, str(procs.LOAD_CPU))
            bench.upstream_port = bench.upstream_service.port
            bench.run_profile()
            bench.upstream_service.stop()
        if options.micro:
            print("micro-benchmarks:", flush=True)
            report["micro"] = run_micro(quick=options.quick)
    except BaseException as exc:
        report["error"] = f"{type(exc).__name__}: {exc}"
        print(f"benchmark stopped: {report['error']}", file=sys.stderr, flush=True)
        status = 1
        if not isinstance(exc, Exception):
            raise
    finally:
        signal.alarm(0)
        procs.stop_all()
        report["seconds"] = round(time.monotonic() - started, 1)
        report["targets"] = bench.targets()
        path = options.results / f"{stamp}.json"
        path.write_text(json.dumps(report, indent=2, default=str))
        if "contenders" in report:
            bench.print_report()
        print(f"\nwritten: {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
