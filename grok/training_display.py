"""What a user sees while a run trains: the progress bar and, in a notebook, live curves.

The bar is plain text (no ipywidgets, so a fresh notebook kernel shows no `IProgress not found`
warning) with the latest accuracies (or losses) of the members. `grok.train(..., live=True)`
redraws accuracy and loss after each compiled chunk from the history already on the host (no
extra device work): members are thin lines, their mean a thick one; outside IPython nothing is
drawn. `TrainingDisplay` combines both into the engine's per-chunk callbacks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from tqdm.std import tqdm


class ProgressBar:
    """Steps done out of `total`, and after each chunk the members' mean train/test accuracy."""

    def __init__(self, total: int, description: str):
        self._bar = tqdm(total=total, desc=description, unit="step", leave=False, dynamic_ncols=True)

    def update(self, steps: int) -> None:
        self._bar.update(steps)

    def show_metrics(self, history: Mapping[str, np.ndarray]) -> None:
        """Show the latest logged values (members' mean) next to the bar."""
        self._bar.set_postfix_str(latest_figures(history), refresh=True)

    def close(self) -> None:
        self._bar.close()


def latest_figures(history: Mapping[str, np.ndarray]) -> str:
    """`train 0.98 test 0.41` (accuracies) or `train 1.2e-3 test 4.5e-2` (losses, for regression)."""
    with np.errstate(all="ignore"):
        acc = {
            k: np.nanmean(history[k][:, -1]) if np.isfinite(history[k][:, -1]).any() else np.nan
            for k in ("train_acc", "test_acc")
            if k in history
        }
    if acc and all(np.isfinite(v) for v in acc.values()):
        return f"train {acc['train_acc']:.3f} test {acc['test_acc']:.3f}"
    loss = {k: float(np.nanmean(history[k][:, -1])) for k in ("train_loss", "test_loss") if k in history}
    return " ".join(f"{k.removesuffix('_loss')} {v:.3g}" for k, v in loss.items()) + " (loss)"


DEFAULT = ("train_acc", "test_acc", "train_loss", "test_loss")


class LivePlot:
    """A callback `(history so far) -> None` that redraws one figure in place."""

    def __init__(self, metrics: Sequence[str] | None = None, title: str = ""):
        self.metrics = list(metrics or DEFAULT)
        self.title = title
        self._handle = None
        self.draws = 0

    def __call__(self, history: Mapping[str, np.ndarray]) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        fig = self.figure(history)
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        import matplotlib.pyplot as plt

        plt.close(fig)
        self.draws += 1

    def figure(self, history: Mapping[str, np.ndarray]):
        """Accuracies in one panel, losses in another (log step axis; members thin, mean thick)."""
        import matplotlib.pyplot as plt

        steps = np.maximum(np.asarray(history["step"]), 1)
        groups = [
            [m for m in self.metrics if "acc" in m and m in history],
            [m for m in self.metrics if "acc" not in m and m in history],
        ]
        groups = [g for g in groups if g]
        fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 3.4), squeeze=False)
        for ax, names in zip(axes[0], groups, strict=True):
            for k, name in enumerate(names):
                values = np.asarray(history[name], float)
                color = f"C{k}"
                for row in values:
                    ax.plot(steps, row, color=color, lw=0.6, alpha=0.5)
                with np.errstate(all="ignore"):
                    ax.plot(steps, np.nanmean(values, axis=0), color=color, lw=2, label=name)
            ax.set_xscale("log")
            if "loss" in names[0]:
                ax.set_yscale("log")
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"{self.title} — step {int(history['step'][-1])}", fontsize=10)
        fig.tight_layout()
        return fig


class TrainingDisplay:
    """The progress bar (`progress`) and live curves (`live`: True or metric names) of one run, as
    the engine's callbacks: `update(steps)` after each chunk's steps, `on_chunk(history)` after
    its metrics reached the host."""

    def __init__(self, total_steps: int, title: str, *, progress: bool, live: bool | Sequence[str]):
        self.bar = ProgressBar(total_steps, title) if progress else None
        self.plot = LivePlot(metrics=None if live is True else list(live), title=title) if live else None

    @property
    def active(self) -> bool:
        return self.bar is not None or self.plot is not None

    def update(self, steps: int) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def on_chunk(self, history: Mapping[str, np.ndarray]) -> None:
        if self.bar is not None:
            self.bar.show_metrics(history)
        if self.plot is not None:
            self.plot(history)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
