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
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def keep_freed_memory(limit: int = 1 << 30) -> bool:
    """Blocks up to `limit` bytes come from (and return to) the heap; True if glibc took it."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False        # not glibc (e.g. musl): nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all(bool(mallopt(option, value)) for option, value in
               ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, limit), (M_TRIM_THRESHOLD, 2 * limit)))


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def give_back_freed_memory() -> bool:
    """Return the heap's free pages to the kernel (glibc's malloc_trim): after a job far larger than
    the previews, whose freed blocks `keep_freed_memory` would otherwise keep for good."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    return bool(trim(0))


def process_memory_mb(pid: int, field: str = "VmRSS") -> float:
    """Another process's resident memory now (VmRSS) or at its highest so far (VmHWM), MiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields[field].split()[0]) / 1024


def rss_bytes() -> int | None:
    """This process's resident memory (Linux), None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
