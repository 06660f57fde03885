"""Keep freed heap memory in the process, so that CPU training does not page-fault.

A SAC update allocates and frees the same few hundred kilobyte-sized tensors on every
step. glibc's malloc returns the top of its heap to the kernel whenever more than its
trim threshold (about 1 MiB after warm-up) is free, and the next step faults the pages
back in: measured ~590 minor page faults and ~0.75 ms of kernel time per critic step
(batch 256), about a tenth of the step. Raising the trim and mmap thresholds once makes
those allocations reuse warm pages. The process then keeps its peak heap size, which a
learner reaches within its first update anyway.

This is a setting of the whole process: the process that trains (the learner, offline
training, a benchmark) calls :func:`retain_freed_memory` once at start when it trains on
the CPU and ``sac.retain_freed_memory`` is on; no constructor does it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
"""glibc's largest allowed mmap threshold: blocks below it come from the reusable heap."""
TRIM_THRESHOLD = 1 << 30
"""Return heap memory to the kernel only when more than this is free at its top."""

_done = False


def retain_freed_memory() -> bool:
    """Raise glibc's malloc trim/mmap thresholds once per process; False where not glibc.

    Process-wide and idempotent. Other C libraries (macOS, musl) are left untouched.
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    _done = ok
    return ok
