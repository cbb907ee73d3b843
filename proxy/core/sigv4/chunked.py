"""A sans-IO, incremental `aws-chunked` decoder and chunk-signature verifier.

Wire format (S3 "Signature Calculations for the Authorization Header: Transferring Payload in Multiple
Chunks", and the trailer variants):

    <hex size>;chunk-signature=<64 hex>\\r\\n <data> \\r\\n   (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER])
    <hex size>\\r\\n <data> \\r\\n                            (STREAMING-UNSIGNED-PAYLOAD-TRAILER)
    ... a final chunk of size 0, then the trailer section:
    <name>:<value>\\r\\n ...  [x-amz-trailer-signature:<64 hex>\\r\\n]  \\r\\n

Each chunk is signed over "AWS4-HMAC-SHA256-PAYLOAD \\n date \\n scope \\n previous-signature \\n
sha256('') \\n sha256(chunk data)", the previous signature being the seed (the request signature) for
the first chunk. The trailer is signed over "AWS4-HMAC-SHA256-TRAILER \\n date \\n scope \\n
previous-signature \\n sha256(<name>:<value>\\n ...)".

Nothing is ever buffered but one size line or the trailer section, both bounded: chunk data is hashed
as it passes. `feed()` may be called with any split of the stream.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from proxy.core.frozen import slot_constructor
from proxy.core.sigv4.canonical import (
    EMPTY_SHA256,
    STREAMING_PAYLOAD,
    STREAMING_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER,
)
from proxy.core.sigv4.signing import SigningKey, signatures_equal

CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"
TRAILER_SIGNATURE = "x-amz-trailer-signature"
_SIGNATURE_PREFIX = b"chunk-signature="
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def decoded_length(text: str, max_digits: int = 19) -> int | None:
    """x-amz-decoded-content-length as a number of bytes, or None when it is not one: ASCII digits only
    (`'²'.isdigit()` is true) and at most 19 of them (a 64-bit length; int() of 5 000 digits raises)."""
    text = text.strip()
    if text.isascii() and text.isdigit() and len(text) <= max_digits:
        return int(text)
    return None


class ChunkedErrorKind(StrEnum):
    MALFORMED = "malformed"  # framing that is not aws-chunked
    LINE_TOO_LONG = "line_too_long"  # a size line longer than the limit
    CHUNK_TOO_LARGE = "chunk_too_large"  # a chunk larger than the configured limit
    CHUNK_TOO_SMALL = "chunk_too_small"  # a non-final chunk under the minimum size
    TRAILER_TOO_LARGE = "trailer_too_large"
    TRUNCATED = "truncated"  # the stream ended before the final chunk / trailer
    SIGNATURE_MISMATCH = "signature_mismatch"  # a chunk signature
    TRAILER_SIGNATURE_MISMATCH = "trailer_signature_mismatch"
    TRAILER_MISSING = "trailer_missing"  # a declared trailer (or the trailer signature) is absent
    CHECKSUM_MISMATCH = "checksum_mismatch"  # x-amz-checksum-* trailer differs from the decoded data
    LENGTH_MISMATCH = "length_mismatch"  # decoded length differs from x-amz-decoded-content-length


class ChunkedError(ValueError):
    """A problem in an aws-chunked body. The fields serve error bodies and debug output."""

    def __init__(
        self,
        kind: ChunkedErrorKind,
        detail: str,
        *,
        chunk_index: int | None = None,
        string_to_sign: str = "",
        provided: str = "",
        expected: str = "",
        name: str = "",
    ) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.chunk_index = chunk_index
        self.string_to_sign = string_to_sign
        self.provided = provided
        self.expected = expected
        self.name = name


# -- events -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChunkStart:
    index: int
    size: int
    signature: str | None


@dataclass(frozen=True, slots=True)
class ChunkData:
    """A slice of decoded data; a view into the fed buffer, valid until the next `feed()`."""

    data: memoryview


@dataclass(frozen=True, slots=True)
class ChunkEnd:
    index: int
    size: int
    signature: str | None


@dataclass(frozen=True, slots=True)
class TrailerField:
    name: str  # lower-cased
    value: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    decoded_length: int


Event = ChunkStart | ChunkData | ChunkEnd | TrailerField | StreamEnd


class _State(StrEnum):
    SIZE_LINE = "size_line"
    DATA = "data"
    DATA_CRLF = "data_crlf"
    TRAILER = "trailer"
    DONE = "done"


# The states and constructors the per-chunk path uses, looked up once (an upload of 1 GiB in 64 KiB
# chunks passes here 16 384 times: a frozen dataclass's __init__ costs more than the work around it).
_SIZE_LINE, _DATA, _DATA_CRLF, _DONE = _State.SIZE_LINE, _State.DATA, _State.DATA_CRLF, _State.DONE
_make_start = slot_constructor(ChunkStart)
_make_data = slot_constructor(ChunkData)
_make_end = slot_constructor(ChunkEnd)


class AwsChunkedDecoder:
    """Turns raw aws-chunked bytes into events; raises ChunkedError on bad framing or a limit breach."""

    def __init__(
        self,
        *,
        max_chunk_bytes: int,
        max_line_bytes: int = 4096,
        max_trailer_bytes: int = 16384,
    ) -> None:
        self.max_chunk_bytes = max_chunk_bytes
        self.max_line_bytes = max_line_bytes
        self.max_trailer_bytes = max_trailer_bytes
        self._state = _State.SIZE_LINE
        self._line = bytearray()
        self._trailer_bytes = 0
        self._remaining = 0
        self._crlf_seen = 0
        self._index = -1
        self._size = 0
        self._signature: str | None = None
        self.decoded_length = 0

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        raw = data if isinstance(data, bytes | bytearray) else bytes(data)
        view = memoryview(raw)
        events: list[Event] = []
        position, end = 0, len(view)
        while position < end:
            state = self._state
            if state is _DATA:
                take = min(self._remaining, end - position)
                events.append(_make_data(view[position : position + take]))
                position += take
                self._remaining -= take
                self.decoded_length += take
                if self._remaining == 0:
                    self._state = _DATA_CRLF
            elif state is _DATA_CRLF:
                if self._crlf_seen == 0 and raw[position : position + 2] == b"\r\n":
                    position += 2  # the usual case: the whole CRLF is in this piece
                else:
                    if raw[position] != b"\r\n"[self._crlf_seen]:
                        raise ChunkedError(
                            ChunkedErrorKind.MALFORMED,
                            "chunk data is not followed by CRLF",
                            chunk_index=self._index,
                        )
                    position += 1
                    self._crlf_seen += 1
                    if self._crlf_seen < 2:
                        continue
                    self._crlf_seen = 0
                events.append(_make_end(self._index, self._size, self._signature))
                self._state = _SIZE_LINE
            elif state is _DONE:
                raise ChunkedError(ChunkedErrorKind.MALFORMED, "data after the end of the aws-chunked body")
            else:
                newline = raw.find(b"\n", position)
                stop = end if newline < 0 else newline
                limit = self.max_line_bytes if state is _SIZE_LINE else self.max_trailer_bytes
                if len(self._line) + (stop - position) > limit:
                    kind = (
                        ChunkedErrorKind.LINE_TOO_LONG
                        if state is _SIZE_LINE
                        else ChunkedErrorKind.TRAILER_TOO_LARGE
                    )
                    raise ChunkedError(kind, f"a line longer than {limit} bytes", chunk_index=self._index + 1)
                if newline < 0:
                    self._line += raw[position:stop]
                    break
                if self._line:  # the line began in an earlier piece
                    self._line += raw[position:stop]
                    line = bytes(self._line)
                    self._line.clear()
                else:
                    line = bytes(raw[position:stop])  # bytes(a bytes object) is that object: no copy
                position = newline + 1
                if line.endswith(b"\r"):
                    line = line[:-1]
                if state is _SIZE_LINE:
                    events.extend(self._size_line(line))
                else:
                    events.extend(self._trailer_line(line))
        return events

    def _size_line(self, line: bytes) -> list[Event]:
        size_text, _, extension = line.partition(b";")
        if not size_text or not _HEX_DIGITS.issuperset(size_text) or len(size_text) > 16:
            raise ChunkedError(
                ChunkedErrorKind.MALFORMED,
                f"invalid chunk size line {line[:80]!r}",
                chunk_index=self._index + 1,
            )
        size = int(size_text, 16)
        self._index += 1
        if size > self.max_chunk_bytes:
            raise ChunkedError(
                ChunkedErrorKind.CHUNK_TOO_LARGE,
                f"chunk {self._index} is {size} bytes, over the {self.max_chunk_bytes}-byte limit",
                chunk_index=self._index,
            )
        signature = None
        if extension.startswith(_SIGNATURE_PREFIX):
            signature = extension[len(_SIGNATURE_PREFIX) :].decode("ascii", "replace")
        self._size, self._signature = size, signature
        start = _make_start(self._index, size, signature)
        if size == 0:
            self._state = _State.TRAILER
            return [start, _make_end(self._index, 0, signature)]
        self._remaining = size
        self._state = _DATA
        return [start]

    def _trailer_line(self, line: bytes) -> list[Event]:
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > self.max_trailer_bytes:
            raise ChunkedError(ChunkedErrorKind.TRAILER_TOO_LARGE, "trailer section over the limit")
        if not line:
            self._state = _State.DONE
            return [StreamEnd(self.decoded_length)]
        name, separator, value = line.partition(b":")
        if not separator or not name.strip():
            raise ChunkedError(ChunkedErrorKind.MALFORMED, f"invalid trailer line {line[:80]!r}")
        return [
            TrailerField(
                name.strip().lower().decode("ascii", "replace"), value.strip().decode("utf-8", "replace")
            )
        ]

    def finish(self) -> list[Event]:
        """End of input: the stream must be complete (a missing final empty line is tolerated)."""
        if self._state is _State.DONE:
            return []
        if self._state is _State.TRAILER and not self._line:
            self._state = _State.DONE
            return [StreamEnd(self.decoded_length)]
        raise ChunkedError(
            ChunkedErrorKind.TRUNCATED,
            f"the body ended inside chunk {max(self._index, 0)} ({self._state})",
            chunk_index=max(self._index, 0),
        )


# -- trailer checksums ----------------------------------------------------------------------------------


class _Checksum(Protocol):
    def update(self, data: memoryview) -> None: ...
    def digest_b64(self) -> str: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: memoryview) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest_b64(self) -> str:
        return base64.b64encode(self._value.to_bytes(4, "big")).decode()


class _Hashlib:
    def __init__(self, name: str) -> None:
        self._hash = hashlib.new(name)

    def update(self, data: memoryview) -> None:
        self._hash.update(data)

    def digest_b64(self) -> str:
        return base64.b64encode(self._hash.digest()).decode()


def checksum_for(trailer_name: str) -> _Checksum | None:
    """The running checksum for an `x-amz-checksum-*` trailer, or None when this build cannot compute it
    (CRC32C and CRC64NVME need a native library the core does not depend on)."""
    algorithm = trailer_name.removeprefix("x-amz-checksum-")
    if algorithm == "crc32":
        return _Crc32()
    if algorithm in ("sha1", "sha256"):
        return _Hashlib(algorithm)
    return None


# -- verification -----------------------------------------------------------------------------------------


def chunk_string_to_sign(amz_date: str, scope: str, previous_signature: str, chunk_sha256: str) -> str:
    return f"{CHUNK_ALGORITHM}\n{amz_date}\n{scope}\n{previous_signature}\n{EMPTY_SHA256}\n{chunk_sha256}"


def trailer_string_to_sign(amz_date: str, scope: str, previous_signature: str, trailers: str) -> str:
    digest = hashlib.sha256(trailers.encode("utf-8")).hexdigest()
    return f"{TRAILER_ALGORITHM}\n{amz_date}\n{scope}\n{previous_signature}\n{digest}"


@dataclass(frozen=True, slots=True)
class ChunkSigning:
    """What chunk signatures are checked with: derived key, timestamp, scope and the seed signature."""

    signing_key: bytes
    amz_date: str
    scope: str
    seed_signature: str

    def __repr__(self) -> str:  # the derived key stays out of logs
        return f"ChunkSigning(amz_date={self.amz_date!r}, scope={self.scope!r})"


class AwsChunkedVerifier:
    """Decode an aws-chunked body and verify it as it streams; raise ChunkedError on the first problem.

    `content_sha256` is the request's x-amz-content-sha256 (one of the three streaming forms).
    `signing` is required for the signed forms; None checks framing, trailers and lengths only (the
    access key's secret is unknown). `unverified_checksums` lists trailers this build could not compute.
    """

    def __init__(
        self,
        content_sha256: str,
        *,
        signing: ChunkSigning | None,
        decoded_length: int | None,
        declared_trailers: tuple[str, ...] = (),
        max_chunk_bytes: int,
        min_chunk_bytes: int = 8192,
    ) -> None:
        self.signed = content_sha256 in (STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER)
        self.has_trailer = content_sha256 in (STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER)
        self.signing = signing
        self.decoded_length = decoded_length
        self.declared_trailers = tuple(name.strip().lower() for name in declared_trailers if name.strip())
        self.min_chunk_bytes = min_chunk_bytes
        self.decoder = AwsChunkedDecoder(max_chunk_bytes=max_chunk_bytes)
        self.previous_signature = signing.seed_signature if signing is not None else ""
        # The key's HMAC pads hashed once for the whole body, not once per chunk.
        self._key = SigningKey(signing.signing_key) if signing is not None else None
        self.chunks_verified = 0
        self.unverified_checksums: list[str] = []
        self._chunk_hash = hashlib.sha256()
        self._previous_size: int | None = None
        self._trailers: list[TrailerField] = []
        self._checksums: dict[str, _Checksum] = {}
        for name in self.declared_trailers:
            checksum = checksum_for(name)
            if checksum is not None:
                self._checksums[name] = checksum
            elif name.startswith("x-amz-checksum-"):
                self.unverified_checksums.append(name)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._handle(self.decoder.feed(data))

    def finish(self) -> None:
        self._handle(self.decoder.finish())

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ChunkData):
                if self.signed:
                    self._chunk_hash.update(event.data)
                for checksum in self._checksums.values():
                    checksum.update(event.data)
            elif isinstance(event, ChunkStart):
                self._start(event)
            elif isinstance(event, ChunkEnd):
                self._end(event)
            elif isinstance(event, TrailerField):
                self._trailer(event)
            else:
                self._stream_end(event)

    def _start(self, event: ChunkStart) -> None:
        if self.signed and event.signature is None:
            raise ChunkedError(
                ChunkedErrorKind.MALFORMED,
                f"chunk {event.index} has no chunk-signature",
                chunk_index=event.index,
            )
        # "All chunks except the final chunk must be at least 8 KB" (signed streaming uploads).
        if (
            self.signed
            and event.size > 0
            and self._previous_size is not None
            and self._previous_size < self.min_chunk_bytes
        ):
            raise ChunkedError(
                ChunkedErrorKind.CHUNK_TOO_SMALL,
                f"chunk {event.index - 1} is {self._previous_size} bytes; only the last chunk may be under "
                f"{self.min_chunk_bytes}",
                chunk_index=event.index - 1,
                provided=str(self._previous_size),
            )
        if event.size > 0:
            self._previous_size = event.size

    def _end(self, event: ChunkEnd) -> None:
        if not self.signed:
            return
        digest = self._chunk_hash.hexdigest()
        self._chunk_hash = hashlib.sha256()
        if self.signing is None or self._key is None:
            return
        string_to_sign = chunk_string_to_sign(
            self.signing.amz_date, self.signing.scope, self.previous_signature, digest
        )
        expected = self._key.sign(string_to_sign)
        provided = event.signature or ""
        if not signatures_equal(expected, provided):
            raise ChunkedError(
                ChunkedErrorKind.SIGNATURE_MISMATCH,
                f"the signature of chunk {event.index} ({event.size} bytes) does not match",
                chunk_index=event.index,
                string_to_sign=string_to_sign,
                provided=provided,
                expected=expected,
            )
        self.previous_signature = expected
        self.chunks_verified += 1

    def _trailer(self, event: TrailerField) -> None:
        if not self.has_trailer:
            raise ChunkedError(
                ChunkedErrorKind.MALFORMED, f"unexpected trailer {event.name!r} for this x-amz-content-sha256"
            )
        self._trailers.append(event)

    def _stream_end(self, event: StreamEnd) -> None:
        fields = {field.name: field.value for field in self._trailers}
        for name in self.declared_trailers:
            if name not in fields:
                raise ChunkedError(
                    ChunkedErrorKind.TRAILER_MISSING, f"the declared trailer {name} is absent", name=name
                )
        if self.signed and self.has_trailer:
            self._verify_trailer_signature(fields)
        for name, checksum in self._checksums.items():
            computed = checksum.digest_b64()
            if not signatures_equal(computed, fields.get(name, "")):  # the same constant-time helper
                raise ChunkedError(
                    ChunkedErrorKind.CHECKSUM_MISMATCH,
                    f"{name} is {fields.get(name)!r}, the decoded data gives {computed!r}",
                    name=name,
                    provided=fields.get(name, ""),
                    expected=computed,
                )
        if self.decoded_length is not None and event.decoded_length != self.decoded_length:
            raise ChunkedError(
                ChunkedErrorKind.LENGTH_MISMATCH,
                f"decoded {event.decoded_length} bytes; x-amz-decoded-content-length: {self.decoded_length}",
                provided=str(self.decoded_length),
                expected=str(event.decoded_length),
            )

    def _verify_trailer_signature(self, fields: dict[str, str]) -> None:
        provided = fields.get(TRAILER_SIGNATURE)
        if provided is None:
            raise ChunkedError(
                ChunkedErrorKind.TRAILER_MISSING, "the trailer signature is absent", name=TRAILER_SIGNATURE
            )
        if self.signing is None or self._key is None:
            return
        canonical = "".join(
            f"{field.name}:{field.value}\n" for field in self._trailers if field.name != TRAILER_SIGNATURE
        )
        string_to_sign = trailer_string_to_sign(
            self.signing.amz_date, self.signing.scope, self.previous_signature, canonical
        )
        expected = self._key.sign(string_to_sign)
        if not signatures_equal(expected, provided):
            raise ChunkedError(
                ChunkedErrorKind.TRAILER_SIGNATURE_MISMATCH,
                "the trailer signature does not match",
                string_to_sign=string_to_sign,
                provided=provided,
                expected=expected,
            )
