"""Named paper settings (docs/architecture.md). Each documents the figure it comes from.

`-small` variants keep the paper's recipe at a size that runs in seconds to a
minute on two CPU cores; they are what the tests, the demo and the notebooks use.

The evaluation schedule follows the paper's time axis: [K] draws its losses and NTK alignment on a
log step axis, so the `kumar-*` presets evaluate on a log schedule (`train.schedule = "log"`). [P]'s
Fig. 1 curves are drawn against linear epochs and [D]'s Fig. 2 is a phase diagram of final states,
so the `prieto-*` and `doshi-*` presets keep a linear `log_every` grid.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from grok.config import SECTIONS, Config, LossConfig, ModelConfig, OptimConfig, TaskConfig, TrainConfig, apply_overrides
from grok.errors import ConfigError


def _prieto(
    loss: LossConfig,
    optim: OptimConfig,
    steps: int,
    log_every: int,
    p: int = 113,
    train_fraction: float = 0.4,
    width: int = 200,
) -> Config:
    return Config(
        task=TaskConfig(kind="modular", op="add", p=p, train_fraction=train_fraction),
        model=ModelConfig(kind="mlp", widths=(width, width), activation="relu", use_bias=False, init="torch"),
        loss=loss,
        optim=optim,
        train=TrainConfig(steps=steps, log_every=log_every),
    )


def _doshi(
    weight_decay: float,
    steps: int = 2000,
    p: int = 97,
    width: int = 500,
    train_fraction: float = 0.5,
    corrupt_fraction: float = 0.35,
    desc: str = "",
) -> Config:
    return Config(
        task=TaskConfig(
            kind="modular", op="add", p=p, train_fraction=train_fraction, corrupt_fraction=corrupt_fraction
        ),
        model=ModelConfig(kind="quadratic_mlp", widths=(width,), activation="quadratic", init="doshi"),
        loss=LossConfig(kind="mse_onehot", dtype="float32"),
        optim=OptimConfig(kind="adamw", lr=0.01, b1=0.9, b2=0.98, eps=1e-8, weight_decay=weight_decay),
        train=TrainConfig(steps=steps, log_every=max(1, steps // 100)),
        description=desc,
    )


KUMAR_LOG_POINTS = 150


def _kumar(
    n_train: int, epsilon: float, lr_per_width: float, steps: int, target: str, width: int = 500, desc: str = ""
) -> Config:
    """[K]'s α-net on a single-index target: ½z² in its Fig. 1, z² in its Fig. 3 (the authors' code)."""
    return Config(
        task=TaskConfig(kind="polynomial", dim=100, n_train=n_train, n_test=1000, target=target),
        model=ModelConfig(kind="alpha_net", widths=(width,), alpha=1.0, epsilon=epsilon, centered=True, init="normal"),
        loss=LossConfig(kind="mse", dtype="float32"),
        optim=OptimConfig(kind="sgd", lr=lr_per_width * width, momentum=0.0),
        # [K] draws loss and NTK alignment against a log step axis: ~KUMAR_LOG_POINTS geometric steps
        # (the first decade included; `log_every` is the grid of train.schedule="linear")
        train=TrainConfig(steps=steps, log_every=max(1, steps // 200), schedule="log", log_points=KUMAR_LOG_POINTS),
        description=desc,
    )


def _interventions(init_scale: float = 1.0, steps: int = 4000, **optim: object) -> Config:
    """The CPU task where AdamW groks late: add mod 31, 60% train, ReLU MLP 128-128, full-batch
    AdamW lr 3e-3, β=(0.9, 0.98), weight decay 1; the interventions change only `optim`."""
    opt = {"kind": "adamw", "lr": 3e-3, "b1": 0.9, "b2": 0.98, "eps": 1e-8, "weight_decay": 1.0} | optim
    return Config(
        task=TaskConfig(kind="modular", op="add", p=31, train_fraction=0.6),
        model=ModelConfig(kind="mlp", widths=(128, 128), activation="relu", init="torch", init_scale=init_scale),
        loss=LossConfig("softmax_ce", "float32"),
        optim=OptimConfig(**opt),
        train=TrainConfig(steps=steps, log_every=50),
    )


def _nanda(p: int, train_fraction: float, d_model: int, d_mlp: int, lr: float, steps: int, log_every: int) -> Config:
    """[N]'s one-layer transformer on [a, b, =], no LayerNorm, full-batch AdamW (β = 0.9, 0.98), wd 1."""
    return Config(
        task=TaskConfig(kind="modular", op="add", p=p, train_fraction=train_fraction),
        model=ModelConfig(kind="transformer", d_model=d_model, n_heads=4, d_mlp=d_mlp, use_bias=True, init="normal"),
        loss=LossConfig("softmax_ce", "float32"),
        optim=OptimConfig(kind="adamw", lr=lr, b1=0.9, b2=0.98, eps=1e-8, weight_decay=1.0),
        train=TrainConfig(steps=steps, log_every=log_every),
    )


