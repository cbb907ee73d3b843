"""An answer whose head and body are both known when it starts: written as one buffer, from raw fields.

Most answers sigwatch gives are whole (AWS API answers are small, and its own refusals are rendered at
once). aiohttp's `web.Response` would decode every upstream field into a CIMultiDict, re-encode it, and
go through four awaits to send it; `WholeAnswer` renders the same bytes from the raw field lines and hands
them to aiohttp's payload writer in one `write_eof`, so the connection's keep-alive and accounting stay
aiohttp's. The fields aiohttp adds are added the same way (see `_head`): the wire bytes do not change.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE

# RFC 9112 §6.3: "Any response to a HEAD request and any response with a 1xx (Informational), 204 (No
# Content), or 304 (Not Modified) status code is always terminated by the first empty line after the header
# fields" - no body is sent, whatever the fields say.
_EMPTY_BODY_STATUSES = frozenset({204, 304, *range(100, 200)})

_CONTENT_LENGTH = b"content-length"
_CONTENT_TYPE = b"content-type"
_DATE = b"date"
_SERVER = b"server"
_CONNECTION = b"connection"
_SERVER_FIELD = b"Server: " + SERVER_SOFTWARE.encode() + b"\r\n"


class WholeAnswer(web.StreamResponse):
    """`fields`: raw (name, value) lines, sent as they are (an upstream's, hop-by-hop ones already left
    out). `set()` adds sigwatch's own fields, replacing any of the same name (like `headers[name] = v`)."""

    def __init__(
        self, status: int, reason: str | None, fields: Iterable[tuple[bytes, bytes]], body: bytes
    ) -> None:
        super().__init__(status=status, reason=reason)
        self.fields = fields
        self.payload = body
        self._own: dict[bytes, tuple[bytes, bytes]] = {}  # lower-cased name -> the line's name and value

    def set(self, name: str, value: str) -> None:
        if "\r" in value or "\n" in value:
            raise ValueError(f"the value of {name} holds a line break")  # what aiohttp's serializer refuses
        raw = name.encode()
        self._own[raw.lower()] = (raw, value.encode())

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Nothing is sent yet: the head goes out with the body in write_eof (called right after)."""
        if self._eof_sent:
            return None
        if self._payload_writer is None:
            self._req = request
            self._payload_writer = request._payload_writer
            self._must_be_empty_body = request.method == "HEAD" or self.status in _EMPTY_BODY_STATUSES
            if self._keep_alive is None:
                self._keep_alive = request.keep_alive
        return self._payload_writer

    async def write_eof(self, data: bytes = b"") -> None:
        if self._eof_sent:
            return
        request, writer = self._req, self._payload_writer
        assert request is not None and writer is not None, "the answer has not been prepared"
        head = self._head(request)
        await writer.write_eof(head if self._must_be_empty_body else head + self.payload)
        self._eof_sent = True
        self._req = None
        self._body_length = writer.output_size
        self._payload_writer = None

    def _head(self, request: web.BaseRequest) -> bytes:
        """The status line and fields, as aiohttp's Response.prepare would have written them."""
        own = self._own
        version = request.version
        lines = [b"HTTP/%d.%d %d %s\r\n" % (version.major, version.minor, self.status, self.reason.encode())]
        present: set[bytes] = set()
        fields = [(name, value) for name, value in self.fields if name.lower() not in own]
        fields.extend(own.values())
        for name, value in fields:
            lower = name.lower()
            # RFC 9110 §8.6: "A server MUST NOT send a Content-Length header field in any response with a
            # status code of 1xx (Informational) or 204 (No Content)"; aiohttp leaves it out of a 304 too.
            if lower == _CONTENT_LENGTH and self.status in _EMPTY_BODY_STATUSES:
                continue
            present.add(lower)
            lines.append(b"%s: %s\r\n" % (name, value))
        body_length = len(self.payload)
        # RFC 9110 §8.6: an answer to HEAD without a body says nothing of the length rather than 0.
        if (
            _CONTENT_LENGTH not in present
            and self.status not in _EMPTY_BODY_STATUSES
            and (body_length or request.method != "HEAD")
        ):
            lines.append(b"Content-Length: %d\r\n" % body_length)
        if not self._must_be_empty_body and body_length and _CONTENT_TYPE not in present:
            lines.append(b"Content-Type: application/octet-stream\r\n")  # RFC 9110 §8.3
        if _DATE not in present:
            lines.append(b"Date: " + rfc822_formatted_time().encode() + b"\r\n")
        if _SERVER not in present:
            lines.append(_SERVER_FIELD)
        if _CONNECTION not in present:
            if self._keep_alive:
                if version.minor == 0 and version.major == 1:
                    lines.append(b"Connection: keep-alive\r\n")
            elif version.major == 1 and version.minor == 1:
                lines.append(b"Connection: close\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)
