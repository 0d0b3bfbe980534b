"""The local learning coefficient's figures (`grok.llc`, docs/formulas.md §8): λ̂ over the log step
axis under the run's accuracy, the chains' traces, and λ̂ against the step size (`grok.llc_calibrate`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from grok.plots.base import _steps_for_log, figure_title, plot_metric, save_figure


def plot_llc_panel(ax, result, *, logx: bool = True):
    """λ̂ of each member (thin: mean ± std over its chains) and over members (thick: mean, min–max band)."""
    x = _steps_for_log(result.steps) if logx else result.steps
    members = result.mean.shape[0]
    if members > 1:
        for m in range(members):
            ax.errorbar(x, result.mean[m], yerr=result.std[m], color="tab:purple", alpha=0.35, lw=0.8, capsize=2)
    else:
        ax.fill_between(
            x, result.mean[0] - result.std[0], result.mean[0] + result.std[0], color="tab:purple", alpha=0.2
        )
    plot_metric(ax, result.steps, result.mean, label="λ̂ (LLC)", color="tab:purple", marker="o", logx=logx)
    ax.set_ylabel("λ̂")
    ax.grid(alpha=0.3)
    return ax


def plot_llc(run, result, path: str | Path, title: str = "") -> Path:
    """Two panels over the log step axis: train/test accuracy (or loss, for regression) above, λ̂ below. Writes a PNG."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 6.0), sharex=True)
    steps = run.history["step"]
    acc = run.history.get("test_acc")
    if acc is not None and np.isfinite(acc).any():
        plot_metric(top, steps, run.history["train_acc"], label="train", color="tab:blue")
        plot_metric(top, steps, acc, label="test", color="tab:orange")
        top.set_ylabel("accuracy")
    else:
        plot_metric(top, steps, run.history["train_loss"], label="train", color="tab:blue")
        plot_metric(top, steps, run.history["test_loss"], label="test", color="tab:orange")
        top.set_yscale("log")
        top.set_ylabel("loss")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    top.set_xlabel("")
    plot_llc_panel(bottom, result)
    figure_title(fig, title or f"local learning coefficient, {result.per_chain.shape[-1]} chains per point", 12)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_chain_traces(result, path: str | Path, *, member: int = 0, step_index: int = -1) -> Path:
    """nβ (L_B(w_t) − L(w*)) of every chain against the draw (flagged chains dashed, burn-in shaded),
    with the estimate λ̂ as a horizontal line. Writes a PNG."""
    traces = result.traces[member, step_index]
    values = result.nbeta * (traces - result.init_loss[member, step_index])
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    burnin = int(result.settings.get("burnin", 0))
    ax.axvspan(0, burnin, color="0.9", label="burn-in")
    for c, row in enumerate(values):
        bad = bool(result.flagged[member, step_index, c])
        ax.plot(row, "--" if bad else "-", lw=0.7, alpha=0.8, label="flagged" if bad else None)
    ax.axhline(result.mean[member, step_index], color="k", lw=1.5, label=f"λ̂ = {result.mean[member, step_index]:.3g}")
    ax.set_xlabel("draw")
    ax.set_ylabel("nβ (L_B(w_t) − L(w*))")
    ax.set_title(
        f"member {member}, step {int(result.steps[step_index])}: ε = {result.step_size[member, step_index]:.3g}, "
        f"nβ = {result.nbeta:.3g}",
        fontsize=10,
    )
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_calibration(cal, *, member: int = 0, step_index: int = -1, ax=None):
    """λ̂ (± std over chains) against ε, one line per nβ, filled markers where the auto rule accepts ε;
    the MALA acceptance on a second axis with the threshold, the chosen ε dotted. Returns the Axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.0))
    right = ax.twinx()
    for b, nb in enumerate(cal.nbetas):
        mean, std = cal.mean[member, step_index, b], cal.std[member, step_index, b]
        ok = cal.usable[member, step_index, b]
        (line,) = ax.plot(cal.step_sizes, mean, "-", label=f"λ̂, nβ = {nb:.3g}")
        ax.fill_between(cal.step_sizes, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        ax.plot(cal.step_sizes[ok], mean[ok], "o", color=line.get_color(), ms=5)
        ax.plot(cal.step_sizes[~ok], mean[~ok], "o", mfc="none", color=line.get_color(), ms=5)
        right.plot(cal.step_sizes, cal.acceptance[member, step_index, b], ":", color=line.get_color(), lw=1)
        chosen = cal.chosen[member, step_index, b]
        if np.isfinite(chosen):
            ax.axvline(chosen, color=line.get_color(), ls="--", lw=0.8)
    right.axhline(cal.settings["accept_min"], color="0.5", lw=0.8)
    right.set_ylim(0, 1.05)
    right.set_ylabel("MALA acceptance (dotted)")
    ax.set_xscale("log")
    ax.set_xlabel("step size ε")
    ax.set_ylabel("λ̂")
    ax.set_title(f"step {int(cal.steps[step_index])}: filled = usable ε, dashed = chosen", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return ax


def save_calibration(cal, path: str | Path, *, member: int = 0, step_index: int = -1) -> Path:
    """`plot_calibration` as a PNG."""
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    plot_calibration(cal, member=member, step_index=step_index, ax=ax)
    fig.tight_layout()
    return save_figure(fig, path)
