"""A fair comparison of training interventions on one sweep: methods × learning rates × seeds.

Every grid point of a sweep's axes other than the learning-rate axis and the seeds is one
*method* (e.g. `optim.kind = muon`, or `optim.transforms = [grokfast_ema]`). Each method is
scored by the distribution over seeds of the steps it takes to reach a test-accuracy threshold,
members that never reach it counted as such, at its own best learning rate of the grid and at
the baseline's best learning rate. The effective step size (mean ‖Δθ‖ per step, from the
engine's `path_length` metric) is reported beside it, so that "it is only a larger learning
rate" can be checked.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np

from grok.errors import ConfigError
from grok.phases import ACC_ATOL


def steps_to_threshold(acc: np.ndarray, steps: np.ndarray, threshold: float = 0.9) -> np.ndarray:
    """The first logged step with `acc >= threshold` (less `ACC_ATOL`, so that 90% stored as float32
    counts as 0.9) along the last axis; NaN where never reached."""
    acc = np.asarray(acc, np.float64)
    hit = acc >= threshold - ACC_ATOL
    first = np.argmax(hit, axis=-1)
    out = np.asarray(steps, np.float64)[first]
    return np.where(hit.any(axis=-1), out, np.nan)


@dataclasses.dataclass(frozen=True)
class Score:
    """One method at one learning rate: steps to the threshold per seed (NaN: never reached)."""

    method: str
    lr: float
    steps: np.ndarray  # [seeds]
    step_size: float  # mean ‖Δθ‖ per step, median over seeds

    @property
    def never(self) -> int:
        return int(np.isnan(self.steps).sum())

    @property
    def median(self) -> float:
        """Median over seeds with never-reached counted as infinitely late (inf if half or more never reach)."""
        return float(np.median(np.where(np.isnan(self.steps), np.inf, self.steps)))

    @property
    def range(self) -> tuple[float, float]:
        """(min, max) over the seeds that reached the threshold (NaN, NaN if none did)."""
        reached = self.steps[~np.isnan(self.steps)]
        return (float(reached.min()), float(reached.max())) if reached.size else (math.nan, math.nan)

    def key(self) -> tuple[int, float]:
        """Order of merit: fewer never-reached seeds first, then the lower median."""
        return self.never, self.median


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The scores of every method at its best lr (`best`) and at the baseline's (`at_baseline_lr`)."""

    threshold: float
    baseline: str
    baseline_lr: float
    lrs: tuple[float, ...]
    best: tuple[Score, ...]
    at_baseline_lr: tuple[Score, ...]
    all: dict[str, tuple[Score, ...]]  # method → its score at each lr of the grid
    tuned: str = "lr"  # the short name of the axis each method is tuned over (`lr_axis`)

    def table(self) -> str:
        """The comparison as text: one row per method at its best lr, then at the baseline's lr.

        A best lr at either end of the grid is marked: the grid may not contain the true best."""
        pct, t = f"{100 * self.threshold:g}%", self.tuned
        head = f"{'method':<28} {t:>9} {'median':>8} {'range':>13} {'never':>6} {'‖Δθ‖/step':>10}"
        lines = [f"steps to {pct} test accuracy, each method at its own best {t} (n = seeds)", head]
        lines += [_row(s) + (" (grid edge)" if s.lr in (min(self.lrs), max(self.lrs)) else "") for s in self.best]
        lines += ["", f"at the baseline's {t} ({self.baseline}: {t} {self.baseline_lr:g})", head]
        lines += [_row(s) for s in self.at_baseline_lr]
        return "\n".join(lines)


def _row(s: Score) -> str:
    med = "never" if math.isinf(s.median) else f"{s.median:.0f}"
    lo, hi = s.range
    rng = "—" if math.isnan(lo) else f"{lo:.0f}–{hi:.0f}"
    never = f"{s.never}/{s.steps.size}"
    return f"{s.method:<28} {s.lr:>9.3g} {med:>8} {rng:>13} {never:>6} {s.step_size:>10.3g}"


def method_label(point: dict[str, Any], kind: str | None = None) -> str:
    """A short name for a grid point: the base optimizer (`kind` unless it is an axis), then the
    transforms, then other axes."""
    parts = [kind] if kind and "optim.kind" not in point else []
    for name, value in point.items():
        if name == "optim.kind":
            parts.insert(0, str(value))
        elif name == "optim.transforms":
            parts += list(value) if value else []
        else:
            parts.append(f"{name.rpartition('.')[2]}={value:g}" if isinstance(value, float) else f"{name}={value}")
    return " + ".join(parts) or "base"


def compare(
    sweep: Any, *, threshold: float = 0.9, lr_axis: str = "optim.lr", baseline: str | None = None
) -> Comparison:
    """Score every method of a loaded sweep (`grok.load_sweep`) at its best lr and at the baseline's.

    `lr_axis`: the axis each method is tuned over (any numeric axis, e.g. `optim.weight_decay`).
    `baseline`: a method's label (`method_label`), default the first method in grid order.
    """
    axes = {k: list(v) for k, v in sweep.axes.items()}
    if lr_axis not in axes:
        raise ConfigError("lr_axis", lr_axis, "an axis of the sweep: " + ", ".join(a for a in axes if a != "seed"))
    if not 0 < threshold <= 1:
        raise ConfigError("threshold", threshold, "a test accuracy in (0, 1]")
    names = list(axes)
    method_axes = [a for a in names if a not in (lr_axis, "seed")]
    acc = sweep.history("test_acc")  # [*axes, seeds, intervals]
    reached = steps_to_threshold(acc, sweep.steps, threshold)  # [*axes, seeds]
    path = sweep.history("path_length")[..., -1]
    step_size = path / float(sweep.steps[-1])
    lrs = tuple(float(v) for v in axes[lr_axis])
    spec = getattr(sweep, "spec", None)
    kind = spec.base.optim.kind if spec is not None else None
    scores: dict[str, tuple[Score, ...]] = {}
    for combo in itertools.product(*(range(len(axes[a])) for a in method_axes)):
        label = method_label({a: axes[a][i] for a, i in zip(method_axes, combo, strict=True)}, kind)
        per_lr = []
        for j, lr in enumerate(lrs):
            index = tuple(dict(zip(method_axes, combo, strict=True)).get(a, j) for a in names[:-1])
            per_lr.append(Score(label, lr, reached[index], float(np.nanmedian(step_size[index]))))
        scores[label] = tuple(per_lr)
    base = baseline if baseline is not None else next(iter(scores))
    if base not in scores:
        raise ConfigError("baseline", base, "a method of the sweep: " + ", ".join(scores))
    best = {m: min(s, key=Score.key) for m, s in scores.items()}
    j = lrs.index(best[base].lr)
    return Comparison(
        threshold=threshold,
        baseline=base,
        baseline_lr=best[base].lr,
        lrs=lrs,
        best=tuple(best.values()),
        at_baseline_lr=tuple(s[j] for s in scores.values()),
        all=scores,
        tuned=lr_axis.rpartition(".")[2],
    )
