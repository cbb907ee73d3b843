"""aiohttp's low-level server with the two guards it lacks: a header-read deadline and a connection cap.

aiohttp closes a connection that stays idle past its keep-alive timeout, but a client that starts a
request head and then trickles it (slowloris) is never cut. Here every request head must be complete
within `header_timeout` seconds of its first byte, or the client gets a 408 and the connection closes.
Past `max_connections`, a new connection gets a 503 and is closed at once. Both answers are in the AWS
JSON error shape (botocore reads their code), and each is one log line and one count
(`sigwatch_connection_events_total`).

A request aiohttp's parser refuses (malformed head, smuggling attempts, oversized or too many headers,
bad chunked framing) never reaches the handler: aiohttp would answer a plain-text 400 and log a
traceback. `handle_error` hands it to `on_parse_error` instead, so it is answered in the AWS shape and
logged and counted once like any other request.

It also gives CONNECT tunnels (proxy.server.tunnel) the few hooks aiohttp has no public API for.
aiohttp's parser accepts `CONNECT host:port` (authority form) and marks the connection "upgraded":
every later byte is kept aside (`_message_tail`) instead of being parsed as HTTP. A blind tunnel then
takes those bytes the way aiohttp's own WebSockets do, with `set_parser`; an intercepted one hands
the socket to `loop.start_tls` and serves the decrypted bytes with a nested protocol of this class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, _ErrInfo


def _raw_answer(status: str, code: str, message: str, *extra: str) -> bytes:
    """A complete `Connection: close` answer in the AWS JSON error shape, written straight to a transport
    (these answers are given outside any request: there is no request object to answer through)."""
    body = orjson.dumps({"__type": code, "message": message})
    head = [
        f"HTTP/1.1 {status}",
        "Connection: close",
        "Content-Type: application/json",
        "x-sigwatch-origin: proxy",
        *extra,
        f"Content-Length: {len(body)}",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


_TIMEOUT_ANSWER = _raw_answer(
    "408 Request Timeout",
    "RequestTimeout",
    "sigwatch: the request head was not complete in time (limits.header_timeout).",
)
_BUSY_ANSWER = _raw_answer(
    "503 Service Unavailable",
    "ServiceUnavailable",
    "sigwatch: too many connections (limits.max_connections), try again.",
    "Retry-After: 1",
)

ConnectionEvent = Callable[[str, str], None]  # (event, peer) -> None, for lifecycle log lines
# (request, status, problem) -> the answer, already logged and counted
ParseErrorAnswer = Callable[[web.BaseRequest, int, str], web.StreamResponse]


class TunnelFeed(Protocol):
    """What receives a blind tunnel's client bytes (the interface of aiohttp's WebSocketReader)."""

    def feed_data(self, data: bytes) -> tuple[bool, bytes]: ...

    def feed_eof(self) -> None: ...


class GuardedRequestHandler(RequestHandler):
    """A RequestHandler that enforces the header deadline and the connection cap.

    `forward_origin` is set on the decrypted side of an intercepted CONNECT (`https://host:port`):
    its requests are forwarded there. Such a nested connection is not counted against the cap again
    (its client connection already is) and resolves `closed` when it ends.
    """

    def __init__(
        self,
        manager: GuardedServer,
        *,
        forward_origin: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._head_deadline: asyncio.TimerHandle | None = None
        self._refused = False
        self.forward_origin = forward_origin
        self.nested = forward_origin is not None
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self._tunnel_open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if self.nested:
            super().connection_made(transport)
            return
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
        if self._refused or self.closed.done():
            return
        if not self.nested:
            self._guard.open_connections -= 1
        self._cancel_deadline()
        super().connection_lost(exc)
        self.closed.set_result(None)

    # -- CONNECT tunnels -----------------------------------------------------------------------------

    def open_tunnel(self, feed: TunnelFeed) -> None:
        """Blind tunnel: from now on every byte from the client goes to `feed` (the bytes that came
        after the CONNECT head first), as aiohttp does for an accepted WebSocket upgrade."""
        self._tunnel_open = True
        self._cancel_deadline()
        self.set_parser(feed)  # type: ignore[arg-type]  # any object with feed_data/feed_eof

    def take_early_bytes(self) -> bytes:
        """Bytes the client sent after its CONNECT head, before the tunnel was answered (normally none:
        a TLS client waits for the 200). Only for interception: a blind tunnel gets them via its feed."""
        tail, self._message_tail = self._message_tail, b""
        return tail

    def nested_protocol(self, forward_origin: str) -> GuardedRequestHandler:
        """A protocol for the decrypted side of this intercepted connection, served like any other."""
        return self._guard.nested(forward_origin)

    def release(self) -> None:
        """The transport was handed to TLS (its protocol replaced): end this protocol's bookkeeping as
        aiohttp would on connection_lost, which it will no longer receive."""
        self.connection_lost(None)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp calls this for a request its parser refused (and for a handler's uncaught exception,
        which ProxyHandler never lets through). Nothing has been sent yet for a parser error."""
        if isinstance(exc, ConnectionError):
            # The handler's way of saying the client left (already logged and counted there): nothing
            # to answer, no traceback to log.
            quiet = web.Response(status=status)
            quiet.force_close()
            return quiet
        answer = self._guard.on_parse_error
        if answer is None or not isinstance(exc, HttpProcessingError) or request.writer.output_size:
            return super().handle_error(request, status, exc, message)
        return answer(request, status, parse_problem(exc))

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        # A blind tunnel is never "between requests": cut it now rather than after the grace period.
        if self._tunnel_open:
            self.force_close()
        await super().shutdown(timeout)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        requests_before = self._request_count
        queued_before = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued_before and self._current_request is not None:
            self._fail_current_body()
        if self._request_count != requests_before:
            self._cancel_deadline()  # a complete head was parsed
        elif data and self._head_deadline is None and self._current_request is None:
            # Bytes of a new request head arrived between requests: its deadline starts now.
            self._head_deadline = self._loop.call_later(self._guard.header_timeout, self._head_timed_out)

    def _fail_current_body(self) -> None:
        """The parser failed on bytes that belong to the body of the request being handled (a bad chunk
        size arriving after the head): aiohttp queues a 400 for after that request, but leaves its body
        waiting for bytes that will never be parsed. Fail the body with the parser's error instead, so
        the handler answers now (and aborts the upstream request) rather than hanging."""
        message = self._messages[-1][0]
        if not isinstance(message, _ErrInfo) or not isinstance(message.exc, HttpProcessingError):
            return
        request = self._current_request
        assert request is not None
        if not request.content.is_eof():
            request.content.set_exception(message.exc)

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


