"""The training progress bar: a plain text bar (no ipywidgets, so a fresh notebook kernel shows
no `IProgress not found` warning) with the latest accuracies (or losses) of the members."""

from __future__ import annotations

from collections.abc import Mapping

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


def progress_bar(total: int, description: str) -> ProgressBar:
    return ProgressBar(total, description)
