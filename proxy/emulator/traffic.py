"""A demo traffic generator: a realistic mix of AWS calls for `sigwatch demo --traffic`.

Requests are signed by botocore's own SigV4 signer (not sigwatch's), then sent with aiohttp, so the
proxy and the emulator see exactly what an SDK sends. The mix: successful Storage Gateway, S3 and
Import/Export calls; not-found errors (GatewayNotFound, VolumeNotFound, NoSuchKey, NoSuchBucket);
throttling (forced with the x-sigwatch-emulate-error header); a skewed client (its clock ~7 minutes
behind: accepted but warned about; ~20 minutes behind: rejected as expired); and a bad signature (a
wrong secret).

Each call behaves as an SDK in standard retry mode: it carries `amz-sdk-invocation-id` (one per call)
and `amz-sdk-request: attempt=N; max=M` (added after signing, as botocore does: they are not signed),
and a throttled, transient (5xx) or dropped attempt is re-signed and retried after a jittered backoff,
up to 3 attempts, so retry amplification shows up in sigwatch's metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
from botocore.auth import SIGV4_TIMESTAMP, S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from yarl import URL

from proxy.core.catalog import is_retryable
from proxy.core.errors.extract import extract_error
from proxy.core.model import Credential, Protocol
from proxy.emulator.errors import FORCE_ERROR_HEADER
from proxy.service_models import load_service_index

SG_TARGET = "StorageGateway_20130630"
SG_CONTENT_TYPE = "application/x-amz-json-1.1"
MISSING_GATEWAY = "arn:aws:storagegateway:{region}:123456789012:gateway/sgw-00000000"
SKEW_WARNED = timedelta(minutes=7)  # inside AWS's 15 minutes: accepted, but sigwatch warns
SKEW_REJECTED = timedelta(minutes=20)  # outside: "Signature expired"
WRONG_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYWRONGKEY00"
# botocore's standard retry mode: 3 attempts in all.
MAX_ATTEMPTS = 3
# The SDKs' backoff is `random() * min(20 s, base * 2**(attempt-1))` with a 1 s base; the demo keeps the
# shape with a small base so that a retried call does not stall the mix.
RETRY_BACKOFF_BASE = 0.02


class _ClockedSigV4(SigV4Auth):  # type: ignore[misc]
    """botocore's SigV4 signer with the signing time given (botocore's add_auth, with our clock)."""

    def __init__(self, credentials: Credentials, service: str, region: str, moment: datetime) -> None:
        super().__init__(credentials, service, region)
        self._moment = moment

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._moment.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))


class _ClockedS3SigV4(S3SigV4Auth, _ClockedSigV4):  # type: ignore[misc]
    """S3's variant (unnormalized path, x-amz-content-sha256) with the signing time given."""


@dataclass(frozen=True, slots=True)
class SignedCall:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """The last attempt's answer (status None: the connection failed) and how many attempts it took."""

    status: int | None
    body: bytes
    attempts: int


# One attempt of a call: its number (1, 2, ...) -> the request, signed for that attempt.
AttemptBuilder = Callable[[int], SignedCall]


