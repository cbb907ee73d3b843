"""The one module that talks to upstreams: a lean HTTP/1.1 client on asyncio Protocols, and failure reasons.

Why not aiohttp.ClientSession: profiling showed it is most of sigwatch's per-request CPU (URL objects,
header multidicts, a timer context and a task per request). This client writes the caller's bytes as
they are (one write for a head and a buffered body), parses answers with llhttp (httptools, strict: no
leniencies), keeps one LIFO pool of idle keep-alive connections per Route, and reads under back-pressure.

A request on a pooled connection costs: one transport.write, one future for the head, the parser's
callbacks and nothing else (no task, no asyncio.timeout, no dict of headers). The read deadline is one
LazyDeadline per connection, moved by each byte without a timer per read.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import cast

import httptools
from yarl import URL

from proxy.config import UpstreamSettings
from proxy.core.frozen import remember
from proxy.server.deadline import LazyDeadline

# RFC 9110 §7.6.1: "Connection", and the fields it names, are for the immediate connection only;
# Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and Upgrade are hop-by-hop by definition.
# Proxy-Authorization is meant for (and consumed by) the proxy.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "te",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
    }
)
HOP_BY_HOP_RAW = frozenset(name.encode() for name in HOP_BY_HOP)

# RFC 9110 §9.2.2: methods whose repetition has the same effect as one request; like aiohttp, only
# these are re-sent when a reused connection turns out to have been closed by the upstream.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
# aiohttp sent `Content-Length: 0` for a body-less request of these methods (RFC 9110 §8.6: "a user agent
# SHOULD send Content-Length in a request when the method defines a meaning for enclosed content").
_EMPTY_BODY_LENGTH_METHODS = frozenset({"POST", "PUT", "PATCH"})

# Read back-pressure: stop reading from the upstream while more than this much body is buffered and not
# taken by the caller; read again once it is down to the low mark (a 1 GiB download stays at a few MB).
READ_HIGH_WATER = 256 * 1024
READ_LOW_WATER = 64 * 1024
# An answer head (status line and fields) larger than this is refused (aiohttp allowed 8 KiB per line).
MAX_HEAD_BYTES = 256 * 1024

_METHOD_BYTES = {m: m.encode() for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")}


def end_to_end_raw(
    raw_headers: Sequence[tuple[bytes, bytes]], drop: frozenset[bytes] = HOP_BY_HOP_RAW
) -> list[tuple[bytes, bytes]]:
    """end_to_end for raw (bytes) header lines, as aiohttp's `raw_headers` and UpstreamResponse give them;
    `drop`: lower-cased names left out (hop-by-hop ones, plus any the caller adds)."""
    for name, value in raw_headers:
        if len(name) == 10 and name.lower() == b"connection":
            tokens = {token.strip().lower() for token in value.split(b",")}
            tokens.discard(b"")
            drop = drop | tokens
    return [(n, v) for n, v in raw_headers if n.lower() not in drop]


@dataclass(frozen=True, slots=True)
class UpstreamFailure(Exception):
    """Why the upstream could not be used; `reason` is a bounded metrics label."""

    reason: str  # refused | dns | tls | timeout | reset | protocol
    detail: str
    timeout: bool = False

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class UpstreamError(Exception):
    """Base of the errors this client raises (failure_from maps each to a bounded reason)."""


class UpstreamConnectError(UpstreamError):
    """No connection could be opened: refused, unreachable, name resolution or the TLS handshake."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(str(os_error))
        self.os_error = os_error


class UpstreamTimeout(UpstreamError):
    """No connection in connect_timeout, or no byte of the answer for read_timeout."""


class UpstreamDisconnected(UpstreamError):
    """The connection closed or was reset before the answer was whole."""

    def __init__(self, detail: str, *, mid_body: bool = False, replayable: bool = False) -> None:
        super().__init__(detail)
        self.mid_body = mid_body  # the answer's head had arrived
        # The upstream closed the connection before any byte of the answer: the request may be re-sent
        # (if its method and body allow) when the connection was a reused one.
        self.replayable = replayable


class UpstreamProtocolError(UpstreamError):
    """The answer's head is not HTTP/1.1 as RFC 9112 writes it (or not an answer we asked for)."""


class UpstreamBodyError(UpstreamError):
    """The answer's body ended before its framing said (short Content-Length, cut chunks) or broke it."""


class RequestBodyLengthError(UpstreamError, ValueError):
    """A streamed request body did not match the Content-Length the caller gave for it."""


