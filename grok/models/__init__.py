"""Networks of docs/formulas.md §3 (Flax NNX): MLP [P], quadratic MLP and its analytic solution [D],
α-scaled two-layer net [K], transformer.

The engine splits a built model once into `(graphdef, params, rest)` with
`nnx.split(model, nnx.Param, ...)`: `params` are trained; `rest` holds `Hyper` values,
`InitParam` copies, BatchNorm `BatchStat`s and the dropout RNG stream, and is threaded
through the forward pass (dropout advances the stream, BatchNorm updates its statistics).

The built-in kinds are registered here with `grok.register_model`, as a user's notebook would.
Their checks are plain Python; their networks (`_mlp.py`, `_alpha_net.py`, `_transformer.py`) and
Flax itself are imported when a model is first built (`_Deferred`), so `import grok` and configs
need no Flax. The names below (`grok.models.MLP`, …) import their module on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from grok.errors import ConfigError
from grok.registry import register_model

_EXPORTS = {
    "MLP": "_mlp",
    "QuadraticMLP": "_mlp",
    "apply_neuron_mask": "_mlp",
    "neuron_weights": "_mlp",
    "AlphaNet": "_alpha_net",
    "Transformer": "_transformer",
    "analytic_solution": "_api",
    "build_model": "_api",
    "param_count": "_api",
    "Hyper": "_common",
    "InitParam": "_common",
    "doshi_std": "_common",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"grok.models.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'grok.models' has no attribute {name!r}")


class _Deferred:
    """`module.name`, imported when first called (its identity, not its source, fingerprints it)."""

    def __init__(self, module: str, name: str):
        self.__module__, self.__qualname__, self.__name__ = f"grok.models.{module}", name, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(self.__module__), self.__qualname__)(*args, **kwargs)


# --------------------------------------------------------------------------- checks (host, before compiling)
def _check_mlp(cfg: Any) -> None:
    del cfg  # any task: token pairs (modular) or dense inputs (parity, polynomial)


def _check_quadratic(cfg: Any) -> None:
    if not cfg.spec.n_tokens:
        raise ConfigError(
            "model.kind", "quadratic_mlp", f"a task with token-pair inputs, not task.kind={cfg.task.kind!r}"
        )
    if len(cfg.model.widths) != 1:
        raise ConfigError("model.widths", cfg.model.widths, "exactly one width N for the quadratic MLP")


def _check_alpha_net(cfg: Any) -> None:
    spec = cfg.spec
    if spec.n_tokens or spec.n_classes:
        raise ConfigError(
            "model.kind", "alpha_net", f"a regression task with dense inputs, not task.kind={cfg.task.kind!r}"
        )
    if len(cfg.model.widths) != 1:
        raise ConfigError("model.widths", cfg.model.widths, "exactly one width N for the α-net")


def _check_transformer(cfg: Any) -> None:
    if not cfg.spec.n_tokens:
        raise ConfigError(
            "model.kind", "transformer", f"a task with token-pair inputs, not task.kind={cfg.task.kind!r}"
        )
    layers = cfg.model.option("transformer", "layers")
    if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= 12:
        raise ConfigError("model.transformer.layers", layers, "an integer from 1 to 12 (transformer blocks)")
    if cfg.model.d_model % cfg.model.n_heads:
        raise ConfigError("model.n_heads", cfg.model.n_heads, f"a divisor of model.d_model={cfg.model.d_model}")


def _transformer_activations(cfg: Any) -> int:
    """Per example, its three positions [a, b, =]: 6·d_model (embedding, LayerNorm, q, k, v,
    residual), the MLP's d_mlp and 3 attention scores per head, in every block."""
    m = cfg.model
    return 3 * (6 * m.d_model + m.d_mlp + 3 * m.n_heads) * m.option("transformer", "layers")


# --------------------------------------------------------------------------- registrations
register_model(
    "mlp",
    build=_Deferred("_mlp", "_build_mlp"),
    fields=("widths", "activation", "use_bias", "init", "init_scale", "dropout", "batchnorm"),
    check=_check_mlp,
    neurons=_Deferred("_mlp", "neuron_weights"),
    prune=_Deferred("_mlp", "apply_neuron_mask"),
)
register_model(
    "quadratic_mlp",
    build=_Deferred("_mlp", "_build_quadratic"),
    fields=("widths", "init_scale", "dropout", "batchnorm"),
    check=_check_quadratic,
    neurons=_Deferred("_mlp", "neuron_weights"),
    prune=_Deferred("_mlp", "apply_neuron_mask"),
)
register_model(
    "alpha_net",
    build=_Deferred("_alpha_net", "_build_alpha_net"),
    fields=("widths", "init_scale", "alpha", "epsilon", "train_readout", "centered"),
    check=_check_alpha_net,
    loss_over_alpha2=True,
)
register_model(
    "transformer",
    build=_Deferred("_transformer", "_build_transformer"),
    fields=("init", "use_bias", "init_scale", "dropout", "d_model", "n_heads", "d_mlp", "layernorm"),
    check=_check_transformer,
    activations=_transformer_activations,
    layers=1,
)

__all__ = sorted(_EXPORTS)
