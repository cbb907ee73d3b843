"""The fixed upstream every contender talks to, and the nginx contender's config.

Two implementations answer the same way:
- nginx (when installed): the fastest upstream this machine can run, so "direct" is a real ceiling.
  One worker, fixed bodies from `return`, the error chosen by the X-Amz-Target header.
- aiohttp low-level server (`python -m tests.benchmarks.upstreams`): the fallback when nginx is missing,
  and the upstream of the 1 GiB transfers (nginx's `return` answers before it has read a request
  body, which would end an upload early; this one reads every byte, then answers).

Answers:
- X-Amz-Target ending in DescribeGatewayInformation: 400 with a Storage Gateway error body (the
  two-level shape sigwatch classifies: `__type` plus `error.errorCode`).
- PUT (S3 PutObject): the body read to the end and dropped, 200 with an ETag.
- GET /<bucket>/big-object: DOWNLOAD_BYTES bytes, streamed.
- anything else: 200 with a ~100-byte ListGateways answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from tests.benchmarks.serving import run

OK_BODY = (
    b'{"Gateways":[{"GatewayARN":"arn:aws:storagegateway:us-east-1:111122223333:gateway/sgw-12A3456B"}]}'
)
ERROR_BODY = (
    b'{"__type":"InvalidGatewayRequestException","message":"The specified gateway was not found.",'
    b'"error":{"errorCode":"GatewayNotFound"}}'
)
ERROR_OPERATION = "DescribeGatewayInformation"
JSON_TYPE = "application/x-amz-json-1.1"
REQUEST_ID = "7f1c2b3a-4d5e-4f60-8a9b-0c1d2e3f4a5b"
DOWNLOAD_PATH = "/bench-bucket/big-object"
_BLOCK = 1 << 20


def nginx_upstream_config(prefix: Path, port: int) -> str:
    """nginx as the fixed upstream: fixed bodies, keep-alive for as long as the benchmark runs."""
    return _nginx_main(
        prefix,
        f"""
    map $http_x_amz_target $sgw_error {{
        default 0;
        "~{ERROR_OPERATION}$" 1;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        default_type {JSON_TYPE};
        add_header x-amzn-RequestId {REQUEST_ID} always;
        location / {{
            if ($sgw_error) {{
                return 400 '{ERROR_BODY.decode()}';
            }}
            return 200 '{OK_BODY.decode()}';
        }}
    }}""",
    )


def nginx_proxy_config(prefix: Path, port: int, upstream_port: int) -> str:
    """nginx as a contender: proxy_pass with a keep-alive upstream pool (HTTP/1.1, no Connection)."""
    return _nginx_main(
        prefix,
        f"""
    upstream bench_upstream {{
        server 127.0.0.1:{upstream_port};
        keepalive 128;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}""",
    )


def _nginx_main(prefix: Path, http_block: str) -> str:
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / name).mkdir(parents=True, exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers can then use the temp dirs made above
    return f"""{user}worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 8192;
}}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_max_body_size 0;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{http_block}
}}
"""


# -- the aiohttp upstream ------------------------------------------------------------------------------


async def serve_aiohttp(port: int, download_bytes: int) -> None:
    from aiohttp import web

    block = os.urandom(_BLOCK)
    json_headers = {"Content-Type": JSON_TYPE, "x-amzn-RequestId": REQUEST_ID}

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "PUT":
            received = 0
            async for chunk in request.content.iter_any():
                received += len(chunk)
            return web.Response(status=200, headers={"ETag": '"bench"', "x-bench-received": str(received)})
        if request.method == "GET" and request.path == DOWNLOAD_PATH:
            response = web.StreamResponse(status=200)
            response.content_length = download_bytes
            response.content_type = "application/octet-stream"
            await response.prepare(request)
            left = download_bytes
            while left > 0:
                piece = block if left >= _BLOCK else block[:left]
                await response.write(piece)
                left -= len(piece)
            await response.write_eof()
            return response
        await request.read()
        if request.headers.get("X-Amz-Target", "").endswith(ERROR_OPERATION):
            return web.Response(status=400, body=ERROR_BODY, headers=json_headers)
        return web.Response(status=200, body=OK_BODY, headers=json_headers)

    server = web.Server(handle, access_log=None)
    runner = web.ServerRunner(server)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    await asyncio.Event().wait()  # until SIGTERM ends the process


def main() -> None:
    parser = argparse.ArgumentParser(description="The benchmark's fixed upstream (aiohttp variant).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--download-bytes", type=int, default=1 << 30)
    args = parser.parse_args()
    run(serve_aiohttp(args.port, args.download_bytes))


if __name__ == "__main__":
    main()
