"""Clean stops: a flag the main loops poll, set by SIGINT / SIGTERM or by the parent's death.

The learner and actor loops check :class:`StopFlag` between steps, so a stop always lands
on a step boundary: the actor flushes its data, the learner writes its final checkpoint.
A second signal raises :class:`KeyboardInterrupt` for an impatient operator.

Processes started by ``hilrl train`` get ``HILRL_PARENT_PID`` in their environment and
stop by themselves when that process is gone (a launcher killed with SIGKILL leaves no
orphan learner or actor behind).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

PARENT_ENV = "HILRL_PARENT_PID"


class StopFlag:
    """A thread-safe stop request with a reason; also set when the watched parent dies."""

    def __init__(self, watch_parent: bool = True) -> None:
        self._event = threading.Event()
        self.reason = ""
        self._parent = _parent_pid() if watch_parent else None

    def set(self, reason: str = "stop requested") -> None:
        if not self._event.is_set():
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        if not self._event.is_set() and self._parent is not None and os.getppid() != self._parent:
            self.set("the parent process is gone")
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s`` unless a stop arrives; True when stopping."""
        if self.is_set():
            return True
        self._event.wait(timeout_s)
        return self.is_set()


def _parent_pid() -> int | None:
    raw = os.environ.get(PARENT_ENV, "")
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


@contextlib.contextmanager
def handle_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """SIGINT / SIGTERM set ``flag`` (a second one raises KeyboardInterrupt); restored on exit.

    Outside the main thread signals cannot be caught; the flag is yielded unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if flag.is_set() and flag.reason.startswith("signal"):
            raise KeyboardInterrupt
        flag.set(f"signal {signal.Signals(signum).name}")

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
