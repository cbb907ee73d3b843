"""Helpers of the emulator's functional tests: boto3 clients pointed at an emulator served by aiohttp's
test server on 127.0.0.1, a settable clock, and a recorder for added latency."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.clients import boto_client as shared_boto_client
from tests.support.clients import client_error as shared_client_error

EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
# A second account (any key the emulator is given is its own account).
OTHER_KEY_ID = "AKIAI44QH8DHBEXAMPLE"
OTHER_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
REGION = "us-east-1"


@dataclass
class Clock:
    """The emulator's clock: the real time shifted by `offset` (tests move it)."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class SleepRecorder:
    """Stands in for asyncio.sleep: records each requested delay, waits for none of it."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def boto_client(service: str, endpoint_url: str, *, verify: str | bool = False, **options: Any) -> Any:
    """A boto3 client for the emulator (tests.support.clients.boto_client; TLS unverified by default)."""
    return shared_boto_client(service, endpoint_url, verify=verify, **options)


def add_header(client: Any, name: str, value: str) -> None:
    """Send one more header on every request of `client` (added before signing, as an SDK user would)."""

    def inject(request: Any, **_: Any) -> None:
        request.headers[name] = value

    client.meta.events.register_first("before-sign.*.*", inject)


client_error = shared_client_error


def sign_importexport_as(client: Any, signing_name: str) -> None:
    """Make an importexport client sign with `signing_name` as its credential-scope service."""

    def rename(request: Any, **_: Any) -> None:
        request.context.setdefault("signing", {})["signing_name"] = signing_name

    client.meta.events.register_first("before-sign.importexport.*", rename)
