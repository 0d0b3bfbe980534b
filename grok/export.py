"""Histories where researchers already look: TensorBoard event files and Weights & Biases runs.

`export_tensorboard(run_or_sweep, logdir)` writes one TensorBoard run per member (a sub-directory
named by what tells the members apart: `seed=0`, or a sweep's axis values and seed) with every
scalar metric at every logged step, through `tensorboardX` (a small writer with no deep-learning
framework; the `export` extra). `export_wandb(...)` logs the same to one W&B run per member, with
the member's full config, when `wandb` is installed and configured (`mode="offline"` writes
locally). The run or sweep directory itself is only read.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from grok.errors import ConfigError
from grok.store import RunDirError


def _load(source: Any):
    """A Run or Sweep, or a directory holding either."""
    from grok.run import Run, load_run
    from grok.sweep import load_sweep
    from grok.sweep.results import Sweep

    if isinstance(source, (Run, Sweep)):
        return source
    path = Path(source)
    if (path / "sweep.json").is_file():
        return load_sweep(path)
    if (path / "status.json").is_file():
        return load_run(path)
    raise RunDirError(f"{str(path)!r} is neither a run directory nor a sweep directory")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_fmt(v) for v in value) + "]"
    return str(value)


def member_series(source: Any) -> Iterator[tuple[str, dict[str, Any], np.ndarray, dict[str, np.ndarray]]]:
    """(label, config dict, steps, {metric: values per step}) for every member of a run or sweep.

    Scalar metrics only (per-neuron and histogram metrics have a trailing axis); NaN entries (a
    probe's off-interval, a missing member) are left out by the writers.
    """
    from grok.run import Run

    source = _load(source)
    if isinstance(source, Run):
        steps = np.asarray(source.history["step"])
        scalar = {k: np.asarray(v) for k, v in source.history.items() if k != "step" and np.ndim(v) == 2}
        differing = sorted({k for m in source.members for k in m})
        for i in range(source.n_members):
            label = ",".join(f"{k}={_fmt(source.members[i][k])}" for k in differing if k in source.members[i])
            config = source.member_config(i).to_dict()
            yield label or f"member={i}", config, steps, {k: v[i] for k, v in scalar.items()}
        return
    sweep = source
    steps = np.asarray(sweep.steps)
    names = [m for m in sweep.metrics if np.ndim(sweep.history(m)) == len(sweep.shape) + 1]
    histories = {m: sweep.history(m) for m in names}
    axes = sweep.axes
    for index in np.ndindex(*sweep.shape):
        if not sweep.present[index]:
            continue
        label = ",".join(f"{name}={_fmt(values[i])}" for (name, values), i in zip(axes.items(), index, strict=True))
        config = sweep.config(index).to_dict()
        yield label, config, steps, {m: h[index] for m, h in histories.items()}


def export_tensorboard(source: Any, logdir: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write every member's scalar metrics as TensorBoard event files under `logdir/<member label>/`.

    `logdir` must be new or empty (or `overwrite=True`, which replaces it). Returns the member
    directories. Open them with `tensorboard --logdir LOGDIR`.

    >>> grok.export_tensorboard("runs/x", "tb/x")
    """
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ConfigError(
            "--tensorboard", str(logdir), "tensorboardX installed: pip install tensorboardX (or grok-lab[export])"
        ) from None
    logdir = _fresh_dir(Path(logdir), overwrite, "--tensorboard")
    written = []
    for label, _, steps, series in member_series(source):
        target = logdir / _safe(label)
        with SummaryWriter(logdir=str(target), flush_secs=3600) as writer:
            for name, values in series.items():
                for step, value in zip(steps, values, strict=True):
                    if np.isfinite(value):
                        writer.add_scalar(name, float(value), int(step))
        written.append(target)
    return written


def export_wandb(
    source: Any, *, project: str = "grok-lab", group: str | None = None, mode: str | None = None
) -> list[str]:
    """Log every member as one W&B run (its full config, each scalar metric at each logged step).

    `mode`: W&B's own ("online", "offline", "disabled"; default: the user's W&B set-up). Returns
    the W&B run ids.

    >>> grok.export_wandb("runs/x", project="grokking", mode="offline")
    """
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            "--wandb", "wandb not installed", "wandb installed and configured: pip install wandb"
        ) from None
    name = group or (Path(source).name if isinstance(source, (str, Path)) else "grok-run")
    ids = []
    for label, config, steps, series in member_series(source):
        run = wandb.init(
            project=project, group=name, name=f"{name}/{label}", config=config, mode=mode, reinit="create_new"
        )
        for k, step in enumerate(steps):
            row = {m: float(v[k]) for m, v in series.items() if np.isfinite(v[k])}
            run.log(row, step=int(step))
        ids.append(run.id)
        run.finish()
    return ids


def _safe(label: str) -> str:
    """A member label as one directory name."""
    return "".join(c if c.isalnum() or c in "=,.-_+" else "_" for c in label)


def _fresh_dir(path: Path, overwrite: bool, what: str) -> Path:
    from grok.store import check_writable

    if path.exists() and not path.is_dir():
        raise RunDirError(f"{what}: {str(path)!r} is a file; allowed: a new or empty directory")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise RunDirError(f"{what}: {str(path)!r} is not empty; choose a new directory or pass --overwrite")
        shutil.rmtree(path)
    check_writable(path, what)
    path.mkdir(parents=True, exist_ok=True)
    return path
