"""How a group's network is applied and scored: shared by the engine and the probes.

`Forward` holds the static model structure (an NNX graphdef); `apply` merges a member's
parameters and other state into it. `loss_terms` is the per-example training loss.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from grok import losses
from grok.lazy_import import nnx
from grok.registry import MODELS

MEMBER_BATCH_AXIS = "member_batch"  # the engine's vmap over a group's members, named so a layer can read its size

Array = jax.Array


class Forward(NamedTuple):
    """Model application for one group: `apply(params, rest, x, train, output_scale) -> (outputs, rest)`."""

    graphdef: nnx.GraphDef

    def apply(self, params, rest, x: Array, train: bool, output_scale: Array) -> tuple[Array, Any]:
        model = nnx.merge(self.graphdef, params, rest, copy=True)
        out = model(x, train=train)
        _, _, new_rest = nnx.split(model, nnx.Param, ...)
        return out * output_scale.astype(out.dtype), new_rest


def loss_terms(cfg, spec, outputs: Array, targets: Array, alpha: Array) -> Array:
    """Per-example loss in the loss dtype; divided by α² for models registered so (the α-net [K])."""
    per = losses.per_example_loss(cfg.loss.kind, outputs, targets, n_classes=spec.n_classes, dtype=cfg.loss.dtype)
    if MODELS.get(cfg.model.kind, "model.kind").loss_over_alpha2:
        per = per / jnp.square(alpha).astype(per.dtype)
    return per


def metric_dtype(cfg) -> jnp.dtype:
    """Metrics are stored in float64 for float64 runs, else float32."""
    return jnp.dtype(jnp.float64 if cfg.uses_float64 else jnp.float32)


def as_metric(cfg, value: Array) -> Array:
    """A metric in its stored dtype: booleans and int32 as they are, floats in `metric_dtype`."""
    if value.dtype in (jnp.bool_, jnp.int32):
        return value
    return value.astype(metric_dtype(cfg))


def tree_norm(tree) -> Array:
    """‖θ‖ over every leaf of a pytree."""
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in leaves))
