"""A run's history over time (docs/formulas.md §5, docs/architecture.md): accuracy, loss, one drawing function per probe
family, and `plot_run`, the multi-panel figure of `grok plot`.

Every `plot_*` function draws on a given matplotlib Axes and returns it. `members` picks
which members to draw (None: all; an int or a list of ints). Members that differ only by
seed are drawn as one mean line with a min–max band; members that differ in anything else
(a weight-decay sweep, say) get one line each, labelled by their overrides. A metric a run
does not have (its probe family was off) leaves the panel with a short note instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from grok.plots.base import figure_title, panel_grid, plot_metric, save_figure

COLLAPSE_METRICS = ("sc_fraction", "zero_terms", "nlm_cosine")
NTK_METRICS = ("ntk_alignment", "kernel_distance", "param_distance")
PROGRESS_METRICS = ("restricted_loss", "excluded_loss")
# What the built-in panels of `plot_run` draw (and `weight_norm/<layer>`); every other metric that
# is a number per member and interval (a probe registered outside grok, say) gets a panel of its own.
PANEL_METRICS = frozenset(
    {"train_acc", "test_acc", "train_loss", "test_loss", "theory_test_loss", "kernel_test_mse"}
    | {*COLLAPSE_METRICS, *NTK_METRICS, *PROGRESS_METRICS, "ipr_hist", "ipr_mean", "weight_norm", "logit_norm"}
)
NOT_METRICS = ("step", "diverged")
LAYER_STYLES = ("--", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (6, 2)), (0, (1, 2)), (0, (3, 1, 1, 1)))


# --------------------------------------------------------------------------- helpers
def _member_list(run, members) -> list[int]:
    n = len(run.members)
    if members is None:
        return list(range(n))
    picked = [members] if isinstance(members, (int, np.integer)) else list(members)
    for i in picked:
        if not 0 <= int(i) < n:
            raise IndexError(f"member {i} out of range: the run has {n} members (0..{n - 1})")
    return [int(i) for i in picked]


def _member_label(run, i: int) -> str:
    over = run.members[i]
    return ", ".join(f"{k.rpartition('.')[2]}={v}" for k, v in over.items()) or f"member {i}"


def _groups(run, members) -> list[tuple[str, list[int]]]:
    """(label, member indices) per line: seeds-only members share one line (mean and band)."""
    picked = _member_list(run, members)
    if len(picked) > 1 and all(set(run.members[i]) <= {"seed"} for i in picked):
        return [("", picked)]
    return [(_member_label(run, i) if len(picked) > 1 else "", [i]) for i in picked]


def _draw(ax, run, name: str, members, *, label: str = "", style="-", color=None, logx: bool = True):
    """One metric over time for the chosen members, through `plot_metric`.

    One line per member group (mean with a min–max band for seed groups). Intervals where a
    metric is NaN (a probe with a coarser interval) are skipped and the measured points get
    small markers. With several groups the colour is the member's and `style` the metric's;
    `_legend` then lists each once.
    """
    steps = np.asarray(run.history["step"])
    values = np.asarray(run.history[name], dtype=float)
    groups = _groups(run, members)
    colors = _colors()
    for g, (_, idx) in enumerate(groups):
        v = values[idx]
        keep = np.isfinite(v).any(axis=0)
        if not keep.any():
            continue
        marker = "." if keep.sum() < len(steps) else None
        c = colors[g % len(colors)] if len(groups) > 1 else color
        plot_metric(ax, steps[keep], v[:, keep], label=label or None, color=c, style=style, logx=logx, marker=marker)
        if g == 0:
            line = ax.get_lines()[-1]
            _registry(ax).append((label, style, line.get_color() if len(groups) == 1 else "black"))
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("step")
    return ax


def _registry(ax) -> list:
    """The (label, style, colour) of each metric drawn on `ax`, for `_legend`."""
    if not hasattr(ax, "_grok_metrics"):
        ax._grok_metrics = []
    return ax._grok_metrics


def _colors() -> list:
    import matplotlib.pyplot as plt

    return plt.rcParams["axes.prop_cycle"].by_key()["color"]


def _missing(ax, what: str):
    ax.text(0.5, 0.5, f"no {what} in this run", ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def _finish(ax, run, members, ylabel: str, *, yscale: str | None = None, ylim: tuple[float, float] | None = None):
    """A panel's y axis (label, log scale or limits) and legend; returns `ax`."""
    if yscale is not None:
        ax.set_yscale(yscale)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    _legend(ax, run, members)
    return ax


