"""The figures of `grok reproduce` (the catalogue is `grok.reproduce.REPRODUCTIONS`).

Each takes (run, path, title), writes a PNG and returns its path. matplotlib is imported when a
figure is drawn, not with this module (`grok.reproduce` imports it for its catalogue).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grok.phases import loss_crossings


def figure_run(run, path: Path, title: str) -> Path:
    """The multi-panel run figure of `grok plot` (accuracy or loss, the probes, weight norms)."""
    from grok.plots.run import plot_run

    return plot_run(run, path, title=title)


def figure_llc(run, path: Path, title: str) -> Path:
    """LLC over a run: train/test accuracy above, λ̂ (`run.llc`) over the snapshots below."""
    from grok.plots.llc import plot_llc

    return plot_llc(run, run.llc, path, title=title)


def figure_doshi(run, path: Path, title: str) -> Path:
    """[D]: the five accuracies over time, the per-neuron IPR histogram, the mean IPR."""
    import matplotlib.pyplot as plt

    from grok.plots.base import figure_title, plot_metric, save_figure
    from grok.plots.run import plot_ipr, plot_ipr_histogram

    h = run.history
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    curves = (
        ("train_acc", "train (noisy labels)", "black", "-"),
        ("train_acc_clean", "clean train", "tab:green", "--"),
        ("train_acc_corrupted", "corrupted, noisy labels", "tab:red", "-"),
        ("corrupted_true_acc", "corrupted, true labels", "tab:purple", ":"),
        ("test_acc", "test", "tab:blue", "-"),
    )
    for name, label, color, style in curves:
        plot_metric(axes[0], h["step"], h[name], label=label, color=color, style=style)
    axes[0].set(ylabel="accuracy", ylim=(-0.02, 1.02))
    axes[0].legend(fontsize=8)
    plot_ipr_histogram(axes[1], run)
    plot_ipr(axes[2], run)
    for ax in axes:
        ax.grid(alpha=0.3)
    figure_title(fig, title)
    fig.tight_layout()
    return save_figure(fig, path)


def figure_fig3a(run, path: Path, title: str) -> Path:
    """[K] Fig. 3a: loss curves, NTK alignment and grokking delay per α."""
    import matplotlib.pyplot as plt

    from grok.plots.base import figure_title, save_figure

    h = run.history
    steps = np.maximum(h["step"], 1)
    alphas = np.asarray([run.member_config(i).model.alpha for i in range(run.n_members)])
    order = np.argsort(alphas, kind="stable")
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(order)))
    fit, grokked = loss_crossings(h["step"], h["train_loss"], h["test_loss"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for c, i in zip(colors, order, strict=True):
        axes[0].plot(steps, h["train_loss"][i] / h["train_loss"][i, 0], "--", color=c, lw=1)
        axes[0].plot(steps, h["test_loss"][i] / h["test_loss"][i, 0], color=c, label=f"α = {alphas[i]:g}")
        if "ntk_alignment" in h:
            ok = np.isfinite(h["ntk_alignment"][i])
            axes[1].plot(steps[ok], h["ntk_alignment"][i, ok], color=c, label=f"α = {alphas[i]:g}")
    axes[0].axhline(0.1, color="gray", ls=":", lw=0.8)
    axes[0].set(xscale="log", yscale="log", xlabel="step", ylabel="loss / initial loss")
    axes[0].set_title("train (dashed) and test (solid) loss", fontsize=9)
    axes[0].legend(fontsize=7, ncol=2)
    axes[1].set(xscale="log", xlabel="step", ylabel="centered kernel-target alignment")
    axes[1].set_title("NTK alignment", fontsize=9)
    delay = grokked - fit
    ok = np.isfinite(delay)
    axes[2].plot(alphas[ok], np.maximum(delay[ok], 1), "o-", color="tab:blue", label="grokking delay")
    never = ~ok & np.isfinite(fit)
    if never.any():
        top = h["step"][-1]
        axes[2].plot(alphas[never], np.full(never.sum(), top), "v", color="tab:red", label="test never < 10%")
    axes[2].set(xscale="log", yscale="log", xlabel="output scale α", ylabel="steps (test − train < 10%)")
    axes[2].set_title("grokking delay", fontsize=9)
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    figure_title(fig, title)
    fig.tight_layout()
    return save_figure(fig, path)