def _with_snapshots(cfg: Config, snapshots: int = 16, log_points: int = 48) -> Config:
    """`cfg` on a log schedule keeping `snapshots` log-spaced snapshots (for `grok.llc`)."""
    return cfg.override(**{"train.schedule": "log", "train.log_points": log_points, "train.snapshots": snapshots})


def _omnigrok_images(
    kind: str = "digits",
    n_train: int = 1000,
    init_scale: float = 8.0,
    weight_decay: float = 0.1,
    steps: int = 30_000,
    log_points: int = 80,
    width: int = 200,
    loss: str = "mse_onehot",
    **optim: object,
) -> Config:
    """[O]'s image setting: a ReLU MLP (two hidden layers, biases, torch init × `init_scale`) on
    `n_train` standardized images, MSE on one-hot targets, full-batch AdamW lr 1e-3, evaluated on a
    log step axis; `optim` overrides the optimizer (the fixed norm, no weight decay)."""
    opt = {"kind": "adamw", "lr": 1e-3, "weight_decay": weight_decay} | optim
    options = (("mnist.path", os.environ.get("GROK_MNIST", "")),) if kind == "mnist" else ()
    return Config(
        task=TaskConfig(kind=kind, n_train=n_train, options=options),
        model=ModelConfig(
            kind="mlp", widths=(width, width), activation="relu", use_bias=True, init="torch", init_scale=init_scale
        ),
        loss=LossConfig(loss, "float32"),
        optim=OptimConfig(**opt),
        train=TrainConfig(steps=steps, schedule="log", log_points=log_points),
    )


_PERP = OptimConfig(kind="adamw", lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, transforms=("perp_grad",))
_STABLE = OptimConfig(kind="adamw", lr=1e-2, b1=0.9, b2=0.999, eps=1e-25, weight_decay=0.0)
_COLLAPSE = OptimConfig(kind="adamw", lr=1e-2, b1=0.9, b2=0.99, eps=1e-25, weight_decay=0.0)

