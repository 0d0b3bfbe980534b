"""Run configuration: frozen dataclasses, validated on construction (docs/architecture.md).

A `Config` is read top to bottom: task → model → loss → optim → train. Fields are
*static* (they change shapes or code: one compiled program per distinct value) or
*dynamic* (numbers stacked along the member axis; changing them never recompiles).
`DYNAMIC_FIELDS` lists the built-in dynamic ones by dotted name; a registered transform's
numeric options (`optim.<transform>.<option>`) are dynamic too (`is_dynamic`).

Kinds (`task.kind`, `model.kind`, `optim.kind`, `optim.transforms`, `train.probes`) are names in
the registries of `grok.registry`; a registration's own options are fields
`<section>.<name>.<option>` stored in the section's `options`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from grok import registry
from grok.errors import ConfigError
from grok.losses import LOSS_KINDS
from tasks.modular import MODULAR_OPS

POLY_TARGETS = ("quadratic", "square", "hermite")
INITS = ("torch", "normal", "doshi")
ACTIVATIONS = ("relu", "quadratic", "gelu", "tanh", "linear")
DTYPES = ("float16", "float32", "float64")
SCHEDULES = ("linear", "log")

MAX_SEED = 2**31 - 1  # seeds are stacked as int32 on the member axis
# Dynamic numbers that something is divided by: one that underflows to 0 in the parameter dtype
# (eps=1e-25 in float16) turns a guard into a division by zero. Any other number that small acts
# as 0 would; every number that overflows to inf is refused.
_DIVISORS = ("optim.eps", "model.alpha")
MAX_POINTS = 1_000_000  # evaluation points of a run (its history is kept on the host)

# Numbers that live on the member axis: changing them never recompiles.
DYNAMIC_FIELDS = (
    "seed",
    "task.data_seed",
    "task.corrupt_fraction",
    "model.init_scale",
    "model.dropout",
    "model.alpha",
    "model.epsilon",
    "loss.logit_scale",
    "optim.lr",
    "optim.b1",
    "optim.b2",
    "optim.eps",
    "optim.weight_decay",
    "optim.momentum",
)


# Loading a saved run must not depend on what this process registered: inside `lenient()`, a kind
# that is not registered is kept as a name (its run's history and config still load); training,
# or building its model, then fails with the ConfigError naming the missing registration.
_LENIENT: contextvars.ContextVar[bool] = contextvars.ContextVar("grok_config_lenient", default=False)


@contextlib.contextmanager
def lenient():
    """Accept kinds that are not registered in this process (for loading saved configs)."""
    token = _LENIENT.set(True)
    try:
        yield
    finally:
        _LENIENT.reset(token)


# A sweep's `[set]` applies to every member, also to those whose transform or kind does not read
# it (the sweep itself refuses an axis that changes no member): inside `inert_options_allowed()`,
# an option of a kind that is not chosen is kept instead of refused.
_INERT_OPTIONS_OK: contextvars.ContextVar[bool] = contextvars.ContextVar("grok_inert_options_ok", default=False)


@contextlib.contextmanager
def inert_options_allowed():
    """Accept options set for kinds that are not chosen (for sweeps, whose `[set]` covers every member)."""
    token = _INERT_OPTIONS_OK.set(True)
    try:
        yield
    finally:
        _INERT_OPTIONS_OK.reset(token)


def _entry(reg: registry.Registry, name: Any, field: str):
    """The registered entry of `name`, or None for an unregistered name inside `lenient()`."""
    if isinstance(name, str) and name not in reg and _LENIENT.get():
        return None
    return reg.get(name, field)


def _after_base(name: str) -> bool:
    """Whether transform `name` is chained after the base optimizer (unregistered, lenient: no)."""
    return name in registry.TRANSFORMS and registry.TRANSFORMS.get(name).after_base


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(name, value, "one of " + ", ".join(allowed), choices=allowed)


def _check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            name, value, f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
        )
    if maximum is not None and value > maximum:
        raise ConfigError(name, value, f"an integer in [{minimum}, {maximum}]")


def _check_real(
    name: str, value: object, lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False
) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if open_lo else value >= lo) and (value < hi if open_hi else value <= hi)
    if not ok:
        raise ConfigError(name, value, f"a number in {'(' if open_lo else '['}{lo}, {hi}{')' if open_hi else ']'}")


def _names_tuple(field: str, value: Any) -> tuple[str, ...]:
    """A list of names given as a list, a tuple or one string."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise ConfigError(field, value, "a list of names")


