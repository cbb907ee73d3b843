"""aiohttp's low-level server with the two guards it lacks: a header-read deadline and a connection cap.

aiohttp closes a connection that stays idle past its keep-alive timeout, but a client that starts a
request head and then trickles it (slowloris) is never cut. Here every request head must be complete
within `header_timeout` seconds of its first byte, or the client gets a 408 and the connection closes.
Past `max_connections`, a new connection gets a 503 and is closed at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 55\r\n\r\nsigwatch: the request head was not complete in time.\r\n\r\n"
)
_BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Retry-After: 1\r\nContent-Length: 45\r\n\r\nsigwatch: too many connections, try again.\r\n\r\n"
)

ConnectionEvent = Callable[[str, str], None]  # (event, peer) -> None, for lifecycle log lines


class GuardedRequestHandler(RequestHandler):
    """A RequestHandler that enforces the header deadline and the connection cap."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.open_connections >= guard.max_connections:
            self._refused = True
            guard.refused_connections += 1
            guard.notify("connection_refused", _peer(transport))
            transport.write(_BUSY_ANSWER)  # type: ignore[attr-defined]
            transport.close()
            return
        guard.open_connections += 1
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        self._guard.open_connections -= 1
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        requests_before = self._request_count
        super().data_received(data)
        if self._request_count != requests_before:
            self._cancel_deadline()  # a complete head was parsed
        elif data and self._head_deadline is None and self._current_request is None:
            # Bytes of a new request head arrived between requests: its deadline starts now.
            self._head_deadline = self._loop.call_later(self._guard.header_timeout, self._head_timed_out)

    def _cancel_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        transport = self.transport
        if transport is None or transport.is_closing() or self._current_request is not None:
            return
        self._guard.header_timeouts += 1
        self._guard.notify("header_timeout", _peer(transport))
        transport.write(_TIMEOUT_ANSWER)
        self.force_close()
        transport.close()


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "")


class GuardedServer(web.Server):
    """aiohttp's low-level Server, making GuardedRequestHandler protocols."""

    def __init__(
        self,
        handler: Any,
        *,
        header_timeout: float,
        max_connections: int,
        on_event: ConnectionEvent | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.open_connections = 0
        self.refused_connections = 0
        self.header_timeouts = 0
        self._on_event = on_event

    def notify(self, event: str, peer: str) -> None:
        if self._on_event is not None:
            self._on_event(event, peer)

    def __call__(self) -> GuardedRequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)
