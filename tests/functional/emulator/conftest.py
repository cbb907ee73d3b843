"""An emulator application served by aiohttp's test server on 127.0.0.1 (a free port)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from emulator_functional_support import (
    EXAMPLE_KEY_ID,
    EXAMPLE_SECRET,
    OTHER_KEY_ID,
    OTHER_SECRET,
    Clock,
    SleepRecorder,
)

from proxy.core.model import Credential
from proxy.emulator import SERVICES_KEY, EmulatedServices, EmulatorSettings, build_emulator_app


@dataclass
class RunningEmulator:
    server: TestServer
    app: web.Application
    settings: EmulatorSettings
    clock: Clock
    sleeps: SleepRecorder

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def state(self) -> EmulatedServices:
        return self.app[SERVICES_KEY]


StartEmulator = Callable[..., Awaitable[RunningEmulator]]

CREDENTIALS = {
    EXAMPLE_KEY_ID: Credential(EXAMPLE_KEY_ID, EXAMPLE_SECRET),
    OTHER_KEY_ID: Credential(OTHER_KEY_ID, OTHER_SECRET),
}


@pytest.fixture
def start_emulator(aiohttp_server: Any) -> StartEmulator:
    """Start an emulator with settings overrides; `ssl=` serves it over TLS, `middlewares=` observe it."""

    async def start(
        *, ssl: Any = None, middlewares: tuple[Any, ...] = (), **overrides: Any
    ) -> RunningEmulator:
        clock = Clock()
        sleeps = SleepRecorder()
        options: dict[str, Any] = {"credentials": CREDENTIALS, "clock": clock, "sleep": sleeps, "seed": 5}
        options.update(overrides)
        settings = EmulatorSettings(**options)
        app = build_emulator_app(settings)
        app.middlewares.extend(middlewares)  # before the server freezes the application
        server = await aiohttp_server(app, host="127.0.0.1", ssl=ssl)
        return RunningEmulator(server=server, app=app, settings=settings, clock=clock, sleeps=sleeps)

    return start


@pytest.fixture
async def emulator(start_emulator: StartEmulator) -> RunningEmulator:
    return await start_emulator()
