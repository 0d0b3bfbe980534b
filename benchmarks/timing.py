"""Timing shared by the benchmarks (not a benchmark itself: `python -m benchmarks` runs `bench_*`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import jax


def best_seconds(fn: Callable[..., object], *args: object, repeats: int) -> float:
    """Fastest of `repeats` calls of `fn(*args)`, each waited on; compiled by a first, untimed call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)
