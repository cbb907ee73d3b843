"""Failing upstreams: every fault between sigwatch and a real upstream app gives the client a well-formed
answer (an AWS-shaped 502/504) or, once the answer's head is out, a clean cut; the request is logged once
and counted once, and no asyncio task or file descriptor is left behind."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web

from tests.conftest import LogSink
from tests.functional.proxy.conftest import StartProxy, proxy_url
from tests.reliability.conftest import url
from tests.reliability.faults import Fault, FaultProxy
from tests.reliability.support import (
    Footprint,
    Upstream,
    converse,
    footprint,
    free_port,
    request_lines,
    request_total,
    settles_to,
)

BODY_SIZE = 256 * 1024
READ_TIMEOUT = 0.5
KEEPALIVE = 0.05  # upstream keep-alive: pooled connections close quickly, so fds can be compared


@dataclass(frozen=True)
class Expect:
    status: int  # what the client sees first
    complete: bool  # whether the body arrives whole (False: the connection is cut after the head)
    outcome: str
    reason: str | None  # upstream_failure


EXPECTED = {
    Fault.NONE: Expect(200, True, "ok", None),
    Fault.RESET_BEFORE_HEAD: Expect(502, True, "upstream_failure", "reset"),
    Fault.SLOW_HEAD: Expect(504, True, "upstream_failure", "timeout"),
    Fault.GARBAGE: Expect(502, True, "upstream_failure", "protocol"),
    Fault.RESET_AFTER_HEAD: Expect(200, False, "upstream_failure", "reset"),
    Fault.RESET_MID_BODY: Expect(200, False, "upstream_failure", "reset"),
    Fault.SLOW_BODY: Expect(200, False, "upstream_failure", "timeout"),
    Fault.CONTENT_LENGTH_TOO_LONG: Expect(200, False, "upstream_failure", "protocol"),
    Fault.CONTENT_LENGTH_TOO_SHORT: Expect(200, True, "ok", None),
}


@dataclass
class Outcome:
    status: int
    body: bytes
    complete: bool
    headers: dict[str, str]


async def call(base: str, path: str = f"/big/{BODY_SIZE}") -> Outcome:
    """One POST through sigwatch on a connection of its own; whether its body arrived whole."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(base + path, data=b"payload", headers={"Host": "example.com"}) as response,
    ):
        try:
            body = await response.read()
            complete = True
        except aiohttp.ClientPayloadError:
            body, complete = b"", False
        return Outcome(response.status, body, complete, dict(response.headers))


async def check_once(
    server: object, logs: LogSink, before_total: float, baseline: Footprint, expect: Expect
) -> dict[str, object]:
    (line,) = request_lines(logs)
    assert line["outcome"] == expect.outcome, line
    assert line.get("upstream_failure") == expect.reason, line
    assert request_total(server) - before_total == 1  # type: ignore[arg-type]
    after = await settles_to(baseline)
    assert after.tasks <= baseline.tasks, (baseline, after)
    assert after.fds <= baseline.fds, (baseline, after)
    return line


@pytest.fixture
async def proxied(upstream: tuple[Upstream, int]) -> AsyncIterator[tuple[Upstream, FaultProxy]]:
    recorder, port = upstream
    faulty = FaultProxy(port, stall=READ_TIMEOUT * 4)
    await faulty.start()
    yield recorder, faulty
    await faulty.stop()


@pytest.mark.parametrize("fault", list(EXPECTED), ids=str)
async def test_fault_between_sigwatch_and_the_upstream(
    fault: Fault, proxied: tuple[Upstream, FaultProxy], start_proxy: StartProxy, logs: LogSink
) -> None:
    recorder, faulty = proxied
    server = await start_proxy(
        url(faulty.port), upstream={"read_timeout": READ_TIMEOUT, "keepalive_timeout": KEEPALIVE}
    )
    await call(proxy_url(server), "/warm-up")  # the pool and the lazily built parts exist
    await asyncio.sleep(KEEPALIVE * 4)  # the warm-up's pooled upstream connection is closed
    faulty.fault = fault
    logs.clear()
    baseline, before = footprint(), request_total(server)
    result = await call(proxy_url(server))
    expect = EXPECTED[fault]
    assert result.status == expect.status
    assert result.complete is expect.complete
    if expect.status >= 500:
        assert result.headers["x-sigwatch-origin"] == "proxy"
        assert result.headers["Content-Type"] == "application/json"
        assert result.body.startswith(b'{"__type":"')
    elif expect.complete:
        assert result.body == b"x" * int(result.headers["Content-Length"])
    await check_once(server, logs, before, baseline, expect)
    if fault is not Fault.GARBAGE:  # garbage is answered by the fault proxy alone
        assert recorder.seen[-1] == ("POST", f"/big/{BODY_SIZE}", len(b"payload"))
    assert len(recorder.seen) == (1 if fault is Fault.GARBAGE else 2)  # warm-up + request: no retry


@pytest.mark.parametrize(
    "fault",
    [Fault.RESET_AFTER_HEAD, Fault.RESET_MID_BODY, Fault.SLOW_BODY, Fault.CONTENT_LENGTH_TOO_LONG],
    ids=str,
)
async def test_a_failure_after_the_head_cuts_the_connection_and_writes_nothing_more(
    fault: Fault, proxied: tuple[Upstream, FaultProxy], start_proxy: StartProxy, logs: LogSink
) -> None:
    """Once the upstream's head is relayed, sigwatch cannot answer 502 any more: a second answer would
    be read as the rest of the first one's body. The client must see one head, part of the body, EOF."""
    _, faulty = proxied
    faulty.fault = fault
    server = await start_proxy(url(faulty.port), upstream={"read_timeout": READ_TIMEOUT})
    data, closed = await converse(
        server, b"POST /big/300 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\nab", timeout=5
    )
    assert closed  # cut at once, not left open for the client to wait on
    assert data.count(b"HTTP/1.1 ") == 1
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    declared = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    assert set(body) <= {ord("x")} and len(body) < declared
    (line,) = request_lines(logs)
    assert (line["status"], line["outcome"]) == (200, "upstream_failure")  # what the client really saw


async def test_upstream_refusing_connections(start_proxy: StartProxy, logs: LogSink) -> None:
    server = await start_proxy(url(free_port()))
    await call(proxy_url(server), "/warm-up")
    logs.clear()
    baseline, before = footprint(), request_total(server)
    result = await call(proxy_url(server))
    assert result.status == 502
    assert result.body.startswith(b'{"__type":"BadGateway"')
    await check_once(server, logs, before, baseline, Expect(502, True, "upstream_failure", "refused"))


async def test_upstream_tls_with_an_untrusted_certificate(
    start_proxy: StartProxy, logs: LogSink, tmp_path: Path
) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    recorder = Upstream()
    runner = web.ServerRunner(web.Server(recorder.handler), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        port = int(runner.addresses[0][1])
        server = await start_proxy(f"https://127.0.0.1:{port}")
        await call(proxy_url(server), "/warm-up")
        logs.clear()
        baseline, before = footprint(), request_total(server)
        result = await call(proxy_url(server))
        assert result.status == 502
        assert b"tls" in result.body
        await check_once(server, logs, before, baseline, Expect(502, True, "upstream_failure", "tls"))
        assert recorder.seen == []  # nothing was sent over an unverified connection
    finally:
        await runner.cleanup()