_PRESETS: dict[str, tuple[str, Callable[[], Config]]] = {
    "prieto-perpgrad": (
        "[P] Fig 1a: ⊥AdamW groks add mod 113 in ~300 steps without weight decay",
        lambda: _prieto(LossConfig("softmax_ce", "float32"), _PERP, 300, 10),
    ),
    "prieto-stablemax": (
        "[P] Fig 1b: StableMax CE (float64) groks add mod 113 without weight decay",
        lambda: _prieto(LossConfig("stablemax_ce", "float64"), _STABLE, 80_000, 400),
    ),
    "prieto-softmax-collapse": (
        "[P] Fig 1c: softmax CE in float32 without weight decay memorizes, then Softmax Collapse stalls it",
        lambda: _prieto(LossConfig("softmax_ce", "float32"), _COLLAPSE, 80_000, 400),
    ),
    # CPU size of Fig 1: add mod 31 with 90% of the pairs for training and two ReLU layers of 128 (the
    # paper: mod 113, 40%, 200). Measured (seeds 0–2, jax 0.10.2 CPU, 12 000 steps): StableMax reaches 90%
    # test accuracy at steps 7 200 / 10 500 / 10 100 and ends at 0.99 / 0.93 / 0.92; softmax CE memorizes by
    # step 100, SC reaches 1 and test accuracy stays ≤ 0.07 through step 6 000 (≤ 0.14 through 12 000);
    # ⊥AdamW is at 100% within ~50 steps. (Width 200 behaves alike at 2.3× the cost.)
    "prieto-perpgrad-small": (
        "[P] Fig 1a at CPU size (add mod 31, 90% train, MLP 128-128): ⊥AdamW generalizes within ~50 steps",
        lambda: _prieto(LossConfig("softmax_ce", "float32"), _PERP, 300, 10, p=31, train_fraction=0.9, width=128),
    ),
    "prieto-stablemax-small": (
        "[P] Fig 1b at CPU size (add mod 31, 90% train, MLP 128-128): StableMax CE (float64) groks by ~10k "
        "steps, SC stays 0",
        lambda: _prieto(
            LossConfig("stablemax_ce", "float64"), _STABLE, 14_000, 100, p=31, train_fraction=0.9, width=128
        ),
    ),
    "prieto-softmax-collapse-small": (
        "[P] Fig 1c at CPU size (add mod 31, 90% train, MLP 128-128): softmax CE float32 memorizes, SC rises, "
        "test stays low",
        lambda: _prieto(
            LossConfig("softmax_ce", "float32"), _COLLAPSE, 6_000, 100, p=31, train_fraction=0.9, width=128
        ),
    ),
    # The interventions' CPU task (`_interventions`): AdamW groks late. Measured (seeds 0, 1; jax 0.10.2
    # CPU): 100% train accuracy within a few hundred steps, 90% test accuracy at step 1 800 for both.
    "interventions-adamw-small": (
        "AdamW baseline where grokking is late (add mod 31, 60% train, MLP 128-128, lr 3e-3, wd 1): "
        "90% test accuracy near step 1 800",
        lambda: _interventions(),
    ),
    # [G] Grokfast-EMA with the paper's defaults (α 0.98, λ 2) on the same task, same lr: measured NOT faster
    # (seeds 0–2, 3 000 steps, `interventions-small`): 90% test accuracy at 1 650 median steps at lr 6.3e-3
    # against AdamW's 900, and later than AdamW at every lr of that grid.
    "grokfast-ema-small": (
        "[G] the interventions' task with Grokfast-EMA (α 0.98, λ 2): measured slower than AdamW here",
        lambda: _interventions(transforms=("grokfast_ema",)),
    ),
    # [G]'s own comparison at CPU size, on the same task with [G]'s optimizer: torch's Adam (lr 3e-3,
    # β = (0.9, 0.98)). The baseline has no weight decay, as [G]'s `python main.py` baseline; Grokfast adds
    # the EMA filter (α 0.98, λ 2) and a coupled L2 weight decay of 0.005 (torch.optim.Adam's weight_decay),
    # as [G]'s README command does. Measured (jax 0.10.2 CPU): the baseline memorizes and stays at 0% test
    # accuracy through 5 000 steps (seeds 0, 1); Grokfast reaches 90% at 425–450 steps (seeds 0–3). The
    # controls (`grok sweep grokfast-small`): L2 0.005 without the filter does not even fit the training
    # set (seeds 0, 1), while L2 0.0017 = 0.005 / (1 + λ) without the filter reaches 90% at 350 steps.
    "grokfast-adam-baseline-small": (
        "[G]'s baseline (torch Adam, no weight decay) on the interventions' task: memorizes, 0% test for 5 000 steps",
        lambda: _interventions(kind="adam", weight_decay=0.0, steps=2000),
    ),
    "grokfast-adam-small": (
        "[G] Grokfast-EMA (α 0.98, λ 2) with Adam + L2 0.005, [G]'s recipe: 90% test accuracy by ~450 steps",
        lambda: _interventions(kind="adam", weight_decay=0.005, steps=2000, transforms=("grokfast_ema",)),
    ),
    # [O] Omnigrok: a larger initialization delays grokking (the weight decay has to bring the norm
    # down first). Measured (seeds 0, 1): init ×1 → 90% test at 1 800 / 1 800 steps, ×3 → 2 150 / 2 250,
    # ×6 → 2 700 / 2 950; ×6 without weight decay never gets there in 4 000 steps (test ≤ 0.01).
    "omnigrok-large-init-small": (
        "[O] the interventions' task with the initialization ×6: grokking comes ~1 000 steps later",
        lambda: _interventions(init_scale=6.0),
    ),
    # [O] the fixed weight norm undoes it: with the initialization ×6 (‖θ₀‖ = 58.7) and no weight decay,
    # rescaling the whole network after every step to 0.6·‖θ₀‖ ≈ 35 reaches 90% test accuracy at step
    # 1 200 (seed 0; targets 0.51·‖θ₀‖: 1 100, 0.72·‖θ₀‖: 1 550), earlier than even the standard
    # initialization with weight decay (1 800). The multiple matters: 1·‖θ₀‖ and 1/6·‖θ₀‖ (the standard
    # initialization's norm) never get there in 4 000 steps. The baseline generalizes as its norm passes
    # ~42 (AdamW first grows the standard initialization's norm from 9.8 to ~45, then weight decay
    # shrinks it): the right multiple puts the network at that norm from the start.
    "omnigrok-fixed-norm-small": (
        "[O] init ×6, no weight decay, whole-network norm fixed at 0.6·‖θ₀‖: 90% test accuracy by ~1 200 steps",
        lambda: _interventions(
            init_scale=6.0,
            steps=3000,
            weight_decay=0.0,
            transforms=("fixed_norm",),
            options=(("fixed_norm.multiple", 0.6),),
        ),
    ),
    # [O] on images (the 8×8 digits, 1 000 training images, MLP 64-200-200-10 with init ×8, MSE on one-hot
    # targets, full-batch AdamW lr 1e-3, weight decay 0.1, the lab's choice for this small set). Measured
    # (seed 0, jax 0.10.2 CPU, a 30 000-step run; the preset stops at 20 000): training accuracy 0.99 at
    # step 4 700 while test is 0.32; test 0.87 at 9 400, 0.97 at 13 300, 0.987 at 30 000.
    # With the norm held at ‖θ₀‖/8 (the standard initialization's, 11.7) and no weight decay, test follows
    # train: 0.91 at 600 steps, train 0.99 at 1 100 with test 0.97, 0.98 by 5 000.
    "omnigrok-digits": (
        "[O] digits, init ×8, MSE, wd 0.1: train 99% at ~4 700 steps with test 32%; test 97% only by ~13 000",
        lambda: _omnigrok_images(steps=20_000),
    ),
    "omnigrok-digits-fixed-norm": (
        "[O] digits, init ×8, no wd, norm held at the standard init's (×1/8): test 97% when train hits 99% (~1 100)",
        lambda: _omnigrok_images(
            steps=5_000, weight_decay=0.0, transforms=("fixed_norm",), options=(("fixed_norm.multiple", 0.125),)
        ),
    ),
    # [PM]'s anti-grokking recipe (no weight decay, trained far past grokking) on the digits; `grok reproduce
    # anti-grokking-digits` adds the `spectral` probe: test accuracy and every layer's α on one log step axis.
    # Measured (seed 0, 100 000 steps, ~25 min on a loaded 2-core CPU): it never groks at this size: train
    # 1.00, test 0.17 throughout (no weight decay leaves the ×8 norm in place); min α over layers 2.91, never
    # < 2. [PM]'s collapse needs their MNIST setting and ~10⁷ steps (`anti-grokking-mnist`, a GPU run).
    "anti-grokking-digits": (
        "[PM] digits, init ×8, MSE, no weight decay, 100 000 steps (measured: never groks, test 17%)",
        lambda: _omnigrok_images(steps=100_000, weight_decay=0.0, log_points=100),
    ),
    # The paper-size MNIST runs (a GPU or a long CPU run): 1 000 MNIST training images, the first 10 000
    # test images, MLP 784-200-200-10, batch 200, weight decay 0.01 (as [O]'s released MNIST notebook);
    # the file comes from $GROK_MNIST or task.mnist.path.
    "omnigrok-mnist": (
        "[O] MNIST 1 000 images, init ×8, MSE, wd 0.01, 100 000 steps (needs $GROK_MNIST; GPU or long CPU run)",
        lambda: _omnigrok_images(kind="mnist", steps=100_000, weight_decay=0.01, batch_size=200),
    ),
    "omnigrok-mnist-fixed-norm": (
        "[O] MNIST as omnigrok-mnist, no weight decay, norm held at the standard initialization's (×1/8)",
        lambda: _omnigrok_images(
            kind="mnist",
            steps=100_000,
            batch_size=200,
            weight_decay=0.0,
            transforms=("fixed_norm",),
            options=(("fixed_norm.multiple", 0.125),),
        ),
    ),
    "anti-grokking-mnist": (
        "[PM] MNIST 1 000 images, init ×8, MSE, no weight decay, 10⁷ steps (GPU; $GROK_MNIST)",
        lambda: _omnigrok_images(kind="mnist", steps=10_000_000, weight_decay=0.0, batch_size=200, log_points=150),
    ),
    "doshi-coexistence": (
        "[D] Fig 2: ξ=0.35, wd 0 — generalizes and memorizes corrupted labels at once",
        lambda: _doshi(0.0),
    ),
    "doshi-partial-inversion": (
        "[D] Fig 2: ξ=0.35, wd 5 — corrupted labels partly predicted as their true labels",
        lambda: _doshi(5.0),
    ),
    "doshi-full-inversion": (
        "[D] Fig 2: ξ=0.35, wd 15 — corrupted labels predicted as their true labels",
        lambda: _doshi(15.0),
    ),
    "doshi-forgetting": (
        "[D] Fig 2: ξ=0.35, wd 20 — generalizes, then forgets",
        lambda: _doshi(20.0),
    ),
    "doshi-coexistence-small": (
        "[D] Coexistence at p=41, 60% train, ξ=0.1, N=200: memorizing and generalizing neurons side by side",
        lambda: _doshi(0.0, steps=500, p=41, width=200, train_fraction=0.6, corrupt_fraction=0.1),
    ),
    "nanda-progress": (
        "[N] Fig 1/7: 1-layer transformer on add mod 113 (30% train) memorizes, forms a Fourier circuit, cleans up",
        lambda: _nanda(113, 0.3, 128, 512, 1e-3, 40_000, 100),
    ),
    # CPU size of [N]: add mod 47, 40% train, d_model 64, d_mlp 256, lr 3e-3 (the paper: mod 113, 30%, 128,
    # 512, 1e-3). Measured (seeds 0–1, jax 0.10.2 CPU, 2 cores shared): 100% train by step 100, the first key
    # frequencies at step 1 500, test accuracy ≥ 95% by ~2 500 steps; ~150 s for 3 000 steps with the probe.
    "nanda-progress-small": (
        "[N] at CPU size (add mod 47, 40% train, d_model 64, d_mlp 256): memorization, circuit formation and "
        "cleanup within 4 000 steps",
        lambda: _nanda(47, 0.4, 64, 256, 3e-3, 4_000, 50),
    ),
    # The LLC over a grokking run (docs/formulas.md §8; notebooks/08_llc.ipynb): the presets above on a
    # log schedule that keeps 16 snapshots, for `grok.llc(run)`.
    "llc-mlp-small": (
        "LLC over grokking: add mod 31, 60% train, MLP 128-128, AdamW lr 3e-3 wd 1, 16 log-spaced snapshots",
        lambda: _with_snapshots(_interventions(steps=3000)),
    ),
    "llc-transformer-small": (
        "LLC over grokking: [N]'s transformer at CPU size (add mod 47), 16 log-spaced snapshots",
        lambda: _with_snapshots(_nanda(47, 0.4, 64, 256, 3e-3, 4_000, 50)),
    ),
    "kumar-fig1": (
        "[K] Fig 1: lazy→rich grokking on a quadratic single-index target (D=100, P=550)",
        lambda: _kumar(550, 0.02, 1.0, 100_000, "quadratic"),
    ),
    "kumar-fig3a": (
        "[K] Fig 3a: α sweeps lazy (large α) to rich (small α); ε=0.25, P=450, target z²",
        lambda: _kumar(450, 0.25, 0.5, 60_000, "square"),
    ),
}


