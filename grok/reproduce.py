"""`grok reproduce NAME`: run a paper-size preset and write its figure, the paper's claim in the title.

Each reproduction is a preset of `grok.presets` at the paper's size, the probes its claim needs,
its members (seeds; for [K] Fig. 3a, the sweep over the output scale α), a figure and a check::

    grok reproduce prieto-perpgrad                       # [P] Fig. 1a, a few minutes on a CPU
    grok reproduce doshi-full-inversion --out runs/fi    # [D] Fig. 2
    grok reproduce kumar-fig3a --steps 2000              # a shortened run, to check the set-up

It trains one compiled group, saves it as a run directory (`grok plot`, `grok prune` read it),
writes `figure.png` whose title states the paper's claim and whether this run shows it, and
`reproduce.json` with the check's numbers. The exit status is 0 when the check passes and 1 when
the run finished without showing the effect (expected with a much shortened `--steps`). The
paper's sizes are meant for a GPU: the 80 000-step [P] runs and the [K] runs take hours on a CPU.

From Python: `reproduce(name, out)` returns a `Result`; the command is grok/cli/reproduce.py.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grok.errors import ConfigError
from grok.phases import loss_crossings
from grok.plots.reproduce import figure_doshi, figure_fig3a, figure_llc, figure_run

FIG3A_ALPHAS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0, 4.0, 8.0, 16.0)
LOG_POINTS = 100  # evaluation steps of a reproduction of a linear preset, log-spaced (every probe at each)


@dataclasses.dataclass(frozen=True)
class Reproduction:
    """A paper claim and how to check it on a preset."""

    preset: str
    paper: str  # where the claim is made
    claim: str  # the figure's title
    probes: tuple[str, ...]
    check: Callable[[Any], tuple[bool, str]]  # run → (shown, the numbers behind it)
    figure: Callable[[Any, Path, str], Path]  # (run, path, title) → path
    sweep: Mapping[str, Sequence[float]] = dataclasses.field(default_factory=dict)  # dynamic field → values
    details: Callable[[Any], dict[str, Any]] | None = None  # run → per-member numbers for reproduce.json
    llc: Mapping[str, Any] | None = None  # `grok.llc` settings: λ̂ over the snapshots, as `run.llc`, before the check


@dataclasses.dataclass
class Result:
    """What `reproduce` returns."""

    name: str
    run: Any
    out: Path
    figure: Path
    title: str
    shown: bool
    message: str


# --------------------------------------------------------------------------- checks
def _first(steps: np.ndarray, hit: np.ndarray) -> float:
    """First logged step where `hit` (over intervals) is true; NaN if never."""
    idx = np.flatnonzero(hit)
    return float(steps[idx[0]]) if idx.size else math.nan


def _fmt_step(s: float) -> str:
    return "never" if not np.isfinite(s) else f"step {s:.0f}"


def _check_generalizes(run) -> tuple[bool, str]:
    """[P] ⊥AdamW / StableMax: every member generalizes (test ≥ 90%) and SC stays at 0."""
    h = run.history
    test = run.final("test_acc")
    reach = max(_first(h["step"], h["test_acc"][i] >= 0.9) for i in range(run.n_members))
    sc = float(np.max(h["sc_fraction"]))
    shown = bool(np.all(test >= 0.9)) and sc == 0.0
    return shown, f"final test accuracy {_span(test)} (≥ 90% from {_fmt_step(reach)}), max SC {sc:.2f}"


def _check_collapse(run) -> tuple[bool, str]:
    """[P] softmax CE in float32: memorizes, SC rises, and the test accuracy stays low."""
    h = run.history
    train, test = run.final("train_acc"), run.final("test_acc")
    sc = np.max(h["sc_fraction"], axis=1)
    shown = bool(np.all(train >= 0.99) and np.all(test < 0.5) and np.all(sc > 0))
    return shown, f"final train accuracy {_span(train)}, test {_span(test)}, max SC {_span(sc)}"


def _check_phase(expected: str) -> Callable[[Any], tuple[bool, str]]:
    """[D] the run ends in the expected phase (docs/formulas.md §6)."""

    def check(run) -> tuple[bool, str]:
        from grok.phases import classify_phase

        h = run.history
        xi = np.asarray([run.member_config(i).task.corrupt_fraction for i in range(run.n_members)])
        phases = classify_phase(run.final("train_acc"), run.final("test_acc"), np.max(h["test_acc"], axis=1), xi)
        shown = bool(np.all(phases == expected))
        return shown, (
            f"phase {', '.join(sorted(set(map(str, phases))))} (expected {expected}); final train accuracy "
            f"{_span(run.final('train_acc'))}, test {_span(run.final('test_acc'))}, corrupted examples "
            f"predicted as their true label {_span(run.final('corrupted_true_acc'))}"
        )

    return check


def _delays(run) -> tuple[np.ndarray, np.ndarray]:
    """Per member: (step the train loss falls below 10% of its initial value, same for the test loss)."""
    h = run.history
    return loss_crossings(h["step"], h["train_loss"], h["test_loss"])


def _check_fig1(run) -> tuple[bool, str]:
    """[K] Fig. 1: the test loss reaches 10% of its initial value at least twice as late as the train loss."""
    fit, grokked = _delays(run)
    shown = bool(np.all(np.isfinite(fit) & np.isfinite(grokked) & (grokked >= 2 * fit)))
    return shown, f"train loss < 10% of initial at {_fmt_step(fit[0])}, test loss at {_fmt_step(grokked[0])}"


def _check_fig3a(run) -> tuple[bool, str]:
    """[K] Fig. 3a: the grokking delay at the smallest α < at α = 1 < at the largest α (never = longest)."""
    alphas = np.asarray([run.member_config(i).model.alpha for i in range(run.n_members)])
    fit, grokked = _delays(run)
    delay = np.where(np.isfinite(fit) & np.isfinite(grokked), grokked - fit, np.inf)
    lo, hi = alphas.min(), alphas.max()
    d = {a: float(np.max(delay[alphas == a])) for a in (lo, 1.0, hi) if np.any(alphas == a)}
    shown = len(d) == 3 and d[lo] < d[1.0] < d[hi]
    text = ", ".join(f"α={a:g}: {'never' if not np.isfinite(v) else f'{v:.0f} steps'}" for a, v in d.items())
    return shown, "grokking delay " + text


def progress_details(run) -> dict[str, Any]:
    """[N] per member: phase starts (docs/formulas.md §6.5), steps to 100% train and test loss < 1e-2, final keys."""
    from grok.phases import progress_phases

    h = run.history
    phases = progress_phases(h["step"], h["train_acc"], h["test_loss"], h["test_acc"])
    out: dict[str, Any] = {name: [None if np.isnan(v) else int(v) for v in values] for name, values in phases.items()}
    steps = np.asarray(h["step"])
    out["train_100"] = [_int(_first(steps, h["train_acc"][i] >= 1.0)) for i in range(run.n_members)]
    out["test_loss_1e-2"] = [_int(_first(steps, h["test_loss"][i] < 1e-2)) for i in range(run.n_members)]
    out["key_frequencies"] = [np.flatnonzero(h["key_freq"][i, -1]).tolist() for i in range(run.n_members)]
    return out


def _int(v: float) -> int | None:
    return None if not np.isfinite(v) else int(v)


def _check_progress(run) -> tuple[bool, str]:
    """[N]: every member memorizes, then forms a circuit (key frequencies, excluded loss above chance while the
    test accuracy is < 90%), then cleans up to ≥ 99% test accuracy, in that order."""
    h = run.history
    d = progress_details(run)
    chance = math.log(run.config.spec.n_classes)
    ok = []
    for i in range(run.n_members):
        circuit, cleanup, done = d["circuit_formation"][i], d["cleanup"][i], d["generalized"][i]
        ordered = None not in (circuit, cleanup, done) and circuit < cleanup <= done
        excluded_up = bool(np.any((h["excluded_loss"][i] > chance) & (h["test_acc"][i] < 0.9)))
        ok.append(ordered and excluded_up and len(d["key_frequencies"][i]) > 0)
    starts = "; ".join(
        f"seed {run.members[i].get('seed', i)}: circuit {d['circuit_formation'][i]}, cleanup {d['cleanup'][i]}, "
        f"≥99% test {d['generalized'][i]}, keys {d['key_frequencies'][i]}"
        for i in range(run.n_members)
    )
    return all(ok), "phase starts (steps) " + starts


def llc_rise_and_fall(run) -> tuple[bool, str]:
    """LLC over grokking (devinterp's grokking example): λ̂ (mean over members and chains, `run.llc`)
    peaks at or after the first snapshot with train accuracy ≥ 99% and before the first with test
    accuracy ≥ 90%, at more than 5× its first value, and ends below 20% of its peak."""
    res = run.llc
    steps = np.asarray(res.steps)
    logged = np.asarray(run.history["step"])
    at = np.clip(np.searchsorted(logged, steps), 0, logged.size - 1)
    train = np.asarray(run.history["train_acc"])[:, at].mean(0)
    test = np.asarray(run.history["test_acc"])[:, at].mean(0)
    with warnings.catch_warnings():  # a snapshot where no chain is usable stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        lam = np.nanmean(res.mean, axis=0)
    if not np.isfinite(lam).any():
        return False, "no usable chain at any snapshot"
    peak = int(np.nanargmax(lam))
    memorized = _first(steps, train >= 0.99)
    generalized = _first(steps, test >= 0.9)
    shown = bool(
        memorized <= steps[peak] < generalized and lam[peak] > 5 * lam[0] and lam[-1] < 0.2 * lam[peak]
    )  # NaN (never) fails every comparison
    return shown, (
        f"λ̂ {lam[0]:.1f} at step {steps[0]}, peak {lam[peak]:.1f} at step {steps[peak]}, {lam[-1]:.1f} at step "
        f"{steps[-1]}; train ≥ 99% at {_fmt_step(memorized)}, test ≥ 90% at {_fmt_step(generalized)}"
    )


def llc_details(run) -> dict[str, Any]:
    """Per member: λ̂ (mean over its usable chains; None where none) at each snapshot step."""
    res = run.llc
    per = [[None if not np.isfinite(v) else round(float(v), 3) for v in row] for row in res.mean]
    return {"llc_steps": [int(s) for s in res.steps], "llc": per}


_PM = "[PM] Prakash & Martin 2025, Fig. 1"


def _fit_then_test(run) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per member: the first step with training accuracy ≥ 99%, the test accuracy there, and the first
    step with test accuracy ≥ 90% (NaN when never)."""
    h = run.history
    steps = np.asarray(h["step"])
    fit, at_fit, gen = [], [], []
    for i in range(run.n_members):
        hit = np.flatnonzero(h["train_acc"][i] >= 0.99)
        fit.append(float(steps[hit[0]]) if hit.size else math.nan)
        at_fit.append(float(h["test_acc"][i][hit[0]]) if hit.size else math.nan)
        gen.append(_first(steps, h["test_acc"][i] >= 0.9))
    return np.asarray(fit), np.asarray(at_fit), np.asarray(gen)


def _fit_message(fit, at_fit, gen) -> str:
    return (
        f"train ≥ 99% at {_fmt_step(fit[0])} with test {at_fit[0]:.2f}; test ≥ 90% at {_fmt_step(gen[0])}"
        if np.isfinite(at_fit[0])
        else f"train never ≥ 99%; test ≥ 90% at {_fmt_step(gen[0])}"
    )


def _check_omnigrok_delay(run) -> tuple[bool, str]:
    """[O] large init: the training set is fitted (≥ 99%) while test accuracy is < 50%; test reaches 90% later."""
    fit, at_fit, gen = _fit_then_test(run)
    shown = bool(np.all(at_fit < 0.5) and np.all(gen > fit))
    return shown, _fit_message(fit, at_fit, gen)


def _check_omnigrok_no_delay(run) -> tuple[bool, str]:
    """[O] fixed norm: test accuracy is already ≥ 80% when the training set is fitted (≥ 99%)."""
    fit, at_fit, gen = _fit_then_test(run)
    shown = bool(np.all(at_fit >= 0.8))
    return shown, _fit_message(fit, at_fit, gen)


def _check_anti_grokking(run) -> tuple[bool, str]:
    """[PM]: after its peak, test accuracy falls by ≥ 10 points while training accuracy stays ≥ 99%; reports
    the first step a layer's α is below 2 and the step the test accuracy fell."""
    h = run.history
    steps = np.asarray(h["step"])
    test, train = h["test_acc"][0], h["train_acc"][0]
    peak = int(np.nanargmax(test))
    fell = np.flatnonzero((np.arange(test.size) > peak) & (test <= test[peak] - 0.1) & (train >= 0.99))
    alphas = np.stack([h[k][0] for k in sorted(h) if k.startswith("alpha/")])
    below = np.flatnonzero(np.any(alphas < 2, axis=0))
    t_fell = float(steps[fell[0]]) if fell.size else math.nan
    t_below = float(steps[below[0]]) if below.size else math.nan
    shown = bool(fell.size)
    return shown, (
        f"test peak {test[peak]:.2f} at step {steps[peak]}, final {test[-1]:.2f} (fell 10 points at "
        f"{_fmt_step(t_fell)}); a layer's α < 2 first at {_fmt_step(t_below)}; min α {np.nanmin(alphas):.2f}"
    )


def _omnigrok(preset: str, claim: str, check, paper: str = "[O] Liu et al., ICLR 2023, §3 (MNIST)") -> Reproduction:
    probes = ("spectral",) if paper == _PM else ()
    return Reproduction(preset=preset, paper=paper, claim=claim, probes=probes, check=check, figure=figure_run)


# the sampler settings notebooks/08_llc.ipynb explains: snapshots away from a minimum need a strong localization
_LLC_SETTINGS = {"chains": 8, "draws": 400, "step_size": 1e-3, "localization": 100.0}


def _llc(preset: str, setting: str, claim: str) -> Reproduction:
    return Reproduction(
        preset=preset,
        paper=f"[L] Lau et al. 2023 LLC; {setting}",
        claim=claim,
        probes=(),
        check=llc_rise_and_fall,
        figure=figure_llc,
        details=llc_details,
        llc=dict(_LLC_SETTINGS),
    )


def _span(values: np.ndarray) -> str:
    values = np.asarray(values, dtype=float)
    lo, hi = np.nanmin(values), np.nanmax(values)
    return f"{lo:.2f}" if np.isclose(lo, hi) else f"{lo:.2f}–{hi:.2f}"


# --------------------------------------------------------------------------- the catalogue
def _doshi(phase: str, wd: str, claim: str) -> Reproduction:
    return Reproduction(
        preset=f"doshi-{phase.replace('_', '-')}",
        paper="[D] Doshi et al., ICLR 2024, §2",
        claim=f"add mod 97, 35% corrupted labels, weight decay {wd}: {claim}",
        probes=("neurons",),
        check=_check_phase(phase),
        figure=figure_doshi,
    )


def _prieto(figure: str, claim: str, check) -> Reproduction:
    names = {"1a": "prieto-perpgrad", "1b": "prieto-stablemax", "1c": "prieto-softmax-collapse"}
    return Reproduction(
        preset=names[figure],
        paper=f"[P] Prieto et al., ICLR 2025, Fig. {figure}",
        claim=claim,
        probes=("collapse",),
        check=check,
        figure=figure_run,
    )


def _kumar(figure: str, claim: str, check, draw, sweep: Mapping[str, Sequence[float]] | None = None) -> Reproduction:
    return Reproduction(
        preset=f"kumar-fig{figure}",
        paper=f"[K] Kumar et al., ICLR 2024, Fig. {figure}",
        claim=claim,
        probes=("ntk",),
        check=check,
        figure=draw,
        sweep=dict(sweep or {}),
    )


REPRODUCTIONS: dict[str, Reproduction] = {
    "nanda-progress": Reproduction(
        preset="nanda-progress",
        paper="[N] Nanda et al., ICLR 2023, Fig. 1 and 7",
        claim="a 1-layer transformer memorizes, forms a sparse Fourier circuit, then cleans up (add mod 113)",
        probes=("progress",),
        check=_check_progress,
        figure=figure_run,
        details=progress_details,
    ),
    "prieto-perpgrad": _prieto(
        "1a",
        "⊥AdamW generalizes modular addition without weight decay, within a few hundred steps",
        _check_generalizes,
    ),
    "prieto-stablemax": _prieto(
        "1b", "StableMax cross-entropy groks without weight decay, with no Softmax Collapse", _check_generalizes
    ),
    "prieto-softmax-collapse": _prieto(
        "1c",
        "softmax cross-entropy in float32 without weight decay memorizes, then Softmax Collapse stops learning",
        _check_collapse,
    ),
    "doshi-coexistence": _doshi("coexistence", "0", "memorizes the corrupted labels and generalizes (Coexistence)"),
    "doshi-partial-inversion": _doshi(
        "partial_inversion", "5", "part of the corrupted examples get their true label back (Partial Inversion)"
    ),
    "doshi-full-inversion": _doshi(
        "full_inversion", "15", "the corrupted examples are predicted as their true labels (Full Inversion)"
    ),
    "doshi-forgetting": _doshi("forgetting", "20", "generalizes, then forgets (Forgetting)"),
    "kumar-fig1": _kumar(
        "1",
        "the test loss falls long after the train loss: grokking as the transition from lazy to rich dynamics",
        _check_fig1,
        figure_run,
    ),
    "kumar-fig3a": _kumar(
        "3a",
        "the grokking delay grows with the output scale α: rich (small α) at once, lazy (large α) late or never",
        _check_fig3a,
        figure_fig3a,
        sweep={"model.alpha": FIG3A_ALPHAS},
    ),
    "omnigrok-digits": _omnigrok(
        "omnigrok-digits",
        "a large initialization with MSE fits the training digits long before the test accuracy rises",
        _check_omnigrok_delay,
    ),
    "omnigrok-digits-fixed-norm": _omnigrok(
        "omnigrok-digits-fixed-norm",
        "the weight norm held at the standard initialization's generalizes without the delay",
        _check_omnigrok_no_delay,
    ),
    "anti-grokking-digits": _omnigrok(
        "anti-grokking-digits",
        "without weight decay, test accuracy collapses long after grokking, heralded by a layer's α < 2",
        _check_anti_grokking,
        paper=_PM,
    ),
    "omnigrok-mnist": _omnigrok(
        "omnigrok-mnist",
        "a large initialization with MSE fits 1 000 MNIST images long before the test accuracy rises",
        _check_omnigrok_delay,
    ),
    "omnigrok-mnist-fixed-norm": _omnigrok(
        "omnigrok-mnist-fixed-norm",
        "on MNIST, the weight norm held at the standard initialization's generalizes without the delay",
        _check_omnigrok_no_delay,
    ),
    "anti-grokking-mnist": _omnigrok(
        "anti-grokking-mnist",
        "MNIST without weight decay: test accuracy collapses after grokking, heralded by a layer's α < 2",
        _check_anti_grokking,
        paper=_PM,
    ),
    "llc-grokking": _llc(
        "llc-mlp-small",
        "devinterp's grokking example",
        "λ̂ rises while an MLP memorizes add mod 31 and falls as it generalizes",
    ),
    "llc-grokking-transformer": _llc(
        "llc-transformer-small",
        "[N]'s transformer at CPU size",
        "λ̂ rises while [N]'s transformer memorizes add mod 47 and falls as it generalizes",
    ),
}


def reproductions() -> dict[str, str]:
    """Reproduction names → the paper and claim."""
    return {name: f"{r.paper}: {r.claim}" for name, r in REPRODUCTIONS.items()}


# --------------------------------------------------------------------------- running one
def log_plan(steps: int, points: int = LOG_POINTS) -> dict[str, Any]:
    """`train.*` for a run of `steps` evaluated at ~`points` log-spaced steps (every probe at each);
    a run shorter than `points` evaluates at every step."""
    return {"train.steps": steps, "train.schedule": "log", "train.log_points": min(points, steps + 1)}


def build_config(name: str, steps: int | None = None, overrides: Mapping[str, Any] | None = None):
    """The config of a reproduction: the preset, its probes, an optional length and overrides."""
    from grok.presets import preset

    if name not in REPRODUCTIONS:
        raise ConfigError("NAME", name, "one of " + ", ".join(REPRODUCTIONS), choices=REPRODUCTIONS)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError("--steps", steps, "a positive integer")
    rep = REPRODUCTIONS[name]
    overrides = dict(overrides or {})
    cfg = preset(rep.preset).override(**{k: v for k, v in overrides.items() if k != "train.probes"})
    # the figures draw time on a log axis: a log schedule, so the first decade has points (a preset on
    # a log schedule already, like [K]'s, keeps its number of points)
    points = cfg.train.log_points if cfg.train.schedule == "log" else LOG_POINTS
    plan = log_plan(cfg.train.steps if steps is None else steps, points) | {"train.ntk_every": None}
    if "ntk" in rep.probes and "train.ntk_subset" not in overrides:  # fewer examples than the subset (a shrunk run)
        plan["train.ntk_subset"] = min(cfg.train.ntk_subset, cfg.n_train)
    probes = overrides.get("train.probes", sorted(set(rep.probes) | set(cfg.train.probes)))
    return cfg.override(**plan, **{"train.probes": probes})


def reproduce(
    name: str,
    out: str | Path | None = None,
    *,
    steps: int | None = None,
    seeds: Sequence[int] = (0,),
    overrides: Mapping[str, Any] | None = None,
    progress: bool = True,
    llc_settings: Mapping[str, Any] | None = None,
) -> Result:
    """Train reproduction `name`, save the run and its figure under `out`; returns a `Result`.

    A reproduction with LLC settings also estimates λ̂ over the run's snapshots (saved beside the
    run as `llc.npz`); `llc_settings` overrides them (`chains`, `draws`, ... of `grok.llc`)."""
    from grok.run import train_members
    from grok.store import atomic_write_json

    cfg = build_config(name, steps, overrides)
    rep = REPRODUCTIONS[name]
    settings = check_llc_settings(name, llc_settings)
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError("--seeds", seeds, "one or more non-negative integers")
    members: list[dict[str, Any]] = [{"seed": s} for s in seeds]
    for field, values in rep.sweep.items():
        members = [m | {field: float(v)} for v in values for m in members]
    out = Path(out) if out is not None else Path("runs") / "reproduce" / name
    run = train_members(cfg, members, progress=progress, description=name)
    run.save(out)
    if settings is not None:
        from grok.llc import llc

        run.llc = llc(run, **settings, progress=progress, out=out)
    shown, message = rep.check(run)
    size = f"preset {rep.preset}, {cfg.train.steps} steps, {len(members)} member(s)"
    if overrides:
        size += ", with " + ", ".join(f"{k}={v}" for k, v in overrides.items())
    verdict = ("shown" if shown else "NOT shown") + f" by this run ({size}): {message}"
    title = f"{rep.paper}: {rep.claim}\n{verdict}"
    figure = rep.figure(run, out / "figure.png", title)
    atomic_write_json(
        out / "reproduce.json",
        {"name": name, "paper": rep.paper, "claim": rep.claim, "shown": shown, "message": message, "size": size}
        | ({"members": rep.details(run)} if rep.details is not None else {}),
    )
    return Result(name=name, run=run, out=out, figure=figure, title=title, shown=shown, message=message)


def check_llc_settings(name: str, llc_settings: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The `grok.llc` settings of reproduction `name` with `llc_settings` over them (None: it has none),
    checked; ConfigError for settings given to a reproduction without an LLC, or a bad setting."""
    from grok.llc import LLCSettings

    rep = REPRODUCTIONS[name]
    if rep.llc is None:
        if llc_settings:
            with_llc = [n for n, r in REPRODUCTIONS.items() if r.llc is not None]
            raise ConfigError("--chains/--draws", dict(llc_settings), "only for " + ", ".join(with_llc))
        return None
    allowed = [f.name for f in dataclasses.fields(LLCSettings)]
    for key in llc_settings or {}:
        if key not in allowed:
            raise ConfigError("llc_settings", key, "one of " + ", ".join(allowed), choices=allowed)
    settings = dict(rep.llc) | dict(llc_settings or {})
    LLCSettings(**settings)  # its checks: one line naming the setting
    return settings


__all__ = [
    "REPRODUCTIONS",
    "Reproduction",
    "Result",
    "build_config",
    "check_llc_settings",
    "llc_details",
    "llc_rise_and_fall",
    "log_plan",
    "reproduce",
    "reproductions",
]