def failure_from(exc: BaseException) -> UpstreamFailure:
    """Map this client's errors, and plain socket/ssl/asyncio ones (CONNECT tunnels open their upstream
    connection with asyncio directly), onto bounded reasons (checked most specific first)."""
    if isinstance(exc, UpstreamConnectError):
        exc = exc.os_error
    elif isinstance(exc, UpstreamTimeout):
        return UpstreamFailure("timeout", "no answer in time", timeout=True)
    elif isinstance(exc, UpstreamDisconnected):
        if exc.mid_body:
            return UpstreamFailure("reset", f"connection lost mid-body: {exc}")
        return UpstreamFailure("reset", f"connection lost: {exc}")
    elif isinstance(exc, UpstreamBodyError):
        return UpstreamFailure("protocol", f"the body ended early or was badly framed: {exc}")
    elif isinstance(exc, UpstreamProtocolError):
        return UpstreamFailure("protocol", f"bad upstream answer: {exc}")
    if isinstance(exc, socket.gaierror):
        return UpstreamFailure("dns", f"name resolution failed: {exc}")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return UpstreamFailure("tls", f"TLS handshake failed: {exc}")
    if isinstance(exc, ConnectionRefusedError):
        return UpstreamFailure("refused", f"cannot connect: {exc}")
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamFailure("timeout", "no answer in time", timeout=True)
    if isinstance(exc, ConnectionError):
        return UpstreamFailure("reset", f"connection lost: {exc}")
    if isinstance(exc, OSError):
        return UpstreamFailure("refused", f"cannot connect: {exc}")
    return UpstreamFailure("protocol", f"bad upstream answer: {type(exc).__name__}: {exc}")


def ssl_context(settings: UpstreamSettings) -> ssl.SSLContext:
    """How the configured upstream's certificate is checked: the system CAs or upstream.ca_bundle, or not
    at all with verify_tls = false (encrypted, unauthenticated)."""
    context = ssl.create_default_context(cafile=settings.ca_bundle or None)
    if not settings.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True, slots=True)
class Route:
    """Where to connect: one keep-alive pool per Route."""

    scheme: str  # "http" | "https"
    host: str  # for connect; IPv6 literal without brackets
    port: int
    ssl: ssl.SSLContext | None  # https only (None for http)
    server_hostname: str | None  # SNI / cert check name for https
    connect_timeout: float


def _route(origin: URL, context: ssl.SSLContext, connect_timeout: float) -> Route:
    host = origin.raw_host or ""
    tls = origin.scheme == "https"
    port = origin.port or (443 if tls else 80)
    return Route(origin.scheme, host, port, context if tls else None, host if tls else None, connect_timeout)


# -- the answer ---------------------------------------------------------------------------------------


class UpstreamResponse:
    """One answer: its head, and its body as it arrives (buffered up to READ_HIGH_WATER)."""

    __slots__ = ("_buffer", "_buffered", "_complete", "_conn", "_error", "raw_headers", "reason", "status")

    def __init__(self, conn: _Connection) -> None:
        self.status = 0  # 0 until the final head arrives
        self.reason = ""
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self._conn = conn
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._error: BaseException | None = None

    @property
    def complete(self) -> bool:
        """The whole body has arrived (some of it may still be buffered)."""
        return self._complete

    def at_eof(self) -> bool:
        return self._complete and not self._buffer

    def take_buffered(self) -> bytes:
        """Every body byte received and not yet consumed."""
        buffer = self._buffer
        if not buffer:
            return b""
        data = buffer.popleft() if len(buffer) == 1 else b"".join(buffer)
        buffer.clear()
        self._consumed(len(data))
        return data

    async def read(self, limit: int) -> bytes:
        """Up to `limit` bytes as soon as any are there; b"" at the end of the body."""
        buffer = self._buffer
        while not buffer:
            if self._error is not None:
                raise self._error
            if self._complete:
                return b""
            await self._conn.wait()
        first = buffer[0]
        if len(first) > limit:
            buffer[0] = first[limit:]
            data = first[:limit]
        else:
            parts = [buffer.popleft()]
            size = len(first)
            while buffer and size + len(buffer[0]) <= limit:
                size += len(buffer[0])
                parts.append(buffer.popleft())
            data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._consumed(len(data))
        return data

    async def chunks(self) -> AsyncIterator[bytes]:
        """The rest of the body as it arrives, piece by piece as received (never joined: a copy of up to
        READ_HIGH_WATER bytes per step would double what a download holds in memory)."""
        buffer = self._buffer
        while True:
            if buffer:
                data = buffer.popleft()
                self._consumed(len(data))
                yield data
            elif self._error is not None:
                raise self._error
            elif self._complete:
                return
            else:
                await self._conn.wait()

    def _consumed(self, size: int) -> None:
        self._buffered -= size
        conn = self._conn
        if conn.paused_reading and self._buffered <= READ_LOW_WATER:
            conn.resume_reading()


