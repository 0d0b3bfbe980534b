"""The figure of `grok compare` (`grok.compare.compare`): steps to the threshold per method, one
strip per method (a dot per seed, the median as a bar), at each method's best lr and at the
baseline's lr, on a log step axis; seeds that never reached it are drawn at "never"."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from grok.plots.base import save_figure

if TYPE_CHECKING:
    from grok.compare import Comparison, Score


def plot_scores(ax, scores: tuple[Score, ...], *, never_at: float, title: str = "", tuned: str = "lr"):
    """One strip per method: its seeds' steps (log axis), the never-reached ones at `never_at`."""
    rng = np.random.default_rng(0)
    for i, s in enumerate(scores):
        y = np.where(np.isnan(s.steps), never_at, s.steps)
        jitter = rng.uniform(-0.15, 0.15, size=y.size)
        ax.scatter(i + jitter, y, s=18, alpha=0.8, color=f"C{i}", zorder=3)
        med = min(s.median, never_at)
        ax.plot([i - 0.3, i + 0.3], [med, med], color="black", lw=1.5, zorder=4)
    ax.axhline(never_at, color="grey", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(scores)), [f"{s.method}\n{tuned} {s.lr:.2g}" for s in scores], rotation=30, ha="right")
    ax.set_ylabel("steps to threshold (dotted line: never)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return ax


def comparison_figure(cmp: Comparison, path: str | Path, *, last_step: float) -> Path:
    """Left: each method at its own best lr; right: every method at the baseline's lr."""
    never_at = 10 ** math.ceil(math.log10(max(last_step, 10)) + 0.2)
    n = len(cmp.best)
    fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 1.6 * n * 2), 4.2), sharey=True)
    pct = f"{100 * cmp.threshold:g}%"
    t = cmp.tuned
    plot_scores(
        axes[0], cmp.best, never_at=never_at, title=f"steps to {pct} test accuracy, each at its best {t}", tuned=t
    )
    title = f"at the baseline's {t} ({cmp.baseline_lr:g})"
    plot_scores(axes[1], cmp.at_baseline_lr, never_at=never_at, title=title, tuned=t)
    return save_figure(fig, path)
