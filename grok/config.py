"""Run configuration: frozen dataclasses, validated on construction (DESIGN.md §1, §8).

A `Config` is read top to bottom: task → model → loss → optim → train. Fields are
*static* (they change shapes or code: one compiled program per distinct value) or
*dynamic* (numbers stacked along the member axis; changing them never recompiles).
`DYNAMIC_FIELDS` lists the dynamic ones by dotted name.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from grok.errors import ConfigError

TASK_KINDS = ("modular", "polynomial", "parity")
MODULAR_OPS = ("add", "sub", "mul", "div", "x2y2", "x2xyy2", "x3xy")
POLY_TARGETS = ("quadratic", "hermite")
MODEL_KINDS = ("mlp", "quadratic_mlp", "alpha_net", "transformer")
INITS = ("torch", "normal", "doshi")
ACTIVATIONS = ("relu", "quadratic", "gelu", "tanh")
LOSS_KINDS = ("softmax_ce", "stablemax_ce", "mse_onehot", "mse")
DTYPES = ("float16", "float32", "float64")
OPTIM_KINDS = ("adamw", "adam", "sgd")
PROBE_FAMILIES = ("collapse", "ntk", "neurons")

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


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(name, value, "one of " + ", ".join(allowed))


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(name, value, f"an integer >= {minimum}")


def _check_real(name: str, value: object, lo: float, hi: float, *, open_lo: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if open_lo else value >= lo) and value <= hi
    if not ok:
        bracket = "(" if open_lo else "["
        raise ConfigError(name, value, f"a number in {bracket}{lo}, {hi}]")


@dataclass(frozen=True)
class TaskConfig:
    """What to learn (DESIGN.md §2)."""

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

    def __post_init__(self) -> None:
        _check_choice("task.kind", self.kind, TASK_KINDS)
        _check_choice("task.op", self.op, MODULAR_OPS)
        _check_int("task.p", self.p, 2)
        if self.kind == "modular" and self.op == "div" and not _is_prime(self.p):
            raise ConfigError("task.p", self.p, "a prime when task.op is 'div'")
        _check_real("task.train_fraction", self.train_fraction, 0.0, 1.0, open_lo=True)
        _check_real("task.corrupt_fraction", self.corrupt_fraction, 0.0, 1.0)
        if self.data_seed is not None:
            _check_int("task.data_seed", self.data_seed, 0)
        _check_int("task.dim", self.dim, 1)
        _check_int("task.n_train", self.n_train, 1)
        _check_int("task.n_test", self.n_test, 1)
        _check_choice("task.target", self.target, POLY_TARGETS)
        _check_int("task.hermite_degree", self.hermite_degree, 1)
        _check_int("task.parity_k", self.parity_k, 1)
        _check_int("task.parity_noise", self.parity_noise, 0)
        _check_int("task.parity_samples", self.parity_samples, 2)
        if self.kind == "parity" and self.parity_samples > 2 ** (self.parity_k + self.parity_noise):
            raise ConfigError(
                "task.parity_samples",
                self.parity_samples,
                f"at most 2**(parity_k + parity_noise) = {2 ** (self.parity_k + self.parity_noise)}",
            )
        if self.kind == "modular":
            n_train = math.floor(self.train_fraction * self.n_pairs)
            if n_train < 1 or n_train >= self.n_pairs:
                raise ConfigError(
                    "task.train_fraction",
                    self.train_fraction,
                    f"a fraction leaving at least one train and one test pair of {self.n_pairs}",
                )

    @property
    def n_pairs(self) -> int:
        """Number of (a, b) pairs of the modular task (b ≠ 0 for div)."""
        return self.p * (self.p - 1) if self.op == "div" else self.p * self.p


@dataclass(frozen=True)
class ModelConfig:
    """Which network (DESIGN.md §3)."""

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

    def __post_init__(self) -> None:
        _check_choice("model.kind", self.kind, MODEL_KINDS)
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
        if self.kind == "transformer" and self.d_model % self.n_heads:
            raise ConfigError("model.n_heads", self.n_heads, f"a divisor of model.d_model={self.d_model}")


@dataclass(frozen=True)
class LossConfig:
    """Training loss (DESIGN.md §4)."""

    kind: str = "softmax_ce"
    dtype: str = "float32"  # dtype the loss (and the SC probe) is computed in
    logit_scale: float = 1.0  # outputs are multiplied by it

    def __post_init__(self) -> None:
        _check_choice("loss.kind", self.kind, LOSS_KINDS)
        _check_choice("loss.dtype", self.dtype, DTYPES)
        _check_real("loss.logit_scale", self.logit_scale, 0.0, 1e12, open_lo=True)


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer (DESIGN.md §4). `perp_grad` chains ⊥Grad before it."""

    kind: str = "adamw"
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd only
    nesterov: bool = False
    perp_grad: bool = False
    perp_rescale: bool = True  # rescale g⊥ to ‖g‖ (the released code) [P]
    batch_size: int | None = None  # None: full batch

    def __post_init__(self) -> None:
        _check_choice("optim.kind", self.kind, OPTIM_KINDS)
        _check_real("optim.lr", self.lr, 0.0, 1e12, open_lo=True)
        _check_real("optim.b1", self.b1, 0.0, 1.0)
        _check_real("optim.b2", self.b2, 0.0, 1.0)
        _check_real("optim.eps", self.eps, 0.0, 1.0)
        _check_real("optim.weight_decay", self.weight_decay, 0.0, 1e6)
        _check_real("optim.momentum", self.momentum, 0.0, 1.0)
        if self.batch_size is not None:
            _check_int("optim.batch_size", self.batch_size, 1)


