"""A fault-injecting TCP proxy (asyncio, 127.0.0.1) between sigwatch and a real upstream app.

Requests pass through untouched; the upstream's answer is damaged on its way back as the fault says:
reset before or after the response head or in the middle of the body (TCP RST: SO_LINGER 0), a stall
before the head or in the body, garbage instead of HTTP, or a Content-Length that lies.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from enum import StrEnum


class Fault(StrEnum):
    NONE = "none"
    RESET_BEFORE_HEAD = "reset_before_head"
    RESET_AFTER_HEAD = "reset_after_head"
    RESET_MID_BODY = "reset_mid_body"
    SLOW_HEAD = "slow_head"
    SLOW_BODY = "slow_body"
    GARBAGE = "garbage"
    CONTENT_LENGTH_TOO_LONG = "content_length_too_long"  # announces more than it sends, then closes
    CONTENT_LENGTH_TOO_SHORT = "content_length_too_short"  # sends more than it announces


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    def __init__(self, target_port: int, fault: Fault = Fault.NONE, *, stall: float = 3.0) -> None:
        self.target_port = target_port
        self.fault = fault
        self.stall = stall
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        forward = asyncio.create_task(self._pump(reader, up_writer))
        try:
            await self._answer(up_reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await forward
            up_writer.close()
            if not writer.transport.is_closing():
                writer.close()
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    async def _answer(self, upstream: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        fault = self.fault
        if fault is Fault.GARBAGE:
            client.write(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http at all\r\n\r\n")
            await client.drain()
            client.close()
            return
        head = await upstream.readuntil(b"\r\n\r\n")  # the upstream answered (so it saw the request)
        if fault is Fault.RESET_BEFORE_HEAD:
            _reset(client)
            return
        if fault is Fault.SLOW_HEAD:
            await asyncio.sleep(self.stall)
        length = _content_length(head)
        if fault is Fault.CONTENT_LENGTH_TOO_LONG:
            head = _with_content_length(head, length + 1000)
        elif fault is Fault.CONTENT_LENGTH_TOO_SHORT:
            head = _with_content_length(head, max(length - 5, 0))
        client.write(head)
        await client.drain()
        if fault is Fault.RESET_AFTER_HEAD:
            await asyncio.sleep(0.1)
            _reset(client)
            return
        body = await upstream.readexactly(length)
        if fault in (Fault.RESET_MID_BODY, Fault.SLOW_BODY):
            client.write(body[: length // 2])
            await client.drain()
            if fault is Fault.RESET_MID_BODY:
                await asyncio.sleep(0.1)
                _reset(client)
                return
            await asyncio.sleep(self.stall)
            body = body[length // 2 :]
        client.write(body)
        await client.drain()
        if fault is Fault.CONTENT_LENGTH_TOO_LONG:
            client.close()
            return
        # Keep relaying (keep-alive) until either side closes.
        while chunk := await upstream.read(65536):
            client.write(chunk)
            await client.drain()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    raise AssertionError(f"the upstream answered without Content-Length: {head!r}")


def _with_content_length(head: bytes, length: int) -> bytes:
    lines = [
        b"Content-Length: %d" % length if line.lower().startswith(b"content-length:") else line
        for line in head.split(b"\r\n")
    ]
    return b"\r\n".join(lines)
