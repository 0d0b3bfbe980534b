"""The spectral lens (docs/formulas.md §5.6): one layer's ESD with its power-law fit, and the
per-layer HTSR α, stable rank and effective rank of a history over steps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from grok.plots.base import plot_metric
from probes import spectral


def plot_esd_fit(ax, evals, *, label: str = "", color=None, ks: str = "weightwatcher", bins: int = 40):
    """The ESD λ = σ² of one layer as a log-log density histogram (the eigenvalues above 1e-5), its
    fitted power law p(λ) ∝ λ^(−α) for λ ≥ x_min (dashed, scaled to the tail's share), and x_min
    (dotted); with no eigenvalue above 1e-5, a note instead. Returns the fit
    (`probes.spectral.PowerLawFit`). `ks` is the rule choosing x_min; the default is the
    `spectral` probe's (`train.spectral_ks`), so the figure draws the probe's fit."""
    lam = np.sort(np.asarray(evals, np.float64).ravel())
    fit = spectral.powerlaw_fit(lam, ks=ks)  # it leaves out the eigenvalues at or below 1e-5 itself
    lam = lam[lam > spectral.EVAL_THRESHOLD]
    if lam.size == 0:  # nothing to draw (a zero matrix): the fit says why (status 1)
        note = f"{label} no eigenvalue above {spectral.EVAL_THRESHOLD:g}"
        ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center")
        return fit
    edges = np.logspace(np.log10(lam[0]), np.log10(lam[-1]), bins + 1)
    density, _ = np.histogram(lam, bins=edges, density=True)
    centres = np.sqrt(edges[:-1] * edges[1:])
    alpha, xmin, n_tail = float(fit.alpha), float(fit.xmin), int(fit.n_tail)
    text = f"{label} α={alpha:.2f}" if np.isfinite(alpha) else f"{label} α undefined"
    (line,) = ax.plot(centres[density > 0], density[density > 0], "o-", ms=3, lw=1, color=color, label=text)
    if np.isfinite(alpha):
        x = np.logspace(np.log10(xmin), np.log10(lam[-1]), 50)
        share = n_tail / lam.size
        ax.plot(x, share * (alpha - 1) / xmin * (x / xmin) ** (-alpha), "--", color=line.get_color(), lw=1.5)
        ax.axvline(xmin, color=line.get_color(), ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("eigenvalue λ of WᵀW")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return fit


def layer_names(history: Mapping[str, np.ndarray]) -> list[str]:
    """The layers a history has `alpha/<layer>` metrics for, in order."""
    return sorted(k.split("/", 1)[1] for k in history if k.startswith("alpha/"))


def plot_spectral_history(
    axes: Sequence, history: Mapping[str, np.ndarray], layers: Sequence[str] | None = None, *, logx: bool = True
):
    """Three panels over steps, one line per layer: HTSR α (with the α = 2 line of [MM]'s very heavy
    tail), stable rank and effective rank. `history` is a run's history or `grok.probe_history`'s."""
    layers = layer_names(history) if layers is None else list(layers)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for metric, ax in zip(("alpha", "stable_rank", "effective_rank"), axes, strict=True):
        for i, layer in enumerate(layers):
            values = history[f"{metric}/{layer}"]
            if np.isnan(values).all():  # α of a layer too small to fit (alpha_status 1)
                continue
            plot_metric(ax, history["step"], values, label=layer, color=colors[i % 10], logx=logx)
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_xlabel("step")
        if logx:
            ax.set_xscale("log")
    axes[0].axhline(2.0, color="k", lw=0.8, ls=":")
    axes[0].legend(fontsize=7)
    return axes