# --------------------------------------------------------------------------- registered options
def _flat_options(section: str, raw: Any) -> dict[str, Any]:
    """`{"name.opt": v}`, `{"name": {"opt": v}}` or pairs → `{"name.opt": v}`."""
    if isinstance(raw, tuple):
        raw = dict(raw)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{section}.options", raw, "a table of <name>.<option> values")
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping):
            for leaf, v in value.items():
                flat[f"{key}.{leaf}"] = v
        else:
            flat[str(key)] = value
    return flat


def _option_value(field: str, value: Any, default: Any) -> Any:
    """`value` checked against the type of the registered `default` (ints may stand for floats)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        kind = "true or false"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        kind = "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
        kind = "a finite number"
    else:
        ok = isinstance(value, str)
        kind = "a string"
    if not ok:
        raise ConfigError(field, value, kind)
    return value


def _normalize_options(section: str, raw: Any, active: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    """Check every option against its registration and fill in the defaults of the active kinds."""
    reg = registry.SECTION_REGISTRIES[section]
    flat = _flat_options(section, raw)
    out: dict[str, Any] = {}
    for key, value in flat.items():
        owner, _, opt = key.partition(".")
        field = f"{section}.{key}"
        entry = _entry(reg, owner, field)
        if entry is None:  # lenient: an unregistered owner keeps its values as given
            out[key] = value
            continue
        if opt not in entry.options:
            allowed = ", ".join(f"{section}.{owner}.{o}" for o in entry.options) or "(it has no options)"
            raise ConfigError(field, value, f"an option of {reg.kind} {owner!r}: {allowed}")
        out[key] = _option_value(field, value, entry.options[opt])
        lo_hi = getattr(entry, "ranges", {}).get(opt)
        if lo_hi is not None and not lo_hi[0] <= out[key] <= lo_hi[1]:
            raise ConfigError(field, value, f"a number in [{lo_hi[0]}, {lo_hi[1]}]")
    for name in active:
        entry = _entry(reg, name, f"{section}.kind")
        if entry is not None:
            for opt, default in entry.options.items():
                out.setdefault(f"{name}.{opt}", default)
    return tuple(sorted(out.items()))


class _Options:
    """Shared by the sections whose kinds are registered: their options by dotted key."""

    options: tuple[tuple[str, Any], ...]

    def option(self, name: str, key: str) -> Any:
        """The value of option `key` of registered `name` in this section (its default if unset)."""
        values = dict(self.options)
        if f"{name}.{key}" in values:
            return values[f"{name}.{key}"]
        section = _SECTION_OF[type(self)]
        return registry.SECTION_REGISTRIES[section].get(name).options[key]

    def options_of(self, name: str) -> dict[str, Any]:
        """Every option of registered `name` (defaults filled in), keyed by option name."""
        section = _SECTION_OF[type(self)]
        entry = registry.SECTION_REGISTRIES[section].get(name, f"{section}.kind")
        return {key: self.option(name, key) for key in entry.options}


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class TaskConfig(_Options):
    """What to learn (docs/formulas.md §2). `kind` names a registered task.

    >>> grok.Config().override(**{"task.op": "div", "task.p": 97}).task
    """

    kind: str = "modular"
    # modular arithmetic (a op b) mod p
    op: str = "add"
    p: int = 97
    train_fraction: float = 0.5
    corrupt_fraction: float = 0.0  # ξ [D]: fraction of train labels replaced by random ones
    data_seed: int | None = None  # None: use the member's seed
    # polynomial regression [K]
    dim: int = 100
    n_train: int = 550
    n_test: int = 1000
    target: str = "quadratic"
    hermite_degree: int = 2
    # sparse parity [P]
    parity_k: int = 3
    parity_noise: int = 40
    parity_samples: int = 2000
    options: tuple[tuple[str, Any], ...] = ()  # registered tasks' own fields: task.<kind>.<option>

    def __post_init__(self) -> None:
        entry = _entry(registry.TASKS, self.kind, "task.kind")
        _check_choice("task.op", self.op, MODULAR_OPS)
        _check_int("task.p", self.p, 2)
        _check_real("task.train_fraction", self.train_fraction, 0.0, 1.0, open_lo=True, open_hi=True)
        _check_real("task.corrupt_fraction", self.corrupt_fraction, 0.0, 1.0)
        if self.data_seed is not None:
            _check_int("task.data_seed", self.data_seed, 0, MAX_SEED)
        _check_int("task.dim", self.dim, 1)
        _check_int("task.n_train", self.n_train, 1)
        _check_int("task.n_test", self.n_test, 1)
        _check_choice("task.target", self.target, POLY_TARGETS)
        _check_int("task.hermite_degree", self.hermite_degree, 1)
        _check_int("task.parity_k", self.parity_k, 1)
        _check_int("task.parity_noise", self.parity_noise, 0)
        _check_int("task.parity_samples", self.parity_samples, 2)
        object.__setattr__(self, "options", _normalize_options("task", self.options, (self.kind,)))
        # a saved run's config is not checked again on load: its task may need a file this machine lacks
        if entry is not None and entry.check is not None and not _LENIENT.get():
            entry.check(self)

    @property
    def n_pairs(self) -> int:
        """Number of (a, b) pairs of the modular task (b ≠ 0 for div)."""
        return self.p * (self.p - 1) if self.op == "div" else self.p * self.p


@dataclass(frozen=True)
class ModelConfig(_Options):
    """Which network (docs/formulas.md §3). `kind` names a registered model.

    >>> grok.Config().override(**{"model.kind": "transformer"}).model
    """

    kind: str = "mlp"
    widths: tuple[int, ...] = (200, 200)
    activation: str = "relu"
    use_bias: bool = False
    init: str = "torch"  # torch: U(±1/√fan_in); normal: N(0, 1/fan_in); doshi: N(0, 0.5/(2N)^{1/3})
    init_scale: float = 1.0  # multiplies every initial weight
    dropout: float = 0.0  # before the activation (the square, for the quadratic MLP) [D]
    batchnorm: bool = False  # after the activation [D]
    # α-scaled two-layer net [K]
    alpha: float = 1.0
    epsilon: float = 0.02
    train_readout: bool = False
    centered: bool = True
    # transformer
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    layernorm: bool = False
    options: tuple[tuple[str, Any], ...] = ()  # registered models' own fields: model.<kind>.<option>

    def __post_init__(self) -> None:
        _entry(registry.MODELS, self.kind, "model.kind")
        widths = self.widths
        if isinstance(widths, list):
            object.__setattr__(self, "widths", tuple(widths))
            widths = self.widths
        if not isinstance(widths, tuple) or not widths:
            raise ConfigError("model.widths", widths, "a non-empty list of positive integers")
        for i, w in enumerate(widths):
            _check_int(f"model.widths[{i}]", w, 1)
        _check_choice("model.activation", self.activation, ACTIVATIONS)
        _check_choice("model.init", self.init, INITS)
        _check_real("model.init_scale", self.init_scale, 0.0, 1e6, open_lo=True)
        _check_real("model.dropout", self.dropout, 0.0, 0.999)
        _check_real("model.alpha", self.alpha, 0.0, 1e12, open_lo=True)
        _check_real("model.epsilon", self.epsilon, -1e6, 1e6)
        _check_int("model.d_model", self.d_model, 1)
        _check_int("model.n_heads", self.n_heads, 1)
        _check_int("model.d_mlp", self.d_mlp, 1)
        object.__setattr__(self, "options", _normalize_options("model", self.options, (self.kind,)))


@dataclass(frozen=True)
class LossConfig:
    """Training loss (docs/formulas.md §4).

    >>> grok.preset("prieto-stablemax").loss  # LossConfig(kind="stablemax_ce", ...)
    """

    kind: str = "softmax_ce"
    dtype: str = "float32"  # dtype the loss (and the SC probe) is computed in
    logit_scale: float = 1.0  # outputs are multiplied by it

    def __post_init__(self) -> None:
        _check_choice("loss.kind", self.kind, LOSS_KINDS)
        _check_choice("loss.dtype", self.dtype, DTYPES)
        _check_real("loss.logit_scale", self.logit_scale, 0.0, 1e12, open_lo=True)


@dataclass(frozen=True)
class OptimConfig(_Options):
    """Optimizer (docs/formulas.md §4): the registered transforms `transforms`, in order, chained
    before the base optimizer `kind` (also a registered transform). ⊥AdamW is
    `transforms=("perp_grad",)` with `kind="adamw"`.

    >>> grok.preset("prieto-perpgrad").optim.chain  # ("perp_grad", "adamw")
    """

    kind: str = "adamw"
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd only
    nesterov: bool = False
    transforms: tuple[str, ...] = ()
    batch_size: int | None = None  # None: full batch
    options: tuple[tuple[str, Any], ...] = ()  # registered transforms' hyperparameters: optim.<name>.<option>

    def __post_init__(self) -> None:
        _entry(registry.TRANSFORMS, self.kind, "optim.kind")
        _check_real("optim.lr", self.lr, 0.0, 1e12, open_lo=True)
        _check_real("optim.b1", self.b1, 0.0, 1.0)
        _check_real("optim.b2", self.b2, 0.0, 1.0)
        _check_real("optim.eps", self.eps, 0.0, 1.0)
        _check_real("optim.weight_decay", self.weight_decay, 0.0, 1e6)
        _check_real("optim.momentum", self.momentum, 0.0, 1.0)
        if self.batch_size is not None:
            _check_int("optim.batch_size", self.batch_size, 1)
        transforms = _names_tuple("optim.transforms", self.transforms)
        object.__setattr__(self, "transforms", transforms)
        for i, name in enumerate(transforms):
            _entry(registry.TRANSFORMS, name, f"optim.transforms[{i}]")
        if len(set(transforms)) != len(transforms) or self.kind in transforms:
            raise ConfigError(
                "optim.transforms", list(transforms), f"each transform once, not optim.kind={self.kind!r}"
            )
        object.__setattr__(self, "options", _normalize_options("optim", self.options, self.chain))
        for name in self.chain:
            entry = _entry(registry.TRANSFORMS, name, "optim.kind")
            if entry is not None and entry.check is not None:
                values = self.options_of(name) | {f: getattr(self, f) for f in entry.shared}
                reason = entry.check(values)
                if reason:
                    raise ConfigError(f"optim.{name}", values, reason)

    @property
    def chain(self) -> tuple[str, ...]:
        """The transforms in the order they are applied: `transforms`, the base `kind`, then the
        transforms registered with `after_base=True` (in their `transforms` order)."""
        after = tuple(t for t in self.transforms if _after_base(t))
        return (*(t for t in self.transforms if t not in after), self.kind, *after)


@dataclass(frozen=True)
class TrainConfig:
    """How long, when to evaluate and snapshot, in which precision, which probes (registered probe names).

    `schedule`: "linear" evaluates every `log_every` steps; "log" at about `log_points` steps spaced
    geometrically from 1 to `steps` (and step 0). `snapshots`: keep every member's parameters at
    that many steps on the same kind of schedule, or at the listed steps (0: none). See
    `grok.schedule`.

    >>> grok.Config().override(**{"train.steps": 5000, "train.snapshots": 20}).train
    """

    steps: int = 1000
    log_every: int = 10
    schedule: str = "linear"
    log_points: int = 100
    snapshots: int | tuple[int, ...] = 0
    param_dtype: str = "float32"
    probes: tuple[str, ...] = ()
    ntk_every: int | None = None  # None: every log_every; else a multiple of log_every
    ntk_subset: int = 64  # probe examples for the empirical NTK
    ipr_histogram_bins: int = 20
    spectral_min_evals: int = 20  # `spectral` probe: fewer eigenvalues above 1e-5 → α is NaN (status 1)
    spectral_ks: str = "weightwatcher"  # `spectral` probe: the KS rule choosing x_min ("weightwatcher" or "csn")
    spectral_esd_bins: int = 0  # `spectral` probe: bins of each layer's log10-ESD histogram (0: none)
    divergence_factor: float = 1e6  # a member whose loss exceeds this × its initial loss has diverged
    checkpoint_every: int | None = None  # grok train --out: steps between checkpoints (None: every ~5 minutes)

    def __post_init__(self) -> None:
        _check_int("train.steps", self.steps, 1)
        _check_int("train.log_every", self.log_every, 1)
        _check_choice("train.schedule", self.schedule, SCHEDULES)
        if self.schedule == "linear" and self.steps % self.log_every:
            raise ConfigError("train.steps", self.steps, f"a multiple of train.log_every={self.log_every}")
        _check_choice("train.param_dtype", self.param_dtype, DTYPES)
        object.__setattr__(self, "probes", _names_tuple("train.probes", self.probes))
        for i, name in enumerate(self.probes):
            _entry(registry.PROBES, name, f"train.probes[{i}]")
        if len(set(self.probes)) != len(self.probes):
            raise ConfigError("train.probes", self.probes, "each probe family at most once")
        if self.ntk_every is not None:
            _check_int("train.ntk_every", self.ntk_every, 1)
            if self.ntk_every % self.log_every or self.steps % self.ntk_every:
                raise ConfigError(
                    "train.ntk_every",
                    self.ntk_every,
                    f"a multiple of train.log_every={self.log_every} dividing train.steps={self.steps}",
                )
        _check_int("train.ntk_subset", self.ntk_subset, 2)
        _check_int("train.ipr_histogram_bins", self.ipr_histogram_bins, 2)
        _check_int("train.spectral_min_evals", self.spectral_min_evals, 3)
        _check_choice("train.spectral_ks", self.spectral_ks, ("weightwatcher", "csn"))
        bins = self.spectral_esd_bins
        if isinstance(bins, bool) or not isinstance(bins, int) or (bins != 0 and bins < 2):
            raise ConfigError("train.spectral_esd_bins", bins, "0 (no histogram) or an integer >= 2")
        _check_real("train.divergence_factor", self.divergence_factor, 1.0, 1e300, open_lo=True)
        if self.checkpoint_every is not None:
            _check_int("train.checkpoint_every", self.checkpoint_every, 1)
        _check_int("train.log_points", self.log_points, 2, MAX_POINTS)
        if self.schedule == "linear" and self.steps // self.log_every + 1 > MAX_POINTS:
            raise ConfigError(
                "train.log_every",
                self.log_every,
                f"at least train.steps / {MAX_POINTS - 1} = {math.ceil(self.steps / (MAX_POINTS - 1))}: "
                f"at most {MAX_POINTS} evaluation points (or train.schedule='log')",
            )
        if self.schedule == "log" and self.log_points > self.steps + 1:
            allowed = f"at most train.steps + 1 = {self.steps + 1} (one per step; set it with a shorter train.steps)"
            raise ConfigError("train.log_points", self.log_points, allowed)
        self._check_snapshots()

    def _check_snapshots(self) -> None:
        snaps = self.snapshots
        if isinstance(snaps, list):
            snaps = tuple(snaps)
        if isinstance(snaps, tuple):
            if not snaps or any(isinstance(s, bool) or not isinstance(s, int) for s in snaps):
                raise ConfigError("train.snapshots", list(snaps), "a count, or a non-empty list of integer steps")
            bad = [s for s in snaps if not 0 <= s <= self.steps]
            if bad:
                raise ConfigError("train.snapshots", bad, f"steps in [0, train.steps={self.steps}]")
            if self.schedule == "linear" and any(s % self.log_every for s in snaps):
                off = [s for s in snaps if s % self.log_every]
                raise ConfigError(
                    "train.snapshots",
                    off,
                    f"multiples of train.log_every={self.log_every} with train.schedule='linear' "
                    "(or train.schedule='log', which evaluates at every snapshot step)",
                )
            object.__setattr__(self, "snapshots", tuple(sorted(set(snaps))))
            return
        _check_int("train.snapshots", snaps, 0)
        points = self.steps // self.log_every + 1 if self.schedule == "linear" else self.log_points
        if snaps > points:
            raise ConfigError(
                "train.snapshots", snaps, f"at most the {points} evaluation points of the {self.schedule} schedule"
            )


SECTIONS = {
    "task": TaskConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}
_SECTION_OF = {cls: key for key, cls in SECTIONS.items()}
# Names that older versions wrote and that moved: `optim.perp_grad = true` is now the transform.
_LEGACY_OPTIM = ("perp_grad", "perp_rescale")


@dataclass(frozen=True)
class Config:
    """A whole run: task → model → loss → optim → train, and the seed.

    >>> cfg = grok.Config().override(**{"task.p": 31, "optim.lr": 1e-3})
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0, MAX_SEED)
        task_entry = _entry(registry.TASKS, self.task.kind, "task.kind")
        if task_entry is None:
            return  # lenient load of an unregistered task: nothing more can be checked
        classification = self.spec.n_classes > 0
        if classification and self.loss.kind == "mse":
            raise ConfigError("loss.kind", "mse", "softmax_ce, stablemax_ce or mse_onehot for a classification task")
        if not classification and self.loss.kind != "mse":
            raise ConfigError("loss.kind", self.loss.kind, f"mse for task.kind={self.task.kind!r}")
        self._check_representable()
        model_entry = _entry(registry.MODELS, self.model.kind, "model.kind")
        if model_entry is not None and model_entry.check is not None:
            model_entry.check(self)
        if self.optim.batch_size is not None and self.optim.batch_size > self.n_train:
            raise ConfigError(
                "optim.batch_size", self.optim.batch_size, f"at most the {self.n_train} training examples"
            )
        for name in self.train.probes:
            probe = _entry(registry.PROBES, name, "train.probes")
            if probe is None:
                continue
            own = self.get(probe.every) if isinstance(probe.every, str) else None  # a field, e.g. train.ntk_every
            if self.train.schedule == "log" and (self.probe_every(name) is not None or own is not None):
                raise ConfigError(
                    probe.every if own is not None else f"probe {name!r} every",
                    own if own is not None else self.probe_every(name),
                    "no interval of its own with train.schedule='log' (it runs at every scheduled step: "
                    "leave train.ntk_every unset)",
                )
            reason = probe.requires(self) if probe.requires is not None else None
            if reason:
                raise ConfigError("train.probes", list(self.train.probes), f"{name!r} {reason}")
            every = self.probe_every(name)
            if every is not None and (every % self.train.log_every or self.train.steps % every):
                raise ConfigError(
                    f"probe {name!r} every",
                    every,
                    f"a multiple of train.log_every={self.train.log_every} dividing train.steps={self.train.steps}",
                )

    def _check_representable(self) -> None:
        """A dynamic number that overflows to ±inf in the parameter dtype is refused, and a divisor
        that underflows to 0 (float16 with eps=1e-25)."""
        dtype = np.dtype(self.train.param_dtype)
        if _LENIENT.get():
            return
        for name in dynamic_fields(self):
            value = self.get(name)
            if name in ("seed", "task.data_seed") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            with np.errstate(over="ignore", under="ignore"):
                cast = np.asarray(value, dtype)
            if value != 0 and (not np.isfinite(cast) or (cast == 0 and name in _DIVISORS)):
                where = f"train.param_dtype={dtype.name}"
                raise ConfigError(name, value, f"a number representable in {where} (it rounds to {cast.item()})")

    # ----------------------------------------------------------------- derived
    @property
    def spec(self):
        """The task's static facts (`tasks.TaskSpec`) from its registered `spec` function."""
        return registry.TASKS.get(self.task.kind, "task.kind").spec(self.task)

    @property
    def n_train(self) -> int:
        """Number of training examples (static)."""
        return self.spec.n_train

    @property
    def n_intervals(self) -> int:
        """Number of logged points, the initial one included (`grok.schedule.eval_steps`)."""
        if self.train.schedule == "linear":
            return self.train.steps // self.train.log_every + 1
        from grok.schedule import eval_steps

        return len(eval_steps(self.train))

    @property
    def uses_float64(self) -> bool:
        return "float64" in (self.train.param_dtype, self.loss.dtype)

    def probe_every(self, name: str) -> int | None:
        """Steps between evaluations of probe `name` when it has its own interval, else None."""
        every = registry.PROBES.get(name, "train.probes").every
        if isinstance(every, str):
            every = self.get(every)
        return None if every is None or every == self.train.log_every else int(every)

    # ------------------------------------------------------------- conversion
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists, options as sub-tables): JSON and TOML friendly."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                section: dict[str, Any] = {}
                for sf in fields(value):
                    v = getattr(value, sf.name)
                    if sf.name == "options":
                        for key, opt in v:
                            owner, _, leaf = key.partition(".")
                            section.setdefault(owner, {})[leaf] = opt
                    else:
                        section[sf.name] = list(v) if isinstance(v, tuple) else v
                out[f.name] = section
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = True) -> Config:
        """Build from a nested dict; unknown sections or fields are an error.

        `strict=False` accepts kinds that are not registered in this process (loading a saved
        run without its notebook's registrations: the config is kept, not checked against them).
        """
        if not strict:
            with lenient():
                return cls.from_dict(data)
        top = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in top:
                raise ConfigError(key, value, "a field of Config: " + ", ".join(sorted(top)))
            if key in SECTIONS:
                if not isinstance(value, Mapping):
                    raise ConfigError(key, value, f"a table of {key}.* fields")
                kwargs[key] = _build_section(key, value)
            else:
                kwargs[key] = value
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls.from_dict(json.loads(text))

    def to_toml(self) -> str:
        return dict_to_toml(self.to_dict())

    def override(self, **dotted: Any) -> Config:
        """A copy with dotted fields replaced (`optim.lr=1e-3`), re-validated."""
        return apply_overrides(self, dotted)

    def get(self, dotted: str) -> Any:
        """The value of a dotted field name (`optim.lr`, or a registered option `optim.perp_grad.rescale`)."""
        parts = dotted.split(".")
        if len(parts) == 3:
            return getattr(self, parts[0]).option(parts[1], parts[2])
        section, _, name = dotted.rpartition(".")
        obj = getattr(self, section) if section else self
        return getattr(obj, name)


