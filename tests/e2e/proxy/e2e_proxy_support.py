"""Helpers of the end-to-end tests: servers on a background event loop, real clients (boto3, the AWS CLI)
pointed at sigwatch, and the log lines sigwatch wrote for their requests.

The servers (emulator, sigwatch) run in this process on their own event loop in a daemon thread, so
that blocking clients (boto3, a subprocess) can call them from the test's thread; moto_server is a
real subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry

from proxy.config import load_settings
from proxy.core.model import Credential
from proxy.emulator import EmulatorSettings, build_emulator_app
from proxy.server.runtime import ProxyServer
from tests.support.clients import boto_client
from tests.support.clients import client_error as shared_client_error

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[3]
AWS_CLI = Path(sys.executable).with_name("aws")
MOTO_SERVER = Path(sys.executable).with_name("moto_server")

EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
# The deliberately wrong secret the whole suite uses (the redaction scan knows it).
WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY00"
# A well-formed access key id nobody configured.
UNKNOWN_KEY_ID = "AKIAI44QH8DHBEXAMPLE"
REGION = "us-east-1"
EXAMPLE_CREDENTIALS = {EXAMPLE_KEY_ID: Credential(EXAMPLE_KEY_ID, EXAMPLE_SECRET)}

# Response headers that are the connection's, not the message's (RFC 9110 §7.6.1), which a proxy
# legitimately changes.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}
)


class LoopThread:
    """An asyncio event loop running forever in a daemon thread; `run(coro)` waits for a result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="e2e-servers", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@dataclass
class RunningEmulator:
    """An emulator served on 127.0.0.1; `received` lists (method, raw path) of every request it got,
    `handled` those its handler is done with (answered, or failed)."""

    url: str
    app: web.Application
    runner: web.AppRunner
    received: list[tuple[str, str]] = field(default_factory=list)
    handled: list[tuple[str, str]] = field(default_factory=list)

    def settled(self, timeout: float = 10.0) -> bool:
        """Wait (bounded) until every request received has been handled."""
        deadline = time.monotonic() + timeout
        while len(self.handled) < len(self.received):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