def _legend(ax, run, members, *others) -> None:
    """One entry per metric (its line style) and, with several member groups, one per member (its colour)."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], linestyle=style, color=color, label=label)
        for a in (ax, *others)
        for label, style, color in _registry(a)
        if label
    ]
    groups = _groups(run, members)
    if len(groups) > 1:
        colors = _colors()
        handles += [
            Line2D([], [], color=colors[g % len(colors)], lw=4, label=label) for g, (label, _) in enumerate(groups)
        ]
    if handles:
        ax.legend(handles=handles, fontsize=7)


def nearest_steps(run, steps: Sequence[int] | None, n_default: int = 4) -> list[int]:
    """Indices of the logged intervals nearest to `steps` (default: step 0 and log-spaced steps to the end)."""
    logged = np.asarray(run.history["step"])
    if steps is None:
        if len(logged) <= n_default:
            return list(range(len(logged)))
        targets = np.r_[0, np.geomspace(max(logged[1], 1), logged[-1], n_default - 1)]
    else:
        targets = np.asarray(list(steps), dtype=float)
        bad = [s for s in targets if not logged[0] <= s <= logged[-1]]
        if bad:
            raise ValueError(f"steps {bad} outside the logged range {logged[0]}..{logged[-1]}")
    idx = [int(np.argmin(np.abs(logged - t))) for t in targets]
    return sorted(set(idx))


# --------------------------------------------------------------------------- one per family
def plot_accuracy(ax, run, *, members=None, label: str = "", color=None, logx: bool = True):
    """Train (dashed, against the noisy labels) and test (solid) accuracy.

    `label` prefixes the two legend entries and `color` colours both lines (several runs on one
    Axes, as in `grok demo`).
    """
    prefix = f"{label} " if label else ""
    _draw(ax, run, "train_acc", members, label=prefix + "train", style="--", color=color, logx=logx)
    _draw(ax, run, "test_acc", members, label=prefix + "test", color=color, logx=logx)
    return _finish(ax, run, members, "accuracy", ylim=(-0.02, 1.02))


def plot_loss(ax, run, *, members=None, logx: bool = True):
    """Train (dashed) and test (solid) loss, log y; the [K] theory and kernel-regression losses when probed."""
    _draw(ax, run, "train_loss", members, label="train", style="--", logx=logx)
    _draw(ax, run, "test_loss", members, label="test", logx=logx)
    if "theory_test_loss" in run.history:
        _draw(ax, run, "theory_test_loss", members, label="theory test", style=":", logx=logx)
    if "kernel_test_mse" in run.history:
        _draw(ax, run, "kernel_test_mse", members, label="kernel regr. K₀", style="-.", color="gray", logx=logx)
    return _finish(ax, run, members, "loss", yscale="log")


def plot_collapse(ax, run, *, members=None, logx: bool = True):
    """Softmax Collapse [P]: SC fraction, zero loss terms and the NLM cosine over time (all in [−1, 1])."""
    present = [m for m in COLLAPSE_METRICS if m in run.history]
    if not present:
        return _missing(ax, "collapse probe")
    styles = {"sc_fraction": "-", "zero_terms": ":", "nlm_cosine": "--"}
    labels = {"sc_fraction": "SC fraction", "zero_terms": "zero terms", "nlm_cosine": "NLM cosine"}
    for name in present:
        _draw(ax, run, name, members, label=labels[name], style=styles[name], logx=logx)
    ax.set_title("softmax collapse and NLM [P]", fontsize=9)
    return _finish(ax, run, members, "fraction / cosine", ylim=(-0.05, 1.05))


def plot_weight_norms(ax, run, *, members=None, logx: bool = True):
    """Weight norm per layer (`weight_norm/<layer>`, from the collapse probe), the total, and the logit norm."""
    _draw(ax, run, "weight_norm", members, label="total", logx=logx)
    layers = sorted(k for k in run.history if k.startswith("weight_norm/"))
    for name, style in zip(layers, itertools.cycle(LAYER_STYLES), strict=False):
        _draw(ax, run, name, members, label=name.partition("/")[2], style=style, logx=logx)
    if "logit_norm" in run.history:
        _draw(ax, run, "logit_norm", members, label="logit norm", style=":", color="black", logx=logx)
    return _finish(ax, run, members, "norm", yscale="log")


def plot_ntk(ax, run, *, members=None, logx: bool = True):
    """NTK [K]: kernel-target alignment and kernel distance (left axis), parameter distance (right axis)."""
    if not any(m in run.history for m in NTK_METRICS):
        return _missing(ax, "ntk probe")
    _draw(ax, run, "ntk_alignment", members, label="alignment", logx=logx)
    _draw(ax, run, "kernel_distance", members, label="kernel distance", style="--", logx=logx)
    ax.set_ylabel("alignment / kernel distance")
    ax.set_ylim(-0.05, 1.05)
    right = ax.twinx()
    _draw(right, run, "param_distance", members, label="param distance", style=":", color="gray", logx=logx)
    right.set_ylabel("‖θ − θ₀‖ / ‖θ₀‖")
    _legend(ax, run, members, right)
    ax.set_title("NTK [K]", fontsize=9)
    return ax


def plot_ipr(ax, run, *, members=None, logx: bool = True):
    """Mean per-neuron Fourier IPR over time [D]."""
    if "ipr_mean" not in run.history:
        return _missing(ax, "neurons probe")
    _draw(ax, run, "ipr_mean", members, label="mean IPR", logx=logx)
    return _finish(ax, run, members, "mean IPR", ylim=(0, 1.02))


def plot_ipr_histogram(ax, run, *, steps: Sequence[int] | None = None, member: int = 0):
    """Per-neuron IPR histogram of one member at chosen steps (nearest logged ones) [D]."""
    if "ipr_hist" not in run.history:
        return _missing(ax, "neurons probe")
    (member,) = _member_list(run, member)
    hist = np.asarray(run.history["ipr_hist"][member], dtype=float)  # [T, bins]
    bins = hist.shape[-1]
    edges = np.linspace(0.0, 1.0, bins + 1)
    centers = (edges[:-1] + edges[1:]) / 2
    for i in nearest_steps(run, steps):
        ax.step(centers, hist[i], where="mid", label=f"step {int(run.history['step'][i])}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("IPR")
    ax.set_ylabel("neurons")
    ax.set_title(f"IPR histogram [D] ({_member_label(run, member)})", fontsize=9)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return ax


def extra_metrics(run, members=None) -> list[str]:
    """History metrics no built-in panel draws, sorted: scalars per interval (`[members, intervals]`,
    not `step` or `diverged`) with a finite value among `members`, e.g. a user-registered probe's."""
    h = run.history
    picked = _member_list(run, members)
    shape = (len(run.members), len(h["step"]))
    names = []
    for name in sorted(h):
        if name in PANEL_METRICS or name in NOT_METRICS or name.startswith("weight_norm/"):
            continue
        values = np.asarray(h[name])
        if values.shape == shape and values.dtype.kind in "biuf" and np.isfinite(values[picked].astype(float)).any():
            names.append(name)
    return names


