"""The upstream client speaks HTTP/1.1 as RFC 9112 writes it: against a real aiohttp app, and against raw
servers that send hand-written answers (chunked, close-delimited, HEAD, 204/304, interim answers)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from aiohttp import web
from pytest_aiohttp import AiohttpServer

from tests.functional.upstream.conftest import (
    HOST,
    MakeUpstream,
    RawConn,
    StartRaw,
    get,
    keep_alive_answer,
    serve_keep_alive,
)


def echo_app() -> tuple[web.Application, list[tuple[str, int]]]:
    """An aiohttp app: /echo answers the body's size and sha256; every request's client port is noted."""
    seen: list[tuple[str, int]] = []

    async def echo(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.append((request.method, peer[1] if peer else 0))
        data = await request.read()
        return web.json_response(
            {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "path": request.raw_path}
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)  # no Content-Length: aiohttp answers chunked
        for index in range(5):
            await response.write(b"part%d;" % index)
        await response.write_eof()
        return response

    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["status"]))

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/stream", stream)
    app.router.add_get("/status/{status}", empty)
    return app, seen


async def test_keep_alive_one_connection_for_many_requests(
    aiohttp_server: AiohttpServer, make_upstream: MakeUpstream
) -> None:
    app, seen = echo_app()
    server = await aiohttp_server(app, host="127.0.0.1")
    client = make_upstream(str(server.make_url("/")))
    for index in range(20):
        body = b"x" * index
        async with client.request("POST", b"/echo", HOST, body) as response:
            assert response.status == 200
            answer = await response.read(1 << 16)
            assert b'"size":%d' % index in answer.replace(b" ", b"")
    assert len(seen) == 20
    assert len({port for _, port in seen}) == 1


async def test_on_sent_runs_once_the_request_is_out_and_before_the_answer(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    # The upstream answers only after on_sent has run: the client must call it before it waits for the
    # answer (or this test hangs), and the request it wrote must reach the upstream all the same.
    steps: list[str] = []
    sent = asyncio.Event()

    async def answer_after_on_sent(conn: RawConn) -> None:
        request = await conn.request()
        assert request is not None
        steps.append("received " + (await conn.body(request)).decode())
        await asyncio.wait_for(sent.wait(), 5)
        await conn.answer(keep_alive_answer(b"done"))

    def on_sent() -> None:
        steps.append("on_sent")
        sent.set()

    server = await raw_server(answer_after_on_sent)
    client = make_upstream(server.url)
    assert await get(client, method="POST", body=b"payload", on_sent=on_sent) == (200, b"done")
    assert steps == ["on_sent", "received payload"]


async def test_answers_of_every_framing_from_aiohttp(
    aiohttp_server: AiohttpServer, make_upstream: MakeUpstream
) -> None:
    app, seen = echo_app()
    server = await aiohttp_server(app, host="127.0.0.1")
    client = make_upstream(str(server.make_url("/")))
    status, body = await get(client, b"/stream")
    assert (status, body) == (200, b"part0;part1;part2;part3;part4;")
    for code in (204, 304):
        async with client.request("GET", b"/status/%d" % code, HOST, None) as response:
            assert response.status == code
            assert response.complete
            assert response.take_buffered() == b""
            assert await response.read(10) == b""
    # HEAD: aiohttp answers with the GET's Content-Length and no body; the connection stays usable.
    async with client.request("HEAD", b"/stream", HOST, None) as response:
        assert response.status == 200
        assert response.complete and response.at_eof()
    async with client.request("HEAD", b"/echo", HOST, None) as response:
        assert int(dict(response.raw_headers)[b"Content-Length"]) > 0
        assert await response.read(100) == b""
    status, body = await get(client, b"/echo", method="PUT", body=b"after head")
    assert status == 200 and b'"size":10' in body.replace(b" ", b"")
    assert len({port for _, port in seen}) == 1  # one connection throughout


async def test_a_streamed_upload_is_chunked_and_arrives_whole(
    aiohttp_server: AiohttpServer, make_upstream: MakeUpstream
) -> None:
    app, _ = echo_app()
    server = await aiohttp_server(app, host="127.0.0.1")
    client = make_upstream(str(server.make_url("/")))
    piece = bytes(range(256)) * 1024  # 256 KiB
    digest = hashlib.sha256(piece * 32).hexdigest()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(32):  # 8 MiB: more than the transport buffers, so writing waits for drains
            yield piece

    status, answer = await get(client, b"/echo", method="PUT", body=body())
    assert status == 200
    assert digest.encode() in answer and b'"size":8388608' in answer.replace(b" ", b"")

    # With the caller's Content-Length: sent as is, no chunked framing.
    async def counted() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"defg"

    headers = [*HOST, (b"Content-Length", b"7")]
    status, answer = await get(client, b"/echo", method="POST", headers=headers, body=counted())
    assert status == 200 and hashlib.sha256(b"abcdefg").hexdigest().encode() in answer


async def test_chunked_answer_from_a_raw_server(raw_server: StartRaw, make_upstream: MakeUpstream) -> None:
    async def chunked(conn: RawConn) -> None:
        while await conn.request() is not None:
            await conn.answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await asyncio.sleep(0.01)
            await conn.answer(b"7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n")

    server = await raw_server(chunked)
    client = make_upstream(server.url)
    for _ in range(3):
        async with client.request("GET", b"/", HOST, None) as response:
            assert response.raw_headers == [(b"Transfer-Encoding", b"chunked")]
            assert b"".join([chunk async for chunk in response.chunks()]) == b"hello, world"
            assert response.raw_headers == [(b"Transfer-Encoding", b"chunked")]  # trailers are not merged
    assert server.connections == 1


async def test_close_delimited_answer_is_read_to_the_end(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def close_delimited(conn: RawConn) -> None:
        await conn.request()
        await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst part, ")
        await asyncio.sleep(0.01)
        await conn.answer(b"second part")
        conn.writer.close()

    server = await raw_server(close_delimited)
    client = make_upstream(server.url)
    for _ in range(2):
        assert await get(client) == (200, b"first part, second part")
    assert server.connections == 2  # such a connection cannot be reused


async def test_head_204_and_304_have_no_body_whatever_their_fields_say(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def answers(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            if request.method == b"HEAD":
                await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            elif request.target == b"/204":
                await conn.answer(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            elif request.target == b"/304":
                await conn.answer(b'HTTP/1.1 304 Not Modified\r\nETag: "e"\r\n\r\n')
            else:
                await conn.answer(keep_alive_answer(b"body"))

    server = await raw_server(answers)
    client = make_upstream(server.url)
    for _ in range(2):
        async with client.request("HEAD", b"/", HOST, None) as response:
            assert response.status == 200 and response.complete
            assert response.raw_headers == [(b"Content-Length", b"1234")]
            assert await response.read(10) == b""
        assert await get(client, b"/204") == (204, b"")
        assert await get(client, b"/304") == (304, b"")
        assert await get(client, b"/x") == (200, b"body")
    assert server.connections == 1


async def test_a_head_answer_followed_by_bytes_is_not_reused(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def head_with_body(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            body = b"" if request.method == b"GET" else b"oops"
            await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n" + (body or b"good"))

    server = await raw_server(head_with_body)
    client = make_upstream(server.url)
    async with client.request("HEAD", b"/", HOST, None) as response:
        assert response.status == 200
    await asyncio.sleep(0.05)
    assert await get(client) == (200, b"good")
    assert server.connections == 2


async def test_interim_answers_are_skipped(raw_server: StartRaw, make_upstream: MakeUpstream) -> None:
    async def early_hints(conn: RawConn) -> None:
        while await conn.request() is not None:
            await conn.answer(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            await asyncio.sleep(0.01)
            final = keep_alive_answer(b"final", extra=b"A: b\r\n")
            await conn.answer(b"HTTP/1.1 102 Processing\r\n\r\n" + final)

    server = await raw_server(early_hints)
    client = make_upstream(server.url)
    for _ in range(2):
        async with client.request("GET", b"/", HOST, None) as response:
            assert response.status == 200
            assert response.reason == "OK"
            assert response.raw_headers == [(b"Content-Length", b"5"), (b"A", b"b")]
            assert response.take_buffered() == b"final"
    assert server.connections == 1


async def test_100_continue_then_the_body(raw_server: StartRaw, make_upstream: MakeUpstream) -> None:
    bodies: list[bytes] = []

    async def continue_first(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            assert request.header(b"expect") == b"100-continue"
            # Nothing of the body may come before the 100.
            early = await _bytes_within(conn, 0.05)
            assert early == b""
            await conn.answer(b"HTTP/1.1 100 Continue\r\n\r\n")
            bodies.append(await conn.body(request))
            await conn.answer(keep_alive_answer(b"stored"))

    server = await raw_server(continue_first)
    client = make_upstream(server.url)
    assert await get(client, method="PUT", body=b"payload", expect_continue=True) == (200, b"stored")

    async def streamed() -> AsyncIterator[bytes]:
        yield b"stream"
        yield b"ed"

    assert await get(client, method="PUT", body=streamed(), expect_continue=True) == (200, b"stored")
    assert bodies == [b"payload", b"streamed"]
    assert server.connections == 1


async def test_a_final_answer_instead_of_100_means_no_body_and_no_reuse(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    leaked: list[bytes] = []

    async def refuse(conn: RawConn) -> None:
        request = await conn.request()
        assert request is not None
        if request.header(b"expect") is None:
            await conn.answer(keep_alive_answer(b"fresh"))
            return
        await conn.answer(keep_alive_answer(b"denied", b"403 Forbidden"))
        leaked.append(await _bytes_within(conn, 1.0))

    server = await raw_server(refuse)
    client = make_upstream(server.url)
    assert await get(client, method="PUT", body=b"secret body", expect_continue=True) == (403, b"denied")
    assert await get(client) == (200, b"fresh")
    assert leaked == [b""]  # the body was never sent; the connection was closed, not reused
    assert server.connections == 2


async def test_target_headers_and_body_go_out_byte_exact(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    received: list[bytes] = []

    async def record(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            received.append(request.head + await conn.body(request))
            await conn.answer(keep_alive_answer())

    server = await raw_server(record)
    client = make_upstream(server.url)
    target = "/bucket/a%2Fb//c+d/caf\u00e9?x=%2F&y=+&z=\u00fc&&".encode()
    headers = [
        (b"host", b"Bucket.S3.Example:8443"),
        (b"X-Amz-Date", b"20240101T000000Z"),
        (b"x-amz-meta-Weird", b"  spaced\tvalue "),
        (b"X-AMZ-META-WEIRD", b"second"),
        (b"Authorization", b"AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/s3/aws4_request"),
        (b"x-amz-meta-utf8", "\u00e9t\u00e9".encode()),
    ]
    body = b"\x00\r\n\r\nnot a header\xff"
    assert await get(client, target, method="PUT", headers=headers, body=body) == (200, b"ok")
    expected = (
        b"PUT "
        + target
        + b" HTTP/1.1\r\n"
        + b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    assert received == [expected]
    # No body: nothing added to a GET; Content-Length: 0 for a POST, as aiohttp did.
    await get(client, b"/?list-type=2", headers=headers[:1])
    await get(client, b"/", method="POST", headers=headers[:1])
    assert received[1:] == [
        b"GET /?list-type=2 HTTP/1.1\r\nhost: Bucket.S3.Example:8443\r\n\r\n",
        b"POST / HTTP/1.1\r\nhost: Bucket.S3.Example:8443\r\nContent-Length: 0\r\n\r\n",
    ]


async def test_routes_to_another_origin_share_nothing_with_the_configured_one(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    first = await raw_server(lambda conn: serve_keep_alive(conn, b"first"))
    second = await raw_server(lambda conn: serve_keep_alive(conn, b"second"))
    client = make_upstream(first.url)
    from ssl import create_default_context

    from yarl import URL

    context = create_default_context()
    route = client.route_to(URL(second.url), context, 2.0)
    assert route is client.route_to(URL(second.url), context, 2.0)  # cached
    assert (route.scheme, route.host, route.port, route.ssl, route.connect_timeout) == (
        "http",
        "127.0.0.1",
        second.port,
        None,
        2.0,
    )
    for _ in range(3):
        assert await get(client, route=route) == (200, b"second")
        assert await get(client) == (200, b"first")
    assert (first.connections, second.connections) == (1, 1)
    assert await client.probe()


async def test_probe_says_whether_the_upstream_takes_connections(make_upstream: MakeUpstream) -> None:
    from tests.support.net import free_port

    assert not await make_upstream(f"http://127.0.0.1:{free_port()}", connect_timeout=1.0).probe()


async def _bytes_within(conn: RawConn, seconds: float) -> bytes:
    """What the client sends within `seconds` (b"" if nothing, or if it closed)."""
    try:
        return await asyncio.wait_for(conn.reader.read(65536), seconds)
    except TimeoutError:
        return b""
