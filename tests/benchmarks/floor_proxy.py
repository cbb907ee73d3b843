"""What any proxy built on aiohttp's server pays at least: its server, and the leanest client there is.

    python -m tests.benchmarks.floor_proxy --port 8001 --upstream http://127.0.0.1:8002

aiohttp's low-level server (`web.Server`, no access log) forwards each request's raw target and header
lines (hop-by-hop ones dropped) over a keep-alive connection parsed by httptools, and answers with
`web.Response`: no checks, no metrics, no logs, no timeouts, no streaming (bodies are read whole), no
pool limits, no error handling beyond dropping a broken connection. It is a yardstick for the load test's
small API calls, not a proxy: the harness reports sigwatch's cost above it.
"""

from __future__ import annotations

import asyncio
from collections import deque

import httptools
from aiohttp import web
from yarl import URL

from proxy.server.upstream import HOP_BY_HOP_RAW  # the fields sigwatch leaves out
from tests.benchmarks.serving import proxy_main


class _Connection(asyncio.Protocol):
    """One keep-alive connection to the upstream; one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.done: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionResetError("the upstream closed the connection"))
        self.transport = None

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.done is not None
        self.done.set_result(None)

    async def exchange(self, head: bytes, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert self.transport is not None
        self.headers, self.body = [], []
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(head + body if body else head)
        await self.done
        return self.parser.get_status_code(), self.headers, b"".join(self.body)


class FloorProxy:
    def __init__(self, upstream: str) -> None:
        url = URL(upstream)
        self.host, self.port = url.host or "127.0.0.1", url.port or 80
        self.idle: deque[_Connection] = deque()

    async def _connection(self) -> _Connection:
        while self.idle:
            connection = self.idle.pop()
            if connection.transport is not None and not connection.transport.is_closing():
                return connection
        _, connection = await asyncio.get_running_loop().create_connection(_Connection, self.host, self.port)
        return connection

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read() if request.body_exists else b""
        lines = [b"%s %s HTTP/1.1" % (request.method.encode(), request.raw_path.encode())]
        kept = [(name, value) for name, value in request.raw_headers if name.lower() not in HOP_BY_HOP_RAW]
        lines += [name + b": " + value for name, value in kept]
        lines += [b"", b""]
        connection = await self._connection()
        status, headers, answer = await connection.exchange(b"\r\n".join(lines), body)
        self.idle.append(connection)
        response = web.Response(status=status, body=answer)
        for name, value in headers:
            lower = name.lower()
            if lower not in HOP_BY_HOP_RAW and lower != b"content-length":
                response.headers.add(name.decode(), value.decode())
        return response


async def serve(port: int, upstream: str) -> None:
    runner = web.ServerRunner(web.Server(FloorProxy(upstream)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


def main() -> None:
    proxy_main(__doc__.splitlines()[0], serve)


if __name__ == "__main__":
    main()
