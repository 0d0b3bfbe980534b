"""When a run evaluates and snapshots (docs/architecture.md, "Schedules and snapshots").

A run evaluates its metrics and probes at the steps of its schedule, step 0 and `train.steps`
included: every `train.log_every` steps ("linear"), or at about `train.log_points` steps spaced
geometrically from 1 to `train.steps` ("log"; rounded to whole steps, duplicates removed, and
with the explicit snapshot steps added). The engine trains interval by interval, each interval's
length a number read from the schedule (no evaluation anywhere else), and compiles a chunk of
`n_chunk` intervals once: a log schedule gets a few extra points, splitting its longest
intervals, so that its intervals fill whole chunks.

Snapshots (`train.snapshots`) are taken at evaluation steps: a count picks that many on the
same kind of schedule (evenly spaced, or geometric), explicit steps are kept as given.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

CHUNKS = 20  # compiled chunks per run (about): each returns its metrics and snapshots to the host


class Schedule(NamedTuple):
    """The evaluation steps of a run, the intervals per compiled chunk and the snapshot steps."""

    steps: np.ndarray  # int64 [points], 0 … train.steps
    n_chunk: int  # intervals per compiled chunk
    snapshots: np.ndarray  # int64 [snapshots], a subset of `steps`

    @property
    def n_chunks(self) -> int:
        return (len(self.steps) - 1) // self.n_chunk

    @property
    def lengths(self) -> np.ndarray:
        """Steps per interval, [n_chunks, n_chunk] (int32)."""
        return np.diff(self.steps).astype(np.int32).reshape(self.n_chunks, self.n_chunk)

    @property
    def slots_per_chunk(self) -> int:
        """The most snapshots any chunk takes (step 0's is taken at init)."""
        taken = np.isin(self.steps[1:], self.snapshots).reshape(self.n_chunks, self.n_chunk)
        return int(taken.sum(axis=1).max()) if taken.size else 0

    @property
    def slots(self) -> np.ndarray:
        """[n_chunks, n_chunk] int32: where an interval's end is written in its chunk's snapshot
        buffer; `slots_per_chunk` (a spare slot, thrown away) where it takes none."""
        taken = np.isin(self.steps[1:], self.snapshots).reshape(self.n_chunks, self.n_chunk)
        slot = np.cumsum(taken, axis=1) - 1
        return np.where(taken, slot, self.slots_per_chunk).astype(np.int32)


def geometric_steps(steps: int, points: int) -> np.ndarray:
    """About `points` whole steps from 0 to `steps`: 0, then geometric from 1 to `steps`, unique.

    Rounding merges the first few; more geometric points are drawn until `points` distinct ones
    are reached (the longest intervals are split if rounding still leaves too few).
    """
    if points >= steps + 1:
        return np.arange(steps + 1, dtype=np.int64)
    n = max(points - 1, 2)
    while True:
        got = np.union1d([0, steps], np.rint(np.geomspace(1, steps, n))).astype(np.int64)
        if len(got) >= points or n > 4 * (steps + 1):
            break
        n += points - len(got)
    if len(got) < points:
        got = _split_longest(got, points - len(got))
    return got


def _split_longest(points: np.ndarray, extra: int) -> np.ndarray | None:
    """`points` with `extra` more, each splitting the then-longest interval in two; None if impossible."""
    pts = list(points)
    for _ in range(extra):
        gaps = np.diff(pts)
        i = int(np.argmax(gaps))
        if gaps[i] < 2:
            return None
        pts.insert(i + 1, pts[i] + gaps[i] // 2)
    return np.asarray(pts, np.int64)


def _divisor_near(n: int, target: float) -> int:
    """The divisor of n closest to `target` (the smaller on a tie), found in O(√n)."""
    return min(divisors(n), key=lambda d: (abs(d - target), d))


def divisors(n: int) -> list[int]:
    """The divisors of n in O(√n) (no loop over every interval of a long run)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)})


def _snapshot_steps(train, steps: np.ndarray) -> np.ndarray:
    """The snapshot steps: explicit ones as given; a count on the schedule's kind, snapped to `steps`."""
    snaps = train.snapshots
    if isinstance(snaps, tuple):
        return np.asarray(snaps, np.int64)
    if snaps == 0:
        return np.zeros(0, np.int64)
    if snaps == 1:
        return steps[-1:]
    if train.schedule == "linear":
        return steps[np.unique(np.rint(np.linspace(0, len(steps) - 1, snaps)).astype(np.int64))]
    targets = geometric_steps(train.steps, snaps)
    near = np.abs(np.log1p(targets)[:, None] - np.log1p(steps)[None, :]).argmin(axis=1)
    return np.unique(steps[near])


@functools.lru_cache(maxsize=256)
def schedule(train, slow_chunk: int | None = None) -> Schedule:
    """The schedule of a `TrainConfig`; `slow_chunk`: intervals per chunk imposed by probes with
    their own interval (linear schedules only)."""
    if train.schedule == "linear":
        steps = np.arange(0, train.steps + 1, train.log_every, dtype=np.int64)
        total = len(steps) - 1
        n_chunk = slow_chunk or _divisor_near(total, max(1, math.ceil(total / CHUNKS)))
        return Schedule(steps, n_chunk, _snapshot_steps(train, steps))
    steps = geometric_steps(train.steps, train.log_points)
    if isinstance(train.snapshots, tuple):
        steps = np.union1d(steps, train.snapshots).astype(np.int64)
    total = len(steps) - 1
    n_chunk = max(1, math.ceil(total / CHUNKS))
    padded = _split_longest(steps, -total % n_chunk)
    if padded is None:  # every step is evaluated already: chunks of a divisor instead
        padded, n_chunk = steps, _divisor_near(total, n_chunk)
    return Schedule(padded, n_chunk, _snapshot_steps(train, padded))


def eval_steps(train) -> np.ndarray:
    """The steps at which a run with this `TrainConfig` evaluates (what `history["step"]` holds)."""
    return schedule(train).steps