# -- one connection -------------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One upstream connection: writes requests, parses answers (the parser's callbacks are methods here)
    and keeps the state of the exchange under way."""

    __slots__ = (
        "broken",
        "chunked",
        "closed",
        "counted",
        "deadline",
        "drain_waiter",
        "expecting",
        "got_bytes",
        "head_bytes",
        "head_lines",
        "idle_since",
        "is_head",
        "keep_alive",
        "loop",
        "parser",
        "parser_stale",
        "paused_reading",
        "paused_writing",
        "pending_body",
        "pool",
        "read_timeout",
        "reason",
        "request_sent",
        "response",
        "stop_sending",
        "transport",
        "upstream",
        "waiter",
        "write_backlog",
        "writer",
    )

    def __init__(self, upstream: Upstream, pool: _Pool, loop: asyncio.AbstractEventLoop) -> None:
        self.upstream = upstream
        self.pool = pool
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.parser_stale = False
        self.read_timeout = upstream.settings.read_timeout
        self.response: UpstreamResponse | None = None
        self.waiter: asyncio.Future[None] | None = None
        # The read timeout: no byte of the answer for read_timeout while someone waits for one.
        self.deadline = LazyDeadline(loop, self.read_timeout, self._timed_out, self._still_sending)
        self.closed = False
        self.counted = False  # holds one of the Upstream's pool_size slots
        self.idle_since = 0.0
        self.broken = False  # something happened that makes the connection unfit for another request
        self.paused_reading = False
        self.paused_writing = False
        self.drain_waiter: asyncio.Future[None] | None = None
        self.head_lines: list[tuple[bytes, bytes]] = []
        self.reason = b""
        self.head_bytes = 0
        self.expecting = False  # a request is out and its final answer is not whole yet
        self.is_head = False
        self.pending_body: bytes | AsyncIterable[bytes] | None = None  # held back until 100 Continue
        self.writer: asyncio.Task[None] | None = None
        self.chunked = False  # the streamed body goes out in chunked framing
        self.request_sent = False
        self.stop_sending = False
        self.keep_alive = False
        self.got_bytes = False
        self.write_backlog = 0  # the transport's write buffer when the read deadline last looked

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def data_received(self, data: bytes) -> None:
        self.deadline.touch()
        response = self.response
        if response is None:
            # Nothing was asked: bytes on an idle connection (a body longer than its Content-Length,
            # a late answer) would be read as the next request's answer.
            self.close(abort=True)
            return
        self.got_bytes = True
        if response.status == 0:
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD_BYTES:
                self.fail(UpstreamProtocolError(f"the answer's head is larger than {MAX_HEAD_BYTES} bytes"))
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(UpstreamProtocolError("101 Switching Protocols, which sigwatch never asks for"))
        except httptools.HttpParserError as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if exc.__context__ is not None:  # an error in a callback here (a bug): name it
                problem += f" ({type(exc.__context__).__name__}: {exc.__context__})"
            if response.status == 0:
                self.fail(UpstreamProtocolError(problem))
            else:
                self.fail(UpstreamBodyError(problem))

    def eof_received(self) -> bool | None:
        self._ended(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)
        self.closed = True
        self._forget()
        self.deadline.cancel()
        self._wake_drain()

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        self._wake_drain()

    # httptools callbacks

    def on_message_begin(self) -> None:
        if not self.expecting:
            self.broken = True  # a second answer to one request
        self.head_lines = []
        self.reason = b""

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_lines.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None or not self.expecting:
            self.broken = True
            return
        status = self.parser.get_status_code()
        if status < 200:
            # RFC 9110 §15.2: interim answers precede the final one; only 100 matters to the client.
            if status == 100 and self.pending_body is not None:
                self._send_held_body()
            elif status == 101:
                self.fail(UpstreamProtocolError("101 Switching Protocols, which sigwatch never asks for"))
            return
        response.status = status
        response.reason = self.reason.decode("latin-1")
        response.raw_headers = self.head_lines
        # RFC 9110 §6.5.1: trailer fields are not merged into the header section; llhttp reports them
        # through on_header too, so they go to a list nobody reads.
        self.head_lines = []
        if self.pending_body is not None:
            # RFC 9110 §10.1.1: a final answer instead of 100 Continue; the body is never sent, and the
            # upstream cannot tell where this request ends: the connection is not reused.
            self.pending_body = None
        elif self.writer is not None and not self.request_sent:
            self.stop_sending = True  # an answer before the body ended (413, ...): send no more
            self._wake_drain()
        if self.is_head:
            # RFC 9110 §9.3.2: a HEAD answer has no content whatever its framing fields say. llhttp cannot
            # be told so from here: this parser is done, the next request gets a fresh one.
            self.parser_stale = True
            self._complete(response)
        self._wake()

    def on_body(self, body: bytes) -> None:
        response = self.response
        if response is None or response._complete:
            self.broken = True  # bytes after a HEAD answer's head
            return
        response._buffer.append(body)
        response._buffered += len(body)
        if response._buffered > READ_HIGH_WATER and not self.paused_reading and self.transport is not None:
            self.paused_reading = True
            self.transport.pause_reading()
        if self.waiter is not None:
            self._wake()

    def on_message_complete(self) -> None:
        response = self.response
        if response is None or response._complete or response.status == 0:
            return  # an interim answer, or the end of a HEAD answer already taken as whole
        self._complete(response)
        self._wake()

    # the exchange

    async def exchange(
        self,
        head: bytes,
        body: bytes | AsyncIterable[bytes] | None,
        *,
        is_head: bool,
        expect: bool,
        chunked: bool,
        on_sent: Callable[[], object] | None = None,
    ) -> UpstreamResponse:
        """Send one request and return when the final answer's head has arrived. `on_sent()` is called
        once the request's head is handed to the transport, before waiting: work that overlaps the
        upstream's."""
        if self.parser_stale:
            self.parser = httptools.HttpResponseParser(self)
            self.parser_stale = False
        response = UpstreamResponse(self)
        self.response = response
        self.expecting = True
        self.is_head = is_head
        self.got_bytes = False
        self.head_bytes = 0
        self.request_sent = False
        self.stop_sending = False
        self.keep_alive = False
        self.chunked = chunked
        transport = self.transport
        assert transport is not None
        if expect:
            transport.write(head)
            self.pending_body = body
        elif body is None or isinstance(body, bytes):
            transport.write(head + body if body else head)
            self.request_sent = True
        else:
            transport.write(head)
            self.writer = self.loop.create_task(self._send_stream(body, chunked))
            self.pending_body = None
        if on_sent is not None:
            on_sent()
        while response.status == 0:
            if response._error is not None:
                raise response._error
            await self.wait()
        return response

    def _send_held_body(self) -> None:
        body = self.pending_body
        self.pending_body = None
        assert self.transport is not None
        if isinstance(body, bytes):
            self.transport.write(body)
            self.request_sent = True
        elif body is not None:
            self.writer = self.loop.create_task(self._send_stream(body, self.chunked))

    async def _send_stream(self, body: AsyncIterable[bytes], chunked: bool) -> None:
        """Write a streamed body as it comes, concurrently with reading the answer (like aiohttp's
        write_bytes task). An exception raised by the body itself aborts the connection and reaches the
        caller unchanged."""
        transport = self.transport
        assert transport is not None
        iterator = aiter(body)
        try:
            async for chunk in iterator:
                if self.stop_sending or self.closed:
                    break
                if not chunk:
                    continue
                if chunked:
                    # RFC 9112 §7.1: chunk = chunk-size CRLF chunk-data CRLF
                    transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
                else:
                    transport.write(chunk)
                self.deadline.touch()
                if self.paused_writing:
                    await self._drain()
            else:
                if chunked:
                    transport.write(b"0\r\n\r\n")  # the last chunk, no trailers
                self.request_sent = True
        except Exception as exc:  # raised by the body iterable: the caller's own exception
            self.fail(exc)
        finally:
            if not self.request_sent:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()

    async def _drain(self) -> None:
        while self.paused_writing and not self.closed and not self.stop_sending:
            waiter = self.loop.create_future()
            self.drain_waiter = waiter
            try:
                await waiter
            finally:
                self.drain_waiter = None

    def _wake_drain(self) -> None:
        _wake_up(self.drain_waiter)

    async def wait(self) -> None:
        """Until something happens to the answer (bytes, its end, an error), or read_timeout passes with
        no byte (a request still going out counts as activity)."""
        waiter = self.loop.create_future()
        self.waiter = waiter
        self.deadline.start()
        try:
            await waiter
        finally:
            self.waiter = None
            self.deadline.pause()

    def _wake(self) -> None:
        self.deadline.pause()  # what it waited for has come: no timeout until the next wait
        _wake_up(self.waiter)

    def _still_sending(self) -> bool:
        """Is the request still going out (a large body to a slow reader)? Then the upstream is not silent."""
        backlog = self.transport.get_write_buffer_size() if self.transport is not None else 0
        moved = bool(backlog) and backlog != self.write_backlog
        self.write_backlog = backlog
        return moved

    def _timed_out(self) -> None:
        where = "body" if self.response is not None and self.response.status else "answer"
        self.fail(UpstreamTimeout(f"no byte of the {where} for {self.read_timeout:g} s"))

    def _complete(self, response: UpstreamResponse) -> None:
        response._complete = True
        self.expecting = False
        self.keep_alive = self.parser.should_keep_alive()

    def fail(self, exc: BaseException) -> None:
        """The exchange cannot go on: the error goes to whoever waits or reads next; the connection is
        aborted."""
        response = self.response
        if response is not None and not response._complete and response._error is None:
            response._error = exc
        self.expecting = False
        self.close(abort=True)
        self._wake()

    def _ended(self, exc: Exception | None) -> None:
        """The upstream closed the connection (FIN: exc None) or it broke (exc)."""
        self.closed = True
        response = self.response
        if response is None or not self.expecting or response._error is not None:
            return
        if response.status == 0:
            detail = f"{exc}" if exc is not None else "the upstream closed the connection before answering"
            error: UpstreamError = UpstreamDisconnected(
                detail or type(exc).__name__, replayable=not self.got_bytes
            )
        elif exc is not None:
            error = UpstreamDisconnected(f"{exc}" or type(exc).__name__, mid_body=True)
        elif _close_delimited(response.raw_headers):
            # RFC 9112 §6.3 (8): no Content-Length, not chunked: the body is what came before the close.
            self._complete(response)
            self.keep_alive = False
            self._wake()
            return
        else:
            error = UpstreamBodyError(
                f"the upstream closed the connection {response._buffered} buffered bytes into a body "
                "its framing said was longer"
            )
        response._error = error
        self.expecting = False
        self._wake()

    def reusable(self) -> bool:
        response = self.response
        return (
            response is not None
            and response._complete
            and response._error is None
            and self.keep_alive
            and self.request_sent
            and not self.broken
            and not self.closed
        )

    def close(self, *, abort: bool = False) -> None:
        self.deadline.cancel()
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                if abort:
                    self.transport.abort()
                else:
                    self.transport.close()
        self._forget()

    def _forget(self) -> None:
        """Give back this connection's pool slot (once)."""
        if self.counted:
            self.counted = False
            self.upstream._closed(self)

    def resume_reading(self) -> None:
        self.paused_reading = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()


