"""Real servers for the upstream client: raw asyncio servers that answer by hand (byte by byte what the
test says) and aiohttp web apps, on 127.0.0.1 free ports; every test runs on asyncio's loop and on uvloop
(sigwatch runs on uvloop when it is installed, and their transports differ in flow control and EOF)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from proxy.config import UpstreamSettings
from proxy.server.upstream import Upstream

# The Host line every test request carries (the upstreams here do not look at it).
HOST = [(b"Host", b"upstream.test")]

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, LoopFactory]:
    factories: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:  # the `speed` extra is optional
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


@dataclass
class RawRequest:
    """One request as it arrived: its head exactly (through the blank line) and its parsed parts."""

    head: bytes
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class RawConn:
    """The server side of one connection, driven by the test's handler."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        self.reader = reader
        self.writer = writer
        self.number = number  # 1 for the server's first connection

    async def request(self) -> RawRequest | None:
        """The next request's head; None when the client closed the connection instead."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        request_line, *lines = head[:-4].split(b"\r\n")
        method, target, _ = request_line.split(b" ", 2)
        headers = [(name, value.strip()) for name, _, value in (line.partition(b":") for line in lines)]
        return RawRequest(head, method, target, headers)

    async def body(self, request: RawRequest) -> bytes:
        """The request's body, by its Content-Length or chunked framing."""
        length = request.header(b"content-length")
        if length is not None:
            return await self.reader.readexactly(int(length))
        if request.header(b"transfer-encoding") == b"chunked":
            parts: list[bytes] = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n"))[:-2], 16)
                if size == 0:
                    await self.reader.readexactly(2)
                    return b"".join(parts)
                parts.append(await self.reader.readexactly(size))
                assert await self.reader.readexactly(2) == b"\r\n"
        return b""

    async def answer(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def client_closed(self, timeout: float = 5.0) -> bool:
        """Did the client close (or reset) this connection within `timeout` seconds? What it sent
        meanwhile is read and dropped."""
        try:
            await asyncio.wait_for(self.reader.read(), timeout)
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True


Handler = Callable[[RawConn], Awaitable[None]]


@dataclass
class RawServer:
    """An asyncio server whose connections are answered by `handler` (one task per connection)."""

    handler: Handler
    port: int = 0
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[RawRequest] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def limit_receive_buffer(self, size: int) -> None:
        """A fixed kernel receive buffer for the connections accepted from now on (no autotuning up to
        tens of MiB): a slow reader then backs the client up instead of the kernel taking the bytes."""
        assert self._server is not None
        self._server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        conn = RawConn(reader, writer, self.connections)
        try:
            await self.handler(conn)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the test is over (stop() cancels what is left)
        finally:
            self.open_now -= 1
            writer.close()
            self._tasks.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()


StartRaw = Callable[[Handler], Awaitable[RawServer]]
MakeUpstream = Callable[..., Upstream]


@pytest.fixture
async def raw_server() -> AsyncIterator[StartRaw]:
    servers: list[RawServer] = []

    async def start(handler: Handler) -> RawServer:
        server = await RawServer(handler).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def make_upstream() -> AsyncIterator[MakeUpstream]:
    """Upstream clients built from settings overrides; closed at the end of the test."""
    clients: list[Upstream] = []

    def make(url: str, **overrides: Any) -> Upstream:
        settings = UpstreamSettings(url=url, **{"read_timeout": 5.0, "connect_timeout": 5.0, **overrides})
        client = Upstream(settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def keep_alive_answer(body: bytes = b"ok", status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)


async def serve_keep_alive(conn: RawConn, body: bytes = b"ok") -> None:
    """Answer every request on the connection with 200 `body`, reading request bodies."""
    while (request := await conn.request()) is not None:
        await conn.body(request)
        await conn.answer(keep_alive_answer(body))


async def get(client: Upstream, target: bytes = b"/", **kwargs: Any) -> tuple[int, bytes]:
    """One GET (or the method given) through `client`: status and the whole body."""
    method = kwargs.pop("method", "GET")
    headers = kwargs.pop("headers", HOST)
    body = kwargs.pop("body", None)
    async with client.request(method, target, headers, body, **kwargs) as response:
        data = b""
        while chunk := await response.read(1 << 20):
            data += chunk
        return response.status, data


__all__ = [
    "Handler",
    "MakeUpstream",
    "RawConn",
    "RawRequest",
    "RawServer",
    "StartRaw",
    "get",
    "keep_alive_answer",
    "serve_keep_alive",
]
