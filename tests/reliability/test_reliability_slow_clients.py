"""Slow, stalling and vanishing clients: a head that never ends, a body that stops, hundreds of idle
connections, a client leaving mid-upload or mid-download. Each is cut or refused with a clear answer,
logged and counted once, the upstream request aborted with it, and nothing is left behind."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import LogSink
from tests.functional.proxy.conftest import StartProxy
from tests.reliability.conftest import url
from tests.reliability.signing import STORAGE_GATEWAY, raw_request, signed
from tests.reliability.support import (
    Upstream,
    assert_proxy_error,
    converse,
    footprint,
    metric_samples,
    parse_responses,
    request_lines,
    request_total,
    settles_to,
)

BODY_TIMEOUT = 0.3


async def test_a_head_that_never_ends_gets_an_aws_shaped_408_counted_once(
    upstream: tuple[Upstream, int], start_proxy: StartProxy, logs: LogSink
) -> None:
    recorder, port = upstream
    server = await start_proxy(url(port), limits={"header_timeout": 0.3})
    raw, closed = await converse(server, b"GET /slow HTTP/1.1\r\nHost: example.com\r\nX-Trickle: ")
    assert closed
    (response,) = parse_responses(raw)
    assert_proxy_error(response, 408, "RequestTimeout")
    assert [e["event"] for e in logs.events() if e["event"] == "header_timeout"] == ["header_timeout"]
    assert metric_samples(server, "sigwatch_connection_events_total")[(("event", "header_timeout"),)] == 1
    assert recorder.seen == []


async def test_a_streamed_body_that_stops_is_cut_and_the_upstream_request_aborted(
    upstream: tuple[Upstream, int], start_proxy: StartProxy, logs: LogSink
) -> None:
    recorder, port = upstream
    server = await start_proxy(url(port), limits={"body_timeout": 1.0})
    assert server.proxy_address is not None
    before, baseline = request_total(server), footprint()
    head = raw_request(
        "PUT",
        "/bucket/object",
        {"Host": "s3.us-east-1.amazonaws.com", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
        b"u" * 100_000,
        close=False,
    )[:-100_000]
    reader, writer = await asyncio.open_connection(*server.proxy_address)
    writer.write(head + b"u" * 25_000)  # sigwatch holds the latest piece until the next one arrives
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.write(b"u" * 25_000)
    await writer.drain()
    await asyncio.wait_for(recorder.started.wait(), 5)  # the upstream request is under way
    raw = await asyncio.wait_for(reader.read(), 5)  # ... then the body stops: answered and closed
    writer.close()
    (response,) = parse_responses(raw)
    assert response.status == 400 and b"<Code>RequestTimeout</Code>" in response.body  # S3's own answer
    await asyncio.wait_for(recorder.disconnected.wait(), 5)
    assert recorder.seen == []
    (line,) = request_lines(logs)
    assert line["outcome"] == "bad_request" and "limits.body_timeout" in line["notes"][0]  # type: ignore[index]
    assert request_total(server) - before == 1
    after = await settles_to(baseline)
    assert after.tasks <= baseline.tasks and after.fds <= baseline.fds


async def test_a_buffered_body_that_stops_is_cut_before_the_upstream_is_contacted(
    upstream: tuple[Upstream, int], start_proxy: StartProxy, logs: LogSink
) -> None:
    recorder, port = upstream
    server = await start_proxy(url(port), limits={"body_timeout": BODY_TIMEOUT})
    headers = signed(STORAGE_GATEWAY, "")
    request = raw_request("POST", "/", {**headers, "Content-Length": "100"}, b"{}", close=False)
    raw, closed = await converse(server, request, timeout=5)
    assert closed
    (response,) = parse_responses(raw)
    assert response.status == 400
    assert response.json()["__type"] == "RequestTimeout"  # in the JSON protocol's shape
    assert not recorder.started.is_set()
    assert [line["outcome"] for line in request_lines(logs)] == ["bad_request"]


async def test_a_slow_but_steady_body_is_not_cut(
    upstream: tuple[Upstream, int], start_proxy: StartProxy, logs: LogSink
) -> None:
    """The body deadline is per pause, not for the whole body: a trickle that never pauses long passes."""
    recorder, port = upstream
    server = await start_proxy(url(port), limits={"body_timeout": 1.0})
    head = b"PUT /bucket/slow HTTP/1.1\r\nHost: s3.us-east-1.amazonaws.com\r\nContent-Length: 12\r\n"
    pieces = [head + b"Connection: close\r\n\r\n", *(b"ab" for _ in range(6))]  # a piece every 50 ms
    raw, closed = await converse(server, pieces, timeout=5)
    assert closed
    (response,) = parse_responses(raw)
    assert response.status == 200
    assert recorder.seen == [("PUT", "/bucket/slow", 12)]


async def test_idle_connections_past_the_cap_are_refused_clearly(
    upstream: tuple[Upstream, int], start_proxy: StartProxy, logs: LogSink
) -> None:
    cap, extra = 200, 50
    _recorder, port = upstream
    server = await start_proxy(
        url(port), limits={"max_connections": cap}, upstream={"keepalive_timeout": 0.05}
    )
    assert server.proxy_address is not None
    baseline = footprint()
    held = [await asyncio.open_connection(*server.proxy_address) for _ in range(cap)]
    await asyncio.sleep(0.1)
    refused = []
    for _ in range(extra):
        reader, writer = await asyncio.open_connection(*server.proxy_address)
        refused.append(await asyncio.wait_for(reader.read(), 5))  # answered, then closed
        writer.close()
    for answer in refused:
        (response,) = parse_responses(answer)
        assert_proxy_error(response, 503, "ServiceUnavailable")
        assert response.headers["retry-after"] == "1"
    assert (
        metric_samples(server, "sigwatch_connection_events_total")[(("event", "connection_refused"),)]
        == extra
    )
    assert len([e for e in logs.events() if e["event"] == "connection_refused"]) == extra
    # The connections held open are still served.
    for reader, writer in held[:3]:
        writer.write(b"GET /still-served HTTP/1.1\r\nHost: example.com\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
    for _, writer in held:
        writer.close()
    assert server._server is not None
    for _ in range(100):
        if server._server.open_connections == 0:
            break
        await asyncio.sleep(0.05)
    assert server._server.open_connections == 0
    after = await settles_to(baseline)
    assert after.tasks <= baseline.tasks and after.fds <= baseline.fds
    assert len(request_lines(logs)) == 3


async def test_a_client_leaving_mid_upload_aborts_the_upstream_request(
    upstream: tuple[Upstream, int], start_proxy: StartProxy, logs: LogSink
) -> None:
    recorder, port = upstream
    server = await start_proxy(url(port))
    assert server.proxy_address is not None
    before, baseline = request_total(server), footprint()
    _reader, writer = await asyncio.open_connection(*server.proxy_address)
    writer.write(
        b"PUT /bucket/big HTTP/1.1\r\nHost: s3.us-east-1.amazonaws.com\r\nContent-Length: 1000000\r\n\r\n"
    )
    for _ in range(3):  # in pieces: sigwatch forwards each as the next arrives
        writer.write(b"p" * 100_000)
        await writer.drain()
        await asyncio.sleep(0.05)
    await asyncio.wait_for(recorder.started.wait(), 5)  # the upstream request is under way
    writer.close()  # ... and the client leaves with 700 kB still owed
    await asyncio.wait_for(recorder.disconnected.wait(), 5)
    assert recorder.seen == []
    for _ in range(100):
        if request_lines(logs):
            break
        await asyncio.sleep(0.05)
    (line,) = request_lines(logs)
    assert line["outcome"] == "client_abort"
    assert request_total(server) - before == 1
    after = await settles_to(baseline)
    assert after.tasks <= baseline.tasks and after.fds <= baseline.fds
    assert not [e for e in logs.events() if e["event"] == "library"]  # no traceback for a client leaving


async def test_a_client_leaving_mid_download_aborts_the_upstream_response(
    upstream: tuple[Upstream, int], start_proxy: StartProxy, logs: LogSink
) -> None:
    recorder, port = upstream
    server = await start_proxy(url(port))
    assert server.proxy_address is not None
    before, baseline = request_total(server), footprint()
    reader, writer = await asyncio.open_connection(*server.proxy_address)
    writer.write(b"GET /stream/20000000 HTTP/1.1\r\nHost: s3.us-east-1.amazonaws.com\r\n\r\n")
    await writer.drain()
    received = 0
    while received < 300_000:
        received += len(await asyncio.wait_for(reader.read(65536), 5))
    writer.close()
    await asyncio.wait_for(recorder.disconnected.wait(), 5)  # the upstream's writes failed: it stopped
    assert recorder.completed == 0
    for _ in range(100):
        if request_lines(logs):
            break
        await asyncio.sleep(0.05)
    (line,) = request_lines(logs)
    assert line["outcome"] == "client_abort" and line["status"] == 200
    assert 0 < int(line["bytes_out"]) < 20_000_000  # type: ignore[call-overload]
    assert request_total(server) - before == 1
    after = await settles_to(baseline)
    assert after.tasks <= baseline.tasks and after.fds <= baseline.fds
    with contextlib.suppress(Exception):
        await writer.wait_closed()


@pytest.mark.parametrize("sent", [0, 10, 99_999])
async def test_a_truncated_body_is_never_forwarded_whole(
    sent: int, upstream: tuple[Upstream, int], start_proxy: StartProxy, logs: LogSink
) -> None:
    """Less than Content-Length, then the client closes: the upstream request breaks off with it."""
    recorder, port = upstream
    server = await start_proxy(url(port))
    head = b"PUT /bucket/t HTTP/1.1\r\nHost: s3.us-east-1.amazonaws.com\r\nContent-Length: 100000\r\n\r\n"
    assert server.proxy_address is not None
    _reader, writer = await asyncio.open_connection(*server.proxy_address)
    writer.write(head + b"t" * sent)
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    for _ in range(100):
        if request_lines(logs):
            break
        await asyncio.sleep(0.05)
    (line,) = request_lines(logs)
    assert line["outcome"] == "client_abort"
    assert recorder.seen == []


async def test_an_upload_held_back_by_a_slow_upstream_is_not_taken_for_a_stalled_client(
    aiohttp_raw_server: Any, start_proxy: StartProxy, logs: LogSink
) -> None:
    """body_timeout counts only time spent waiting for the client: while the upstream stops reading
    (sigwatch waits for it to drain, and stops reading the client meanwhile) for longer than the
    deadline, the upload is neither cut nor answered RequestTimeout."""
    size = 32 << 20
    received: list[int] = []

    async def slow_reader(request: web.BaseRequest) -> web.StreamResponse:
        total = len(await request.content.read(1 << 20))
        await asyncio.sleep(4 * BODY_TIMEOUT)  # every buffer on the way fills up meanwhile
        while chunk := await request.content.readany():
            total += len(chunk)
        received.append(total)
        return web.Response(text=str(total))

    upstream_server = await aiohttp_raw_server(slow_reader)
    server = await start_proxy(
        str(upstream_server.make_url("")).rstrip("/"), limits={"body_timeout": BODY_TIMEOUT}
    )
    headers = {"Host": "s3.us-east-1.amazonaws.com", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            url(server.proxy_address[1]) + "/bucket/held-back", data=b"z" * size, headers=headers
        ) as answer,
    ):
        assert answer.status == 200, await answer.text()
        assert await answer.text() == str(size)
    assert received == [size]
    (line,) = request_lines(logs)
    assert line["outcome"] == "ok"
