"""Power et al.'s data-fraction study (docs/formulas.md §7.5): steps until the validation accuracy
first reaches 99%, against the training fraction, one line per operation, censored members kept.

A member that never reaches the threshold within its budget (`train.steps`) is *censored*: it is
drawn at the budget and counted, never dropped, and never averaged in as if it had arrived. The
summary per (operation, fraction) is the median with censored members counted as +∞ (so the median
is censored when half or more are), the min–max over the members that arrived, and the counts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from grok.compare import steps_to_threshold
from grok.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class FractionPoint:
    """One operation at one training fraction: steps to the threshold per seed (NaN: censored)."""

    operation: str
    fraction: float
    steps: np.ndarray  # [seeds]
    budget: int

    @property
    def censored(self) -> int:
        return int(np.isnan(self.steps).sum())

    @property
    def median(self) -> float:
        """Median with censored members at +∞ (inf when half or more are censored)."""
        return float(np.median(np.where(np.isnan(self.steps), np.inf, self.steps)))

    @property
    def arrived(self) -> np.ndarray:
        return self.steps[~np.isnan(self.steps)]


def operation_name(cfg) -> str:
    """A member's operation as a label: "add mod 23", "S4 compose", or the task kind."""
    t = cfg.task
    if t.kind == "modular":
        return f"{t.op} mod {t.p}"
    if t.kind == "permutation":
        return f"S{t.option('permutation', 'n')} {t.option('permutation', 'op')}"
    return t.kind


# axes that `operation_name` already names (or that have no effect where it leaves them out)
NAMED_BY_OPERATION = ("task.kind", "task.op", "task.p", "task.permutation.n", "task.permutation.op")


def line_name(cfg, axes) -> str:
    """A member's line: its operation, then every other sweep axis (fraction and seed aside) that has
    an effect on it, as `name=value` ("add mod 23, optim.lr=0.001")."""
    from grok.sweep.spec import _inert_reason

    others = [
        f"{name}={cfg.get(name)}"
        for name in axes
        if name not in ("task.train_fraction", "seed", *NAMED_BY_OPERATION) and _inert_reason(cfg, name) is None
    ]
    return ", ".join([operation_name(cfg), *others])


def data_fraction_points(sw, threshold: float = 0.99) -> list[FractionPoint]:
    """Every (line, training fraction) of a sweep with its steps to `threshold` test accuracy per seed.
    A line is an operation and the values of the sweep's other axes that have an effect on it
    (`line_name`): members that differ only in an axis with no effect on them (e.g. `task.op` for a
    permutation task) are counted once, and members that differ in any other axis (a learning rate,
    a step budget) are separate lines. `pts = data_fraction_points(grok.load_sweep("runs/power"))`."""
    if "task.train_fraction" not in sw.axes:
        raise ConfigError("sweep", str(sw.path), "a sweep with a task.train_fraction axis (the data fraction)")
    reached = steps_to_threshold(sw.history("test_acc"), sw.steps, threshold)  # [*axes, seeds]
    steps_field = sw.field("train.steps")
    seen: dict[tuple, dict[int, float]] = {}
    budget: dict[tuple, int] = {}
    for idx in np.ndindex(*sw.shape):
        cfg = sw.config(idx)
        key = (line_name(cfg, sw.axes), float(cfg.task.train_fraction))
        if cfg.seed not in seen.setdefault(key, {}):
            seen[key][cfg.seed] = float(reached[idx])
            budget[key] = int(steps_field[idx])
    return [
        FractionPoint(op, f, np.asarray(list(v.values()), np.float64), budget[(op, f)])
        for (op, f), v in sorted(seen.items())
    ]


def data_fraction_table(points: list[FractionPoint], threshold: float = 0.99) -> str:
    """`grok phase`-style text: one row per (operation, fraction). `print(data_fraction_table(pts))`."""
    heads = ["operation", "train_fraction", "reached", "median steps", "range (arrived)", "censored"]
    rows = []
    for p in points:
        n = len(p.steps)
        med = f"≥ {p.budget} (censored)" if np.isinf(p.median) else f"{p.median:.0f}"
        rng = f"{p.arrived.min():.0f}–{p.arrived.max():.0f}" if len(p.arrived) else "—"
        rows.append([p.operation, f"{p.fraction:.3g}", f"{n - p.censored}/{n}", med, rng, str(p.censored)])
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
    total = sum(p.censored for p in points)
    foot = f"steps to {threshold:.0%} validation accuracy; {total} censored member(s) (never reached within the budget)"
    return "\n".join([line(heads), *map(line, rows), foot])


def min_fraction(points: list[FractionPoint]) -> dict[str, float]:
    """Per operation, the smallest training fraction at which every seed reached the threshold (inf if none)."""
    out: dict[str, float] = {}
    for p in points:
        if p.censored == 0:
            out[p.operation] = min(out.get(p.operation, np.inf), p.fraction)
        else:
            out.setdefault(p.operation, np.inf)
    return out


def data_fraction_figure(points: list[FractionPoint], path: str | Path, threshold: float = 0.99) -> Path:
    """Steps to `threshold` (log y) against the training fraction: per line (`line_name`) the median
    (the table's, censored members counted as never arriving, so at the budget when half or more are
    censored), the min–max over seeds with censored members at the budget (band), and censored
    members as triangles at the budget with their count. `data_fraction_figure(pts, "datafrac.png")`."""
    import matplotlib.pyplot as plt

    from grok.plots.base import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ops = list(dict.fromkeys(p.operation for p in points))
    budget = max(p.budget for p in points)
    for i, op in enumerate(ops):
        mine = sorted((p for p in points if p.operation == op), key=lambda p: p.fraction)
        color = plt.get_cmap("tab10")(i % 10)
        f = np.array([p.fraction for p in mine])
        at_budget = [np.where(np.isnan(p.steps), p.budget, p.steps) for p in mine]
        med = np.array([min(p.median, p.budget) for p in mine])  # the table's median (censored: ∞), at most the budget
        lo, hi = np.array([s.min() for s in at_budget]), np.array([s.max() for s in at_budget])
        ax.fill_between(f, lo, hi, color=color, alpha=0.2, lw=0)
        ax.plot(f, med, "-o", color=color, ms=4, label=op)
        span = max(p.fraction for p in points) - min(p.fraction for p in points) or 1.0
        dx = 0.012 * span * (i - (len(ops) - 1) / 2)  # side by side where several lines are censored
        for p in mine:
            if p.censored:
                ax.plot([p.fraction + dx], [p.budget], "v", color=color, ms=7, mec="black", mew=0.5, zorder=3)
                ax.annotate(
                    f"{p.censored}/{len(p.steps)}",
                    (p.fraction + dx, p.budget),
                    textcoords="offset points",
                    xytext=(0, -12 - 9 * i),
                    ha="center",
                    fontsize=7,
                    color=color,
                )
    ax.axhline(budget, color="grey", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylim(top=budget * 1.25)
    ax.set_xlabel("training fraction")
    ax.set_ylabel(f"steps to {threshold:.0%} validation accuracy")
    ax.set_title("[Power] data fraction: line = median, band = seed range; ▼ k/n censored at the budget", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)
