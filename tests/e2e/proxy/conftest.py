"""End-to-end fixtures: the emulator, sigwatch in observe and enforce mode in front of it, moto_server and
sigwatch (enforce) in front of it; all on 127.0.0.1, ports chosen by the OS, stopped at the end.

The emulator and sigwatch run in this process on one background event loop (fast to start, and their
log lines land in the suite's `logs` sink); moto_server is a real subprocess. They are started once
per session and shared: tests name their buckets, gateways and users uniquely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import botocore.auth
import pytest
from e2e_proxy_support import (
    AWS_CLI,
    EXAMPLE_CREDENTIALS,
    MOTO_SERVER,
    LoopThread,
    MotoServer,
    RunningEmulator,
    RunningSigwatch,
    cli_environment,
    start_emulator,
    start_moto,
    start_sigwatch,
)

from proxy.emulator import EmulatorSettings
from proxy.observability.logs import configure_logging


@pytest.fixture(scope="session")
def servers(request: pytest.FixtureRequest) -> Iterator[LoopThread]:
    # The servers' loggers bind on first use: bind them to the suite's sink (the one the `logs`
    # fixture of tests/conftest.py, as pytest loaded it, configures again for each test).
    sinks = [p.SINK for p in request.config.pluginmanager.get_plugins() if hasattr(p, "SINK")]
    assert len(sinks) == 1, "tests/conftest.py's log sink was not found"
    configure_logging("json", "debug", stream=sinks[0])
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def emulator(servers: LoopThread) -> Iterator[RunningEmulator]:
    running = servers.run(start_emulator(EmulatorSettings(credentials=EXAMPLE_CREDENTIALS, seed=0)))
    yield running
    servers.run(running.runner.cleanup())


def _sigwatch(servers: LoopThread, upstream: str, mode: str) -> Iterator[RunningSigwatch]:
    running = servers.run(start_sigwatch(upstream, mode))
    yield running
    servers.run(running.server.stop(grace=1.0))


@pytest.fixture(scope="session")
def enforce_proxy(servers: LoopThread, emulator: RunningEmulator) -> Iterator[RunningSigwatch]:
    """sigwatch in enforce mode in front of the emulator."""
    yield from _sigwatch(servers, emulator.url, "enforce")


@pytest.fixture(scope="session")
def observe_proxy(servers: LoopThread, emulator: RunningEmulator) -> Iterator[RunningSigwatch]:
    """sigwatch in observe mode (the default) in front of the emulator."""
    yield from _sigwatch(servers, emulator.url, "observe")


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    if not MOTO_SERVER.exists():
        pytest.skip(f"moto_server is not installed next to {MOTO_SERVER.parent}")
    server = start_moto(tmp_path_factory.mktemp("moto") / "moto_server.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_proxy(servers: LoopThread, moto: MotoServer) -> Iterator[RunningSigwatch]:
    """sigwatch in enforce mode in front of moto_server."""
    yield from _sigwatch(servers, moto.url, "enforce")


@pytest.fixture(scope="session")
def moto_observe_proxy(servers: LoopThread, moto: MotoServer) -> Iterator[RunningSigwatch]:
    """sigwatch in observe mode in front of moto_server."""
    yield from _sigwatch(servers, moto.url, "observe")


@pytest.fixture
def skewable(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """Shift the clock botocore signs with (a host whose clock is wrong), for this test."""
    real = botocore.auth.get_current_datetime

    def shift(offset: timedelta) -> None:
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: real(*a, **k) + offset)

    return shift


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Environment for the AWS CLI with the example credentials in temporary files."""
    if not AWS_CLI.exists():
        pytest.skip(f"the AWS CLI is not installed next to {AWS_CLI.parent}")
    return cli_environment(tmp_path)
