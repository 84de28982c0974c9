"""Keep freed memory inside the process, so large feature maps do not page-fault on every call.

glibc hands blocks above its mmap threshold (32 MiB at most by default) straight back to the
kernel when freed; the next render asks for them again and takes a page fault per 4 KiB touched.
A 1024 px feature map of 32 channels is 128 MiB: on the development VM, four fresh ones cost more
than the arithmetic on them (docs/benchmarks.md). Raising the thresholds keeps such blocks in the
heap for reuse. One arena for every thread: glibc's per-thread arenas are capped at 64 MiB and
serve larger blocks by mmap whatever the threshold, and the daemon renders on a worker thread.
Process-wide, so only the daemon and the benchmarks call it, before starting threads.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Blocks up to `limit` bytes come from (and return to) the heap; True if glibc took it."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False        # not glibc (e.g. musl): nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all(bool(mallopt(option, value)) for option, value in
               ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, limit), (M_TRIM_THRESHOLD, 2 * limit)))