class DemoClient:
    """Signs and sends the demo's requests, retrying as an SDK does; every answer is just counted."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint_url: str,
        credentials: Credential,
        region: str,
        clock: Callable[[], datetime],
        *,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.session = session
        self.endpoint = endpoint_url.rstrip("/")
        self.credentials = credentials
        self.region = region
        self.clock = clock
        self.rng = rng or random.Random(0)
        self.sleep = sleep
        self.statuses: dict[int, int] = {}
        self.failures = 0
        self.retries = 0

    def sign(
        self,
        service: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        skew: timedelta = timedelta(0),
        secret: str | None = None,
    ) -> SignedCall:
        url = self.endpoint + path
        request = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
        botocore_credentials = Credentials(
            self.credentials.access_key_id,
            secret or self.credentials.secret_access_key,
            self.credentials.session_token,
        )
        signer_class = _ClockedS3SigV4 if service == "s3" else _ClockedSigV4
        signer_class(botocore_credentials, service, self.region, self.clock() - skew).add_auth(request)
        prepared = request.prepare()
        return SignedCall(method, prepared.url, dict(prepared.headers.items()), body)

    async def call(self, protocol: Protocol, build: AttemptBuilder) -> Answer:
        """One SDK call: attempts signed afresh, each marked with the call's invocation id and its
        attempt number; retried while botocore's standard mode would retry (throttling and transient
        codes, 500/502/503/504, a failed connection) and attempts remain."""
        invocation = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        attempt = 1
        while True:
            signed = build(attempt)
            sdk_headers = {
                "amz-sdk-invocation-id": invocation,
                "amz-sdk-request": f"attempt={attempt}; max={MAX_ATTEMPTS}",
            }
            status, body = await self._send(replace(signed, headers={**signed.headers, **sdk_headers}))
            if attempt >= MAX_ATTEMPTS or not self._retryable(protocol, status, body):
                return Answer(status, body, attempt)
            self.retries += 1
            await self.sleep(self.rng.random() * RETRY_BACKOFF_BASE * 2 ** (attempt - 1))
            attempt += 1

    @staticmethod
    def _retryable(protocol: Protocol, status: int | None, body: bytes) -> bool:
        if status is None:
            return True  # botocore retries connection errors
        if status < 400:
            return False
        info = extract_error(protocol, status, (), body)
        return is_retryable(info.code, status)

    async def _send(self, call: SignedCall) -> tuple[int | None, bytes]:
        try:
            async with self.session.request(
                call.method, URL(call.url, encoded=True), headers=call.headers, data=call.body or None
            ) as response:
                body = await response.read()
                self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
                return response.status, body
        except (TimeoutError, aiohttp.ClientError):
            # The emulator's fault scenario may drop connections: that is part of the demo.
            self.failures += 1
            return None, b""

    async def storagegateway(
        self,
        operation: str,
        payload: dict[str, Any],
        *,
        forced: Callable[[int], str | None] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """A Storage Gateway call; `forced(attempt)` names an error to force on that attempt (or None)."""
        extra = options.pop("headers", {})
        body = orjson.dumps(payload)

        def build(attempt: int) -> SignedCall:
            headers = {"X-Amz-Target": f"{SG_TARGET}.{operation}", "Content-Type": SG_CONTENT_TYPE, **extra}
            code = forced(attempt) if forced is not None else None
            if code is not None:
                headers[FORCE_ERROR_HEADER] = code
            return self.sign("storagegateway", "POST", "/", headers=headers, body=body, **options)

        answer = await self.call(Protocol.JSON, build)
        with contextlib.suppress(orjson.JSONDecodeError):
            parsed = orjson.loads(answer.body or b"{}")
            if isinstance(parsed, dict):
                return parsed
        return {}

    async def s3(
        self,
        method: str,
        bucket: str,
        key: str = "",
        *,
        query: str = "",
        forced: Callable[[int], str | None] | None = None,
        **options: Any,
    ) -> int | None:
        path = f"/{quote(bucket)}" + (f"/{quote(key)}" if key else "") + (f"?{query}" if query else "")
        extra = options.pop("headers", {})

        def build(attempt: int) -> SignedCall:
            headers = dict(extra)
            code = forced(attempt) if forced is not None else None
            if code is not None:
                headers[FORCE_ERROR_HEADER] = code
            return self.sign("s3", method, path, headers=headers, **options)

        return (await self.call(Protocol.REST_XML, build)).status

    async def importexport(self, action: str, **options: Any) -> int | None:
        body = f"Action={action}&Version=2010-06-01".encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        path = f"/?Operation={action}"
        signing_name = _importexport_signing_name()
        answer = await self.call(
            Protocol.QUERY,
            lambda _attempt: self.sign(signing_name, "POST", path, headers=headers, body=body, **options),
        )
        return answer.status


@functools.cache
def _importexport_signing_name() -> str:
    """The credential-scope service Import/Export requests are signed for, as sigwatch's service index
    knows it (botocore resolves it from the endpoint rule set at request time)."""
    service = load_service_index().service("importexport")
    return (service.signing_name if service is not None else None) or "importexport"


def _region_of(endpoint_url: str) -> str:
    host = urlsplit(endpoint_url).hostname or ""
    parts = host.split(".")
    return parts[1] if len(parts) > 3 and parts[-2] == "amazonaws" else "us-east-1"


class DemoTraffic:
    """The demo's state (a gateway, a volume, a bucket) and its weighted mix of calls."""

    def __init__(self, client: DemoClient, rng: random.Random) -> None:
        self.client = client
        self.rng = rng
        self.gateway_arn: str | None = None
        self.volume_arn: str | None = None
        self.bucket = f"sigwatch-demo-{rng.randrange(16**8):08x}"
        self.counter = 0
        self.mix: list[tuple[float, Callable[[], Awaitable[Any]]]] = [
            (20, self.list_gateways),
            (10, self.describe_gateway),
            (8, self.list_volumes),
            (12, self.put_and_get_object),
            (6, self.list_objects),
            (3, self.list_import_jobs),
            (8, self.gateway_not_found),
            (5, self.volume_not_found),
            (6, self.missing_key),
            (2, self.missing_bucket),
            (6, self.throttled),
            (2, self.throttled_s3),
            (4, self.skewed_warned),
            (3, self.skewed_rejected),
            (3, self.bad_signature),
            (1, self.internal_error),
        ]

    async def set_up(self) -> None:
        client = self.client
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        key = "-".join("".join(self.rng.choice(alphabet) for _ in range(5)) for _ in range(5))
        activated = await client.storagegateway(
            "ActivateGateway",
            {
                "ActivationKey": key,
                "GatewayName": "sigwatch-demo",
                "GatewayTimezone": "GMT",
                "GatewayRegion": client.region,
                "GatewayType": "STORED",
            },
        )
        self.gateway_arn = activated.get("GatewayARN")
        if self.gateway_arn is None:
            listed = await client.storagegateway("ListGateways", {})
            gateways = listed.get("Gateways") or []
            self.gateway_arn = gateways[0]["GatewayARN"] if gateways else None
        if self.gateway_arn is not None:
            gateway = {"GatewayARN": self.gateway_arn}
            disks = (await client.storagegateway("ListLocalDisks", gateway)).get("Disks", [])
            info = await client.storagegateway("DescribeGatewayInformation", gateway)
            interfaces = info.get("GatewayNetworkInterfaces") or [{}]
            free = [disk["DiskId"] for disk in disks if disk.get("DiskAllocationType") == "AVAILABLE"]
            if len(free) >= 2:
                await client.storagegateway("AddUploadBuffer", gateway | {"DiskIds": [free[0]]})
                created = await client.storagegateway(
                    "CreateStorediSCSIVolume",
                    {
                        "GatewayARN": self.gateway_arn,
                        "DiskId": free[1],
                        "PreserveExistingData": False,
                        "TargetName": f"demo-{self.rng.randrange(10**6)}",
                        "NetworkInterfaceId": interfaces[0].get("Ipv4Address", "10.0.0.1"),
                    },
                )
                self.volume_arn = created.get("VolumeARN")
        await client.s3("PUT", self.bucket)

    async def step(self) -> None:
        weights = [weight for weight, _ in self.mix]
        action = self.rng.choices([action for _, action in self.mix], weights=weights)[0]
        await action()

    # -- successful calls ----------------------------------------------------------------------------

    async def list_gateways(self) -> None:
        await self.client.storagegateway("ListGateways", {})

    async def describe_gateway(self) -> None:
        if self.gateway_arn is not None:
            await self.client.storagegateway("DescribeGatewayInformation", {"GatewayARN": self.gateway_arn})

    async def list_volumes(self) -> None:
        payload = {"GatewayARN": self.gateway_arn} if self.gateway_arn else {}
        await self.client.storagegateway("ListVolumes", payload)

    async def put_and_get_object(self) -> None:
        self.counter += 1
        key = f"reports/{self.counter % 20:02d}.json"
        body = orjson.dumps({"n": self.counter, "at": self.client.clock().isoformat()})
        await self.client.s3("PUT", self.bucket, key, body=body, headers={"Content-Type": "application/json"})
        await self.client.s3("GET", self.bucket, key)

    async def list_objects(self) -> None:
        await self.client.s3("GET", self.bucket, query="list-type=2&prefix=reports%2F")

    async def list_import_jobs(self) -> None:
        await self.client.importexport("ListJobs")

    # -- errors --------------------------------------------------------------------------------------

    async def gateway_not_found(self) -> None:
        arn = MISSING_GATEWAY.format(region=self.client.region)
        await self.client.storagegateway("DescribeGatewayInformation", {"GatewayARN": arn})

    async def volume_not_found(self) -> None:
        if self.gateway_arn is not None:
            arn = f"{self.gateway_arn}/volume/vol-0000DEAD"
            await self.client.storagegateway("DeleteVolume", {"VolumeARN": arn})

    async def missing_key(self) -> None:
        await self.client.s3("GET", self.bucket, f"missing/{self.rng.randrange(1000)}.bin")

    async def missing_bucket(self) -> None:
        await self.client.s3("HEAD", f"sigwatch-missing-{self.rng.randrange(1000)}")

    def _failing_attempts(self, code: str) -> Callable[[int], str | None]:
        """`code` forced on the first 1 to 3 attempts of a call: the SDK's retries then succeed, or
        (all 3 failing) the call gives up, as under real throttling."""
        failing = self.rng.choice((1, 1, 2, 3))
        return lambda attempt: code if attempt <= failing else None

    async def throttled(self) -> None:
        await self.client.storagegateway(
            "ListGateways", {}, forced=self._failing_attempts("ThrottlingException")
        )

    async def throttled_s3(self) -> None:
        await self.client.s3("GET", self.bucket, "reports/00.json", forced=self._failing_attempts("SlowDown"))

    async def internal_error(self) -> None:
        await self.client.storagegateway(
            "ListVolumes", {}, forced=self._failing_attempts("InternalServerError/GatewayInternalError")
        )

    async def skewed_warned(self) -> None:
        await self.client.storagegateway("ListGateways", {}, skew=SKEW_WARNED)

    async def skewed_rejected(self) -> None:
        await self.client.storagegateway("ListGateways", {}, skew=SKEW_REJECTED)

    async def bad_signature(self) -> None:
        await self.client.storagegateway("ListGateways", {}, secret=WRONG_SECRET)


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def run_demo_traffic(
    endpoint_url: str,
    credentials: Credential,
    *,
    duration: float | None,
    rate_per_second: float,
    seed: int,
    stop: asyncio.Event,
    region: str | None = None,
    clock: Callable[[], datetime] = _utc_now,
) -> None:
    """Send the demo mix to `endpoint_url` (the proxy, or the emulator itself) until `stop` is set or
    `duration` seconds have passed, at about `rate_per_second` requests per second.

    The mix is reproducible under `seed`. Connection errors (a scenario that drops connections) are
    counted and the traffic goes on.
    """
    if rate_per_second <= 0:
        raise ValueError("rate_per_second must be positive")
    rng = random.Random(f"sigwatch-demo-traffic:{seed}")
    interval = 1.0 / rate_per_second
    timeout = aiohttp.ClientTimeout(total=30)
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        # The client's own draws (invocation ids, backoff jitter) do not disturb the mix's sequence.
        client_rng = random.Random(f"sigwatch-demo-client:{seed}")
        client = DemoClient(
            session, endpoint_url, credentials, region or _region_of(endpoint_url), clock, rng=client_rng
        )
        traffic = DemoTraffic(client, rng)
        await traffic.set_up()
        while not stop.is_set() and (deadline is None or loop.time() < deadline):
            started = loop.time()
            await traffic.step()
            pause = interval - (loop.time() - started)
            if deadline is not None:
                pause = min(pause, deadline - loop.time())
            if pause > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)