def plot_extra_metric(ax, run, name: str, *, members=None, logx: bool = True):
    """A metric no built-in panel draws (see `extra_metrics`), titled with its name."""
    _draw(ax, run, name, members, logx=logx)
    ax.set_title(name, fontsize=9)
    return _finish(ax, run, members, "")


def progress_phase_starts(run) -> dict[str, np.ndarray]:
    """[N]'s phase starts per member (`grok.phases.progress_phases`, docs/formulas.md §6.5)."""
    from grok.phases import progress_phases

    h = run.history
    return progress_phases(h["step"], h["train_acc"], h["test_loss"], h["test_acc"])


def shade_progress_phases(ax, run, *, member: int = 0):
    """Shade circuit formation (orange) and cleanup (green) of one member; memorization is unshaded."""
    ph = {k: float(v[member]) for k, v in progress_phase_starts(run).items()}
    end = float(run.history["step"][-1])
    spans = [
        ("circuit_formation", ph["cleanup"], "tab:orange"),
        ("cleanup", ph["generalized"] if ph["generalized"] >= ph["cleanup"] else end, "tab:green"),
    ]
    for name, stop, color in spans:
        start = ph[name]
        if np.isfinite(start):
            ax.axvspan(max(start, 1.0), stop if np.isfinite(stop) else end, color=color, alpha=0.08, lw=0)
    return ax