def _build_section(key: str, values: Mapping[str, Any]):
    cls = SECTIONS[key]
    values = dict(values)
    if key == "optim":
        _migrate_legacy_optim(values)
    names = {f.name for f in fields(cls)}
    options: dict[str, Any] = _flat_options(key, values.pop("options", {})) if "options" in names else {}
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in names:
            if "options" in names and isinstance(value, Mapping):  # a registered kind's own options
                options |= {f"{name}.{leaf}": v for leaf, v in value.items()}
                continue
            raise ConfigError(f"{key}.{name}", value, f"a field of {key}: " + ", ".join(sorted(names)))
        kwargs[name] = tuple(value) if isinstance(value, list) else value
    if options:
        kwargs["options"] = tuple(options.items())
    return cls(**kwargs)


def _migrate_legacy_optim(values: dict[str, Any]) -> None:
    """Configs saved before ⊥Grad became a registered transform: `perp_grad`, `perp_rescale`."""
    if isinstance(values.get("perp_grad"), Mapping):
        return  # the transform's options table, `perp_grad = {rescale = true}`: current format
    perp = values.pop("perp_grad", False)
    rescale = values.pop("perp_rescale", True)
    if perp:
        values["transforms"] = ["perp_grad", *values.get("transforms", [])]
        values["perp_grad"] = {"rescale": rescale}


