"""The one module that talks to the upstream: a pooled aiohttp ClientSession and failure reasons."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from dataclasses import dataclass

import aiohttp
from yarl import URL

from proxy.config import UpstreamSettings

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


def end_to_end(raw_headers: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """The headers to forward: all but hop-by-hop ones and those named by Connection, order kept."""
    named: set[str] = set()
    for name, value in raw_headers:
        if name.lower() == "connection":
            named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return [(n, v) for n, v in raw_headers if (low := n.lower()) not in HOP_BY_HOP and low not in named]


@dataclass(frozen=True, slots=True)
class UpstreamFailure(Exception):
    """Why the upstream could not be used; `reason` is a bounded metrics label."""

    reason: str  # refused | dns | tls | timeout | reset | protocol
    detail: str
    timeout: bool = False

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def failure_from(exc: BaseException) -> UpstreamFailure:
    """Map aiohttp/asyncio errors onto bounded reasons (checked most specific first)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return UpstreamFailure("dns", f"name resolution failed: {exc.os_error}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError | ssl.SSLError):
        return UpstreamFailure("tls", f"TLS handshake failed: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamFailure("refused", f"cannot connect: {exc.os_error}")
    # Plain socket errors: CONNECT tunnels open their upstream connection with asyncio directly.
    if isinstance(exc, socket.gaierror):
        return UpstreamFailure("dns", f"name resolution failed: {exc}")
    if isinstance(exc, ConnectionRefusedError):
        return UpstreamFailure("refused", f"cannot connect: {exc}")
    if isinstance(exc, aiohttp.ClientPayloadError):
        # The body broke off: its cause is the parser's complaint (ContentLengthError, ...); a connection
        # that was reset rather than closed is named only in the message.
        if "ConnectionResetError" in str(exc) or isinstance(exc.__cause__, ConnectionError):
            return UpstreamFailure("reset", f"connection lost mid-body: {exc}")
        return UpstreamFailure("protocol", f"the body ended early or was badly framed: {exc}")
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return UpstreamFailure("timeout", "no answer in time", timeout=True)
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError | aiohttp.ClientOSError):
        return UpstreamFailure("reset", f"connection lost: {exc}")
    if isinstance(exc, OSError):
        return UpstreamFailure("refused", f"cannot connect: {exc}")
    return UpstreamFailure("protocol", f"bad upstream answer: {type(exc).__name__}: {exc}")


def ssl_context(settings: UpstreamSettings) -> ssl.SSLContext | bool:
    if not settings.verify_tls:
        return False
    return ssl.create_default_context(cafile=settings.ca_bundle or None)


class Upstream:
    """A keep-alive pool to one upstream origin (reverse mode) or to any origin (forward mode)."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.base = URL(settings.url.rstrip("/"))
        self._ssl = ssl_context(settings)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.settings.pool_size,
                keepalive_timeout=self.settings.keepalive_timeout,
                ssl=self._ssl,
                enable_cleanup_closed=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Bodies pass byte-exact: never decompress, never add headers the client did not send.
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.settings.connect_timeout,
                    sock_read=self.settings.read_timeout,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
                # the header values we forward were validated when the client sent them
            )
        return self._session

    def url_for(self, raw_target: str, origin: URL | None = None) -> URL:
        """The URL for an origin-form target at `origin` (default: the configured upstream), path and
        query exactly as the client sent them."""
        return URL(str(origin or self.base) + raw_target, encoded=True)

    async def probe(self) -> bool:
        """Can a TCP (and TLS) connection to the upstream be opened? Used for /readyz."""
        host = self.base.host or "127.0.0.1"
        port = self.base.port or (443 if self.base.scheme == "https" else 80)
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=self._ssl if self.base.scheme == "https" else None),
                timeout=self.settings.connect_timeout,
            )
        except (TimeoutError, OSError, ssl.SSLError):
            return False
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
        return True

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
