"""What goes wrong between sigwatch and an upstream: each failure is raised as the client's own error and
mapped by failure_from onto the bounded reasons the handler answers and counts with; a connection that
saw a failure is never used again; a request is re-sent only when that cannot do harm."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from proxy.server.upstream import (
    MAX_HEAD_BYTES,
    UpstreamBodyError,
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamFailure,
    UpstreamProtocolError,
    UpstreamTimeout,
    failure_from,
)
from tests.functional.upstream.conftest import (
    HOST,
    Handler,
    MakeUpstream,
    RawConn,
    StartRaw,
    get,
    keep_alive_answer,
)
from tests.support.net import free_port


class PayloadRejected(Exception):
    """Stands for the handler's own exceptions raised from inside a streamed body."""


# -- the body iterable's own exceptions --------------------------------------------------------------------


async def test_an_exception_from_the_body_propagates_unchanged_before_the_head(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    closed: list[bool] = []

    async def wait_for_body(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            if request.header(b"transfer-encoding") == b"chunked":
                closed.append(await conn.client_closed())  # the body breaks off: the connection is aborted
                return
            await conn.answer(keep_alive_answer(b"next"))

    server = await raw_server(wait_for_body)
    client = make_upstream(server.url)
    rejection = PayloadRejected("the payload does not match its signature")

    async def body() -> AsyncIterator[bytes]:
        yield b"first chunk"
        await asyncio.sleep(0.01)
        raise rejection

    with pytest.raises(PayloadRejected) as raised:
        async with client.request("PUT", b"/", HOST, body()):
            pytest.fail("no answer can come")
    assert raised.value is rejection
    assert await get(client) == (200, b"next")
    assert closed == [True]
    assert server.connections == 2


async def test_an_exception_from_the_body_after_the_head_comes_out_of_read(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def answer_at_once(conn: RawConn) -> None:
        await conn.request()
        await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf.")
        await conn.client_closed()

    server = await raw_server(answer_at_once)
    client = make_upstream(server.url)
    go_on = asyncio.Event()
    rejection = PayloadRejected("too large")

    async def body() -> AsyncIterator[bytes]:
        yield b"start"
        await go_on.wait()
        raise rejection

    async with client.request("PUT", b"/", HOST, body()) as response:
        assert response.status == 200
        assert await response.read(100) == b"half."
        go_on.set()
        with pytest.raises(PayloadRejected) as raised:
            await response.read(100)
        assert raised.value is rejection


async def test_an_early_answer_stops_the_upload_and_the_connection(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def too_large(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            if request.method == b"PUT":
                await conn.answer(keep_alive_answer(b"EntityTooLarge", b"413 Payload Too Large"))
                await conn.client_closed()
                return
            await conn.answer(keep_alive_answer())

    server = await raw_server(too_large)
    client = make_upstream(server.url)
    produced = 0
    answered = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        while True:
            produced += 1
            yield b"x" * 65536
            if answered.is_set():
                await asyncio.sleep(0.01)  # the client no longer asks for more

    async with client.request("PUT", b"/", HOST, endless()) as response:
        answered.set()
        assert response.status == 413
        assert await response.read(100) == b"EntityTooLarge"
        taken = produced
        await asyncio.sleep(0.1)
        assert produced <= taken + 1
    assert await get(client) == (200, b"ok")
    assert server.connections == 2


# -- stale pooled connections ------------------------------------------------------------------------------


def closes_the_second_request_unanswered() -> tuple[list[bytes], Handler]:
    """A server that answers a connection's first request and closes it when the second one arrives:
    the race of a keep-alive connection the upstream closes as the client reuses it."""
    seen: list[bytes] = []

    async def handler(conn: RawConn) -> None:
        request = await conn.request()
        if request is None:
            return
        seen.append(request.method + b" " + await conn.body(request))
        await conn.answer(keep_alive_answer(b"answer %d" % conn.number))
        request = await conn.request()
        if request is not None:
            seen.append(request.method + b" (dropped)")
            conn.writer.close()

    return seen, handler


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("PUT", b"replayable"), ("DELETE", b"")])
async def test_a_stale_connection_is_retried_for_idempotent_replayable_requests(
    method: str, body: bytes | None, raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    seen, handler = closes_the_second_request_unanswered()
    server = await raw_server(handler)
    client = make_upstream(server.url)
    sent: list[int] = []  # on_sent runs for each attempt that goes out (the handler's checks run once)
    assert await get(client, method=method, body=body, on_sent=lambda: sent.append(1)) == (200, b"answer 1")
    assert await get(client, method=method, body=body, on_sent=lambda: sent.append(2)) == (200, b"answer 2")
    encoded = method.encode()
    assert seen == [encoded + b" " + (body or b""), encoded + b" (dropped)", encoded + b" " + (body or b"")]
    assert sent == [1, 2, 2]


async def test_a_stale_connection_is_not_retried_for_post_or_a_streamed_body(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    seen, handler = closes_the_second_request_unanswered()
    server = await raw_server(handler)
    client = make_upstream(server.url)
    assert await get(client, method="POST", body=b"once") == (200, b"answer 1")
    with pytest.raises(UpstreamDisconnected) as raised:
        await get(client, method="POST", body=b"once")
    assert failure_from(raised.value).reason == "reset"

    async def streamed() -> AsyncIterator[bytes]:
        yield b"stream"

    assert await get(client, method="PUT", body=b"first") == (200, b"answer 2")
    with pytest.raises(UpstreamDisconnected):
        await get(client, method="PUT", body=streamed())
    assert seen == [b"POST once", b"POST (dropped)", b"PUT first", b"PUT (dropped)"]


async def test_a_pooled_connection_the_upstream_closed_is_dropped_at_checkout(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def one_answer_then_close(conn: RawConn) -> None:
        request = await conn.request()
        if request is not None:
            await conn.answer(keep_alive_answer(b"%d" % conn.number))
            conn.writer.close()

    server = await raw_server(one_answer_then_close)
    client = make_upstream(server.url)
    for number in (1, 2, 3):
        assert await get(client, method="POST", body=b"not idempotent") == (200, b"%d" % number)
        await asyncio.sleep(0.02)  # the FIN arrives while the connection is idle


async def test_bytes_on_an_idle_connection_retire_it(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def longer_than_announced(conn: RawConn) -> None:
        while await conn.request() is not None:
            await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")

    server = await raw_server(longer_than_announced)
    client = make_upstream(server.url)
    assert await get(client) == (200, b"ok")
    await asyncio.sleep(0.02)
    assert await get(client) == (200, b"ok")
    assert server.connections == 2


# -- connecting --------------------------------------------------------------------------------------------


async def test_connection_refused(make_upstream: MakeUpstream) -> None:
    client = make_upstream(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(UpstreamConnectError) as raised:
        await get(client)
    failure = failure_from(raised.value)
    assert (failure.reason, failure.timeout) == ("refused", False)
    assert failure.detail.startswith("cannot connect: ")


async def test_name_resolution_failure(make_upstream: MakeUpstream) -> None:
    client = make_upstream("http://sigwatch-upstream-test.invalid:80")  # RFC 6761: never resolves
    with pytest.raises(UpstreamConnectError) as raised:
        await get(client)
    assert isinstance(raised.value.os_error, socket.gaierror)
    failure = failure_from(raised.value)
    assert failure.reason == "dns"
    assert failure.detail.startswith("name resolution failed: ")


@pytest.fixture
def tls_upstream(tmp_path: Path) -> tuple[ssl.SSLContext, Path, Path]:
    """A server context with a certificate for 127.0.0.1 from one CA; that CA's and another CA's PEM."""
    ca, other = trustme.CA(), trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    right, wrong = tmp_path / "ca.pem", tmp_path / "other.pem"
    ca.cert_pem.write_to_path(str(right))
    other.cert_pem.write_to_path(str(wrong))
    return server_context, right, wrong


async def test_tls_verified_refused_or_unverified(
    tls_upstream: tuple[ssl.SSLContext, Path, Path],
    aiohttp_server: AiohttpServer,
    make_upstream: MakeUpstream,
) -> None:
    server_context, right, wrong = tls_upstream
    seen: list[str] = []

    async def hello(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        return web.Response(text="over tls")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    server = await aiohttp_server(app, host="127.0.0.1", ssl=server_context)
    url = f"https://127.0.0.1:{server.port}"

    trusted = make_upstream(url, ca_bundle=str(right))
    assert trusted.route.server_hostname == "127.0.0.1"
    assert await get(trusted, b"/trusted") == (200, b"over tls")
    assert await get(trusted, b"/again") == (200, b"over tls")
    assert await trusted.probe()

    untrusted = make_upstream(url, ca_bundle=str(wrong))
    with pytest.raises(UpstreamConnectError) as raised:
        await get(untrusted, b"/untrusted")
    failure = failure_from(raised.value)
    assert failure.reason == "tls"
    assert failure.detail.startswith("TLS handshake failed: ")
    assert not await untrusted.probe()

    unverified = make_upstream(url, ca_bundle=str(wrong), verify_tls=False)
    assert await get(unverified, b"/unverified") == (200, b"over tls")
    assert seen == ["/trusted", "/again", "/unverified"]  # nothing went over the refused connection


# -- reading the answer ------------------------------------------------------------------------------------


async def test_no_answer_in_time(raw_server: StartRaw, make_upstream: MakeUpstream) -> None:
    async def silent(conn: RawConn) -> None:
        await conn.request()
        await conn.client_closed(timeout=5)

    server = await raw_server(silent)
    client = make_upstream(server.url, read_timeout=0.2)
    with pytest.raises(UpstreamTimeout) as raised:
        await get(client)
    assert failure_from(raised.value) == UpstreamFailure("timeout", "no answer in time", timeout=True)


async def test_a_body_that_stalls_times_out_but_a_slow_steady_one_does_not(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def trickle(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
            for _ in range(10):  # 10 x 0.06 s: longer than the read timeout in all, shorter per byte
                await asyncio.sleep(0.06)
                await conn.answer(b"x")
            if request.target != b"/steady":
                await conn.client_closed()
                return
            await conn.answer(b"y" * 10)

    server = await raw_server(trickle)
    client = make_upstream(server.url, read_timeout=0.25)
    assert await get(client, b"/steady") == (200, b"x" * 10 + b"y" * 10)
    async with client.request("GET", b"/stalls", HOST, None) as response:
        received = b""
        with pytest.raises(UpstreamTimeout) as raised:
            while chunk := await response.read(100):
                received += chunk
        assert received == b"x" * 10
    assert failure_from(raised.value).timeout


async def test_an_upload_the_upstream_reads_slowly_is_not_silence(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    size = 24 * 1024 * 1024

    async def slow_reader(conn: RawConn) -> None:
        while await conn.request() is not None:
            received = 0
            # 6 reads 0.1 s apart: longer than the read timeout in all, though the kernel's buffers
            # (the client's send buffer grows to 4 MiB) hold the last 0.15 s of it.
            while received < size:
                received += len(await conn.reader.readexactly(4 * 1024 * 1024))
                await asyncio.sleep(0.1)
            await conn.answer(keep_alive_answer(b"%d" % received))

    server = await raw_server(slow_reader)
    server.limit_receive_buffer(64 * 1024)
    client = make_upstream(server.url, read_timeout=0.4)
    payload = b"u" * size

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, size, 256 * 1024):
            yield payload[start : start + 256 * 1024]

    headers = [*HOST, (b"Content-Length", b"%d" % size)]
    assert await get(client, method="PUT", headers=headers, body=payload) == (200, b"%d" % size)
    assert await get(client, method="PUT", headers=headers, body=streamed()) == (200, b"%d" % size)


async def test_a_body_shorter_than_its_content_length(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def short(conn: RawConn) -> None:
        request = await conn.request()
        assert request is not None
        await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await asyncio.sleep(0.02)
        if request.target == b"/reset":
            conn.reset()
        else:
            conn.writer.close()

    server = await raw_server(short)
    client = make_upstream(server.url)
    for target, error, reason, detail in [
        (b"/fin", UpstreamBodyError, "protocol", "the body ended early or was badly framed: "),
        (b"/reset", UpstreamDisconnected, "reset", "connection lost mid-body: "),
    ]:
        async with client.request("GET", target, HOST, None) as response:
            assert await response.read(100) == b"only this"
            with pytest.raises(error) as raised:
                await response.read(100)
        failure = failure_from(raised.value)
        assert failure.reason == reason and failure.detail.startswith(detail)


async def test_badly_framed_chunks(raw_server: StartRaw, make_upstream: MakeUpstream) -> None:
    async def bad_chunk(conn: RawConn) -> None:
        await conn.request()
        await conn.answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
        await conn.client_closed()

    client = make_upstream((await raw_server(bad_chunk)).url)
    async with client.request("GET", b"/", HOST, None) as response:
        with pytest.raises(UpstreamBodyError) as raised:
            async for _ in response.chunks():
                pass
    assert failure_from(raised.value).reason == "protocol"


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not http at all\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",  # bare LF: no leniency
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
    ],
    ids=["garbage", "status", "two-lengths", "field-name", "bare-lf", "upgrade"],
)
async def test_a_bad_answer_head(answer: bytes, raw_server: StartRaw, make_upstream: MakeUpstream) -> None:
    async def bad(conn: RawConn) -> None:
        await conn.request()
        await conn.answer(answer)
        await conn.client_closed()

    client = make_upstream((await raw_server(bad)).url)
    with pytest.raises(UpstreamProtocolError) as raised:
        await get(client)
    failure = failure_from(raised.value)
    assert failure.reason == "protocol" and failure.detail.startswith("bad upstream answer: ")


async def test_an_endless_answer_head_is_refused(raw_server: StartRaw, make_upstream: MakeUpstream) -> None:
    async def endless_head(conn: RawConn) -> None:
        await conn.request()
        await conn.answer(b"HTTP/1.1 200 OK\r\n")
        for index in range(MAX_HEAD_BYTES // 1000 + 2):
            conn.writer.write(b"X-Filler-%d: %s\r\n" % (index, b"f" * 1000))
        await conn.writer.drain()
        await conn.client_closed()

    client = make_upstream((await raw_server(endless_head)).url)
    with pytest.raises(UpstreamProtocolError, match="larger than"):
        await get(client)


async def test_the_connection_closed_before_an_answer(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def close_at_once(conn: RawConn) -> None:
        await conn.request()
        conn.writer.close()

    client = make_upstream((await raw_server(close_at_once)).url)
    with pytest.raises(UpstreamDisconnected) as raised:
        await get(client, method="POST", body=b"x")
    failure = failure_from(raised.value)
    assert failure.reason == "reset" and failure.detail.startswith("connection lost: ")


async def test_an_answer_left_unread_at_the_exit_fails_later_reads(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def partial(conn: RawConn) -> None:
        while await conn.request() is not None:
            await conn.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf.")

    server = await raw_server(partial)
    client = make_upstream(server.url)
    async with client.request("GET", b"/", HOST, None) as response:
        assert await response.read(5) == b"half."
    with pytest.raises(UpstreamDisconnected):
        await response.read(5)  # not a wait on a connection nobody reads
    async with client.request("GET", b"/", HOST, None) as response:
        assert await response.read(5) == b"half."
    assert server.connections == 2


def test_plain_socket_and_ssl_errors_keep_their_reasons() -> None:
    """CONNECT tunnels open their upstream connection with asyncio directly and map its errors here."""
    cases: list[tuple[BaseException, str]] = [
        (socket.gaierror(-2, "Name or service not known"), "dns"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "tls"),
        (ConnectionRefusedError(111, "Connection refused"), "refused"),
        (TimeoutError(), "timeout"),
        (ConnectionResetError(104, "Connection reset by peer"), "reset"),
        (OSError(113, "No route to host"), "refused"),
        (ValueError("odd"), "protocol"),
    ]
    assert [(failure_from(exc).reason) for exc, _ in cases] == [reason for _, reason in cases]
    assert failure_from(TimeoutError()).timeout
