"""Suite-wide fixtures: structured logs captured for every test, and paths to shared material."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from proxy.observability.logs import configure_logging

# The suite-wide redaction scan (issue 6): every log line of the whole run is checked for the test
# secrets and for signatures; see tests/observability/leak_scan.py.
pytest_plugins = ("observability.leak_scan",)

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SIGWATCH_SHARED", REPO.parent / "shared"))

# Example credentials from the AWS documentation (public on purpose); tests sign with them.
EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class LogSink(io.RawIOBase):
    """A binary stream collecting JSON log lines (structlog's BytesLogger writes here)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[bytes] = []
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        with self._lock:
            self.lines.extend(line for line in bytes(data).splitlines() if line)
        return len(data)

    @property
    def buffer(self) -> LogSink:
        return self

    def isatty(self) -> bool:
        return False

    def events(self, event: str | None = None) -> list[dict[str, object]]:
        with self._lock:
            parsed = [orjson.loads(line) for line in self.lines]
        return [e for e in parsed if event is None or e.get("event") == event]

    def clear(self) -> None:
        with self._lock:
            self.lines.clear()


SINK = LogSink()


@pytest.fixture(autouse=True)
def logs() -> Iterator[LogSink]:
    """Every log line of the test, as JSON; configured fresh for each test."""
    SINK.clear()
    configure_logging("json", "debug", stream=SINK)  # type: ignore[arg-type]
    yield SINK
