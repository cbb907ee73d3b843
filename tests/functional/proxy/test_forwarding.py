"""The reverse proxy forwards requests exactly as signed and answers for the upstream when it fails."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import botocore.session
import pytest
from aiohttp import web
from botocore.parsers import create_parser

from tests.functional.proxy.conftest import (
    Recorder,
    StartProxy,
    admin_url,
    proxy_url,
    raw_exchange,
    record_request,
)
from tests.support.net import free_port

pytestmark = pytest.mark.asyncio


def recording_upstream(recorder: Recorder, **response: Any) -> Any:
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        await record_request(request, recorder)
        return web.Response(**({"text": "ok"} | response))

    return handler


def request_count(server: Any) -> float:
    total = 0.0
    for metric in server.registry.collect():
        if metric.name == "sigwatch_requests":
            total += sum(s.value for s in metric.samples if s.name == "sigwatch_requests_total")
    return total


RAW_PATHS = [
    "/bucket/a%2Fb",
    "//double//slash//",
    "/a/../b/./c",
    "/plus+sign%2B/x",
    "/%E2%82%AC/caf%C3%A9",
    "/bucket/key%20with%20space?list-type=2&prefix=a%2Fb&x=%7E&empty=&flag",
    "/unreserved-._~?b=2&a=1&a=0",
]


async def test_raw_paths_and_queries_reach_the_upstream_exactly(
    aiohttp_raw_server: Any, start_proxy: StartProxy, logs: Any
) -> None:
    recorder = Recorder()
    upstream = await aiohttp_raw_server(recording_upstream(recorder))
    server = await start_proxy(str(upstream.make_url("")).rstrip("/"))
    for target in RAW_PATHS:
        answer = await raw_exchange(
            server, f"GET {target} HTTP/1.1\r\nHost: s3.amazonaws.com\r\nConnection: close\r\n\r\n".encode()
        )
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert [seen.raw_path for seen in recorder.seen] == RAW_PATHS
    assert len(logs.events("request")) == len(RAW_PATHS)
    assert request_count(server) == len(RAW_PATHS)


async def test_hop_by_hop_headers_dropped_and_the_rest_kept_in_order(
    aiohttp_raw_server: Any, start_proxy: StartProxy
) -> None:
    recorder = Recorder()

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        await record_request(request, recorder)
        response = web.Response(text="ok")
        response.headers.add("X-R1", "one")
        response.headers.add("X-R2", "two")
        response.headers.add("X-R1", "three")
        response.headers.add("Keep-Alive", "timeout=5")
        return response

    upstream = await aiohttp_raw_server(handler)
    server = await start_proxy(str(upstream.make_url("")).rstrip("/"))
    request = (
        "GET /h HTTP/1.1\r\n"
        "Host: example.amazonaws.com\r\n"
        "X-First: 1\r\n"
        "Connection: close, X-Drop-Me\r\n"
        "Keep-Alive: timeout=5\r\n"
        "X-Drop-Me: gone\r\n"
        "TE: trailers\r\n"
        "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "x-amz-date: 20250101T000000Z\r\n"
        "X-Second:   spaced  value \r\n"
        "X-First: again\r\n"
        "\r\n"
    )
    answer = await raw_exchange(server, request.encode())
    assert answer.startswith(b"HTTP/1.1 200")
    (seen,) = recorder.seen
    assert seen.raw_headers == [
        ("Host", "example.amazonaws.com"),
        ("X-First", "1"),
        ("x-amz-date", "20250101T000000Z"),
        ("X-Second", "spaced  value"),
        ("X-First", "again"),
    ]
    head = answer.split(b"\r\n\r\n", 1)[0].decode()
    response_headers = [line.split(":", 1)[0] for line in head.split("\r\n")[1:]]
    assert "Keep-Alive" not in response_headers
    r_values = [line for line in head.split("\r\n") if line.startswith("X-R")]
    assert r_values == ["X-R1: one", "X-R2: two", "X-R1: three"]


async def test_bodies_pass_byte_exact_and_annotations_are_added(
    aiohttp_raw_server: Any, start_proxy: StartProxy
) -> None:
    recorder = Recorder()
    payload = bytes(range(256)) * 4096 + b"\r\n\x00tail"

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        seen = await record_request(request, recorder)
        return web.Response(body=payload, headers={"ETag": seen.body_sha256})

    upstream = await aiohttp_raw_server(handler)
    server = await start_proxy(str(upstream.make_url("")).rstrip("/"))
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            proxy_url(server) + "/bucket/object",
            data=payload,
            headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "Content-Type": "application/octet-stream"},
        ) as response,
    ):
        body = await response.read()
        assert response.status == 200
        assert body == payload
        assert response.headers["x-sigwatch-request-id"]
        assert response.headers["x-sigwatch-signature"]
    assert recorder.seen[0].body_size == len(payload)
    import hashlib

    assert recorder.seen[0].body_sha256 == hashlib.sha256(payload).hexdigest()


def botocore_error_code(service: str, operation: str, status: int, headers: Any, body: bytes) -> str:
    model = botocore.session.get_session().get_service_model(service)
    parser = create_parser(model.metadata["protocol"])
    parsed = parser.parse(
        {"status_code": status, "headers": dict(headers), "body": body},
        model.operation_model(operation).output_shape,
    )
    return str(parsed["Error"]["Code"])


STORAGE_GATEWAY = {
    "method": "POST",
    "path": "/",
    "headers": {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "StorageGateway_20120630.ListGateways",
    },
    "body": b"{}",
    "service": "storagegateway",
    "operation": "ListGateways",
}
S3_GET = {
    "method": "GET",
    "path": "/bucket/key",
    "headers": {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    "body": b"",
    "service": "s3",
    "operation": "GetObject",
}
QUERY = {
    "method": "POST",
    "path": "/",
    "headers": {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    "body": b"Action=GetCallerIdentity&Version=2011-06-15",
    "service": "sts",
    "operation": "GetCallerIdentity",
}


def signed_headers(url: str, case: dict[str, Any]) -> dict[str, str]:
    """Sign the case as the SDK would (botocore's signer, the example key)."""
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from tests.conftest import EXAMPLE_KEY_ID, EXAMPLE_SECRET

    signer_class = S3SigV4Auth if case["service"] == "s3" else SigV4Auth
    request = AWSRequest(method=case["method"], url=url, data=case["body"], headers=dict(case["headers"]))
    signer_class(Credentials(EXAMPLE_KEY_ID, EXAMPLE_SECRET), case["service"], "us-east-1").add_auth(request)
    return dict(request.headers.items())


async def send(server: Any, case: dict[str, Any]) -> tuple[int, Any, bytes]:
    url = proxy_url(server) + case["path"]
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            case["method"], url, headers=signed_headers(url, case), data=case["body"]
        ) as response,
    ):
        return response.status, response.headers, await response.read()


