"""A byte budget shared by threads: the learner's bound on memory held for messages in transit.

Every stream reserves the bytes of each frame it buffers, and the reservation of a whole
message travels with it to the ingest thread, which releases it once the message was
handed to the learner. When a reservation would pass the limit it is refused: the stream
is ended with RESOURCE_EXHAUSTED and the actor, which keeps its data, retries later. The
learner's memory for data in transit is therefore bounded by the limit, whatever clients
send (large partial messages on many streams included).
"""

from __future__ import annotations

import threading


class MemoryBudget:
    """A thread-safe counter of reserved bytes with a hard limit."""

    def __init__(self, limit_bytes: int) -> None:
        if limit_bytes < 1:
            raise ValueError(f"limit_bytes must be >= 1, got {limit_bytes}")
        self.limit_bytes = limit_bytes
        self._lock = threading.Lock()
        self._used = 0
        self.peak_bytes = 0
        """Most bytes reserved at once so far."""
        self.refusals = 0
        """Reservations refused because they would have passed the limit."""

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return self._used

    def try_reserve(self, nbytes: int) -> bool:
        """Reserve ``nbytes``; False (and nothing reserved) when that would pass the limit."""
        if nbytes < 0:
            raise ValueError(f"cannot reserve {nbytes} bytes")
        with self._lock:
            if self._used + nbytes > self.limit_bytes:
                self.refusals += 1
                return False
            self._used += nbytes
            self.peak_bytes = max(self.peak_bytes, self._used)
            return True

    def release(self, nbytes: int) -> None:
        """Give back bytes reserved earlier (never below zero)."""
        with self._lock:
            self._used = max(0, self._used - nbytes)
