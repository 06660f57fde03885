"""Real-time pacing of control loops (teleop, record, actor)."""

from __future__ import annotations

from collections.abc import Callable


def next_tick(
    deadline: float, dt: float, clock: Callable[[], float], sleep: Callable[[float], None]
) -> float:
    """Sleep until ``deadline + dt`` and return it as the next deadline.

    Deadlines advance by ``dt`` so the loop does not drift; a loop that fell more than one
    tick behind starts again from now instead of rushing to catch up (a robot must not
    receive a burst of commands).
    """
    deadline += dt
    now = clock()
    delay = deadline - now
    if delay > 0:
        sleep(delay)
        return deadline
    return now if delay < -dt else deadline
