"""Timing helper shared by the benchmarks."""

from __future__ import annotations

import statistics
import time


def timed(fn, repeat: int) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs, after one warm-up run
    (page cache, imports, first-call costs)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
