"""WholeAnswer against its oracle, aiohttp's own web.Response: for every case the bytes on the wire are the
same (the Date value aside), over a real aiohttp low-level server and a raw socket client."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from proxy.server.answer import WholeAnswer


@dataclass(frozen=True)
class Case:
    status: int
    fields: tuple[tuple[bytes, bytes], ...]
    body: bytes
    reason: str | None = None
    own: tuple[tuple[str, str], ...] = ()
    close: bool = False


CASES = {
    "json-200": Case(
        200, ((b"Content-Type", b"application/x-amz-json-1.1"), (b"x-amzn-RequestId", b"r1")), b"{}"
    ),
    "upstream-length": Case(200, ((b"Content-Length", b"5"), (b"ETag", b'"abc"')), b"hello"),
    "no-type": Case(200, ((b"x-amz-id-2", b"x"),), b"raw bytes"),
    "empty-200": Case(200, (), b""),
    "own-fields": Case(
        400, ((b"Content-Type", b"text/xml"),), b"<Error/>", own=(("x-sigwatch-request-id", "abc"),)
    ),
    "own-type": Case(403, (), b"{}", own=(("Content-Type", "application/json"),)),
    "date-and-server": Case(
        200, ((b"Date", b"Tue, 01 Jan 2030 00:00:00 GMT"), (b"Server", b"AmazonS3")), b"x"
    ),
    "reason": Case(404, ((b"Content-Type", b"text/plain"),), b"nope", reason="Not Here"),
    "empty-reason": Case(200, (), b"ok", reason=""),
    "no-content": Case(204, ((b"Content-Length", b"0"), (b"x-amz-request-id", b"1")), b""),
    "not-modified": Case(304, ((b"ETag", b'"e"'),), b""),
    "not-modified-length": Case(304, ((b"Content-Length", b"10"),), b""),
    "close": Case(500, ((b"Content-Type", b"application/json"),), b'{"m":1}', close=True),
    "non-ascii-value": Case(200, ((b"x-amz-meta-name", "caf\u00e9".encode()),), b"x"),
}


def _oracle(case: Case) -> web.StreamResponse:
    headers = [(name.decode(), value.decode()) for name, value in case.fields]
    response = web.Response(status=case.status, reason=case.reason, body=case.body, headers=headers)
    for name, value in case.own:
        response.headers[name] = value
    return response


def _mine(case: Case) -> web.StreamResponse:
    answer = WholeAnswer(case.status, case.reason, case.fields, case.body)
    for name, value in case.own:
        answer.set(name, value)
    return answer


@pytest.fixture
async def server() -> AsyncIterator[int]:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        case = CASES[request.query["case"]]
        response = (_mine if request.query["kind"] == "mine" else _oracle)(case)
        if case.close:
            response.force_close()
        return response

    runner = web.ServerRunner(web.Server(handler), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield port
    await runner.cleanup()


async def _exchange(port: int, requests: list[bytes]) -> bytes:
    """Send the requests on one connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(requests))
    data = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: <now>\r\n", data)


def _request(method: str, case: str, kind: str, version: str = "1.1", last: bool = False) -> bytes:
    connection = "Connection: close\r\n" if last and version == "1.1" else ""
    if version == "1.0" and not last:
        connection = "Connection: keep-alive\r\n"
    return f"{method} /?case={case}&kind={kind} HTTP/{version}\r\nHost: t\r\n{connection}\r\n".encode()


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("version", ["1.1", "1.0"])
async def test_the_wire_bytes_are_aiohttps(server: int, case: str, method: str, version: str) -> None:
    # A keep-alive request then a closing one: both the Connection field and what follows on the
    # connection (nothing is left over from the first answer) are compared.
    def build(kind: str) -> list[bytes]:
        return [_request(method, case, kind, version), _request("GET", "json-200", kind, version, last=True)]

    mine, oracle = await _exchange(server, build("mine")), await _exchange(server, build("oracle"))
    assert mine == oracle
    assert mine.startswith(b"HTTP/")


def test_a_field_of_sigwatch_replaces_the_upstreams() -> None:
    answer = WholeAnswer(200, None, [(b"X-Sigwatch-Signature", b"forged"), (b"ETag", b"e")], b"x")
    answer.set("x-sigwatch-signature", "valid")
    answer.set("x-sigwatch-signature", "missing")  # the last value set wins, once
    head = answer._head(_FakeRequest())  # type: ignore[arg-type]  # only the head is rendered: no I/O
    assert b"forged" not in head
    assert head.count(b"x-sigwatch-signature: missing\r\n") == 1
    assert b"ETag: e\r\n" in head


def test_a_line_break_in_a_value_is_refused() -> None:
    answer = WholeAnswer(200, None, (), b"")
    with pytest.raises(ValueError, match="line break"):
        answer.set("x-sigwatch-findings", "a\r\nInjected: yes")


class _FakeRequest:
    method = "GET"

    class version:
        major, minor = 1, 1
