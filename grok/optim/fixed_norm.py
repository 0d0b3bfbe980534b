"""Omnigrok's fixed weight norm [O] as an optax transform, registered as `fixed_norm`
(docs/formulas.md §4.8).

After each step the whole network is rescaled so that its global L2 norm (over every parameter
tensor together, as in the released notebooks) equals `multiple` × the norm at initialization.
It is registered with `after_base=True`: `optim.transforms = ["fixed_norm"]` applies it to the
step the base optimizer produced. Weight decay also changes the norm, so a config with both is
refused unless `optim.fixed_norm.allow_weight_decay = true`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import Array

from grok.errors import ConfigError
from grok.registry import register_transform


class FixedNormState(NamedTuple):
    """‖θ₀‖, the global norm of the parameters the optimizer was initialized with."""

    norm0: Array


def _global_norm(tree: Any) -> Array:
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


def fixed_norm(multiple: float = 1.0, allow_weight_decay: bool = False, weight_decay: float = 0.0):
    """[O]: the step u becomes u' with ‖θ + u'‖ = multiple·‖θ₀‖: θ + u' = (θ + u)·multiple·‖θ₀‖/‖θ + u‖.

    The norm is global (all tensors together). `multiple` may be a traced scalar. Needs `params`
    in `update`. `weight_decay` and `allow_weight_decay` are only read by the config check.
    """
    del allow_weight_decay, weight_decay

    def init_fn(params: optax.Params) -> FixedNormState:
        return FixedNormState(_global_norm(params))

    def update_fn(updates: optax.Updates, state: FixedNormState, params: optax.Params | None = None):
        if params is None:
            raise ValueError("fixed_norm needs the parameters: call update(updates, state, params)")
        new = jax.tree.map(lambda p, u: p.astype(jnp.float32) + u.astype(jnp.float32), params, updates)
        norm = _global_norm(new)
        scale = jnp.where(norm > 0, multiple * state.norm0 / jnp.where(norm > 0, norm, 1.0), 1.0)
        out = jax.tree.map(lambda n, p, u: (n * scale - p.astype(jnp.float32)).astype(u.dtype), new, params, updates)
        return out, state

    return optax.GradientTransformation(init_fn, update_fn)


def _check(values: Mapping[str, Any]) -> None:
    if not values["multiple"] > 0:
        raise ConfigError("optim.fixed_norm.multiple", values["multiple"], "a positive number (× the initial norm)")
    if values["weight_decay"] != 0 and not values["allow_weight_decay"]:
        raise ConfigError(
            "optim.weight_decay",
            values["weight_decay"],
            "0 with optim.transforms=['fixed_norm'] (weight decay shrinks the norm the transform fixes); "
            "set optim.fixed_norm.allow_weight_decay=true to combine them anyway",
        )


register_transform(
    "fixed_norm",
    fixed_norm,
    shared=("weight_decay",),
    check=_check,
    after_base=True,
    multiple=1.0,
    allow_weight_decay=False,
)
