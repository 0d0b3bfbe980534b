"""What every figure uses: `save_figure` (a PNG, written atomically), `panel_grid` and
`plot_metric`, the mean-over-members line with its band. Drawing functions take a matplotlib
Axes and return it."""

from __future__ import annotations

import io
import textwrap
import warnings
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


def figure_title(fig, title: str, fontsize: float = 10):
    """`fig.suptitle(title)` with every line wrapped to the figure's width, so that a long title
    (a reproduction's claim and verdict) does not widen the saved PNG and squeeze the axes."""
    chars = max(20, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))
    lines = [textwrap.fill(line, chars) for line in str(title).splitlines()]
    return fig.suptitle("\n".join(lines), fontsize=fontsize)


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
    style="-",
    logx: bool = True,
    marker: str | None = None,
):
    """One metric over time: the mean over members and, with several members, their min–max band.

    `values` is [intervals] or [members, intervals] (NaN entries are left out of the mean and the
    band); `style` a line style ("--", or a dash tuple); `marker` marks the points (small). Every
    line of a metric over members in grok's figures is drawn here.
    """
    values = np.atleast_2d(values)
    x = _steps_for_log(steps) if logx else steps
    with warnings.catch_warnings():  # a step where every member is NaN is a gap in the line, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, low, high = (f(values, axis=0) for f in (np.nanmean, np.nanmin, np.nanmax))
    fmt, kw = ((style,), {}) if isinstance(style, str) else ((), {"linestyle": style})
    if marker is not None:
        kw |= {"marker": marker, "ms": 4}
    (line,) = ax.plot(x, mean, *fmt, label=label, color=color, **kw)
    if values.shape[0] > 1:
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("step")
    return ax


def panel_grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.2, 3.2)) -> tuple[object, Sequence]:
    """A figure with `n` panels in rows of `ncols`; unused axes are hidden."""
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]