@dataclass(frozen=True)
class TrainConfig:
    """How long, how often to log, in which precision, which probes."""

    steps: int = 1000
    log_every: int = 10
    param_dtype: str = "float32"
    probes: tuple[str, ...] = ()
    ntk_every: int | None = None  # None: every log_every; else a multiple of log_every
    ntk_subset: int = 64  # probe examples for the empirical NTK
    ipr_histogram_bins: int = 20

    def __post_init__(self) -> None:
        _check_int("train.steps", self.steps, 1)
        _check_int("train.log_every", self.log_every, 1)
        if self.steps % self.log_every:
            raise ConfigError("train.steps", self.steps, f"a multiple of train.log_every={self.log_every}")
        _check_choice("train.param_dtype", self.param_dtype, DTYPES)
        if isinstance(self.probes, (list, str)):
            probes = (self.probes,) if isinstance(self.probes, str) else tuple(self.probes)
            object.__setattr__(self, "probes", probes)
        for i, name in enumerate(self.probes):
            _check_choice(f"train.probes[{i}]", name, PROBE_FAMILIES)
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


SECTIONS = {
    "task": TaskConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "train": TrainConfig,
}


@dataclass(frozen=True)
class Config:
    """A whole run: task → model → loss → optim → train, and the seed."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0)
        classification = self.task.kind in ("modular", "parity")
        if classification and self.loss.kind == "mse":
            raise ConfigError("loss.kind", "mse", "softmax_ce, stablemax_ce or mse_onehot for a classification task")
        if not classification and self.loss.kind != "mse":
            raise ConfigError("loss.kind", self.loss.kind, f"mse for task.kind={self.task.kind!r}")
        if self.model.kind == "alpha_net" and self.task.kind != "polynomial":
            raise ConfigError("model.kind", "alpha_net", "mlp, quadratic_mlp or transformer for a classification task")
        if self.model.kind in ("quadratic_mlp", "transformer") and self.task.kind != "modular":
            raise ConfigError("model.kind", self.model.kind, "mlp or alpha_net for task.kind=" + repr(self.task.kind))
        if self.model.kind == "quadratic_mlp" and len(self.model.widths) != 1:
            raise ConfigError("model.widths", self.model.widths, "exactly one width N for the quadratic MLP")
        if self.model.kind == "alpha_net" and len(self.model.widths) != 1:
            raise ConfigError("model.widths", self.model.widths, "exactly one width N for the α-net")
        if self.optim.batch_size is not None and self.optim.batch_size > self.n_train:
            raise ConfigError(
                "optim.batch_size", self.optim.batch_size, f"at most the {self.n_train} training examples"
            )
        if "ntk" in self.train.probes and self.train.ntk_subset > self.n_train:
            raise ConfigError(
                "train.ntk_subset", self.train.ntk_subset, f"at most the {self.n_train} training examples"
            )
        if "neurons" in self.train.probes and (
            self.task.kind != "modular" or self.model.kind not in ("mlp", "quadratic_mlp")
        ):
            raise ConfigError(
                "train.probes",
                list(self.train.probes),
                "'neurons' only with task.kind='modular' and model.kind 'mlp' or 'quadratic_mlp' "
                f"(got task.kind={self.task.kind!r}, model.kind={self.model.kind!r})",
            )

    # ----------------------------------------------------------------- derived
    @property
    def n_train(self) -> int:
        """Number of training examples (static)."""
        t = self.task
        if t.kind == "modular":
            return math.floor(t.train_fraction * t.n_pairs)
        if t.kind == "polynomial":
            return t.n_train
        return math.floor(t.train_fraction * t.parity_samples)

    @property
    def n_intervals(self) -> int:
        """Number of logged points, the initial one included."""
        return self.train.steps // self.train.log_every + 1

    @property
    def uses_float64(self) -> bool:
        return "float64" in (self.train.param_dtype, self.loss.dtype)

    # ------------------------------------------------------------- conversion
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists): JSON and TOML friendly."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                out[f.name] = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(value).items()}
            else:
                out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """Build from a nested dict; unknown sections or fields are an error."""
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

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read a TOML file: optional `preset = NAME`, then sections overriding it."""
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        return config_from_mapping(data)

    def to_toml(self) -> str:
        return dict_to_toml(self.to_dict())

    def override(self, **dotted: Any) -> Config:
        """A copy with dotted fields replaced (`optim.lr=1e-3`), re-validated."""
        return apply_overrides(self, dotted)

    def get(self, dotted: str) -> Any:
        """The value of a dotted field name."""
        section, _, name = dotted.rpartition(".")
        obj = getattr(self, section) if section else self
        return getattr(obj, name)


