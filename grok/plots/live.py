"""Live curves in a notebook: `grok.train(..., live=True)` redraws accuracy and loss after each
compiled chunk, from the history already on the host (no extra device work). Members are thin
lines, their mean a thick one; outside IPython nothing is drawn."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

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
