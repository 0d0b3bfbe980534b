"""Timing shared by the benchmarks (not a benchmark itself: `python -m benchmarks` runs `bench_*`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import jax


def best_seconds(
    fn: Callable[..., object], *args: object, repeats: int, min_seconds: float = 0.0, max_calls: int = 500
) -> float:
    """Fastest of `repeats` calls of `fn(*args)`, each waited on; compiled by a first, untimed call.

    With `min_seconds`, calls go on past `repeats` until the timed calls add up to that long (at most
    `max_calls`): a call of 20 ms then gets as many chances to run undisturbed on a shared machine
    as a call of 400 ms.
    """
    jax.block_until_ready(fn(*args))
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < max_calls):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)
