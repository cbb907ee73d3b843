"""Frame a payload as signed aws-chunked, signing each chunk like an SDK (used by sigv4 and check tests)."""

from __future__ import annotations

import hashlib

from proxy.core.sigv4.chunked import chunk_string_to_sign, trailer_string_to_sign
from proxy.core.sigv4.signing import sign


def signed_chunked_body(
    payload: bytes,
    chunk_size: int,
    *,
    key: bytes,
    amz_date: str,
    scope: str,
    seed: str,
    trailer: str | None = None,
) -> tuple[bytes, list[str]]:
    """(wire bytes, chunk signatures): `<hex>;chunk-signature=<sig>\\r\\n<data>\\r\\n` ... final empty chunk,
    then, with `trailer` (`name:value`), the trailer and its x-amz-trailer-signature."""
    wire = bytearray()
    previous = seed
    signatures = []
    pieces = [payload[i : i + chunk_size] for i in range(0, len(payload), chunk_size)] + [b""]
    for piece in pieces:
        previous = sign(
            key, chunk_string_to_sign(amz_date, scope, previous, hashlib.sha256(piece).hexdigest())
        )
        signatures.append(previous)
        wire += f"{len(piece):x};chunk-signature={previous}\r\n".encode() + piece + b"\r\n"
    if trailer is not None:
        wire = wire[:-2]  # the final chunk's CRLF becomes the start of the trailer section
        trailer_signature = sign(key, trailer_string_to_sign(amz_date, scope, previous, trailer + "\n"))
        wire += f"{trailer}\r\nx-amz-trailer-signature:{trailer_signature}\r\n\r\n".encode()
    return bytes(wire), signatures
