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


def timed_pair(first, second, repeat: int) -> tuple[float, float, float]:
    """Medians of ``first()`` and ``second()`` run in turn, and the median of
    the ratios second/first within each turn. On a shared machine whose speed
    drifts over seconds, a ratio of two runs taken side by side is steadier
    than the ratio of two medians taken one after the other."""
    first()
    second()
    a, b, ratios = [], [], []
    for _ in range(repeat):
        t = time.perf_counter()
        first()
        ta = time.perf_counter() - t
        t = time.perf_counter()
        second()
        tb = time.perf_counter() - t
        a.append(ta)
        b.append(tb)
        ratios.append(tb / ta)
    return statistics.median(a), statistics.median(b), statistics.median(ratios)
