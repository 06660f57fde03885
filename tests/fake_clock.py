"""A fake monotonic clock for tests of real-time code: time moves only when told to."""

from __future__ import annotations


class FakeClock:
    """``clock()`` reads ``now``; ``clock.sleep(s)`` records ``s`` and moves ``now`` on by it."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