def preset(name: str) -> Config:
    """A validated, frozen Config for a named paper setting.

    >>> cfg = grok.preset("prieto-perpgrad-small")
    """
    if name not in _PRESETS:
        raise ConfigError("preset", name, "one of " + ", ".join(_PRESETS), choices=_PRESETS)
    return _PRESETS[name][1]().override(description=_PRESETS[name][0])


def presets() -> dict[str, str]:
    """Preset names → one-line descriptions.

    >>> sorted(grok.presets())
    """
    return {name: desc for name, (desc, _) in _PRESETS.items()}


def config_from_mapping(data: Mapping[str, Any]) -> Config:
    """A config file's contents: optional `preset`, then sections and dotted `set`."""
    data = dict(data)
    base = preset(data.pop("preset")) if "preset" in data else Config()
    dotted = dict(data.pop("set", {}))
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, Mapping):
            for leaf, v in value.items():
                if isinstance(v, Mapping):  # a registered kind's options: [optim.grokfast]
                    dotted |= {f"{key}.{leaf}.{opt}": vv for opt, vv in v.items()}
                else:
                    dotted[f"{key}.{leaf}"] = v
        else:
            dotted[key] = value
    return apply_overrides(base, dotted)


def config_from_toml(path: str | Path) -> Config:
    """Read a TOML config file: optional `preset = NAME`, then sections overriding it."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(str(path), type(err).__name__, f"a readable UTF-8 TOML file ({err})") from None
    return config_from_mapping(data)