def check_registered(cfg: Config) -> Config:
    """`cfg` checked against this process's registrations (a ConfigError names a missing one).

    A config loaded from a saved run keeps kinds that are not registered here; training it, or
    building its model or data, needs them registered again (the notebook cell that did it).
    """
    try:
        return Config.from_dict(cfg.to_dict())
    except ConfigError as err:
        if "a registered" in err.allowed:
            raise ConfigError(
                err.field, err.value, err.allowed + "; the run was made with it: register it in this process first"
            ) from None
        raise


def field_names() -> list[str]:
    """Every dotted field name a Config has, registered options included.

    >>> [n for n in grok.field_names() if n.startswith("optim.")]
    """
    names = [f.name for f in fields(Config) if f.name not in SECTIONS]
    for key, cls in SECTIONS.items():
        names += [f"{key}.{f.name}" for f in fields(cls) if f.name != "options"]
    for key, reg in registry.SECTION_REGISTRIES.items():
        for name in reg.names():
            names += [f"{key}.{name}.{opt}" for opt in reg.get(name).options]
    return names


def is_dynamic(name: str) -> bool:
    """Whether dotted field `name` is a per-member number (changing it never recompiles)."""
    if name in DYNAMIC_FIELDS:
        return True
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "optim" and parts[1] in registry.TRANSFORMS:
        entry = registry.TRANSFORMS.get(parts[1])
        return parts[2] in entry.options and entry.is_dynamic(parts[2])
    return False