async def start_emulator(settings: EmulatorSettings) -> RunningEmulator:
    received: list[tuple[str, str]] = []
    handled: list[tuple[str, str]] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        received.append((request.method, request.raw_path))
        try:
            response: web.StreamResponse = await handler(request)
        finally:
            handled.append((request.method, request.raw_path))
        return response

    app = build_emulator_app(settings)
    app.middlewares.append(record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return RunningEmulator(f"http://{host}:{port}", app, runner, received, handled)


@dataclass
class RunningSigwatch:
    server: ProxyServer
    registry: CollectorRegistry

    @property
    def url(self) -> str:
        assert self.server.proxy_address is not None
        return "http://{}:{}".format(*self.server.proxy_address)

    @property
    def admin_url(self) -> str:
        assert self.server.admin_address is not None
        return "http://{}:{}".format(*self.server.admin_address)


async def start_sigwatch(
    upstream_url: str,
    mode: str,
    *,
    credentials: dict[str, Credential] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> RunningSigwatch:
    """sigwatch (ProxyServer) on ephemeral 127.0.0.1 ports in front of `upstream_url`."""
    settings = load_settings(
        environ={},
        overrides={
            "listen": {"address": "127.0.0.1:0"},
            "admin": {"address": "127.0.0.1:0"},
            "upstream": {"url": upstream_url},
            "validation": {"mode": mode},
        },
    )
    registry = CollectorRegistry()
    options: dict[str, Any] = {"registry": registry}
    if clock is not None:
        options["clock"] = clock
    server = ProxyServer(settings, credentials if credentials is not None else EXAMPLE_CREDENTIALS, **options)
    await server.start()
    return RunningSigwatch(server, registry)


# -- moto_server --------------------------------------------------------------------------------------


@dataclass
class MotoServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def requests_received(self, timeout: float = 10.0) -> int:
        """How many requests moto has answered so far.

        werkzeug logs a request after answering it, so a line can trail its answer: a sentinel request
        (not counted) is sent and its line waited for first; every request answered before it has
        its line by then.
        """
        sentinel = f"sigwatch-sentinel-{uuid.uuid4().hex}"
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"{self.url}/?{sentinel}", timeout=timeout).close()
        deadline = time.monotonic() + timeout
        while True:
            text = self.log.read_text(errors="replace")
            if sentinel in text or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        lines = re.findall(r'"[A-Z]+ (\S+) HTTP/1\.[01]" \d{3}', text)
        return sum(1 for path in lines if "sigwatch-sentinel-" not in path)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_moto(log: Path, timeout: float = 30.0) -> MotoServer:
    """`moto_server` on 127.0.0.1, port chosen by the OS (-p 0), read back from its output file."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", "0"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if found:
            return MotoServer(found.group(1), process, log)
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode}: {log.read_text()}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"moto_server did not start within {timeout} s: {log.read_text()}")


# -- clients ------------------------------------------------------------------------------------------


def boto(service: str, endpoint_url: str, **options: Any) -> Any:
    """A boto3 client aimed at `endpoint_url` (tests.support.clients.boto_client)."""
    return boto_client(service, endpoint_url, **options)


client_error = shared_client_error


def error_code(call: Callable[[], Any]) -> str:
    return str(client_error(call)["Error"]["Code"])


def sigwatch_headers(response: dict[str, Any]) -> dict[str, str]:
    """The x-sigwatch-* headers of a boto3 response (or ClientError.response)."""
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    return {name: value for name, value in headers.items() if name.startswith("x-sigwatch-")}


def cli_environment(directory: Path, *, secret: str = EXAMPLE_SECRET) -> dict[str, str]:
    """Environment for `aws`: its own config and credentials files, nothing inherited from AWS_*."""
    config = directory / "config"
    config.write_text("[default]\nregion = us-east-1\noutput = json\n")
    credentials = directory / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {EXAMPLE_KEY_ID}\naws_secret_access_key = {secret}\n"
    )
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    environment.update(
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
    )
    return environment


def aws(environment: dict[str, str], endpoint_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The AWS CLI as a subprocess, aimed at `endpoint_url`."""
    return subprocess.run(
        [str(AWS_CLI), *arguments, "--endpoint-url", endpoint_url],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Counted:
    """boto3 clients whose requests are counted (one `before-send` per HTTP request), with the
    invocation id each one carried."""

    def __init__(self) -> None:
        self.invocations: list[str] = []

    def client(self, service: str, endpoint_url: str, **options: Any) -> Any:
        client = boto(service, endpoint_url, **options)
        client.meta.events.register("before-send.*.*", self._count)
        return client

    def _count(self, request: Any, **_: Any) -> None:
        invocation = request.headers["amz-sdk-invocation-id"]
        self.invocations.append(invocation.decode() if isinstance(invocation, bytes) else invocation)

    def lines(self, logs: Any) -> list[dict[str, Any]]:
        """sigwatch's log lines of these requests: exactly one each."""
        lines = lines_of_invocations(logs, self.invocations)
        assert sorted(line["invocation_id"] for line in lines) == sorted(self.invocations)
        return lines


# -- sigwatch's log lines -----------------------------------------------------------------------------


def request_lines(logs: Any, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The `request` log lines, once there are at least `count` of them.

    sigwatch writes a request's line after the last byte of its answer, so a client may hold its
    answer a moment before the line exists: wait (bounded) for it.
    """
    deadline = time.monotonic() + timeout
    while True:
        lines = logs.events("request")
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


def lines_of_invocations(
    logs: Any, invocation_ids: Collection[str], timeout: float = 10.0
) -> list[dict[str, Any]]:
    """The log lines of the requests whose `amz-sdk-invocation-id` is in `invocation_ids` (boto3 sends
    a fresh one with every call), once each of them has one."""
    wanted = set(invocation_ids)
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in logs.events("request") if line["invocation_id"] in wanted]
        if {line["invocation_id"] for line in lines} == wanted or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


def line_for(logs: Any, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The one log line of the request sigwatch answered with `x-sigwatch-request-id: request_id`
    (waiting, bounded, for it to be written)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in logs.events("request") if line["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert len(found) == 1, f"{len(found)} log lines for request {request_id}"
    return found[0]


def assert_classified(logs: Any, response: dict[str, Any]) -> dict[str, Any]:
    """An error that passed through sigwatch: its annotation headers and its log line's `error` name the
    code botocore reports (`Error.Code`, and Storage Gateway's `error.errorCode`). Returns the line."""
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert "x-sigwatch-origin" not in headers, "answered by sigwatch, not by the upstream"
    line = line_for(logs, headers["x-sigwatch-request-id"])
    error = line["error"]
    assert error is not None, line
    code = response["Error"]["Code"]
    assert error["code"] == code
    exception, _, detail = headers["x-sigwatch-error"].partition("/")
    assert (exception, detail) == (error["exception"], error["operation_error"] or error["code"])
    operation_error = response.get("error", {}).get("errorCode")
    if operation_error:
        assert (exception, detail) == (code, operation_error)
    else:
        assert code in (exception, detail)
    retryable = "true" if error["retryable"] else "false"
    assert headers["x-sigwatch-error-class"] == f"{error['category']}; retryable={retryable}"
    assert (line["status"], line["outcome"]) == (response["ResponseMetadata"]["HTTPStatusCode"], "error")
    return line


# -- requests done wrong ------------------------------------------------------------------------------


def tamper(request: Any, **_: Any) -> None:
    """Change one byte of the body after botocore signed it (the length stays the same)."""
    body = request.body
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    assert b"5" in body, body
    at = body.rindex(b"5")
    request.body = body[:at] + b"6" + body[at + 1 :]


@dataclass(frozen=True)
class Case:
    """One service at one upstream: a call whose body carries a `5` (tampered into a `6`), and the code
    AWS answers (botocore's Error.Code) for each fault."""

    upstream: str  # "emulator" | "moto"
    service: str
    call: Callable[[Any], Any]
    codes: dict[str, str]


JSON_CODES = {
    "wrong_secret": "InvalidSignatureException",
    "unknown_key": "UnrecognizedClientException",
    "clock_behind": "InvalidSignatureException",
    "clock_ahead": "InvalidSignatureException",
    "tampered": "InvalidSignatureException",
}
QUERY_CODES = {
    "wrong_secret": "SignatureDoesNotMatch",
    "unknown_key": "InvalidClientTokenId",
    "clock_behind": "SignatureDoesNotMatch",
    "clock_ahead": "SignatureDoesNotMatch",
    "tampered": "SignatureDoesNotMatch",
}
S3_CODES = {
    "wrong_secret": "SignatureDoesNotMatch",
    "unknown_key": "InvalidAccessKeyId",
    "clock_behind": "RequestTimeTooSkewed",
    "clock_ahead": "RequestTimeTooSkewed",
    # botocore signs the body's SHA-256 over http: S3 compares the body with x-amz-content-sha256.
    "tampered": "XAmzContentSHA256Mismatch",
}


def put_object(bucket: str) -> Callable[[Any], Any]:
    return lambda c: c.put_object(Bucket=bucket, Key="tampered.txt", Body=b"payload 5")


CASES = [
    Case("emulator", "storagegateway", lambda c: c.list_gateways(Limit=5), JSON_CODES),
    Case("emulator", "s3", put_object("faults-emulator"), S3_CODES),
    Case("moto", "s3", put_object("faults-moto"), S3_CODES),
    Case("moto", "sts", lambda c: c.get_session_token(DurationSeconds=905), QUERY_CODES),
    Case("moto", "iam", lambda c: c.list_users(MaxItems=5), QUERY_CODES),
    Case("moto", "dynamodb", lambda c: c.list_tables(Limit=5), JSON_CODES),
    Case("moto", "sqs", lambda c: c.list_queues(MaxResults=5), JSON_CODES),
]
CASE_IDS = [f"{case.upstream}-{case.service}" for case in CASES]
FAULTS = ("wrong_secret", "unknown_key", "clock_behind", "clock_ahead", "tampered")

SKEWS = {"clock_behind": timedelta(minutes=-20), "clock_ahead": timedelta(minutes=20)}


def faulty_client(fault: str, service: str, endpoint: str, skew: Callable[[timedelta], None]) -> Any:
    """A boto3 client that makes `fault`; `skew` shifts the clock botocore signs with."""
    if fault == "wrong_secret":
        return boto(service, endpoint, secret=WRONG_SECRET)
    if fault == "unknown_key":
        return boto(service, endpoint, key_id=UNKNOWN_KEY_ID, secret=WRONG_SECRET)
    if fault in SKEWS:
        skew(SKEWS[fault])
        return boto(service, endpoint)
    client = boto(service, endpoint)
    client.meta.events.register_last(
        f"before-send.{client.meta.service_model.service_id.hyphenize()}.*", tamper
    )
    return client
