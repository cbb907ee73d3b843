"""The pool: at most pool_size connections open at once (requests past it wait their turn), idle ones
closed after keepalive_timeout, every one closed by close(); and reading under back-pressure, so a
large answer read slowly is never buffered whole."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from yarl import URL

from proxy.server.upstream import READ_HIGH_WATER, READ_LOW_WATER, UpstreamDisconnected
from tests.functional.upstream.conftest import (
    HOST,
    MakeUpstream,
    RawConn,
    StartRaw,
    get,
    keep_alive_answer,
    serve_keep_alive,
)


async def test_pool_size_bounds_the_open_connections_and_waiters_go_in_order(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    release = asyncio.Event()
    served: list[bytes] = []

    async def held(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            await release.wait()
            served.append(request.target)
            await conn.answer(keep_alive_answer(request.target))

    server = await raw_server(held)
    client = make_upstream(server.url, pool_size=2)
    targets = [b"/%d" % index for index in range(5)]
    calls = []
    for target in targets:
        calls.append(asyncio.create_task(get(client, target)))
        await asyncio.sleep(0.01)  # queued in this order
    await asyncio.sleep(0.05)
    assert server.open_now == 2
    release.set()
    results = await asyncio.gather(*calls)
    assert results == [(200, target) for target in targets]
    assert (server.connections, server.most_open) == (2, 2)
    assert sorted(served[:2]) == targets[:2] and served[2:] == targets[2:]  # first come, first served


async def test_a_waiter_that_gives_up_keeps_no_slot(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    release = asyncio.Event()

    async def held(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            await release.wait()
            await conn.answer(keep_alive_answer(request.target))

    server = await raw_server(held)
    client = make_upstream(server.url, pool_size=1)
    first = asyncio.create_task(get(client, b"/first"))
    await asyncio.sleep(0.02)
    impatient = asyncio.create_task(get(client, b"/impatient"))
    await asyncio.sleep(0.02)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    release.set()
    assert await first == (200, b"/first")
    assert await get(client, b"/after") == (200, b"/after")
    assert server.connections == 1


async def test_a_request_cancelled_mid_answer_gives_its_connection_back(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    async def slow_then_quick(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            if request.target == b"/slow":
                await conn.client_closed()
                return
            await conn.answer(keep_alive_answer())

    server = await raw_server(slow_then_quick)
    client = make_upstream(server.url, pool_size=1)
    slow = asyncio.create_task(get(client, b"/slow"))
    await asyncio.sleep(0.05)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert await get(client, b"/quick") == (200, b"ok")
    assert server.connections == 2


async def test_idle_connections_close_after_keepalive_timeout(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    closed_by_client: list[int] = []

    async def note_close(conn: RawConn) -> None:
        await serve_keep_alive(conn)
        closed_by_client.append(conn.number)

    server = await raw_server(note_close)
    client = make_upstream(server.url, keepalive_timeout=0.1)
    assert await get(client) == (200, b"ok")
    assert await get(client) == (200, b"ok")
    for _ in range(100):  # the sweeper closes it (bounded wait, no timing asserted)
        if closed_by_client:
            break
        await asyncio.sleep(0.02)
    assert closed_by_client == [1]
    assert await get(client) == (200, b"ok")
    assert server.connections == 2


async def test_other_routes_idle_connections_make_room_at_the_limit(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    first = await raw_server(lambda conn: serve_keep_alive(conn, b"first"))
    second = await raw_server(lambda conn: serve_keep_alive(conn, b"second"))
    client = make_upstream(first.url, pool_size=1)
    route = client.route_to(URL(second.url), ssl.create_default_context(), 1.0)
    for _ in range(2):
        assert await get(client) == (200, b"first")
        assert await get(client, route=route) == (200, b"second")
    assert (first.connections, second.connections) == (2, 2)
    # Each switch closed the other route's idle connection to stay within one.
    assert (first.most_open, second.most_open) == (1, 1)


async def test_close_closes_every_connection(raw_server: StartRaw, make_upstream: MakeUpstream) -> None:
    release = asyncio.Event()

    async def held(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            if request.target == b"/held":
                await release.wait()
            await conn.answer(keep_alive_answer())

    server = await raw_server(held)
    client = make_upstream(server.url)
    await asyncio.gather(get(client, b"/a"), get(client, b"/b"))  # two idle connections
    in_flight = asyncio.create_task(get(client, b"/held"))
    await asyncio.sleep(0.05)
    assert server.open_now == 2  # one idle, one in use
    await client.close()
    with pytest.raises(UpstreamDisconnected, match="shutting down"):
        await in_flight
    release.set()  # the server reads again, and finds every connection closed
    for _ in range(100):
        if server.open_now == 0:
            break
        await asyncio.sleep(0.02)
    assert server.open_now == 0


async def test_a_large_answer_read_slowly_stays_bounded_in_memory(
    raw_server: StartRaw, make_upstream: MakeUpstream
) -> None:
    size = 64 * 1024 * 1024
    block = bytes(range(256)) * 4096  # 1 MiB

    async def download(conn: RawConn) -> None:
        while (request := await conn.request()) is not None:
            if request.target == b"/small":
                await conn.answer(keep_alive_answer())
                continue
            conn.writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            for _ in range(size // len(block)):
                conn.writer.write(block)
                await conn.writer.drain()

    server = await raw_server(download)
    client = make_upstream(server.url)
    received = most_buffered = 0
    async with client.request("GET", b"/big", HOST, None) as response:
        while not response.at_eof():
            await asyncio.sleep(0.002)  # a slow consumer: the upstream gets ahead of it
            taken = response.take_buffered() or await response.read(READ_LOW_WATER)
            most_buffered = max(most_buffered, len(taken))
            received += len(taken)
    assert received == size
    # What was buffered at once: the high-water mark plus at most one socket read past it.
    assert READ_HIGH_WATER < most_buffered <= READ_HIGH_WATER + 1024 * 1024
    assert await get(client, b"/small") == (200, b"ok")  # the connection stays usable
    assert server.connections == 1