def dynamic_fields(cfg: Config) -> tuple[str, ...]:
    """The dynamic fields of `cfg`: the built-in ones and the numeric options of its transforms."""
    extra = []
    for name in cfg.optim.chain:
        entry = registry.TRANSFORMS.get(name, "optim.kind")
        extra += [f"optim.{name}.{opt}" for opt in entry.options if entry.is_dynamic(opt)]
    return DYNAMIC_FIELDS + tuple(extra)


def apply_overrides(cfg: Config, dotted: Mapping[str, Any]) -> Config:
    """Replace dotted fields; an unknown name or bad value raises ConfigError.

    An option of a registered kind that the result does not choose (`optim.grokfast_ema.alpha`
    without `grokfast_ema` in `optim.transforms`) would change nothing: set here, it is an error
    (inside `inert_options_allowed()`, as a sweep's `[set]`, it is kept); options carried over from
    `cfg` for a kind that is no longer chosen are dropped.
    """
    known = field_names()
    sections: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, value in dotted.items():
        if name in ("optim.perp_grad", "optim.perp_rescale"):
            raise ConfigError(
                name,
                value,
                "⊥Grad is the transform 'perp_grad': optim.transforms=['perp_grad'] (optim.perp_grad.rescale)",
            )
        if name not in known:
            raise ConfigError(
                name, value, "a config field (grok.field_names() lists them)", choices=known, misspelt=name
            )
        if isinstance(value, list):
            value = tuple(value)
        parts = name.split(".")
        if len(parts) == 3:
            sections.setdefault(parts[0], {}).setdefault("options", {})[f"{parts[1]}.{parts[2]}"] = value
        elif len(parts) == 2:
            sections.setdefault(parts[0], {})[parts[1]] = value
        else:
            top[name] = value
    keep_inert = _INERT_OPTIONS_OK.get() or _LENIENT.get()
    for key, values in sections.items():
        if "options" in values or key in ("task", "model", "optim"):
            old = dict(getattr(cfg, key).options)
            if not keep_inert:
                active = _chosen(key, values, getattr(cfg, key))
                old = {k: v for k, v in old.items() if k.partition(".")[0] in active}
            values["options"] = tuple((old | values.get("options", {})).items())
    replaced = {k: dataclasses.replace(getattr(cfg, k), **v) for k, v in sections.items()}
    out = dataclasses.replace(cfg, **replaced, **top)
    if not keep_inert:
        _refuse_inert_options(out, dotted)
    return out


