"""Runs and sweeps as tidy pandas DataFrames, for pandas and seaborn users.

One row per member and logged step. `run.frame()` has the columns `member`, `step`, each scalar
metric, and each member's dynamic config values by dotted name (`seed`, `optim.lr`, …: what
may differ between members of one program); `sweep.frame()` has one column per sweep axis, then
`seed`, `step` and the metrics. Per-neuron and histogram metrics (`ipr`, `ipr_hist`, …) have a
trailing axis and stay in `run.history`. pandas is optional (`pip install pandas`, or the `frames`
extra); nothing else of the lab needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from grok.errors import ConfigError


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ConfigError(
            "frame", "pandas not installed", "pandas in this environment: pip install pandas (or grok-lab[frames])"
        ) from None
    return pandas


def _scalar_metrics(available: Sequence[str], shapes: dict[str, tuple], wanted: Sequence[str] | None, ndim: int):
    """The metrics to put in columns: the asked ones (each must be a scalar per member and step), or
    every scalar one."""
    if wanted is None:
        return [m for m in available if m != "step" and len(shapes[m]) == ndim]
    if isinstance(wanted, str):
        wanted = [wanted]
    out = []
    for m in wanted:
        if m not in shapes:
            from grok.history import missing_metric_message

            raise ConfigError("metrics", m, missing_metric_message(m, [k for k in available if k != "step"], ()))
        if len(shapes[m]) != ndim:
            raise ConfigError("metrics", m, f"a scalar metric; {m!r} has shape {shapes[m]} (use run.history for it)")
        out.append(m)
    return out


def run_frame(run: Any, metrics: Sequence[str] | None = None):
    """`run` as a DataFrame: `member`, `step`, the metrics, each member's dynamic config values.

    >>> df = grok.frames.run_frame(run)  # the same as run.frame()
    """
    from grok.config import split_dynamic

    pd = _pandas()
    history = run.history
    shapes = {k: np.shape(v) for k, v in history.items()}
    names = _scalar_metrics(list(history), shapes, metrics, ndim=2)
    steps = np.asarray(history["step"])
    n, t = run.n_members, len(steps)
    columns: dict[str, Any] = {"member": np.repeat(np.arange(n), t), "step": np.tile(steps, n)}
    dyn = [split_dynamic(run.member_config(i))[1] for i in range(n)]
    for key in dyn[0]:
        columns[key] = np.repeat([d[key] for d in dyn], t)
    for name in names:
        columns[name] = np.asarray(history[name]).reshape(n * t)
    return pd.DataFrame(columns)


def sweep_frame(sweep: Any, metrics: Sequence[str] | None = None):
    """A loaded sweep as a DataFrame: a column per axis, `seed`, `step`, the metrics (missing members: NaN).

    >>> df = grok.frames.sweep_frame(grok.load_sweep("runs/phase"))  # the same as sweep.frame()
    """
    pd = _pandas()
    available = sweep.metrics
    shapes = {m: sweep.history(m).shape for m in available}
    names = _scalar_metrics(available, shapes, metrics, ndim=len(sweep.shape) + 1)
    axes = sweep.axes
    steps = np.asarray(sweep.steps)
    grid = np.meshgrid(*[np.arange(len(v)) for v in axes.values()], np.arange(len(steps)), indexing="ij")
    columns: dict[str, Any] = {}
    for (name, values), idx in zip(axes.items(), grid[:-1], strict=True):
        columns[name] = np.asarray(values, dtype=object if values.dtype == object else None)[idx.ravel()]
    columns["step"] = steps[grid[-1].ravel()]
    for name in names:
        columns[name] = sweep.history(name).ravel()
    return pd.DataFrame(columns)
