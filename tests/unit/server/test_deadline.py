"""LazyDeadline on a hand-driven clock: when it expires, and that it keeps one timer whatever moves it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.server.deadline import LazyDeadline


class _Timer:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class _Clock:
    """The two loop methods LazyDeadline uses; `advance` runs the timers that come due, in order."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[_Timer] = []
        self.armed = 0

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(when, callback)
        self.timers.append(timer)
        self.armed += 1
        return timer

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while due := sorted((t for t in self.timers if t.when <= end), key=lambda t: t.when):
            timer = due[0]
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            if not timer.cancelled:
                timer.callback()
        self.now = end

    def pending(self) -> int:
        return sum(not t.cancelled for t in self.timers)


def _deadline(clock: _Clock, progress: Callable[[], bool] | None = None) -> tuple[LazyDeadline, list[float]]:
    expired: list[float] = []
    loop: Any = clock
    return LazyDeadline(loop, 10.0, lambda: expired.append(clock.now), progress), expired


def test_it_expires_timeout_after_the_start() -> None:
    clock = _Clock()
    deadline, expired = _deadline(clock)
    deadline.start()
    clock.advance(9.9)
    assert expired == []
    clock.advance(0.1)
    assert expired == [110.0]


def test_activity_moves_it_without_a_timer_per_touch() -> None:
    clock = _Clock()
    deadline, expired = _deadline(clock)
    deadline.start()
    for _ in range(50):
        clock.advance(1.0)
        deadline.touch()  # a byte every second: never silent for 10 s
    assert expired == []
    assert clock.armed <= 6  # re-armed about once per timeout, not once per touch
    clock.advance(10.0)
    assert expired == [160.0]  # 10 s after the last touch


def test_a_paused_clock_never_expires_and_start_counts_from_then() -> None:
    clock = _Clock()
    deadline, expired = _deadline(clock)
    deadline.start()
    clock.advance(5.0)
    deadline.pause()  # e.g. the reader stopped waiting: time spent elsewhere is no stall
    clock.advance(60.0)
    assert expired == []
    assert clock.pending() == 0  # the timer found the clock stopped and was not re-armed
    deadline.touch()  # activity while paused does not start the clock
    clock.advance(60.0)
    assert expired == []
    deadline.start()
    clock.advance(10.0)
    assert expired == [235.0]  # started at 225


def test_cancel_drops_the_timer() -> None:
    clock = _Clock()
    deadline, expired = _deadline(clock)
    deadline.start()
    deadline.cancel()
    assert clock.pending() == 0
    clock.advance(30.0)
    assert expired == []


def test_progress_nobody_reported_restarts_it() -> None:
    clock = _Clock()
    moving = [True, True, False]  # e.g. a request body still going out, then stuck
    deadline, expired = _deadline(clock, progress=lambda: moving.pop(0) if moving else False)
    deadline.start()
    clock.advance(100.0)
    assert expired == [130.0]  # two restarts at 110 and 120, then expiry 10 s later
