"""The figure of `grok demo` (`grok.demo.run_demo`): accuracy and Softmax Collapse of the three settings [P, Fig 1]."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from grok.plots.base import plot_metric, save_figure
from grok.plots.run import plot_accuracy

if TYPE_CHECKING:
    from grok.run import Run


def demo_figure(runs: dict[str, Run], path: Path) -> Path:
    """Left: train (dashed) / test (solid) accuracy; right: Softmax Collapse fraction; log step axis."""
    fig, (acc_ax, sc_ax) = plt.subplots(1, 2, figsize=(12, 4.2))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, run) in enumerate(runs.items()):
        plot_accuracy(acc_ax, run, label=name, color=colors[i])
        plot_metric(sc_ax, run.history["step"], run.history["sc_fraction"], label=name, color=colors[i])
    task = next(iter(runs.values())).config.task
    acc_ax.set_title(f"add mod {task.p}, {task.train_fraction:.0%} train, no weight decay [P, Fig 1]")
    sc_ax.set_title("Softmax Collapse: fraction of train samples with Σexp == 1")
    sc_ax.set_ylabel("SC fraction")
    sc_ax.set_ylim(-0.02, 1.02)
    acc_ax.legend(fontsize=7, loc="center right")
    for ax in (acc_ax, sc_ax):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)
