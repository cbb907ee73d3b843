"""A deadline that moves with every byte, kept by one loop timer (the upstream client's read timeout, the
handler's body stall timeout).

Moving a deadline the asyncio way (an asyncio.timeout around each read, or a timer cancelled and armed
again) costs a timer per read of a long transfer. Here one timer is armed for the earliest possible expiry;
when it fires it re-arms itself for the deadline of the latest activity, and only calls `expired()` when
that has passed too. Only running time counts: `pause()` stops the clock, `start()` counts from then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class LazyDeadline:
    """`timeout` seconds after the latest `start()` or `touch()` while running. `progress` (optional) is
    asked when the deadline is due: True means something moved that nobody reported, and it restarts."""

    __slots__ = ("_expired", "_handle", "_loop", "_progress", "_since", "timeout")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        expired: Callable[[], object],
        progress: Callable[[], bool] | None = None,
    ) -> None:
        self._loop = loop
        self.timeout = timeout
        self._expired = expired
        self._progress = progress
        self._since: float | None = None
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Run the clock from now (a wait begins)."""
        self._since = now = self._loop.time()
        if self._handle is None:
            self._handle = self._loop.call_at(now + self.timeout, self._fire)

    def touch(self) -> None:
        """Activity: if the clock runs, the deadline is `timeout` from now."""
        if self._since is not None:
            self._since = self._loop.time()

    def pause(self) -> None:
        """Stop the clock (nobody waits); the timer, if armed, finds it stopped and is not re-armed."""
        self._since = None

    def cancel(self) -> None:
        self._since = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        since = self._since
        if since is None:
            return  # stopped: the next start() arms the timer again
        now = self._loop.time()
        if self._progress is not None and self._progress():
            since = self._since = now
        due = since + self.timeout
        if now < due:
            self._handle = self._loop.call_at(due, self._fire)
        else:
            self._expired()
