"""Soak: sigwatch (a `sigwatch run` process, enforce mode) under mixed traffic with injected faults, on
127.0.0.1 only, for a bounded time. It reports, and checks:

- RSS of the sigwatch process at the end of the warm-up and at the end: growth at most 10 %;
- open file descriptors of the sigwatch process at rest (traffic paused, pools drained) after the
  warm-up and at the end: no growth;
- the counts agree: requests sent by the client = request lines in sigwatch's log = requests in its
  metrics (sigwatch_requests_total) = requests answered + requests the client itself abandoned.

    python -m tests.soak.soak --duration 300            (make soak; SOAK_ARGS for options)

The traffic, drawn with a seeded RNG by CONCURRENCY workers, one connection per request: signed AWS JSON
calls (valid and badly signed), S3 GETs and PUTs, signed aws-chunked uploads, an ambiguous request and
an unparseable one; upstream faults (reset before the answer, an answer cut mid-body, a stall past the
read timeout), and clients that leave mid-upload and mid-download.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from tests.conftest import EXAMPLE_KEY_ID, EXAMPLE_SECRET
from tests.reliability.signing import S3_GET, STORAGE_GATEWAY, raw_request, signed, signed_chunked_put
from tests.reliability.support import free_port, split_responses

REPO = Path(__file__).resolve().parents[2]
WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY00"
READ_TIMEOUT = 1.0
MAX_RSS_GROWTH = 0.10


# -- the upstream: a real aiohttp app that fails on request ---------------------------------------------


async def upstream_handler(request: web.BaseRequest) -> web.StreamResponse:
    with contextlib.suppress(Exception):
        await request.read()
    path = request.path
    if path.startswith("/fault/reset"):
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)
    if path.startswith("/fault/slow"):
        await asyncio.sleep(READ_TIMEOUT * 2)
        return web.Response(text="late")
    if path.startswith("/fault/midbody"):
        response = web.StreamResponse()
        response.content_length = 100_000
        await response.prepare(request)
        await response.write(b"m" * 30_000)
        await asyncio.sleep(0.05)
        if request.transport is not None:
            request.transport.abort()
        return response
    if path.startswith("/stream/"):
        response = web.StreamResponse()
        size = int(path.rsplit("/", 1)[1])
        response.content_length = size
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(0, size, 65536):
                await response.write(b"s" * 65536)
                await asyncio.sleep(0.01)
        return response
    if path.startswith("/big/"):
        return web.Response(body=b"b" * int(path.rsplit("/", 1)[1]))
    return web.Response(text="ok")


# -- the traffic ---------------------------------------------------------------------------------------


@dataclass
class Request:
    kind: str
    pieces: list[bytes]  # sent with a short pause between them
    abandon_after: int | None = None  # the client leaves after reading this many bytes (None: it reads all)
    leave_without_reading: bool = False  # the client leaves right after sending (mid-upload)


def _case(
    case: dict[str, Any], path: str, method: str | None = None, body: bytes | None = None
) -> dict[str, Any]:
    return {
        **case,
        "path": path,
        "method": method or case["method"],
        "body": case["body"] if body is None else body,
    }


def build(kind: str) -> Request:
    if kind == "json ok":
        headers = signed(STORAGE_GATEWAY, "")
        return Request(kind, [raw_request("POST", "/", headers, STORAGE_GATEWAY["body"])])
    if kind == "json bad signature":
        headers = signed(STORAGE_GATEWAY, "", secret=WRONG_SECRET)
        return Request(kind, [raw_request("POST", "/", headers, STORAGE_GATEWAY["body"])])
    if kind in ("s3 get", "upstream reset", "upstream stall", "upstream cut mid-body", "download abandoned"):
        path = {
            "s3 get": "/big/65536",
            "upstream reset": "/fault/reset",
            "upstream stall": "/fault/slow",
            "upstream cut mid-body": "/fault/midbody",
            "download abandoned": "/stream/4000000",
        }[kind]
        headers = signed(_case(S3_GET, path), "")
        return Request(
            kind,
            [raw_request("GET", path, headers, b"")],
            abandon_after=200_000 if kind == "download abandoned" else None,
        )
    if kind == "s3 put":
        body = os.urandom(256 * 1024)
        case = _case(S3_GET, "/bucket/put", "PUT", body)
        headers = signed(case, "")
        return Request(kind, [raw_request("PUT", "/bucket/put", headers, body)])
    if kind == "s3 aws-chunked":
        headers, body = signed_chunked_put("/bucket/chunked", os.urandom(40_000), 16_384)
        return Request(kind, [raw_request("PUT", "/bucket/chunked", headers, body)])
    if kind == "upload abandoned":
        case = _case(S3_GET, "/bucket/abandoned", "PUT", b"")
        headers = signed(case, "")
        head = raw_request("PUT", "/bucket/abandoned", {**headers, "Content-Length": "1000000"}, b"")
        return Request(kind, [head + b"a" * 50_000, b"a" * 50_000], leave_without_reading=True)
    if kind == "ambiguous":
        headers = signed(STORAGE_GATEWAY, "")
        pairs = [*headers.items(), ("X-Amz-Date", "20200101T000000Z")]
        return Request(kind, [raw_request("POST", "/", pairs, STORAGE_GATEWAY["body"])])
    if kind == "unparseable":
        return Request(kind, [b"GET / HTTP/1.1\r\nHost: example.com\r\nBad Header: x\r\n\r\n"])
    raise ValueError(kind)


MIX = {
    "json ok": 30,
    "json bad signature": 8,
    "s3 get": 15,
    "s3 put": 8,
    "s3 aws-chunked": 6,
    "ambiguous": 3,
    "unparseable": 3,
    "upstream reset": 4,
    "upstream cut mid-body": 3,
    "upstream stall": 1,
    "upload abandoned": 3,
    "download abandoned": 3,
}


@dataclass
class Tally:
    sent: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    abandoned: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)  # sigwatch gave no answer head: a failure


async def one(address: tuple[str, int], request: Request, tally: Tally) -> None:
    reader, writer = await asyncio.open_connection(*address)
    tally.sent[request.kind] += 1
    try:
        for index, piece in enumerate(request.pieces):
            if index:
                await asyncio.sleep(0.02)
            writer.write(piece)
            await writer.drain()
        if request.leave_without_reading:
            await asyncio.sleep(0.05)
            tally.abandoned[request.kind] += 1
            return
        received = b""
        while chunk := await asyncio.wait_for(reader.read(65536), 30):
            received += chunk
            if request.abandon_after is not None and len(received) >= request.abandon_after:
                tally.abandoned[request.kind] += 1
                return
        responses, _ = split_responses(received)
        if received.startswith(b"HTTP/1."):
            tally.answered[request.kind] += 1
            status = received.split(b" ", 2)[1].decode()
            tally.statuses[f"{request.kind} {status}{'' if responses else ' (cut)'}"] += 1
        else:
            tally.unanswered[request.kind] += 1
    except (ConnectionError, TimeoutError):
        tally.unanswered[request.kind] += 1
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def traffic(address: tuple[str, int], until: float, tally: Tally, concurrency: int, seed: int) -> None:
    kinds, weights = list(MIX), list(MIX.values())

    async def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        while time.monotonic() < until:
            await one(address, build(rng.choices(kinds, weights)[0]), tally)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))


# -- the process under test ----------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def scrape_requests_total(admin: str) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"http://{admin}/metrics") as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("sigwatch_requests_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@dataclass
class Result:
    duration: float
    warmup: float
    tally: Tally
    log_lines: int
    metric_requests: float
    rss_warm_kib: int
    rss_end_kib: int
    fds_warm: int
    fds_end: int
    log_path: Path
    samples: list[tuple[float, int, int]]

    @property
    def sent(self) -> int:
        return sum(self.tally.sent.values())

    @property
    def answered(self) -> int:
        return sum(self.tally.answered.values())

    @property
    def abandoned(self) -> int:
        return sum(self.tally.abandoned.values())

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_kib - self.rss_warm_kib) / self.rss_warm_kib

    def problems(self, *, check_memory: bool = True) -> list[str]:
        found = []
        if not (self.sent == self.log_lines == self.metric_requests == self.answered + self.abandoned):
            found.append(
                f"counts disagree: sent {self.sent}, log lines {self.log_lines}, "
                f"metrics {self.metric_requests:.0f}, answered {self.answered} + abandoned {self.abandoned}"
            )
        if self.tally.unanswered:
            found.append(f"requests without an answer: {dict(self.tally.unanswered)}")
        if check_memory and self.rss_growth > MAX_RSS_GROWTH:
            found.append(f"RSS grew {self.rss_growth:.1%} after the warm-up (limit {MAX_RSS_GROWTH:.0%})")
        if self.fds_end > self.fds_warm:
            found.append(f"file descriptors grew at rest: {self.fds_warm} -> {self.fds_end}")
        return found

    def report(self) -> str:
        lines = [
            f"soak: {self.duration:.0f} s of traffic ({self.warmup:.0f} s warm-up), 127.0.0.1",
            f"  requests sent {self.sent}, log lines {self.log_lines}, metrics {self.metric_requests:.0f}, "
            f"answered {self.answered}, abandoned by the client {self.abandoned}",
            f"  RSS after warm-up {self.rss_warm_kib / 1024:.1f} MiB, "
            f"at the end {self.rss_end_kib / 1024:.1f} MiB ({self.rss_growth:+.1%})",
            f"  open fds at rest after warm-up {self.fds_warm}, at the end {self.fds_end}",
            "  answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.tally.statuses.items())),
        ]
        return "\n".join(lines)


async def rest(pid: int, seconds: float = 3.0) -> int:
    """fds once idle connections are gone (upstream keep-alive 1 s): the smallest count seen."""
    await asyncio.sleep(0.5)
    lowest = fd_count(pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        lowest = min(lowest, fd_count(pid))
    return lowest


async def run_soak(
    duration: float, warmup: float, concurrency: int = 8, seed: int = 1, workdir: Path | None = None
) -> Result:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sigwatch-soak-"))
    credentials = workdir / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {EXAMPLE_KEY_ID}\naws_secret_access_key = {EXAMPLE_SECRET}\n"
    )
    credentials.chmod(0o600)
    runner = web.ServerRunner(web.Server(upstream_handler), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream_port = int(runner.addresses[0][1])
    listen, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    config = workdir / "soak.toml"
    config.write_text(
        f'[listen]\naddress = "{listen}"\n[admin]\naddress = "{admin}"\n'
        f'[upstream]\nurl = "http://127.0.0.1:{upstream_port}"\nread_timeout = {READ_TIMEOUT}\n'
        "keepalive_timeout = 1.0\n"
        '[validation]\nmode = "enforce"\n[limits]\nbody_timeout = 5.0\n'
        f'[credentials]\nfile = "{credentials}"\nfrom_environment = false\n[logging]\nformat = "json"\n'
    )
    log_path = workdir / "sigwatch.log"
    with log_path.open("wb") as log, (workdir / "sigwatch.err").open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "proxy", "run", "--config", str(config), cwd=REPO, stdout=log, stderr=err
        )
    try:
        host, port = listen.rsplit(":", 1)
        address = (host, int(port))
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, probe = await asyncio.open_connection(*address)
                probe.close()
                break
            await asyncio.sleep(0.05)
        tally = Tally()
        samples: list[tuple[float, int, int]] = []
        started = time.monotonic()

        async def sampler() -> None:
            while True:
                samples.append((time.monotonic() - started, rss_kib(process.pid), fd_count(process.pid)))
                await asyncio.sleep(5)

        sampling = asyncio.create_task(sampler())
        await traffic(address, started + warmup, tally, concurrency, seed)
        fds_warm = await rest(process.pid)
        rss_warm = rss_kib(process.pid)
        await traffic(address, time.monotonic() + duration - warmup, tally, concurrency, seed + 1)
        fds_end = await rest(process.pid)
        rss_end = rss_kib(process.pid)
        sampling.cancel()
        metric_requests = await scrape_requests_total(admin)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)
        await runner.cleanup()
    log_lines = 0
    with log_path.open("rb") as lines:
        for line in lines:
            if b'"event":"request"' in line and orjson.loads(line)["event"] == "request":
                log_lines += 1
    return Result(
        duration,
        warmup,
        tally,
        log_lines,
        metric_requests,
        rss_warm,
        rss_end,
        fds_warm,
        fds_end,
        log_path,
        samples,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of traffic (default 300)")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds before the RSS baseline (default 60)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="client workers (default 8)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    result = asyncio.run(run_soak(args.duration, args.warmup, args.concurrency, args.seed))
    print(result.report())
    print(f"  sigwatch log: {result.log_path}")
    if args.json:
        args.json.write_text(
            orjson.dumps(
                {
                    "duration_s": result.duration,
                    "warmup_s": result.warmup,
                    "sent": result.sent,
                    "log_lines": result.log_lines,
                    "metric_requests": result.metric_requests,
                    "answered": result.answered,
                    "abandoned": result.abandoned,
                    "rss_warm_kib": result.rss_warm_kib,
                    "rss_end_kib": result.rss_end_kib,
                    "fds_warm": result.fds_warm,
                    "fds_end": result.fds_end,
                    "statuses": dict(result.tally.statuses),
                    "samples": result.samples,
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
    problems = result.problems()
    for problem in problems:
        print(f"FAIL: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