def plot_progress(ax, run, *, members=None, logx: bool = True):
    """[N]'s progress measures: test loss (solid), restricted (dashed) and excluded (dotted) loss, log y."""
    _draw(ax, run, "test_loss", members, label="test", logx=logx)
    _draw(ax, run, "restricted_loss", members, label="restricted", style="--", logx=logx)
    _draw(ax, run, "excluded_loss", members, label="excluded", style=":", logx=logx)
    ax.set_title("progress measures [N]", fontsize=9)
    return _finish(ax, run, members, "loss", yscale="log")


def plot_key_spectrum(ax, run, *, member: int = 0):
    """The embedding's norm per frequency over time (one row per frequency 1..K), key frequencies marked."""
    h = run.history
    spec = np.asarray(h["fourier_embed"][member], dtype=float)[:, 1:].T  # [K, intervals]
    steps = np.asarray(h["step"])
    ax.imshow(spec, aspect="auto", origin="lower", cmap="Blues", extent=(0, len(steps), 0.5, spec.shape[0] + 0.5))
    keys = np.flatnonzero(np.asarray(h["key_freq"][member, -1])[1:]) + 1
    ticks = np.linspace(0, len(steps) - 1, 5).astype(int)
    ax.set_xticks(ticks + 0.5, [str(int(steps[t])) for t in ticks])
    ax.set_yticks(keys)
    ax.set_ylabel("frequency k")
    ax.set_title(f"embedding norm per frequency ({_member_label(run, member)}); final keys {keys.tolist()}", fontsize=9)
    return ax


# --------------------------------------------------------------------------- the run figure
def plot_run(run, path: str | Path, steps: Sequence[int] | None = None, members=None, title: str = "") -> Path:
    """A multi-panel PNG of a run: accuracy, loss, SC/NLM, NTK, IPR histogram, mean IPR, [N]'s progress
    measures and key-frequency spectrum (then every line panel shades [N]'s phases of the first member), weight norms,
    then one panel per other scalar metric of the history (`extra_metrics`: probes registered
    outside grok, the split accuracies of corrupted-label runs).

    Panels whose probes the run lacks are left out (accuracy too, for regression). `steps`
    chooses the IPR-histogram steps (nearest logged); `members` the members drawn (the
    histogram shows the first of them). Returns the path written.
    """
    h = run.history
    picked = _member_list(run, members)
    panels = []
    if np.isfinite(np.asarray(h["test_acc"], dtype=float)).any():
        panels.append(lambda ax: plot_accuracy(ax, run, members=picked))
    panels.append(lambda ax: plot_loss(ax, run, members=picked))
    if any(m in h for m in COLLAPSE_METRICS):
        panels.append(lambda ax: plot_collapse(ax, run, members=picked))
    if any(m in h for m in NTK_METRICS):
        panels.append(lambda ax: plot_ntk(ax, run, members=picked))
    if "ipr_hist" in h:
        panels.append(lambda ax: plot_ipr_histogram(ax, run, steps=steps, member=picked[0]))
        panels.append(lambda ax: plot_ipr(ax, run, members=picked))
    progress = "restricted_loss" in h
    if progress:
        panels.append(lambda ax: plot_progress(ax, run, members=picked))
        panels.append(lambda ax: plot_key_spectrum(ax, run, member=picked[0]))
    panels.append(lambda ax: plot_weight_norms(ax, run, members=picked))
    for name in extra_metrics(run, picked):
        panels.append(lambda ax, name=name: plot_extra_metric(ax, run, name, members=picked))
    fig, axes = panel_grid(len(panels))
    for draw, ax in zip(panels, axes, strict=True):
        draw(ax)
        ax.grid(alpha=0.3)
        if progress and not ax.images:
            shade_progress_phases(ax, run, member=picked[0])
    figure_title(fig, title or run.config.description or "run")
    fig.tight_layout()
    return save_figure(fig, path)
