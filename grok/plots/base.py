"""Figures. Functions draw on a given matplotlib Axes (or make one) and return it;
`*_figure` helpers write a PNG atomically and return its path."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from grok.store import atomic_write_bytes


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write `fig` as PNG atomically and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _steps_for_log(steps: np.ndarray) -> np.ndarray:
    """Step axis usable on a log scale (step 0 drawn at 1)."""
    return np.maximum(steps, 1)


def plot_metric(
    ax,
    steps: np.ndarray,
    values: np.ndarray,
    *,
    label: str | None = None,
    color=None,
    style: str = "-",
    logx: bool = True,
):
    """One metric over time; `values` is [intervals] or [members, intervals] (mean line, min–max band)."""
    values = np.atleast_2d(values)
    x = _steps_for_log(steps) if logx else steps
    mean = np.nanmean(values, axis=0)
    (line,) = ax.plot(x, mean, style, label=label, color=color)
    if values.shape[0] > 1:
        ax.fill_between(x, np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=line.get_color(), alpha=0.2)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("step")
    return ax


def plot_accuracy(ax, run, *, label: str = "", color=None, logx: bool = True):
    """Train (dashed) and test (solid) accuracy of a run's members."""
    steps = run.history["step"]
    plot_metric(ax, steps, run.history["train_acc"], label=f"{label} train", color=color, style="--", logx=logx)
    plot_metric(ax, steps, run.history["test_acc"], label=f"{label} test", color=color, logx=logx)
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    return ax


def panel_grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.2, 3.2)) -> tuple[object, Sequence]:
    """A figure with `n` panels in rows of `ncols`; unused axes are hidden."""
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]
