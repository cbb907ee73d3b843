"""CONNECT: a blind tunnel by default, TLS interception with `forward.intercept`.

Blind: sigwatch answers `200 Connection Established`, opens a TCP connection to `host:port` and
copies bytes both ways until either side closes (or nothing moves for `limits.idle_timeout`). It sees
only the host, the byte counts and the duration: one log line and one metrics observation per tunnel
(kind "tunnel").

Intercepted: sigwatch answers 200, then terminates the client's TLS itself with a certificate for
`host` issued by the local CA (`loop.start_tls`, server side) and serves the decrypted HTTP/1.1
requests with the same handler as every other request: validated, classified, annotated and
forwarded over TLS to `https://host:port` (verified with the system CAs or `forward.ca_bundle`).
Each of those requests has its own log line (kind "forward"); the tunnel itself gets none, unless the
TLS handshake fails (a client that does not trust the CA), which is logged as a tunnel with a finding
saying how to trust it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from aiohttp import StreamReader, web
from aiohttp.http import StreamWriter

from proxy.config import LimitsSettings
from proxy.core.model import AwsError, Finding, Severity
from proxy.record import (
    OUTCOME_BAD_REQUEST,
    OUTCOME_CLIENT_ABORT,
    OUTCOME_OK,
    OUTCOME_REJECTED,
    OUTCOME_UPSTREAM_FAILURE,
    RequestRecord,
)
from proxy.server.allowlist import split_authority
from proxy.server.forward import KIND_TUNNEL, ForwardProxy, refusal
from proxy.server.listener import GuardedRequestHandler
from proxy.server.upstream import failure_from

TUNNEL_CHUNK = 64 * 1024
# Closing an intercepted connection sends TLS close_notify and waits for the client's (asyncio's
# default is 30 s): an idle SDK connection pool never answers, so do not hold shutdown for it.
TLS_SHUTDOWN_TIMEOUT = 2.0
TLS_CHECK = "tls"
CLIENT_REJECTED_CERTIFICATE = "ClientTlsHandshakeFailed"


@dataclass(slots=True)
class TunnelState:
    """Set once the client's TLS is terminated: from then on the tunnel's requests are its log lines."""

    intercepted: bool = False


@dataclass(slots=True)
class _Traffic:
    """Byte counts and the last time anything moved (for the idle cut)."""

    last: float = field(default_factory=time.monotonic)
    to_upstream: int = 0
    to_client: int = 0


class _ClientFeed:
    """Receives the client's bytes after the CONNECT head (GuardedRequestHandler.open_tunnel).

    aiohttp's StreamReader applies back-pressure: past its buffer limit it pauses reading from the
    client until the upstream side has taken the bytes.
    """

    def __init__(self, reader: StreamReader) -> None:
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


def _plain(status: int, text: str) -> web.Response:
    response = web.Response(status=status, text=text + "\n")
    response.headers["x-sigwatch-origin"] = "proxy"
    return response


class Tunnels:
    """Serves CONNECT requests for one listener."""

    def __init__(self, forward: ForwardProxy, limits: LimitsSettings) -> None:
        self.forward = forward
        self.limits = limits

    async def serve(
        self, request: web.BaseRequest, record: RequestRecord, state: TunnelState
    ) -> web.StreamResponse:
        """Answer a CONNECT and serve the tunnel until it ends; `record` describes it unless
        `state.intercepted` ends up True (its requests are then logged one by one instead)."""
        protocol = request.protocol
        record.kind = KIND_TUNNEL
        record.user_agent = request.headers.get("User-Agent")
        try:
            host, port = split_authority(request.raw_path)
        except ValueError:
            host, port = "", None
        if not host or port is None or not isinstance(protocol, GuardedRequestHandler):
            return await self._bad_request(
                request, record, f"CONNECT needs host:port, not {request.raw_path!r}"
            )
        if protocol.nested:
            return await self._bad_request(request, record, "CONNECT inside an intercepted tunnel")
        record.target_host = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if not self.forward.allows(host, port):
            finding = refusal(host, port)
            record.findings = (finding,)
            record.outcome = OUTCOME_REJECTED
            record.status = 403
            record.answered_by_proxy = True
            return await self._refuse(request, _plain(403, finding.explanation))
        if self.forward.leaves is not None:
            return await self._intercept(request, protocol, record, state, host)
        return await self._blind(request, protocol, record, host, port)

    async def _bad_request(
        self, request: web.BaseRequest, record: RequestRecord, problem: str
    ) -> web.StreamResponse:
        record.status = 400
        record.answered_by_proxy = True
        record.outcome = OUTCOME_BAD_REQUEST
        record.notes.append(problem)
        return await self._refuse(request, _plain(400, f"sigwatch: {problem}"))

    async def _refuse(self, request: web.BaseRequest, response: web.Response) -> web.StreamResponse:
        """Answer and close: whatever the client sends next was meant for a tunnel, not for us."""
        response.force_close()
        await response.prepare(request)
        await response.write_eof()
        if isinstance(request.protocol, GuardedRequestHandler):
            request.protocol.force_close()
        return response

    async def _established(self, request: web.BaseRequest) -> web.StreamResponse:
        """`HTTP/1.1 200 Connection Established`: aiohttp writes a 2xx to CONNECT without any body
        framing (RFC 9110 §9.3.6 forbids Content-Length and Transfer-Encoding there)."""
        response = web.StreamResponse(status=200, reason="Connection Established")
        await response.prepare(request)
        await response.write_eof()
        response.force_close()  # once the tunnel ends, so does the connection
        return response

    async def _blind(
        self,
        request: web.BaseRequest,
        protocol: GuardedRequestHandler,
        record: RequestRecord,
        host: str,
        port: int,
    ) -> web.StreamResponse:
        connecting = time.monotonic()
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=TUNNEL_CHUNK), self.forward.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            failure = failure_from(exc)
            record.upstream_failure = failure.reason
            record.outcome = OUTCOME_UPSTREAM_FAILURE
            record.status = 504 if failure.timeout else 502
            record.answered_by_proxy = True
            record.notes.append(str(failure))
            text = f"sigwatch: cannot open a tunnel to {record.target_host} ({failure})"
            return await self._refuse(request, _plain(record.status, text))
        record.upstream_duration_seconds = time.monotonic() - connecting
        record.status = 200
        traffic = _Traffic()
        try:
            return await self._pipe(request, protocol, upstream_reader, upstream_writer, traffic)
        finally:
            upstream_writer.close()
            protocol.force_close()
            record.bytes_in = traffic.to_upstream
            record.bytes_out = traffic.to_client
            record.outcome = OUTCOME_OK

    async def _pipe(
        self,
        request: web.BaseRequest,
        protocol: GuardedRequestHandler,
        upstream_reader: asyncio.StreamReader,
        upstream_writer: asyncio.StreamWriter,
        traffic: _Traffic,
    ) -> web.StreamResponse:
        """Copy bytes both ways until either side closes or the tunnel idles out."""
        loop = asyncio.get_running_loop()
        client_reader = StreamReader(protocol, TUNNEL_CHUNK, loop=loop)
        early = b""
        with contextlib.suppress(Exception):
            early = request.content.read_nowait()  # the pure-Python parser keeps them in the body
        response = await self._established(request)
        if early:
            upstream_writer.write(early)
            traffic.to_upstream += len(early)
        protocol.open_tunnel(_ClientFeed(client_reader))
        pipes = [
            asyncio.create_task(self._client_to_upstream(client_reader, upstream_writer, traffic)),
            asyncio.create_task(
                self._upstream_to_client(upstream_reader, StreamWriter(protocol, loop), traffic)
            ),
            asyncio.create_task(self._idle_cut(traffic)),
        ]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
        return response

    async def _client_to_upstream(
        self, reader: StreamReader, writer: asyncio.StreamWriter, traffic: _Traffic
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.readany():
                writer.write(chunk)
                traffic.to_upstream += len(chunk)
                traffic.last = time.monotonic()
                await writer.drain()

    async def _upstream_to_client(
        self, reader: asyncio.StreamReader, writer: StreamWriter, traffic: _Traffic
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(TUNNEL_CHUNK):
                await writer.write(chunk)
                traffic.to_client += len(chunk)
                traffic.last = time.monotonic()

    async def _idle_cut(self, traffic: _Traffic) -> None:
        """Return once nothing has moved either way for limits.idle_timeout seconds."""
        idle = self.limits.idle_timeout
        while (remaining := traffic.last + idle - time.monotonic()) > 0:
            await asyncio.sleep(remaining)

    async def _intercept(
        self,
        request: web.BaseRequest,
        protocol: GuardedRequestHandler,
        record: RequestRecord,
        state: TunnelState,
        host: str,
    ) -> web.StreamResponse:
        transport = request.transport
        assert self.forward.leaves is not None
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away before its tunnel was opened")
        # Nothing may be read as HTTP between our 200 and the TLS layer taking the socket.
        transport.pause_reading()
        try:
            context = self.forward.leaves.context_for(host)
        except (ValueError, OSError) as exc:
            record.status = 502
            record.answered_by_proxy = True
            record.outcome = OUTCOME_UPSTREAM_FAILURE
            record.notes.append(f"no certificate could be made for {host}: {exc}")
            return await self._refuse(request, _plain(502, f"sigwatch: no certificate for {host}: {exc}"))
        early = protocol.take_early_bytes()
        if early:
            problem = "data sent before the 200 answer to CONNECT: wait for it before starting TLS"
            return await self._bad_request(request, record, problem)
        response = await self._established(request)
        origin = f"https://{record.target_host}"
        nested = protocol.nested_protocol(origin)
        loop = asyncio.get_running_loop()
        try:
            tls_transport = await loop.start_tls(
                transport,
                nested,
                context,
                server_side=True,
                ssl_handshake_timeout=self.limits.header_timeout,
                ssl_shutdown_timeout=TLS_SHUTDOWN_TIMEOUT,
            )
        except (OSError, TimeoutError, ConnectionError) as exc:  # ssl.SSLError is an OSError
            protocol.release()
            record.status = 200
            record.outcome = OUTCOME_CLIENT_ABORT
            record.findings = (_handshake_finding(host, exc),)
            return response
        except BaseException:  # cancelled (shutdown): the socket is closed, end the bookkeeping too
            protocol.release()
            raise
        if tls_transport is None:  # the client went away during the handshake
            protocol.release()
            record.outcome = OUTCOME_CLIENT_ABORT
            return response
        state.intercepted = True
        nested.connection_made(tls_transport)
        try:
            await nested.closed
        finally:
            protocol.release()
        return response


def _handshake_finding(host: str, exc: BaseException) -> Finding:
    explanation = (
        f"TLS handshake with the client for {host} failed ({type(exc).__name__}: {exc}). If the client "
        "does not trust sigwatch's CA: run `sigwatch ca` and set AWS_CA_BUNDLE (or --cacert) to the "
        "file it prints"
    )
    return Finding(
        check=TLS_CHECK,
        severity=Severity.ERROR,
        error=AwsError(code=CLIENT_REJECTED_CERTIFICATE, status=502, message=explanation),
        explanation=explanation,
    )
