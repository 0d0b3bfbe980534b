"""What one member is made of: its data and its model, built from the registries.

Shared by the engine (which compiles them), `grok.sizing` (which shapes them abstractly)
and `Run` (which rebuilds a member's network and data after training).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

import tasks
from grok import registry
from grok.config import Config, dynamic_defaults
from grok.lazy_import import nnx

Array = jax.Array


def dtype_of(name: str) -> jnp.dtype:
    return jnp.dtype(name)


def registration_tokens(cfg: Config) -> tuple[int, ...]:
    """The registry tokens of everything `cfg` uses: compiled programs are cached on them, so a
    re-registered probe, transform, task or model is used by the next run."""
    return (
        registry.TASKS.token(cfg.task.kind),
        registry.MODELS.token(cfg.model.kind),
        *(registry.TRANSFORMS.token(name) for name in cfg.optim.chain),
        *(registry.PROBES.token(name) for name in cfg.train.probes),
    )


def registration_fingerprints(cfg: Config) -> dict[str, dict[str, str]]:
    """What identifies each registration `cfg` uses (`grok.registry.fingerprint`), by registry and
    name: a run records it, so that `grok.probe_history` notices a probe registered anew with
    another formula."""
    return {
        "tasks": {cfg.task.kind: registry.TASKS.item(cfg.task.kind).fingerprint},
        "models": {cfg.model.kind: registry.MODELS.item(cfg.model.kind).fingerprint},
        "transforms": {name: registry.TRANSFORMS.item(name).fingerprint for name in cfg.optim.chain},
        "probes": {name: registry.PROBES.item(name).fingerprint for name in cfg.train.probes},
    }


# --------------------------------------------------------------------------- model pieces
def build_data(cfg: Config, data_seed: Any, corrupt_fraction: Any) -> tasks.Dataset:
    """A member's data from its registered task (`data_seed`, ξ may be traced)."""
    build = registry.TASKS.get(cfg.task.kind, "task.kind").build
    return build(cfg.task, jax.random.key(data_seed), corrupt_fraction, dtype_of(cfg.train.param_dtype))


def build_member_model(cfg: Config, spec: tasks.TaskSpec, key: Array, dyn: Mapping[str, Any]) -> nnx.Module:
    """The registered model of `cfg` with a member's dynamic numbers `dyn` (may be traced)."""
    from grok.models import build_model  # the networks (and Flax) are imported when first built

    k_params, k_dropout = jax.random.split(key)
    return build_model(
        cfg.model,
        spec,
        rngs=nnx.Rngs(params=k_params, dropout=k_dropout),
        init_scale=dyn["model.init_scale"],
        dropout=dyn["model.dropout"],
        alpha=dyn["model.alpha"],
        epsilon=dyn["model.epsilon"],
        param_dtype=dtype_of(cfg.train.param_dtype),
    )


@functools.lru_cache(maxsize=64)
def _abstract_model(cfg: Config, tokens: tuple[int, ...]) -> nnx.Module:
    del tokens  # part of the cache key only
    return nnx.eval_shape(lambda: build_member_model(cfg, cfg.spec, jax.random.key(0), dynamic_defaults(cfg)))


def abstract_model(cfg: Config) -> nnx.Module:
    """The model of a static config as abstract shapes (cached on the config and its registrations)."""
    return _abstract_model(cfg, registration_tokens(cfg))


def graphdef_of(cfg: Config) -> nnx.GraphDef:
    """The static model structure of a group (identical for every member)."""
    graphdef, _, _ = nnx.split(_abstract_model(cfg, registration_tokens(cfg)), nnx.Param, ...)
    return graphdef
