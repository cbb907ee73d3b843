"""Shared fixtures of the emulator's unit tests: the built-in catalogs and a Call builder."""

from __future__ import annotations

from datetime import datetime

import pytest
from emulator_unit_support import NOW, CallFactory

from proxy.catalogs import load_builtin_catalogs
from proxy.core.catalog import Catalogs
from proxy.core.model import RequestHead
from proxy.emulator.errors import ErrorBook
from proxy.emulator.settings import EXAMPLE_ACCESS_KEY_ID, EXAMPLE_ACCOUNT_ID
from proxy.emulator.wire import Call


@pytest.fixture(scope="session")
def catalogs() -> Catalogs:
    return load_builtin_catalogs()


@pytest.fixture(scope="session")
def books(catalogs: Catalogs) -> dict[str, ErrorBook]:
    return {name: ErrorBook(catalogs.get(name)) for name in ("storagegateway", "s3", "importexport")}  # type: ignore[arg-type]


@pytest.fixture
def make_call() -> CallFactory:
    def build(
        method: str,
        target: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        now: datetime = NOW,
        access_key_id: str = EXAMPLE_ACCESS_KEY_ID,
        account_id: str = EXAMPLE_ACCOUNT_ID,
        operation: str | None = None,
        trailers: tuple[tuple[str, str], ...] = (),
    ) -> Call:
        return Call(
            head=RequestHead.build(method, target, headers or [("Host", "127.0.0.1:8081")]),
            body=body,
            now=now,
            request_id="REQUEST-ID",
            host_id="HOST-ID",
            access_key_id=access_key_id,
            account_id=account_id,
            operation=operation,
            trailers=trailers,
        )

    return build