@pytest.mark.parametrize("case", [STORAGE_GATEWAY, S3_GET, QUERY], ids=["json", "rest-xml", "query"])
async def test_upstream_down_gives_502_in_the_protocols_error_shape(
    case: dict[str, Any], start_proxy: StartProxy, logs: Any
) -> None:
    server = await start_proxy(f"http://127.0.0.1:{free_port()}")
    status, headers, body = await send(server, case)
    assert status == 502
    assert headers["x-sigwatch-origin"] == "proxy"
    assert botocore_error_code(case["service"], case["operation"], status, headers, body) == "BadGateway"
    (line,) = logs.events("request")
    assert line["outcome"] == "upstream_failure"
    assert line["upstream_failure"] == "refused"
    assert line["answered_by"] == "proxy"


@pytest.mark.parametrize("case", [STORAGE_GATEWAY, S3_GET, QUERY], ids=["json", "rest-xml", "query"])
async def test_slow_upstream_gives_504(
    case: dict[str, Any], aiohttp_raw_server: Any, start_proxy: StartProxy
) -> None:
    async def slow(request: web.BaseRequest) -> web.StreamResponse:
        await request.read()
        await asyncio.sleep(5)
        return web.Response(text="late")

    upstream = await aiohttp_raw_server(slow)
    server = await start_proxy(str(upstream.make_url("")).rstrip("/"), upstream={"read_timeout": 0.3})
    status, headers, body = await send(server, case)
    assert status == 504
    assert botocore_error_code(case["service"], case["operation"], status, headers, body) == "GatewayTimeout"


