"""Big transfers over one raw socket: an aws-chunked upload sent frame by frame and a streamed download.

The client is plain blocking sockets with scatter-gather sends (no copy of the 1 GiB body, nothing held
in memory), so its own cost stays small next to the proxy's.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.benchmarks.signing import ChunkedUpload, RawRequest

SOCKET_TIMEOUT = 120.0
_RECEIVE = 1 << 20


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    body_bytes: int
    seconds: float
    notes: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def _send_parts(sock: socket.socket, parts: Sequence[bytes | memoryview]) -> None:
    """sendmsg the parts (no concatenation); finish any part the kernel took only in part."""
    sent = sock.sendmsg(parts)
    for part in parts:
        size = len(part)
        if sent >= size:
            sent -= size
            continue
        sock.sendall(memoryview(part)[sent:])
        sent = 0


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError(f"connection closed before the response head ({buffer[:200]!r})")
        buffer += piece
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split(" ", 2)[1]), headers, rest


def _read_body(sock: socket.socket, headers: dict[str, str], rest: bytes, keep: int) -> tuple[bytes, int]:
    """Read a Content-Length (or chunked) body, keeping only its first `keep` bytes; (kept, total)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return _read_chunked(sock, bytearray(rest), keep)
    length = int(headers.get("content-length", "0"))
    kept = bytearray(rest[:keep])
    received = len(rest)
    buffer = bytearray(_RECEIVE)
    while received < length:
        count = sock.recv_into(buffer)
        if not count:
            raise ConnectionError(f"connection closed after {received} of {length} bytes")
        if len(kept) < keep:
            kept += buffer[: min(count, keep - len(kept))]
        received += count
    return bytes(kept), received


def _read_chunked(sock: socket.socket, buffer: bytearray, keep: int) -> tuple[bytes, int]:
    def fill(until: bytes | int) -> None:
        while (until not in buffer) if isinstance(until, bytes) else (len(buffer) < until):
            piece = sock.recv(_RECEIVE)
            if not piece:
                raise ConnectionError("connection closed inside a chunked body")
            buffer.extend(piece)

    kept = bytearray()
    total = 0
    while True:
        fill(b"\r\n")
        line_end = buffer.index(b"\r\n")
        size = int(bytes(buffer[:line_end]).split(b";")[0], 16)
        del buffer[: line_end + 2]
        if size == 0:
            fill(b"\r\n")  # no trailers expected: the empty line that ends the body
            return bytes(kept), total
        fill(size + 2)
        if len(kept) < keep:
            kept += buffer[: min(size, keep - len(kept))]
        total += size
        del buffer[: size + 2]


def upload(port: int, body: ChunkedUpload) -> Answer:
    """Send the upload as a client would (head, then each signed chunk as it is produced)."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        started = time.perf_counter()
        notes = []
        try:
            sock.sendall(body.request.head_bytes())
            for chunk_head, data in body.frames():
                _send_parts(sock, (chunk_head, data, b"\r\n"))
        except (BrokenPipeError, ConnectionResetError) as exc:
            notes.append(f"the server stopped reading the body: {exc}")  # a refused upload
        status, headers, rest = _read_head(sock)
        kept, total = _read_body(sock, headers, rest, keep=4096)
        return Answer(status, headers, kept, total, time.perf_counter() - started, notes)


def download(port: int, request: RawRequest) -> Answer:
    """GET and read the whole body (counted, not kept)."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT) as sock:
        started = time.perf_counter()
        sock.sendall(request.wire())
        status, headers, rest = _read_head(sock)
        kept, total = _read_body(sock, headers, rest, keep=0)
        return Answer(status, headers, kept, total, time.perf_counter() - started)


def exchange(port: int, request: RawRequest) -> Answer:
    """One small request (the checks before a load run): the whole answer kept."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.perf_counter()
        sock.sendall(request.wire())
        status, headers, rest = _read_head(sock)
        kept, total = _read_body(sock, headers, rest, keep=1 << 20)
        return Answer(status, headers, kept, total, time.perf_counter() - started)
