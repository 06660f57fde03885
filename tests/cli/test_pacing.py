"""Real-time pacing: no drift, and no burst of catch-up ticks after a stall."""

from __future__ import annotations

from fake_clock import FakeClock

from hilrl.pacing import Pacer, next_tick


def test_deadlines_advance_by_dt_without_drift() -> None:
    clock = FakeClock(0.0)
    deadline = 0.0
    for _ in range(10):
        clock.now += 0.03  # work done inside the tick
        deadline = next_tick(deadline, 0.1, clock, clock.sleep)
    assert abs(deadline - 1.0) < 1e-9 and abs(clock.now - 1.0) < 1e-9


def test_a_long_stall_restarts_from_now_instead_of_bursting() -> None:
    clock = FakeClock(0.0)
    clock.now = 0.5  # stalled for five ticks
    deadline = next_tick(0.0, 0.1, clock, clock.sleep)
    assert deadline == 0.5 and not clock.sleeps
    clock.now += 0.01
    assert next_tick(deadline, 0.1, clock, clock.sleep) == 0.6
    assert abs(clock.sleeps[-1] - 0.09) < 1e-9


def test_a_pacer_keeps_its_schedule_counts_overruns_and_restarts() -> None:
    clock = FakeClock(0.0)
    pacer = Pacer(clock, clock.sleep)
    pacer.wait(0.1)  # the first tick: one period from now
    assert clock.sleeps == [0.1] and clock.now == 0.1
    clock.now += 0.04
    pacer.wait(0.1)
    assert abs(clock.now - 0.2) < 1e-9 and pacer.overruns == 0
    clock.now += 0.5  # a stall of several ticks: no burst, counted once
    pacer.wait(0.1)
    assert pacer.overruns == 1 and abs(pacer.deadline - 0.7) < 1e-9 and len(clock.sleeps) == 2
    pacer.restart()
    clock.now = 5.0
    pacer.wait(0.1)
    assert abs(clock.now - 5.1) < 1e-9 and pacer.overruns == 1