async def test_client_stalling_mid_headers_is_cut_by_the_deadline(
    aiohttp_raw_server: Any, start_proxy: StartProxy, logs: Any
) -> None:
    recorder = Recorder()
    upstream = await aiohttp_raw_server(recording_upstream(recorder))
    server = await start_proxy(str(upstream.make_url("")).rstrip("/"), limits={"header_timeout": 0.3})
    assert server.proxy_address is not None
    reader, writer = await asyncio.open_connection(*server.proxy_address)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Trickle: ")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=5)  # returns at EOF: the proxy closed
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408")
    assert recorder.seen == []
    assert [e["event"] for e in logs.events() if e["event"] == "header_timeout"] == ["header_timeout"]
    # A client that finishes its head in time on a kept-alive connection is not affected.
    reader, writer = await asyncio.open_connection(*server.proxy_address)
    writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\nok"), timeout=5)
    assert first.startswith(b"HTTP/1.1 200")
    await asyncio.sleep(0.5)  # idle longer than the head deadline between requests: that is allowed
    writer.write(b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    second = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    assert second.startswith(b"HTTP/1.1 200")


async def test_graceful_shutdown_finishes_the_request_in_flight(
    aiohttp_raw_server: Any, start_proxy: StartProxy, logs: Any
) -> None:
    started = asyncio.Event()

    async def slow(request: web.BaseRequest) -> web.StreamResponse:
        started.set()
        await asyncio.sleep(0.8)
        return web.Response(text="finished")

    upstream = await aiohttp_raw_server(slow)
    server = await start_proxy(str(upstream.make_url("")).rstrip("/"))
    url = proxy_url(server)

    async def call() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(url + "/slow") as response:
            return response.status, await response.text()

    in_flight = asyncio.create_task(call())
    await started.wait()
    stopping = asyncio.create_task(server.stop(grace=10))
    await asyncio.sleep(0.2)
    with pytest.raises(aiohttp.ClientConnectionError):  # no longer accepting
        async with aiohttp.ClientSession() as session, session.get(url + "/late") as response:
            await response.read()
    assert await in_flight == (200, "finished")
    await stopping
    assert [e["outcome"] for e in logs.events("request")] == ["ok"]
    assert [e["event"] for e in logs.events() if e["event"] in {"shutdown", "stopped"}] == [
        "shutdown",
        "stopped",
    ]


async def test_admin_endpoints(aiohttp_raw_server: Any, start_proxy: StartProxy) -> None:
    recorder = Recorder()
    upstream = await aiohttp_raw_server(recording_upstream(recorder))
    server = await start_proxy(str(upstream.make_url("")).rstrip("/"))
    admin = admin_url(server)
    async with aiohttp.ClientSession() as session:
        async with session.get(admin + "/healthz") as response:
            assert response.status == 200
        for _ in range(50):
            async with session.get(admin + "/readyz") as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.1)
        assert response.status == 200
        async with session.get(proxy_url(server) + "/metrics") as response:
            assert response.status == 200
            assert await response.text() == "ok"  # the proxy forwards it: admin paths never shadow
        async with session.get(admin + "/metrics") as response:
            text = await response.text()
            assert "sigwatch_requests_total" in text
            assert "sigwatch_build_info" in text
    assert [seen.raw_path for seen in recorder.seen] == ["/metrics"]


async def test_readyz_waits_for_the_upstream(start_proxy: StartProxy) -> None:
    server = await start_proxy(f"http://127.0.0.1:{free_port()}")
    async with aiohttp.ClientSession() as session, session.get(admin_url(server) + "/readyz") as response:
        assert response.status == 503


async def test_buffered_body_over_the_limit_gets_413(
    aiohttp_raw_server: Any, start_proxy: StartProxy, logs: Any
) -> None:
    recorder = Recorder()
    upstream = await aiohttp_raw_server(recording_upstream(recorder))
    server = await start_proxy(
        str(upstream.make_url("")).rstrip("/"), limits={"max_buffered_body_bytes": 1024}
    )
    case = dict(STORAGE_GATEWAY, body=b'{"Limit": 1, "Marker": "' + b"x" * 4096 + b'"}')
    status, headers, body = await send(server, case)
    assert status == 413
    assert (
        botocore_error_code("storagegateway", "ListGateways", status, headers, body)
        == "RequestEntityTooLarge"
    )
    assert recorder.seen == []
    (line,) = logs.events("request")
    assert line["outcome"] == "bad_request"
