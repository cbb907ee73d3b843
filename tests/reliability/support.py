"""Shared helpers of the reliability tests: a recording upstream, raw HTTP exchanges, the metrics count,
leak checks (asyncio tasks and file descriptors) and AWS-shape checks of sigwatch's own answers."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from proxy.server.runtime import ProxyServer
from tests.conftest import LogSink


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Upstream:
    """A real aiohttp upstream that records every request it receives (method, raw path, body size)."""

    seen: list[tuple[str, str, int]] = field(default_factory=list)
    body: bytes = b"ok"
    delay: float = 0.0
    started: asyncio.Event = field(default_factory=asyncio.Event)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    completed: int = 0

    async def handler(self, request: web.BaseRequest) -> web.StreamResponse:
        self.started.set()
        size = 0
        try:
            async for chunk in request.content.iter_any():
                size += len(chunk)
        except Exception:
            # The proxy aborted the request mid-body (what a client disconnect must cause).
            self.disconnected.set()
            return web.Response(status=499)  # nobody will read it
        self.seen.append((request.method, request.raw_path, size))
        if self.delay:
            await asyncio.sleep(self.delay)
        body = self.body
        if request.raw_path.startswith("/big/"):
            body = b"x" * int(request.raw_path.rsplit("/", 1)[1])
        if request.raw_path.startswith("/stream/"):
            return await self._stream(request, int(request.raw_path.rsplit("/", 1)[1]))
        self.completed += 1
        return web.Response(body=body, content_type="application/octet-stream")

    async def _stream(self, request: web.BaseRequest, size: int) -> web.StreamResponse:
        """A slow download: 64 KiB every 20 ms, so a client can leave in the middle of it."""
        response = web.StreamResponse()
        response.content_length = size
        await response.prepare(request)
        sent = 0
        try:
            while sent < size:
                piece = min(65536, size - sent)
                await response.write(b"y" * piece)
                sent += piece
                await asyncio.sleep(0.02)
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected.set()
            raise
        await response.write_eof()
        self.completed += 1
        return response


def request_total(server: ProxyServer) -> float:
    """sigwatch_requests_total summed over every label set."""
    total = 0.0
    for metric in server.registry.collect():
        if metric.name == "sigwatch_requests":
            total += sum(s.value for s in metric.samples if s.name == "sigwatch_requests_total")
    return total


def metric_samples(server: ProxyServer, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for metric in server.registry.collect():
        for sample in metric.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    version: str

    def json(self) -> dict[str, Any]:
        value = orjson.loads(self.body)
        assert isinstance(value, dict)
        return value


def parse_responses(data: bytes) -> list[Response]:
    """Split what a server wrote into responses (Content-Length framing, as sigwatch answers)."""
    return split_responses(data)[0]


def split_responses(data: bytes) -> tuple[list[Response], bytes]:
    """(whole responses, the bytes left over after them: a response cut short stays there)."""
    responses = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", len(rest)))
        if len(rest) < length:
            break  # cut short: not a whole response
        responses.append(Response(int(status), headers, rest[:length], version))
        data = rest[length:]
    return responses, data


async def exchange(
    server: ProxyServer, data: bytes | list[bytes], *, timeout: float = 5.0, until: int | None = None
) -> bytes:
    """Send raw bytes (pieces with a pause between them) and read until the proxy closes (or, with
    `until`, until that many whole responses arrived and nothing more follows within GRACE seconds)."""
    return (await converse(server, data, timeout=timeout, until=until))[0]


GRACE = 0.3


async def converse(
    server: ProxyServer, data: bytes | list[bytes], *, timeout: float = 5.0, until: int | None = None
) -> tuple[bytes, bool]:
    """Like `exchange`; also tells whether the proxy closed the connection (False: `timeout` passed)."""
    assert server.proxy_address is not None
    reader, writer = await asyncio.open_connection(*server.proxy_address)
    pieces = data if isinstance(data, list) else [data]
    for piece in pieces:
        writer.write(piece)
        await writer.drain()
        if len(pieces) > 1:
            await asyncio.sleep(0.05)
    chunks: list[bytes] = []
    closed = True
    try:
        while True:
            wait = timeout
            if until is not None and len(split_responses(b"".join(chunks))[0]) >= until:
                wait = GRACE
            chunk = await asyncio.wait_for(reader.read(65536), wait)
            if not chunk:
                break
            chunks.append(chunk)
    except TimeoutError:
        closed = False
    except ConnectionResetError:
        pass
    writer.close()
    return b"".join(chunks), closed


def assert_proxy_error(response: Response, status: int, code: str | None = None) -> dict[str, Any]:
    """sigwatch's own answer: the status, marked as the proxy's, in the AWS JSON error shape."""
    assert response.status == status, response
    assert response.headers.get("x-sigwatch-origin") == "proxy", response.headers
    document = response.json()
    assert set(document) >= {"__type", "message"}, document
    if code is not None:
        assert document["__type"] == code, document
    return document


def request_lines(logs: LogSink) -> list[dict[str, Any]]:
    return logs.events("request")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def running_tasks() -> int:
    current = asyncio.current_task()
    return len([t for t in asyncio.all_tasks() if t is not current and not t.done()])


@dataclass(frozen=True)
class Footprint:
    tasks: int
    fds: int


def footprint() -> Footprint:
    return Footprint(running_tasks(), open_fds())


async def settles_to(baseline: Footprint, *, timeout: float = 3.0) -> Footprint:
    """Wait until tasks and fds are back at (or under) `baseline`; return what was last seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    now = footprint()
    while (now.tasks > baseline.tasks or now.fds > baseline.fds) and loop.time() < deadline:
        await asyncio.sleep(0.05)
        now = footprint()
    return now


StartUpstream = Callable[[Upstream], Awaitable[str]]