def _close_delimited(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in raw_headers:
        low = name.lower()
        if low == b"content-length" or (low == b"transfer-encoding" and b"chunked" in value.lower()):
            return False
    return True


# -- the pool -------------------------------------------------------------------------------------------


class _Pool:
    """The idle keep-alive connections to one Route, most recently used last (LIFO)."""

    __slots__ = ("idle", "open", "route", "sweeper")

    def __init__(self, route: Route) -> None:
        self.route = route
        self.idle: deque[_Connection] = deque()
        self.open = 0  # connections to this route holding a slot
        self.sweeper: asyncio.TimerHandle | None = None


class _RequestContext:
    """`async with upstream.request(...) as response`: the connection is held until the exit, then pooled
    again when the exchange left it clean, else closed."""

    __slots__ = (
        "_body",
        "_chunked",
        "_conn",
        "_expect",
        "_head",
        "_method",
        "_on_sent",
        "_pool",
        "_response",
        "_upstream",
    )

    def __init__(  # noqa: PLR0917 (built in one place, on the hot path: no keyword overhead)
        self,
        upstream: Upstream,
        pool: _Pool,
        method: str,
        head: bytes,
        body: bytes | AsyncIterable[bytes] | None,
        expect: bool,
        chunked: bool,
        on_sent: Callable[[], object] | None,
    ) -> None:
        self._upstream = upstream
        self._pool = pool
        self._method = method
        self._head = head
        self._body = body
        self._expect = expect
        self._chunked = chunked
        self._on_sent = on_sent
        self._conn: _Connection | None = None
        self._response: UpstreamResponse | None = None

    async def __aenter__(self) -> UpstreamResponse:
        upstream, pool = self._upstream, self._pool
        idle = upstream._take_idle(pool)
        if idle is not None:
            conn, reused = idle, True
        else:
            conn, reused = await upstream._acquire(pool)
        try:
            self._response = await self._exchange(conn)
        except UpstreamDisconnected as exc:
            self._end(conn)
            body = self._body
            if not (
                reused
                and exc.replayable
                and (body is None or isinstance(body, bytes))
                and self._method in IDEMPOTENT_METHODS
            ):
                raise
            # The upstream closed a pooled connection as the request went out (RFC 9112 §9.3.1: a client
            # MAY retry an idempotent request automatically): once more, on a new connection.
            conn, _ = await upstream._acquire(pool, fresh=True)
            try:
                self._response = await self._exchange(conn)
            except BaseException:
                self._end(conn)
                raise
        except BaseException:
            self._end(conn)
            raise
        return self._response

    async def _exchange(self, conn: _Connection) -> UpstreamResponse:
        self._conn = conn
        return await conn.exchange(
            self._head,
            self._body,
            is_head=self._method == "HEAD",
            expect=self._expect,
            chunked=self._chunked,
            on_sent=self._on_sent,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        writer = conn.writer
        if writer is not None and not writer.done():
            writer.cancel()
            try:
                await writer
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    conn.close(abort=True)
                    raise  # this task itself is being cancelled
        if exc_type is None and conn.reusable():
            conn.writer = None
            conn.response = None
            self._upstream._release(conn)
        else:
            self._end(conn)

    def _end(self, conn: _Connection) -> None:
        """The exchange failed or left the connection unfit: abort it, give back its slot."""
        writer = conn.writer
        if writer is not None and not writer.done():
            writer.cancel()  # its body iterable is closed by the task's own cleanup
        conn.writer = None
        conn.pending_body = None
        response = conn.response
        if response is not None and response._complete and conn.request_sent:
            conn.close()  # a whole exchange on a connection not to be reused (Connection: close, ...)
        else:
            # An answer read after this would otherwise wait on a connection nobody reads any more.
            conn.fail(UpstreamDisconnected("the exchange ended before its answer was whole"))


# -- the client -----------------------------------------------------------------------------------------


class Upstream:
    """Keep-alive pools to the configured upstream (reverse mode) and to any origin (forward mode), with at
    most settings.pool_size connections open at once in all."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.base = URL(settings.url.rstrip("/"))
        self._ssl = ssl_context(settings)
        self.route = _route(self.base, self._ssl, settings.connect_timeout)
        self._default_pool = _Pool(self.route)
        self._pools: dict[Route, _Pool] = {self.route: self._default_pool}
        self._routes: dict[tuple[URL, ssl.SSLContext, float], Route] = {}
        self._size = settings.pool_size
        self._keepalive = settings.keepalive_timeout
        self._open = 0  # connections open or being opened (slots taken)
        self._waiters: deque[tuple[_Pool, asyncio.Future[_Connection | None]]] = deque()
        self._connections: set[_Connection] = set()

    def route_to(self, origin: URL, ssl_context: ssl.SSLContext, connect_timeout: float) -> Route:
        """Forward mode: a Route for an absolute-form/intercepted destination (cached, so its pool is
        found by identity-equal keys)."""
        key = (origin, ssl_context, connect_timeout)
        route = self._routes.get(key)
        if route is None:
            route = remember(self._routes, key, _route(origin, ssl_context, connect_timeout), 4096)
        return route

    def request(
        self,
        method: str,
        target: bytes,
        headers: Sequence[tuple[bytes, bytes]],
        body: bytes | AsyncIterable[bytes] | None,
        *,
        route: Route | None = None,
        expect_continue: bool = False,
        on_sent: Callable[[], object] | None = None,
    ) -> contextlib.AbstractAsyncContextManager[UpstreamResponse]:
        """One request: `target` is the origin-form target as the client sent it, `headers` the raw lines
        to send as they are (hop-by-hop ones already dropped, Host decided). Only framing is added.
        `on_sent()` runs as each attempt's head goes out (twice if a stale connection is retried)."""
        if route is None:
            pool = self._default_pool
        else:
            pool = self._pools.get(route) or self._pools.setdefault(route, _Pool(route))
        method_bytes = _METHOD_BYTES.get(method) or method.encode("ascii")
        lines = [b"%s %s HTTP/1.1" % (method_bytes, target)]
        length: bytes | None = None
        for name, value in headers:
            if len(name) == 14 and name.lower() == b"content-length":
                length = value
            elif len(name) == 17 and name.lower() == b"transfer-encoding":
                raise ValueError("Transfer-Encoding is the client's to add (it frames the body)")
            lines.append(name + b": " + value)
        chunked = False
        if body is None or isinstance(body, bytes):
            if body and length is None:
                lines.append(b"Content-Length: %d" % len(body))
            elif body is None and length is None and method in _EMPTY_BODY_LENGTH_METHODS:
                lines.append(b"Content-Length: 0")
            elif length is not None and length != b"%d" % len(body or b"") and not _same_length(length, body):
                raise RequestBodyLengthError(
                    f"Content-Length {length!r} given for a body of {len(body or b'')} bytes"
                )
            expect = expect_continue and bool(body)
        else:
            if length is None:
                chunked = True
                lines.append(b"Transfer-Encoding: chunked")  # RFC 9112 §7.1
            else:
                body = _exactly(body, length)
            expect = expect_continue
        if expect:
            lines.append(b"Expect: 100-continue")  # RFC 9110 §10.1.1
        lines.append(b"")
        lines.append(b"")
        head = b"\r\n".join(lines)
        # Defence in depth against request splitting: the caller's bytes came through a strict parser,
        # but a CR or LF inside a target or field would start a request of its own.
        if head.count(b"\n") != len(lines) - 1 or head.count(b"\r") != len(lines) - 1:
            raise ValueError("a CR or LF inside the request target or a header field")
        return _RequestContext(self, pool, method, head, body, expect, chunked, on_sent)

    # pool internals

    def _take_idle(self, pool: _Pool) -> _Connection | None:
        """The most recently used idle connection still fit for a request; closed or expired ones are
        dropped on the way."""
        idle = pool.idle
        while idle:
            conn = idle.pop()
            if conn.closed or conn.broken:
                conn.close(abort=True)
                continue
            if conn.loop.time() - conn.idle_since >= self._keepalive:
                conn.close()
                continue
            return conn
        return None

    async def _acquire(self, pool: _Pool, *, fresh: bool = False) -> tuple[_Connection, bool]:
        """A connection for `pool`: a slot for a new one, or waiting (FIFO) for one to be released; a
        released one (reused: True) may be handed over directly unless `fresh`."""
        if self._open >= self._size and not self._waiters:
            self._evict_idle()
        if self._open < self._size and not self._waiters:
            self._open += 1
        else:
            future: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
            entry = (pool, future)
            self._waiters.append(entry)
            try:
                handed = await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._give_back(future.result())
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(entry)
                raise
            if handed is not None:
                if not fresh:
                    return handed, True
                handed.close()  # its slot goes to the next waiter; wait for a slot of our own
                return await self._acquire(pool, fresh=True)
        return await self._connect(pool), False

    def _give_back(self, handed: _Connection | None) -> None:
        if handed is None:
            self._slot_freed()
        else:
            self._release(handed)

    async def _connect(self, pool: _Pool) -> _Connection:
        """Open a connection to pool.route holding a slot already taken (given back on failure)."""
        route = pool.route
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(route.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self, pool, loop),
                    route.host,
                    route.port,
                    ssl=route.ssl,
                    server_hostname=route.server_hostname,
                )
        except BaseException as exc:
            self._slot_freed()
            self._drop_if_unused(pool)
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(
                    f"no connection to {route.host}:{route.port} in {route.connect_timeout:g} s"
                ) from exc
            if isinstance(exc, OSError):
                raise UpstreamConnectError(exc) from exc
            raise
        # The pool may have been dropped (no connections left) and made anew while this one was opening.
        pool = conn.pool = self._pools.setdefault(route, pool)
        conn.counted = True
        pool.open += 1
        self._connections.add(conn)
        if conn.closed:  # lost between connection_made and now
            conn._forget()
            raise UpstreamDisconnected("the upstream closed the connection as it opened")
        return conn

    def _release(self, conn: _Connection) -> None:
        """A connection fit for another request: to the first waiter for its route, or idle in its pool
        (the first waiter for another route gets its slot instead)."""
        waiters = self._waiters
        while waiters and waiters[0][1].done():
            waiters.popleft()
        if conn.paused_reading:
            conn.resume_reading()
        if waiters:
            pool, future = waiters[0]
            if pool.route == conn.pool.route:
                waiters.popleft()
                future.set_result(conn)
            else:
                conn.close()  # -> _closed hands the slot to that waiter
            return
        pool = conn.pool
        conn.idle_since = conn.loop.time()
        pool.idle.append(conn)
        if pool.sweeper is None:
            pool.sweeper = conn.loop.call_at(conn.idle_since + self._keepalive, self._sweep, pool)

    def _sweep(self, pool: _Pool) -> None:
        """Close the connections idle for keepalive_timeout (oldest first: the left end of the deque)."""
        pool.sweeper = None
        idle = pool.idle
        if not idle:
            return
        loop = idle[0].loop
        expiry = loop.time() - self._keepalive
        while idle and (idle[0].closed or idle[0].idle_since <= expiry):
            idle.popleft().close()
        if idle:
            pool.sweeper = loop.call_at(idle[0].idle_since + self._keepalive, self._sweep, pool)

    def _evict_idle(self) -> None:
        """At the limit: close idle connections of other routes (oldest first) so this one gets a slot."""
        for pool in list(self._pools.values()):
            while pool.idle and self._open >= self._size:
                pool.idle.popleft().close()
            if self._open < self._size:
                return

    def _closed(self, conn: _Connection) -> None:
        """A connection gave back its slot (closed by us or by the upstream)."""
        self._connections.discard(conn)
        pool = conn.pool
        pool.open -= 1
        if pool.idle and conn in pool.idle:
            pool.idle.remove(conn)
        self._drop_if_unused(pool)
        self._slot_freed()

    def _drop_if_unused(self, pool: _Pool) -> None:
        """Forget a forward-mode route's pool once it holds no connection (destinations come and go)."""
        if pool.open == 0 and not pool.idle and pool is not self._default_pool:
            if pool.sweeper is not None:
                pool.sweeper.cancel()
                pool.sweeper = None
            if self._pools.get(pool.route) is pool:
                del self._pools[pool.route]

    def _slot_freed(self) -> None:
        waiters = self._waiters
        while waiters:
            _, future = waiters.popleft()
            if not future.done():
                future.set_result(None)  # the slot passes to this waiter
                return
        self._open -= 1

    async def probe(self) -> bool:
        """Can a TCP (and TLS) connection to the upstream be opened? Used for /readyz."""
        route = self.route
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(route.connect_timeout):
                transport, _ = await loop.create_connection(
                    asyncio.Protocol,
                    route.host,
                    route.port,
                    ssl=route.ssl,
                    server_hostname=route.server_hostname,
                )
        except (TimeoutError, OSError):
            return False
        transport.close()
        return True

    async def close(self) -> None:
        """Close every pooled connection (idle or in use) and stop the sweepers."""
        for pool in self._pools.values():
            if pool.sweeper is not None:
                pool.sweeper.cancel()
                pool.sweeper = None
            pool.idle.clear()
        for conn in list(self._connections):
            conn.fail(UpstreamDisconnected("sigwatch closed its upstream connections (shutting down)"))
        await asyncio.sleep(0)  # let the transports finish closing their sockets


def _wake_up(waiter: asyncio.Future[None] | None) -> None:
    """Resume whoever awaits `waiter` (if anyone still does)."""
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _same_length(length: bytes, body: bytes | None) -> bool:
    """Does a Content-Length written otherwise than we would (`007`) still say the body's size?"""
    try:
        return int(length) == len(body or b"")
    except ValueError:
        return False


async def _exactly(body: AsyncIterable[bytes], length: bytes) -> AsyncIterator[bytes]:
    """A streamed body with a caller-given Content-Length: refuse to send more or fewer bytes than it says
    (either would leave the upstream reading the next request as this one's body, or waiting forever)."""
    try:
        declared = int(length)
    except ValueError:
        raise RequestBodyLengthError(f"Content-Length {length!r} is not a number") from None
    sent = 0
    async for chunk in body:
        sent += len(chunk)
        if sent > declared:
            raise RequestBodyLengthError(f"the body is longer than its Content-Length {declared}")
        yield chunk
    if sent != declared:
        raise RequestBodyLengthError(f"the body ended at {sent} of its Content-Length {declared} bytes")


__all__ = [
    "HOP_BY_HOP",
    "Route",
    "Upstream",
    "UpstreamBodyError",
    "UpstreamConnectError",
    "UpstreamDisconnected",
    "UpstreamError",
    "UpstreamFailure",
    "UpstreamProtocolError",
    "UpstreamResponse",
    "UpstreamTimeout",
    "end_to_end_raw",
    "failure_from",
    "ssl_context",
]