def _chosen(section: str, new_values: Mapping[str, Any], old: Any) -> set[str]:
    """The registered kinds a section chooses after an override (for optim: transforms and kind)."""
    kind = new_values.get("kind", old.kind)
    if section != "optim":
        return {kind}
    return {kind, *new_values.get("transforms", old.transforms)}


def _refuse_inert_options(cfg: Config, dotted: Mapping[str, Any]) -> None:
    """A ConfigError for an option set in `dotted` whose kind `cfg` does not choose."""
    for name, value in dotted.items():
        parts = name.split(".")
        if len(parts) != 3:
            continue
        section, owner, _ = parts
        if section == "optim":
            if owner not in cfg.optim.chain:
                chain = list(cfg.optim.transforms)
                raise ConfigError(
                    name,
                    value,
                    f"an option of a transform in the chain; {owner!r} is not in optim.transforms={chain} "
                    f"nor optim.kind={cfg.optim.kind!r}: add it (optim.transforms={[*chain, owner]}) "
                    "or leave the option out",
                )
        elif getattr(cfg, section).kind != owner:
            raise ConfigError(
                name,
                value,
                f"an option of the chosen {section}.kind={getattr(cfg, section).kind!r}; "
                f"set {section}.kind={owner!r} to use it",
            )


# The static config keeps whether dropout is on (rate > 0) as this placeholder rate, so that
# runs without dropout draw no random masks; the rate itself is per member.
DROPOUT_ON = 0.5


