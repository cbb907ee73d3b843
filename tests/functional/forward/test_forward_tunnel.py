"""CONNECT without interception: a blind tunnel. The client verifies the emulator's own certificate
through it; sigwatch sees only the host, the bytes and the duration (one log line, one count)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import LogSink
from tests.functional.forward.conftest import (
    StartEmulator,
    StartSigwatch,
    TlsMaterial,
    boto_client,
    metric_total,
    request_lines,
    wait_for_lines,
)
from tests.support.sigwatch import proxy_url


async def open_tunnel(
    address: tuple[str, int], target: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, head


async def test_boto3_through_a_blind_tunnel_verifies_the_emulator_itself(
    start_emulator: StartEmulator,
    start_sigwatch: StartSigwatch,
    test_tls: TlsMaterial,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogSink,
) -> None:
    emulator = await start_emulator(ssl_context=test_tls.server_context)
    server = await start_sigwatch()  # interception off: the default
    monkeypatch.setenv("HTTPS_PROXY", proxy_url(server))
    # The client trusts the emulator's CA only: sigwatch could not impersonate it, nor does it try.
    monkeypatch.setenv("AWS_CA_BUNDLE", str(test_tls.ca_file))

    def calls() -> list[object]:
        sg = boto_client("storagegateway", emulator.url)
        gateways = [sg.list_gateways()["Gateways"], sg.list_gateways()["Gateways"]]
        sg.close()
        del sg
        gc.collect()
        return gateways

    assert await asyncio.to_thread(calls) == [[], []]
    # Both calls went over one pooled connection, hence one tunnel: logged once, when it closed.
    (line,) = await wait_for_lines(logs, kind="tunnel")
    assert line["method"] == "CONNECT"
    assert line["target_host"] == f"127.0.0.1:{emulator.port}"
    assert line["status"] == 200
    assert line["outcome"] == "ok"
    assert line["bytes_in"] > 500 and line["bytes_out"] > 500  # handshakes and two calls, encrypted
    assert line["duration_ms"] > 0
    assert line["operation"] is None and line["findings"] == []  # it cannot see inside
    assert request_lines(logs, kind="forward") == []
    # a blind tunnel is counted as a tunnel, not as an AWS request (it has no operation)
    assert metric_total(server, "sigwatch_tunnels_total") == 1
    assert metric_total(server, "sigwatch_requests_total") == 0


async def test_tls_passes_through_untouched(
    start_emulator: StartEmulator, start_sigwatch: StartSigwatch, test_tls: TlsMaterial, logs: LogSink
) -> None:
    emulator = await start_emulator(ssl_context=test_tls.server_context)
    server = await start_sigwatch()
    assert server.proxy_address is not None
    reader, writer, head = await open_tunnel(server.proxy_address, f"127.0.0.1:{emulator.port}")
    assert head.startswith(b"HTTP/1.1 200 Connection Established\r\n")
    assert b"content-length" not in head.lower() and b"transfer-encoding" not in head.lower()
    await writer.start_tls(test_tls.client_context(), server_hostname="127.0.0.1")
    peer = writer.get_extra_info("ssl_object").getpeercert()
    issuer = dict(item[0] for item in peer["issuer"])
    assert "trustme" in issuer.get("organizationName", "")  # the emulator's own certificate
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 ")
    assert b"x-sigwatch" not in answer.lower()  # sigwatch did not (could not) annotate it
    writer.close()
    (line,) = await wait_for_lines(logs, kind="tunnel")
    assert line["bytes_out"] > len(answer)


async def test_early_bytes_after_connect_reach_the_destination(
    aiohttp_raw_server: Any, start_sigwatch: StartSigwatch, logs: LogSink
) -> None:
    """A client may send its first bytes right behind the CONNECT head, in the same packet."""

    async def echo(request: web.BaseRequest) -> web.Response:
        return web.Response(text=f"saw {request.method} {request.raw_path}")

    upstream = await aiohttp_raw_server(echo)
    server = await start_sigwatch()
    assert server.proxy_address is not None
    reader, writer = await asyncio.open_connection(*server.proxy_address)
    target = f"127.0.0.1:{upstream.port}"
    writer.write(
        f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
        + b"GET /inner HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 200 Connection Established\r\n")
    assert answer.endswith(b"saw GET /inner")
    writer.close()
    (line,) = await wait_for_lines(logs, kind="tunnel")
    assert line["bytes_in"] == len(b"GET /inner HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


async def test_unreachable_tunnel_destination_is_a_502(start_sigwatch: StartSigwatch, logs: LogSink) -> None:
    server = await start_sigwatch()
    assert server.proxy_address is not None
    _, writer, head = await open_tunnel(server.proxy_address, "127.0.0.1:9")  # discard: closed
    assert head.startswith(b"HTTP/1.1 502 ")
    assert b"x-sigwatch-origin: proxy" in head.lower()
    writer.close()
    (line,) = await wait_for_lines(logs, kind="tunnel")
    assert (line["status"], line["outcome"], line["upstream_failure"]) == (502, "upstream_failure", "refused")


async def test_shutdown_cuts_an_idle_tunnel_instead_of_waiting_out_the_grace(
    start_emulator: StartEmulator, start_sigwatch: StartSigwatch, logs: LogSink
) -> None:
    emulator = await start_emulator()
    server = await start_sigwatch(limits={"shutdown_grace": 60.0})
    assert server.proxy_address is not None
    reader, writer, head = await open_tunnel(server.proxy_address, f"127.0.0.1:{emulator.port}")
    assert head.startswith(b"HTTP/1.1 200 ")
    # A pooled SDK connection: open and idle. Stopping must not wait 60 s for it (bounded here by 10).
    await asyncio.wait_for(server.stop(grace=60.0), timeout=10)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    (line,) = request_lines(logs, kind="tunnel")
    assert line["outcome"] == "ok"


async def test_an_idle_tunnel_is_closed_after_the_idle_timeout(
    start_emulator: StartEmulator, start_sigwatch: StartSigwatch, logs: LogSink
) -> None:
    emulator = await start_emulator()
    server = await start_sigwatch(limits={"idle_timeout": 0.2})
    assert server.proxy_address is not None
    reader, writer, _ = await open_tunnel(server.proxy_address, f"127.0.0.1:{emulator.port}")
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by sigwatch
    writer.close()
    await wait_for_lines(logs, kind="tunnel")