def _build_section(key: str, values: Mapping[str, Any]):
    cls = SECTIONS[key]
    names = {f.name for f in fields(cls)}
    for name, value in values.items():
        if name not in names:
            raise ConfigError(f"{key}.{name}", value, f"a field of {key}: " + ", ".join(sorted(names)))
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**values)


def field_names() -> list[str]:
    """Every dotted field name a Config has."""
    names = [f.name for f in fields(Config) if f.name not in SECTIONS]
    for key, cls in SECTIONS.items():
        names += [f"{key}.{f.name}" for f in fields(cls)]
    return names


def apply_overrides(cfg: Config, dotted: Mapping[str, Any]) -> Config:
    """Replace dotted fields; an unknown name or bad value raises ConfigError."""
    known = field_names()
    sections: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, value in dotted.items():
        if name not in known:
            raise ConfigError(
                name, value, "a config field such as " + ", ".join(known[:6]) + ", … (see grok.config.field_names())"
            )
        section, _, leaf = name.rpartition(".")
        if isinstance(value, list):
            value = tuple(value)
        if section:
            sections.setdefault(section, {})[leaf] = value
        else:
            top[leaf] = value
    replaced = {k: dataclasses.replace(getattr(cfg, k), **v) for k, v in sections.items()}
    return dataclasses.replace(cfg, **replaced, **top)


def config_from_mapping(data: Mapping[str, Any]) -> Config:
    """A config file's contents: optional `preset`, then sections and dotted `set`."""
    from grok.presets import preset

    data = dict(data)
    base = preset(data.pop("preset")) if "preset" in data else Config()
    dotted = dict(data.pop("set", {}))
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, Mapping):
            for leaf, v in value.items():
                dotted[f"{key}.{leaf}"] = v
        else:
            dotted[key] = value
    return apply_overrides(base, dotted)


# The static config keeps whether dropout is on (rate > 0) as this placeholder rate, so that
# runs without dropout draw no random masks; the rate itself is per member.
DROPOUT_ON = 0.5


def split_dynamic(cfg: Config) -> tuple[Config, dict[str, float]]:
    """(static part with dynamic fields at their defaults, dynamic values by dotted name).

    One exception: `model.dropout` stays in the static part as 0 (off) or `DROPOUT_ON`
    (on), so members with and without dropout form separate groups.
    """
    defaults = Config()
    dyn = {name: cfg.get(name) for name in DYNAMIC_FIELDS}
    if dyn["task.data_seed"] is None:
        dyn["task.data_seed"] = dyn["seed"]
    reset = {name: defaults.get(name) for name in DYNAMIC_FIELDS} | {"description": ""}
    reset["model.dropout"] = DROPOUT_ON if cfg.model.dropout > 0 else 0.0
    static = apply_overrides(cfg, reset)
    return static, dyn


def dict_to_toml(data: Mapping[str, Any]) -> str:
    """Write a two-level dict (top-level scalars, then tables) as TOML."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines = [f"{k} = {fmt(v)}" for k, v in data.items() if not isinstance(v, Mapping) and v is not None]
    for k, v in data.items():
        if isinstance(v, Mapping):
            lines += ["", f"[{k}]"] + [f"{kk} = {fmt(vv)}" for kk, vv in v.items() if vv is not None]
    return "\n".join(lines) + "\n"
