"""Pruning curves [D]: accuracy against the fraction of first-layer neurons pruned (`grok prune`).

The curves are `grok.prune.PruneResult`s, one per pruning order.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from grok.plots.base import figure_title, panel_grid, save_figure
from grok.prune import ACCURACIES, ORDER_LABELS, PruneResult


def plot_prune_curves(results_by_order: Mapping[str, PruneResult], path: str | Path, title: str = "") -> Path:
    """Accuracy vs fraction pruned: one panel per accuracy kind, one line per order. Writes a PNG."""
    if not results_by_order:
        raise ValueError("plot_prune_curves needs at least one PruneResult")
    colors = {"low": "tab:blue", "high": "tab:red", "random": "tab:gray"}
    fig, axes = panel_grid(len(ACCURACIES), ncols=3, size=(4.0, 3.2))
    for j, (ax, (name, _, long)) in enumerate(zip(axes, ACCURACIES, strict=True)):
        for order, res in results_by_order.items():
            values = getattr(res, name)
            style = "--" if order == "random" else "-"
            ax.plot(res.fractions, values, style, color=colors.get(order), label=ORDER_LABELS.get(order, order))
        ax.set_title(long, fontsize=10)
        if j >= len(axes) - 3:
            ax.set_xlabel("fraction of neurons pruned")
        if j % 3 == 0:
            ax.set_ylabel("accuracy")
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    first = next(iter(results_by_order.values()))
    figure_title(fig, title or f"pruning first-layer neurons by IPR ({first.model_kind}, N={first.n_neurons}) [D]", 12)
    fig.tight_layout()
    return save_figure(fig, path)
