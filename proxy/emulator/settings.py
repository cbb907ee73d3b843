"""What an emulator instance is configured with: credentials, region, fault scenario, seed and clock.

Everything that varies between a demo, a test and a user's run is here, so that a test can pin the clock,
the seed and the sleep function and get the same answers every time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from proxy.core.model import Credential

if TYPE_CHECKING:
    from proxy.emulator.faults import Scenario

# The AWS documentation's example key pair (seed 000's signing example uses it too): it is public, it can
# never authenticate against AWS, and every AWS user recognises it as an example.
EXAMPLE_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_CREDENTIAL = Credential(EXAMPLE_ACCESS_KEY_ID, EXAMPLE_SECRET_ACCESS_KEY)
# The account the example key belongs to, as AWS documentation writes example account ids.
EXAMPLE_ACCOUNT_ID = "123456789012"

MIB = 1024 * 1024


def utc_now() -> datetime:
    """The real clock; tests pass their own."""
    return datetime.now(UTC)


def _example_credentials() -> Mapping[str, Credential]:
    return MappingProxyType({EXAMPLE_ACCESS_KEY_ID: EXAMPLE_CREDENTIAL})


@dataclass(frozen=True, slots=True, eq=False)
class EmulatorSettings:
    """Configuration of one emulator application.

    credentials: access key id -> credential; every key is its own account (a bucket created with one
        key is "already owned by someone else" for another key, as on AWS).
    accounts: optional access key id -> 12-digit account id (default: the example account for the
        example key, a stable id derived from the key for the others).
    scenario: fault injection (see proxy.emulator.faults.load_scenario), None for none.
    seed: makes request ids, generated resource ids and fault draws reproducible.
    clock: the emulator's notion of now (authentication window, Date headers, creation dates).
    sleep: how added latency is waited for (tests record it instead of waiting).
    authenticate: False answers unsigned requests too (never the default: the emulator authenticates
        exactly as AWS does).
    """

    credentials: Mapping[str, Credential] = field(default_factory=_example_credentials)
    region: str = "us-east-1"
    scenario: Scenario | None = None
    seed: int = 0
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    max_body_bytes: int = 64 * MIB
    accounts: Mapping[str, str] = field(default_factory=dict)
    authenticate: bool = True
    # S3 virtual-hosted style: a Host of `<bucket>.<suffix>` names the bucket. Path style always works.
    s3_virtual_host_suffixes: tuple[str, ...] = ("s3.amazonaws.com", "s3.localhost", "localhost")
    # S3 rejects multipart parts below 5 MiB except the last ("EntityTooSmall").
    s3_min_part_size: int = 5 * MIB
    # How long a Storage Gateway snapshot stays in progress (DeleteVolume meanwhile answers
    # SnapshotInProgressException); 0 completes snapshots at once.
    snapshot_duration_seconds: float = 0.0
    # An Import/Export job expires (ExpiredJobIdException) this long after its creation.
    importexport_job_lifetime_days: int = 30

    def account_for(self, access_key_id: str | None) -> str:
        """The account that owns a key: configured, the example account, or derived from the key."""
        if access_key_id is None:
            return EXAMPLE_ACCOUNT_ID
        if access_key_id in self.accounts:
            return self.accounts[access_key_id]
        if access_key_id == EXAMPLE_ACCESS_KEY_ID:
            return EXAMPLE_ACCOUNT_ID
        digits = "".join(str(ord(ch) % 10) for ch in access_key_id)
        return (digits + "000000000000")[:12]
