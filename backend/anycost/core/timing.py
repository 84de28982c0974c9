"""Timing and the identity of this machine, for benchmarks and for every per-machine measurement."""
from __future__ import annotations

import platform
import time
from typing import Callable

import torch


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key() -> str:
    """CPU, thread count and torch version: what a measurement of speed is valid for."""
    cpu = cpu_name().replace(" ", "_").replace("/", "_")
    return f"{cpu}-{torch.get_num_threads()}t-torch{torch.__version__.split('+')[0]}"


def timed(fn: Callable[[], object]) -> float:
    """Milliseconds one call of `fn` takes."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def p95(values) -> float:
    """The 95th percentile (nearest rank) of a non-empty sequence."""
    xs = sorted(values)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
