"""The emulator's own request/response values, between the aiohttp layer and the service modules.

The service modules never see aiohttp: they take a `Call` and return a `Reply` or raise `ServiceError`,
so that they can be unit-tested without a server and every error goes through one renderer.
"""

from __future__ import annotations

import base64
import random
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from proxy.core.model import AwsError, RequestHead


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated request, as a service module sees it.

    `body` is the decoded payload (aws-chunked framing already removed, its trailers in `trailers`);
    `operation` is what the dispatcher identified (None when it could not).
    """

    head: RequestHead
    body: bytes
    now: datetime
    request_id: str
    host_id: str
    access_key_id: str | None
    account_id: str
    operation: str | None = None
    trailers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


class ServiceError(Exception):
    """An error the service answers with; rendered in the service's wire shape by the dispatcher."""

    def __init__(self, error: AwsError) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


class IdSource:
    """Request ids and resource ids, reproducible under a seed.

    AWS's JSON and Query services send a UUID in x-amzn-RequestId; S3 sends 16 upper-case hex digits in
    x-amz-request-id and an opaque base64 "extended request id" in x-amz-id-2.
    """

    def __init__(self, seed: int) -> None:
        self._random = random.Random(f"sigwatch-emulator-ids:{seed}")

    def uuid(self) -> str:
        return str(uuid.UUID(int=self._random.getrandbits(128), version=4))

    def hex(self, length: int, *, upper: bool = True) -> str:
        text = f"{self._random.getrandbits(4 * length):0{length}x}"
        return text.upper() if upper else text

    def alnum(self, length: int) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(self._random.choice(alphabet) for _ in range(length))

    def s3_request_id(self) -> str:
        return self.hex(16)

    def s3_host_id(self) -> str:
        return base64.b64encode(self._random.randbytes(56)).decode()

    def choice_int(self, low: int, high: int) -> int:
        return self._random.randint(low, high)


def http_date(moment: datetime) -> str:
    """RFC 7231 IMF-fixdate, as AWS writes the Date header."""
    return format_datetime(moment, usegmt=True)


def iso8601(moment: datetime) -> str:
    """S3's XML timestamps: 2006-02-03T16:45:09.000Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