def http_parser_kind() -> str:
    """ "c" when the listener parses requests with aiohttp's C parser (llhttp, strict), else "python".

    The C extension is what the smuggling tests (tests/reliability) pin down; the pure-Python parser is
    used when the extension is missing (an sdist built without a compiler) or AIOHTTP_NO_EXTENSIONS is
    set, and is laxer on a few framings (`Transfer-Encoding: chunked, chunked`, huge chunk sizes).
    """
    from aiohttp import web_protocol

    parser = getattr(web_protocol, "HttpRequestParser", None)  # what RequestHandler instantiates
    module = getattr(parser, "__module__", "")
    return "c" if module == "aiohttp._http_parser" else "python"


def parse_problem(exc: HttpProcessingError) -> str:
    """What was wrong, without the request bytes aiohttp quotes in its message (`Invalid header value
    char: b'...'`, `Bad status line '...'`): they may hold a signature or a session token, and are
    never written back or logged."""
    text = (exc.message or "").strip()
    text = text.splitlines()[0] if text else ""
    cut = min((i for i in (text.find("'"), text.find('"')) if i >= 0), default=len(text))
    text = text[:cut].removesuffix(" b").strip().rstrip(":").strip()
    text = "".join(ch for ch in text if ch.isascii() and ch.isprintable())[:200]
    return text or type(exc).__name__


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
        on_parse_error: ParseErrorAnswer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.on_parse_error = on_parse_error
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

    def nested(self, forward_origin: str) -> GuardedRequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, forward_origin=forward_origin, **self._kwargs)
