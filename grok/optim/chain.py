"""The optimizer of a config: its registered transforms chained in order, hyperparameters injected.

Each transform's numeric hyperparameters live in its optimizer state as arrays
(`optax.inject_hyperparams`), so they may be traced scalars — one per vmapped member — and
changing them never recompiles. Static ones (bools, strings, sizes) are passed as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optax
from jax import Array

from grok.config import DYNAMIC_FIELDS, OptimConfig
from grok.registry import TRANSFORMS

Scalar = float | Array


def build_chain(chain: Sequence[str], values: Mapping[str, Any]) -> optax.GradientTransformation:
    """The transforms named in `chain`, in order, with every hyperparameter taken from `values`
    by dotted name (`optim.lr` for shared fields, `optim.<transform>.<option>` for their own)."""
    parts = []
    for name in chain:
        entry = TRANSFORMS.get(name, "optim.kind")
        kwargs: dict[str, Any] = {}
        static: list[str] = []
        for field in entry.shared:
            kwargs[field] = values[f"optim.{field}"]
            if f"optim.{field}" not in DYNAMIC_FIELDS:
                static.append(field)
        for opt in entry.options:
            kwargs[opt] = values[f"optim.{name}.{opt}"]
            if not entry.is_dynamic(opt):
                static.append(opt)
        kwargs = {k: float(v) if k not in static and isinstance(v, int) else v for k, v in kwargs.items()}
        if len(static) == len(kwargs):
            parts.append(entry.factory(**kwargs))
        else:
            parts.append(optax.inject_hyperparams(entry.factory, static_args=tuple(static))(**kwargs))
    return parts[0] if len(parts) == 1 else optax.chain(*parts)


def optimizer_from_config(
    optim_cfg: OptimConfig, values: Mapping[str, Scalar] | None = None
) -> optax.GradientTransformation:
    """The chain `optim_cfg.transforms` + `optim_cfg.kind`; numbers in `values` (keyed "optim.lr",
    "optim.<transform>.<option>", …, e.g. one member's traced values) replace the config's."""
    values = dict(values or {})
    merged: dict[str, Any] = {}
    for name in optim_cfg.chain:
        entry = TRANSFORMS.get(name, "optim.kind")
        for field in entry.shared:
            merged[f"optim.{field}"] = values.get(f"optim.{field}", getattr(optim_cfg, field))
        for opt in entry.options:
            key = f"optim.{name}.{opt}"
            merged[key] = values.get(key, optim_cfg.option(name, opt))
    return build_chain(optim_cfg.chain, merged)


def make_optimizer(
    kind: str,
    *,
    lr: Scalar,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 0.0,
    momentum: Scalar = 0.0,
    nesterov: bool = False,
    transforms: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
) -> optax.GradientTransformation:
    """A base optimizer ("adamw", "adam", "sgd" or any registered transform) after `transforms`.

    Numeric arguments may be traced scalars (one per vmapped member). `options` gives the
    transforms' own hyperparameters by "name.option" (e.g. {"perp_grad.rescale": False}).
    `make_optimizer("adamw", lr=1e-2, transforms=["perp_grad"])` is ⊥AdamW [P].
    """
    cfg = OptimConfig(kind=kind, transforms=tuple(transforms))
    values = {
        "optim.lr": lr,
        "optim.b1": b1,
        "optim.b2": b2,
        "optim.eps": eps,
        "optim.weight_decay": weight_decay,
        "optim.momentum": momentum,
        "optim.nesterov": nesterov,
    }
    values |= {f"optim.{k}": v for k, v in (options or {}).items()}
    return optimizer_from_config(cfg, values)


def hyperparams(opt_state: Any) -> dict[str, Array]:
    """The injected hyperparameters in an optimizer state, by name (`lr`, `b1`, …; a transform's
    own by option name), merged over the chain; under vmap each is one value per member."""
    found: dict[str, Array] = {}

    def visit(node: Any) -> None:
        if isinstance(node, (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)):
            found.update(node.hyperparams)
            visit(node.inner_state)
        elif isinstance(node, (tuple, list)):
            for child in node:
                visit(child)

    visit(opt_state)
    return found
