"""Real-time pacing: no drift, and no burst of catch-up ticks after a stall."""

from __future__ import annotations

from hilrl.runtime.pacing import next_tick


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_deadlines_advance_by_dt_without_drift() -> None:
    clock = Clock()
    deadline = 0.0
    for _ in range(10):
        clock.now += 0.03  # work done inside the tick
        deadline = next_tick(deadline, 0.1, clock, clock.sleep)
    assert abs(deadline - 1.0) < 1e-9 and abs(clock.now - 1.0) < 1e-9


def test_a_long_stall_restarts_from_now_instead_of_bursting() -> None:
    clock = Clock()
    clock.now = 0.5  # stalled for five ticks
    deadline = next_tick(0.0, 0.1, clock, clock.sleep)
    assert deadline == 0.5 and not clock.slept
    clock.now += 0.01
    assert next_tick(deadline, 0.1, clock, clock.sleep) == 0.6
    assert abs(clock.slept[-1] - 0.09) < 1e-9
