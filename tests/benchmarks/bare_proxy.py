"""The floor any aiohttp proxy pays: a bare streaming reverse proxy with no checks, no metrics, no logs.

    python -m tests.benchmarks.bare_proxy --port 8001 --upstream http://127.0.0.1:8002

Built like sigwatch's request path so the ratio measures sigwatch's own work: aiohttp's low-level
server (`web.Server`, no access log), one pooled ClientSession with sigwatch's settings (TCPConnector
limit 256, keep-alive 30 s, auto_decompress=False, no automatic headers, DummyCookieJar), the raw path
and query forwarded as sent, hop-by-hop headers dropped, both bodies streamed, uvloop when installed.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from yarl import URL

from proxy.server.upstream import HOP_BY_HOP  # the same fields sigwatch leaves out
from tests.benchmarks.serving import proxy_main


class BareProxy:
    def __init__(self, upstream: str) -> None:
        self.base = upstream.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=256, keepalive_timeout=30.0, enable_cleanup_closed=False
                ),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=60.0),
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
            )
        return self._session

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        headers = [(name, value) for name, value in request.headers.items() if name.lower() not in HOP_BY_HOP]
        async with self.session.request(
            request.method,
            URL(self.base + request.raw_path, encoded=True),
            headers=headers,
            data=request.content if request.body_exists else None,
            allow_redirects=False,
            compress=None,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    response.headers.add(name, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


async def serve(port: int, upstream: str) -> None:
    runner = web.ServerRunner(web.Server(BareProxy(upstream), access_log=None))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()  # until SIGTERM ends the process


def main() -> None:
    proxy_main("A bare aiohttp streaming reverse proxy (benchmark floor).", serve)


if __name__ == "__main__":
    main()
