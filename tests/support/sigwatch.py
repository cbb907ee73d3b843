"""sigwatch for tests: in-process (ProxyServer on ephemeral ports) or as a real `python -m proxy` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from proxy.config import Settings, load_settings
from proxy.core.model import Credential
from proxy.server.runtime import ProxyServer
from tests.support.net import free_port, http_get, wait_until

# Example credentials from the AWS documentation (public on purpose); tests sign with them.
EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_CREDENTIALS = {EXAMPLE_KEY_ID: Credential(EXAMPLE_KEY_ID, EXAMPLE_SECRET)}


def test_settings(upstream_url: str, /, **sections: dict[str, Any]) -> Settings:
    """Settings on ephemeral loopback ports in front of `upstream_url`, with {section: {key: value}}
    overrides (an `upstream={...}` section adds to the URL)."""
    overrides: dict[str, dict[str, Any]] = {
        "listen": {"address": "127.0.0.1:0"},
        "admin": {"address": "127.0.0.1:0"},
        "upstream": {"url": upstream_url},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_settings(environ={}, overrides=overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


async def start_in_process(upstream_url: str, /, **sections: dict[str, Any]) -> ProxyServer:
    """A started ProxyServer with the example key and a fresh registry; the caller stops it."""
    server = ProxyServer(
        test_settings(upstream_url, **sections), dict(EXAMPLE_CREDENTIALS), registry=CollectorRegistry()
    )
    await server.start()
    return server


def proxy_url(server: ProxyServer) -> str:
    assert server.proxy_address is not None
    return "http://{}:{}".format(*server.proxy_address)


def admin_url(server: ProxyServer) -> str:
    assert server.admin_address is not None
    return "http://{}:{}".format(*server.admin_address)


class SigwatchProcess:
    """`python -m proxy <args>` on free ports, output to files (a pipe nobody reads would block it).

    Use as a context manager: it waits for the admin port's `ready_path` to answer 200, and on exit
    sends SIGTERM and checks the exit status is 0.
    """

    def __init__(
        self,
        args: Sequence[str],
        directory: Path,
        *,
        env: dict[str, str] | None = None,
        ready_path: str = "/healthz",
        start_seconds: float = 30.0,
    ) -> None:
        self.port = free_port()
        self.admin_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.stdout = directory / "sigwatch.stdout"
        self.stderr = directory / "sigwatch.stderr"
        self.args = [*args, "--listen", f"127.0.0.1:{self.port}", "--admin", f"127.0.0.1:{self.admin_port}"]
        self.env = {**os.environ, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", **(env or {})}
        self.ready_path = ready_path
        self.start_seconds = start_seconds
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SigwatchProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "proxy", *self.args],
            stdout=self.stdout.open("wb"),
            stderr=self.stderr.open("wb"),
            env=self.env,
        )
        try:
            wait_until(self._ready, self.start_seconds, f"sigwatch {self.ready_path} ({self.stderr})")
        except AssertionError:
            self.stop(check=False)
            raise AssertionError(self.stderr.read_text()[-3000:]) from None
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"sigwatch exited with {self.process.returncode}: {self.stderr.read_text()[-3000:]}"
            )
        return http_get(self.admin + self.ready_path, timeout=1.0)[0] == 200

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def lines(self, event: str | None = None) -> list[dict[str, Any]]:
        """The JSON log lines written so far (of one `event`, if given)."""
        parsed = [
            orjson.loads(line) for line in self.stdout.read_bytes().splitlines() if line.startswith(b"{")
        ]
        return [line for line in parsed if event is None or line.get("event") == event]

    def stop(self, *, check: bool = True, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        if check:
            assert code == 0, self.stderr.read_text()[-3000:]
        return code

    def __exit__(self, *exc: object) -> None:
        self.stop(check=exc[0] is None)
