"""Real-time pacing of control loops (teleop, record, replay, the serial arm's ``advance``).

Deadlines advance by ``dt`` so a loop does not drift; a loop that fell more than one tick
behind starts again from now instead of rushing to catch up (a robot must not receive a
burst of commands).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def schedule(deadline: float | None, dt: float, now: float) -> tuple[float, bool]:
    """The deadline after ``deadline`` and whether the loop overran by more than a tick.

    ``deadline`` None (the first tick): ``now + dt``. An overrun restarts from ``now``.
    """
    if deadline is None:
        return now + dt, False
    deadline += dt
    if deadline < now - dt:
        return now, True
    return deadline, False


def next_tick(
    deadline: float, dt: float, clock: Callable[[], float], sleep: Callable[[float], None]
) -> float:
    """Sleep until ``deadline + dt`` and return it as the next deadline (see :func:`schedule`)."""
    now = clock()
    deadline, _ = schedule(deadline, dt, now)
    if deadline > now:
        sleep(deadline - now)
    return deadline


class Pacer:
    """A loop's tick schedule kept between calls: :meth:`wait` returns ``dt`` after the last.

    The first :meth:`wait` after construction or :meth:`restart` waits one ``dt`` from now.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.deadline: float | None = None
        self.overruns = 0
        """Ticks whose deadline had already passed by more than a tick when :meth:`wait` ran."""

    def restart(self) -> None:
        """Forget the schedule: the next :meth:`wait` counts from then."""
        self.deadline = None

    def wait(self, dt: float) -> None:
        """Sleep until the next deadline, ``dt`` after the previous one."""
        now = self.clock()
        self.deadline, overran = schedule(self.deadline, dt, now)
        self.overruns += overran
        if self.deadline > now:
            self.sleep(self.deadline - now)
