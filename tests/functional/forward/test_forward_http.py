"""HTTP_PROXY: absolute-form requests are checked and forwarded to their own target, with the path and
query exactly as sent; the same listener still reverse-proxies origin-form requests; destinations
outside the allowlist get a 403 saying how to allow them."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import LogSink
from tests.functional.forward.conftest import (
    StartEmulator,
    StartSigwatch,
    boto_client,
    finding_checks,
    request_lines,
    wait_for_lines,
)
from tests.support.sigwatch import proxy_url

RAW_TARGETS = [
    "/bucket/a%2Fb",
    "//double//slash//",
    "/a/../b/./c",
    "/plus+sign%2B/x",
    "/%E2%82%AC/caf%C3%A9",
    "/bucket/key%20with%20space?list-type=2&prefix=a%2Fb&x=%7E&empty=&flag",
]


def recording_app(seen: list[tuple[str, str, list[tuple[str, str]]]]) -> Any:
    async def handler(request: web.BaseRequest) -> web.Response:
        await request.read()
        headers = [(k.decode(), v.decode()) for k, v in request.raw_headers]
        seen.append((request.method, request.raw_path, headers))
        return web.Response(text="from the target")

    return handler


async def send_raw(address: tuple[str, int], data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(data)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


async def test_absolute_form_goes_to_its_target_with_the_path_exactly_as_sent(
    aiohttp_raw_server: Any, start_sigwatch: StartSigwatch, logs: LogSink
) -> None:
    seen: list[tuple[str, str, list[tuple[str, str]]]] = []
    target = await aiohttp_raw_server(recording_app(seen))
    reverse_seen: list[tuple[str, str, list[tuple[str, str]]]] = []
    reverse_upstream = await aiohttp_raw_server(recording_app(reverse_seen))
    server = await start_sigwatch(f"http://127.0.0.1:{reverse_upstream.port}")
    assert server.proxy_address is not None
    authority = f"127.0.0.1:{target.port}"
    for raw in RAW_TARGETS:
        answer = await send_raw(
            server.proxy_address,
            f"GET http://{authority}{raw} HTTP/1.1\r\nHost: {authority}\r\nProxy-Connection: keep-alive\r\n"
            "X-Order: 1\r\nConnection: close\r\n\r\n".encode(),
        )
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
        assert answer.endswith(b"from the target")
    assert [raw_path for _, raw_path, _ in seen] == RAW_TARGETS
    assert reverse_seen == []  # nothing went to the configured upstream
    for _, _, headers in seen:
        names = [name.lower() for name, _ in headers]
        assert "proxy-connection" not in names  # hop-by-hop, for sigwatch only
        assert ("Host", authority) in headers  # the Host the client signed
    lines = request_lines(logs)
    assert len(lines) == len(RAW_TARGETS)
    assert {(line["kind"], line["target_host"]) for line in lines} == {("forward", authority)}


async def test_origin_form_on_the_same_listener_still_goes_to_the_upstream(
    aiohttp_raw_server: Any, start_sigwatch: StartSigwatch, logs: LogSink
) -> None:
    seen: list[tuple[str, str, list[tuple[str, str]]]] = []
    upstream = await aiohttp_raw_server(recording_app(seen))
    server = await start_sigwatch(f"http://127.0.0.1:{upstream.port}")
    assert server.proxy_address is not None
    own = f"{server.proxy_address[0]}:{server.proxy_address[1]}"
    plain = (
        b"GET /reverse?a=1 HTTP/1.1\r\nHost: storagegateway.us-east-1.amazonaws.com\r\n"
        b"Connection: close\r\n\r\n"
    )
    # An SDK with both HTTP_PROXY and endpoint_url at sigwatch names sigwatch itself: no loop.
    to_itself = f"GET http://{own}/self HTTP/1.1\r\nHost: {own}\r\nConnection: close\r\n\r\n".encode()
    for request in (plain, to_itself):
        answer = await send_raw(server.proxy_address, request)
        assert answer.startswith(b"HTTP/1.1 200 ")
    assert [raw_path for _, raw_path, _ in seen] == ["/reverse?a=1", "/self"]
    assert [line["kind"] for line in request_lines(logs)] == ["reverse", "reverse"]


async def test_boto3_with_http_proxy_is_checked_and_classified(
    start_emulator: StartEmulator,
    start_sigwatch: StartSigwatch,
    monkeypatch: pytest.MonkeyPatch,
    logs: LogSink,
) -> None:
    emulator = await start_emulator()
    server = await start_sigwatch()
    monkeypatch.setenv("HTTP_PROXY", proxy_url(server))

    def calls() -> tuple[list[str], str]:
        s3 = boto_client("s3", emulator.url)
        s3.create_bucket(Bucket="forward-proxy")
        keys = ["plain", "a b/c+d%e/€", "x//y"]
        for key in keys:
            s3.put_object(Bucket="forward-proxy", Key=key, Body=b"payload")
        listed = [o["Key"] for o in s3.list_objects_v2(Bucket="forward-proxy")["Contents"]]
        try:
            s3.get_object(Bucket="forward-proxy", Key="missing")
        except s3.exceptions.NoSuchKey as exc:
            return listed, str(exc.response["Error"]["Code"])
        raise AssertionError("NoSuchKey expected")

    listed, code = await asyncio.to_thread(calls)
    assert sorted(listed) == sorted(["plain", "a b/c+d%e/€", "x//y"])
    assert code == "NoSuchKey"
    lines = request_lines(logs, kind="forward")
    assert [line["operation"] for line in lines] == [
        "CreateBucket",
        "PutObject",
        "PutObject",
        "PutObject",
        "ListObjectsV2",
        "GetObject",
    ]
    # Signatures over encoded keys verify: canonicalization used the target's path exactly as sent.
    assert {line["sigv4"] for line in lines} == {"valid"}
    assert {line["target_host"] for line in lines} == {f"127.0.0.1:{emulator.port}"}
    assert lines[-1]["error"]["exception"] == "NoSuchKey"
    assert lines[-1]["status"] == 404


async def test_destinations_outside_the_allowlist_are_refused(
    start_sigwatch: StartSigwatch, logs: LogSink
) -> None:
    server = await start_sigwatch()
    # Refused before any name resolution or connection: example.com is never contacted.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            "http://example.com/",
            proxy=proxy_url(server),
            data=b"{}",
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "StorageGateway_20130630.ListGateways",
            },
        ) as response,
    ):
        assert response.status == 403
        assert response.headers["x-sigwatch-origin"] == "proxy"
        body = await response.json(content_type=None)
    assert body["__type"] == "ProxyDestinationNotAllowed"
    assert "forward.allow" in body["message"]
    assert server.proxy_address is not None
    answer = await send_raw(
        server.proxy_address, b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"x-sigwatch-origin: proxy" in answer.lower()

    absolute, connect = await wait_for_lines(logs, 2, status=403)
    assert (absolute["kind"], absolute["target_host"]) == ("forward", "example.com:80")
    assert (connect["kind"], connect["target_host"]) == ("tunnel", "example.com:443")
    for line in (absolute, connect):
        assert line["level"] == "warning"
        assert line["outcome"] == "rejected"
        assert finding_checks(line) == {"destination"}
        explanation = line["findings"][0]["explanation"]
        assert "forward.allow" in explanation and "SIGWATCH_FORWARD_ALLOW" in explanation
