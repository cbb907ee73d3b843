"""Values shared by the emulator's unit tests (imported by name: the test folders are not packages)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from proxy.emulator.wire import Call

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

CallFactory = Callable[..., Call]