def dynamic_defaults(cfg: Config) -> dict[str, Any]:
    """The default value of every dynamic field of `cfg` (what its static part holds)."""
    defaults = Config()
    out = {name: defaults.get(name) for name in DYNAMIC_FIELDS}
    for name in dynamic_fields(cfg)[len(DYNAMIC_FIELDS) :]:
        _, owner, opt = name.split(".")
        out[name] = registry.TRANSFORMS.get(owner).options[opt]
    return out


def split_dynamic(cfg: Config) -> tuple[Config, dict[str, float]]:
    """(static part with dynamic fields at their defaults, dynamic values by dotted name).

    One exception: `model.dropout` stays in the static part as 0 (off) or `DROPOUT_ON`
    (on), so members with and without dropout form separate groups.
    """
    names = dynamic_fields(cfg)
    dyn = {name: cfg.get(name) for name in names}
    if dyn["task.data_seed"] is None:
        dyn["task.data_seed"] = dyn["seed"]
    reset = dynamic_defaults(cfg) | {"description": ""}
    reset["model.dropout"] = DROPOUT_ON if cfg.model.dropout > 0 else 0.0
    static = apply_overrides(cfg, reset)
    return static, dyn


def dict_to_toml(data: Mapping[str, Any]) -> str:
    """Write a two-level dict (top-level scalars, then tables; deeper tables inline) as TOML."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        if isinstance(v, Mapping):  # a registered kind's options, as an inline table
            return "{" + ", ".join(f"{kk} = {fmt(vv)}" for kk, vv in v.items()) + "}"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines = [f"{k} = {fmt(v)}" for k, v in data.items() if not isinstance(v, Mapping) and v is not None]
    for k, v in data.items():
        if isinstance(v, Mapping):
            lines += ["", f"[{k}]"] + [f"{kk} = {fmt(vv)}" for kk, vv in v.items() if vv is not None]
    return "\n".join(lines) + "\n"
