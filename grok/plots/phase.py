"""Phase diagrams [D] and heat maps of a sweep (`grok phase DIR`; docs/formulas.md §6).

`phase_diagram` draws two chosen axes of a `grok.sweep.Sweep`, one colour per phase
(`PHASE_COLORS`, fixed for the six phases of `grok.phases.PHASES`), one panel per value of a
third axis. A cell whose seeds all agree is one colour; a cell whose seeds disagree is drawn as
stripes in proportion to its phases, outlined, with the majority's count k/n written in it (ties go
to the phase listed first in PHASES). `heatmap` draws the seed mean of any final metric, or
of the grokking delay (`metric="grokking_delay"`), on the same layout. Axes not drawn must have
one value or be fixed with `at={"axis": value}`. PNGs are written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch, Rectangle

from grok.errors import ConfigError
from grok.phases import DIVERGED, PHASES, majority_phase, phase_counts
from grok.plots.base import figure_title, save_figure

PHASE_COLORS = {
    "coexistence": "#2ca02c",
    "partial_inversion": "#17becf",
    "full_inversion": "#1f5fbf",
    "memorization": "#d62728",
    "forgetting": "#ff9f1c",
    "confusion": "#8c8c8c",
}
DIVERGED_COLOR = "#404040"  # a cell whose every seed diverged
MISSING_COLOR = "#ffffff"
DERIVED = ("grokking_delay",)


def layout(
    sw, x: str | None = None, y: str | None = None, panel: str | None = None, at: Mapping[str, Any] | None = None
):
    """Choose the drawn axes and slice the others.

    Returns (x, y, panel, take) where x/y/panel are axis names (y, panel may be None) and
    `take(array [*axes, seeds, ...]) -> array [panels, ny, nx, seeds, ...]`.
    Defaults: the first non-seed axes in grid order, skipping axes with a single value.
    """
    names = [n for n in sw.axes if n != "seed"]
    sizes = {n: len(sw.axes[n]) for n in names}
    at = dict(at or {})
    for name in (x, y, panel, *at):
        if name is not None and name not in names:
            raise ConfigError("axis", name, "one of the sweep's axes: " + ", ".join(names), choices=names)
    chosen = [n for n in (x, y, panel) if n is not None]
    if len(set(chosen)) != len(chosen):
        raise ConfigError("axis", chosen, "distinct axes for --x, --y and --panel")
    free = [n for n in names if n not in chosen and n not in at and sizes[n] > 1]
    if x is None:
        x = free.pop(0) if free else next((n for n in names if n not in chosen and n not in at), None)
    if y is None and free:
        y = free.pop(0)
    if panel is None and free:
        panel = free.pop(0)
    if free:
        raise ConfigError(
            "axis",
            free[0],
            f"drawn as --x/--y/--panel or fixed with --at {free[0]}=VALUE ({sizes[free[0]]} values: "
            + ", ".join(_fmt(v) for v in sw.axes[free[0]])
            + ")",
        )
    index: list[Any] = []
    for n in names:
        if n in (x, y, panel):
            index.append(slice(None))
        elif n in at:
            index.append(_value_index(n, sw.axes[n], at[n]))
        else:
            index.append(0)  # a single-valued axis
    drawn = [n for n in names if n in (x, y, panel)]

    def take(arr: np.ndarray) -> np.ndarray:
        arr = np.asarray(arr)[tuple(index)]
        # arr now: [*drawn (grid order), seeds, ...]; reorder to [panel, y, x, seeds, ...]
        order = [drawn.index(n) if n in drawn else None for n in (panel, y, x)]
        pos = [o for o in order if o is not None]
        arr = np.moveaxis(arr, pos, list(range(len(pos))))
        if panel is None:
            arr = arr[None]
        if y is None:
            arr = arr[:, None]
        if x is None:
            arr = arr[:, :, None]
        return arr

    return x, y, panel, take


def _value_index(name: str, values: np.ndarray, wanted: Any) -> int:
    for i, v in enumerate(values):
        if _same(v, wanted):
            return i
    raise ConfigError(f"--at {name}", wanted, "one of " + ", ".join(_fmt(v) for v in values))


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, str) and not isinstance(a, str):
        try:
            b = float(b)
        except ValueError:
            return False
    try:
        return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=1e-12))
    except (TypeError, ValueError):
        return str(a) == str(b) or (isinstance(a, (tuple, list)) and str(list(a)) == str(b))


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.3g}"
    if isinstance(v, (tuple, list)):
        return ",".join(map(str, v))
    return str(v)


def _ticks(ax, which: str, name: str | None, values: Sequence[Any] | None) -> None:
    set_ticks, set_labels, set_label = (
        (ax.set_xticks, ax.set_xticklabels, ax.set_xlabel)
        if which == "x"
        else (ax.set_yticks, ax.set_yticklabels, ax.set_ylabel)
    )
    if name is None or values is None:
        set_ticks([])
        return
    n = len(values)
    step = max(1, -(-n // 12))
    idx = list(range(0, n, step))
    set_ticks(idx)
    set_labels([_fmt(values[i]) for i in idx], rotation=45 if which == "x" and n > 6 else 0, fontsize=8)
    set_label(name)


def _panels(sw, x, y, panel):
    values = {n: (list(sw.axes[n]) if n else None) for n in (x, y, panel)}
    n_panels = len(values[panel]) if panel else 1
    ncols = min(n_panels, 3)
    nrows = -(-n_panels // ncols)
    nx = len(values[x]) if x else 1
    ny = len(values[y]) if y else 1
    w = min(max(3.2, 0.32 * nx + 1.6), 8.0)
    h = min(max(2.6, 0.32 * ny + 1.2), 8.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols + 1.0, h * nrows + 0.6), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        ax.set_visible(False)
    return fig, flat[:n_panels], values


def _title(name: str | None, value: Any) -> str:
    return f"{name} = {_fmt(value)}" if name else ""


def phase_diagram(
    sw,
    path: str | Path,
    *,
    x: str | None = None,
    y: str | None = None,
    panel: str | None = None,
    at: Mapping[str, Any] | None = None,
    title: str | None = None,
    rule: str = "doshi",
    refinement=None,
) -> Path:
    """Draw the phase diagram of a sweep to `path` (PNG) by `rule` (grok.phases.PHASE_RULES); returns
    the path. A cell whose seeds disagree is drawn mixed: stripes in proportion to its phases,
    with the majority's count k/n written in it; refined points (`grok.refine`) are drawn on top."""
    if not np.any(sw.classification):
        raise ConfigError("phase diagram", str(sw.path), "a sweep of a classification task (phases need accuracies)")
    x, y, panel, take = layout(sw, x, y, panel, at)
    phases = take(sw.phases(rule))
    majority, agreement = majority_phase(phases)  # [P, ny, nx]
    counts = phase_counts(phases)  # [P, ny, nx, len(PHASES)]
    n_seeds = len(sw.axes["seed"])
    fig, axes, values = _panels(sw, x, y, panel)
    for p, ax in enumerate(axes):
        rgb = np.ones(majority.shape[1:] + (3,))
        for name, color in PHASE_COLORS.items():
            rgb[majority[p] == name] = matplotlib.colors.to_rgb(color)
        rgb[majority[p] == DIVERGED] = matplotlib.colors.to_rgb(DIVERGED_COLOR)
        ax.imshow(rgb, origin="lower", aspect="auto", interpolation="nearest")
        ny, nx = majority.shape[1:]
        for iy in range(ny):
            for ix in range(nx):
                a = agreement[p, iy, ix]
                if not 0 < a < 1:
                    continue
                total, left = counts[p, iy, ix].sum(), ix - 0.5
                for name, c in zip(PHASES, counts[p, iy, ix], strict=True):
                    if c:
                        w = c / total
                        ax.add_patch(Rectangle((left, iy - 0.5), w, 1.0, color=PHASE_COLORS[name], lw=0))
                        left += w
                ax.add_patch(Rectangle((ix - 0.5, iy - 0.5), 1, 1, fill=False, ec="black", lw=0.6))
                if nx * ny <= 400:
                    k = counts[p, iy, ix].max()
                    ax.text(ix, iy, f"{k}/{total}", ha="center", va="center", fontsize=7, color="white")
        if refinement is not None:
            fixed = {n: _axis_value(sw, n, at) for n in sw.axes if n not in ("seed", x, y, panel)}
            if panel:
                fixed[panel] = values[panel][p]
            _draw_refinement(ax, sw, refinement, x, y, fixed)
        _ticks(ax, "x", x, values[x])
        _ticks(ax, "y", y, values[y])
        if panel:
            ax.set_title(_title(panel, values[panel][p]), fontsize=9)
    shown = [n for n in PHASES if np.any(counts[..., PHASES.index(n)] > 0)] or list(PHASES)
    handles = [Patch(facecolor=PHASE_COLORS[n], label=n.replace("_", " ")) for n in shown]
    if np.any(majority == DIVERGED):
        handles.append(Patch(facecolor=DIVERGED_COLOR, label="every seed diverged"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    how = "" if rule == "doshi" else f", rule {rule}"
    suffix = f"{n_seeds} seeds{how}; striped = seeds disagree (k/n: the majority)" if n_seeds > 1 else f"1 seed{how}"
    figure_title(fig, title or f"phases [D] — {suffix}")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return save_figure(fig, path)


def _axis_value(sw, name: str, at: Mapping[str, Any] | None) -> Any:
    values = sw.axes[name]
    return values[_value_index(name, values, at[name])] if at and name in at else values[0]


def _position(sw, refinement, axis: str | None, value: Any) -> float:
    """Where `value` of `axis` lies in image coordinates (grid index, interpolated; log axes in log)."""
    if axis is None:
        return 0.0
    grid = np.asarray(sw.axes[axis], dtype=np.float64)
    f = np.log10 if axis in refinement.log_axes else (lambda v: v)
    order = np.argsort(grid)
    return float(np.interp(f(float(value)), f(grid[order]), np.arange(len(grid))[order]))


def _draw_refinement(ax, sw, refinement, x: str | None, y: str | None, fixed: Mapping[str, Any]) -> None:
    """Refined points (round ≥ 1) as dots in their phase's colour, the located boundary as black bars."""

    def on_panel(point: Mapping[str, Any]) -> bool:
        return all(_same(point[n], v) for n, v in fixed.items())

    for point, label, r in zip(refinement.points, refinement.labels, refinement.rounds, strict=True):
        if r and on_panel(point):
            color = PHASE_COLORS.get(label, "#000000" if label == "above" else "#ffffff")
            px, py = _position(sw, refinement, x, point.get(x)), _position(sw, refinement, y, point.get(y))
            ax.scatter([px], [py], s=14, c=[color], edgecolors="black", linewidths=0.5, zorder=3)
    for axis, others, va, vb in refinement.boundaries():
        if axis not in (x, y) or not on_panel(others):
            continue
        mid = 0.5 * (_position(sw, refinement, axis, va) + _position(sw, refinement, axis, vb))
        across = _position(sw, refinement, y if axis == x else x, others.get(y if axis == x else x))
        if axis == x:
            ax.plot([mid, mid], [across - 0.35, across + 0.35], color="black", lw=1.4, zorder=4)
        else:
            ax.plot([across - 0.35, across + 0.35], [mid, mid], color="black", lw=1.4, zorder=4)


def metric_grid(sw, metric: str) -> tuple[np.ndarray, str]:
    """(values [*axes, seeds], label) of a final metric or a derived quantity (grokking_delay)."""
    if metric == "grokking_delay":
        return sw.grokking_delay, "grokking delay (steps)"
    if metric not in sw.metrics:
        raise ConfigError("--metric", metric, "a final metric or grokking_delay: " + ", ".join(sw.metrics))
    values = sw.metric(metric)
    if values.ndim != len(sw.shape):
        raise ConfigError("--metric", metric, "a scalar metric (this one has a value per neuron or bin)")
    return values, f"final {metric}"


def heatmap(
    sw,
    metric: str,
    path: str | Path,
    *,
    x: str | None = None,
    y: str | None = None,
    panel: str | None = None,
    at: Mapping[str, Any] | None = None,
    log: bool = False,
) -> Path:
    """Heat map of the seed mean of `metric` (a final metric, or "grokking_delay"); NaN cells grey."""
    values, label = metric_grid(sw, metric)
    x, y, panel, take = layout(sw, x, y, panel, at)
    grid = take(values)  # [P, ny, nx, seeds]
    with np.errstate(invalid="ignore"), _quiet():
        mean = np.nanmean(grid, axis=-1)
        finite = np.sum(np.isfinite(grid), axis=-1)
    fig, axes, ax_values = _panels(sw, x, y, panel)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
    ok = np.isfinite(mean)
    lo, hi = (float(np.min(mean[ok])), float(np.max(mean[ok]))) if ok.any() else (0.0, 1.0)
    norm = None
    if log and ok.any() and lo > 0:
        norm = matplotlib.colors.LogNorm(lo, hi)
    n_seeds = grid.shape[-1]
    for p, ax in enumerate(axes):
        im = ax.imshow(
            np.ma.masked_invalid(mean[p]),
            origin="lower",
            aspect="auto",
            interpolation="nearest",
            cmap=cmap,
            norm=norm,
            vmin=None if norm else lo,
            vmax=None if norm else hi,
        )
        ny, nx = mean.shape[1:]
        if nx * ny <= 150:
            for iy in range(ny):
                for ix in range(nx):
                    v = mean[p, iy, ix]
                    text = "—" if not np.isfinite(v) else f"{v:.3g}"
                    if np.isfinite(v) and finite[p, iy, ix] < n_seeds:
                        text += f"\n({finite[p, iy, ix]}/{n_seeds})"
                    dark = not np.isfinite(v) or float(im.norm(v)) > 0.6  # viridis is light at the top
                    ax.text(ix, iy, text, ha="center", va="center", fontsize=6, color="black" if dark else "white")
        _ticks(ax, "x", x, ax_values[x])
        _ticks(ax, "y", y, ax_values[y])
        if panel:
            ax.set_title(_title(panel, ax_values[panel][p]), fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.85)
    fig.suptitle(f"{label}, mean over {n_seeds} seed(s); grey: never / missing", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return save_figure(fig, path)


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


__all__ = ["PHASE_COLORS", "heatmap", "layout", "majority_phase", "metric_grid", "phase_diagram"]
