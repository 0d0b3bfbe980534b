"""Running the chosen probes inside the compiled program (docs/architecture.md, "Extending the lab").

For each member, at the end of every log interval (or, for a probe with its own interval, at
the end of every compiled chunk), each probe named in `train.probes` is called with a
`grok.ProbeInputs`; its dict of metrics joins the history. Everything here runs under
`jit(vmap(·))`. A probe's output is checked while the program is traced, before anything
compiles: a dict of arrays (or numbers) with fixed shapes, names that no other probe or the
engine uses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from grok.errors import ConfigError
from grok.forward import Forward, as_metric, loss_terms
from grok.registry import PROBES, ProbeInputs

Array = jax.Array

# What the engine itself logs; a probe may not return these names.
BASE_METRICS = (
    "step",
    "train_loss",
    "test_loss",
    "weight_norm",
    "diverged",
    "train_acc",
    "test_acc",
    "train_acc_clean",
    "train_acc_corrupted",
    "corrupted_true_acc",
    "path_length",
)
_TRACE_ERRORS = (jax.errors.JAXTypeError, jax.errors.JAXIndexError)


def slow_probe_names(cfg) -> tuple[str, ...]:
    """The chosen probes with their own, coarser interval."""
    return tuple(name for name in cfg.train.probes if cfg.probe_every(name) is not None)


def slow_chunk(cfg) -> int | None:
    """Log intervals per compiled chunk imposed by the slow probes (the gcd of their intervals), or None."""
    every = [cfg.probe_every(name) // cfg.train.log_every for name in slow_probe_names(cfg)]
    return math.gcd(*every) if every else None


def _inputs(cfg, spec, fwd: Forward, state, dyn, out_train, per_train, ref) -> ProbeInputs:
    scale, alpha, data = dyn["loss.logit_scale"], dyn["model.alpha"], state.data

    def apply(params, x):
        return fwd.apply(params, state.rest, x, False, scale)[0]

    def train_loss(params):
        return jnp.mean(loss_terms(cfg, spec, apply(params, data.x_train), data.y_train, alpha))

    return ProbeInputs(
        params=state.params,
        params0=state.probe["params0"],
        apply=apply,
        train_loss=train_loss,
        data=data,
        outputs_train=out_train,
        loss_train=per_train,
        step=state.step,
        dyn=dyn,
        config=cfg,
        spec=spec,
        rest=state.rest,
        graphdef=fwd.graphdef,
        ref=ref,
    )


def _checked(name: str, fn, x: ProbeInputs, *, what: str = "metrics") -> Any:
    """Call a probe's function; errors from data-dependent shapes or bad outputs name the probe."""
    try:
        out = fn(x)
    except _TRACE_ERRORS as err:
        first = str(err).strip().splitlines()[0]
        raise ConfigError(
            f"probe {name!r}",
            type(err).__name__,
            "a function whose outputs have shapes fixed by the config (the same for every member and "
            f"any data), computed with jax.numpy on the inputs it is given; JAX said: {first}",
        ) from None
    if what != "metrics":
        return out
    if not isinstance(out, Mapping):
        raise ConfigError(f"probe {name!r}", type(out).__name__, "a dict of metric name -> array")
    metrics = {}
    for key, value in out.items():
        if not isinstance(key, str) or not key:
            raise ConfigError(f"probe {name!r}", key, "metric names that are non-empty strings")
        if isinstance(value, (bool, int, float, np.ndarray, np.generic)) and not isinstance(value, jax.Array):
            value = jnp.asarray(value)
        if not isinstance(value, jax.Array) or not jnp.issubdtype(value.dtype, jnp.number) and value.dtype != bool:
            raise ConfigError(
                f"probe {name!r} metric {key!r}",
                type(value).__name__,
                "a numeric array or number (scalars or fixed shapes)",
            )
        metrics[key] = value
    return metrics


def init_probe_state(cfg, spec, fwd: Forward, state, dyn) -> dict[str, Any]:
    """What the chosen probes compare against later, measured at step 0: θ₀ (if asked for) and each `init`."""
    entries = {name: PROBES.get(name, "train.probes") for name in cfg.train.probes}
    keep_params0 = any(e.initial_params for e in entries.values())
    probe_state = {"params0": state.params if keep_params0 else None, "refs": {}}
    state = state._replace(probe=probe_state)
    needs_init = {name: e for name, e in entries.items() if e.init is not None}
    if needs_init:
        out_train, _ = fwd.apply(state.params, state.rest, state.data.x_train, False, dyn["loss.logit_scale"])
        per_train = loss_terms(cfg, spec, out_train, state.data.y_train, dyn["model.alpha"])
        for name, entry in needs_init.items():
            x = _inputs(cfg, spec, fwd, state, dyn, out_train, per_train, None)
            probe_state["refs"][name] = _checked(name, entry.init, x, what="init")
    return probe_state


def _run(cfg, spec, fwd, state, dyn, out_train, per_train, names) -> dict[str, Array]:
    metrics: dict[str, Array] = {}
    owner: dict[str, str] = {}
    for name in names:
        entry = PROBES.get(name, "train.probes")
        x = _inputs(cfg, spec, fwd, state, dyn, out_train, per_train, state.probe["refs"].get(name))
        for key, value in _checked(name, entry.fn, x).items():
            if key in BASE_METRICS or key in owner:
                taken = f"probe {owner[key]!r}" if key in owner else "the engine"
                raise ConfigError(f"probe {name!r} metric", key, f"a name not already logged by {taken}")
            owner[key] = name
            metrics[key] = as_metric(cfg, value)
    return metrics


def interval_probes(cfg, spec, fwd, state, dyn, out_train, per_train) -> dict[str, Array]:
    """Probes measured at every log interval."""
    slow = slow_probe_names(cfg)
    names = [name for name in cfg.train.probes if name not in slow]
    return _run(cfg, spec, fwd, state, dyn, out_train, per_train, names)


def slow_probes(cfg, spec, fwd, state, dyn) -> dict[str, Array]:
    """Probes with their own interval, measured at the end of each chunk."""
    return probes_at(cfg, spec, fwd, state, dyn, slow_probe_names(cfg))


def probes_at(cfg, spec, fwd, state, dyn, names) -> dict[str, Array]:
    """The probes `names` at the member's current state (whatever their interval)."""
    if not names:
        return {}
    out_train, _ = fwd.apply(state.params, state.rest, state.data.x_train, False, dyn["loss.logit_scale"])
    per_train = loss_terms(cfg, spec, out_train, state.data.y_train, dyn["model.alpha"])
    return _run(cfg, spec, fwd, state, dyn, out_train, per_train, names)
