"""Grokfast [G] as optax transforms: amplify the slow part of the gradient (docs/formulas.md §4.7).

Registered as `grokfast_ema` (exponential moving average, α and λ dynamic) and `grokfast_ma`
(moving average over a window of w gradients; w static since it sizes the buffer, λ dynamic).
Chain them before the base optimizer: `optim.transforms = ["grokfast_ema"]` with
`optim.kind = "adamw"` is Grokfast-EMA AdamW; `["perp_grad", "grokfast_ema"]` filters ⊥Grad's
gradient.
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


class EmaState(NamedTuple):
    """The filtered gradient h (one tensor per parameter) and how many gradients it has seen."""

    h: optax.Updates
    count: Array


class MaState(NamedTuple):
    """The last `window` gradients (a ring buffer [window, *shape] per parameter) and the count."""

    buffer: optax.Updates
    count: Array


def grokfast_ema(alpha: float = 0.98, lamb: float = 2.0) -> optax.GradientTransformation:
    """Grokfast-EMA [G]: h ← αh + (1−α)g, then g ← g + λh, per parameter.

    As in the released code, h starts at the first gradient (so h₁ = g₁, not (1−α)g₁).
    α in [0, 1) and λ may be traced scalars (one per vmapped member).
    """

    def init_fn(params: optax.Params) -> EmaState:
        return EmaState(jax.tree.map(jnp.zeros_like, params), jnp.zeros((), jnp.int32))

    def update_fn(updates: optax.Updates, state: EmaState, params: optax.Params | None = None):
        del params
        first = state.count == 0

        def filt(g, h):
            return jnp.where(first, g, alpha * h + (1 - alpha) * g).astype(g.dtype)

        h = jax.tree.map(filt, updates, state.h)
        out = jax.tree.map(lambda g, hh: (g + lamb * hh).astype(g.dtype), updates, h)
        return out, EmaState(h, state.count + 1)

    return optax.GradientTransformation(init_fn, update_fn)


def grokfast_ma(window: int = 100, lamb: float = 5.0, warmup: bool = True) -> optax.GradientTransformation:
    """Grokfast-MA [G]: g ← g + λ·mean(last `window` gradients, g included), per parameter.

    With `warmup` (the released default) g passes unchanged until the buffer holds `window`
    gradients; without it the mean is over the gradients seen so far. The buffer holds
    `window` copies of the parameters.
    """

    def init_fn(params: optax.Params) -> MaState:
        buf = jax.tree.map(lambda p: jnp.zeros((window, *p.shape), p.dtype), params)
        return MaState(buf, jnp.zeros((), jnp.int32))

    def update_fn(updates: optax.Updates, state: MaState, params: optax.Params | None = None):
        del params
        slot = state.count % window
        seen = jnp.minimum(state.count + 1, window)
        on = (seen == window) if warmup else jnp.ones((), jnp.bool_)
        buffer = jax.tree.map(lambda b, g: b.at[slot].set(g.astype(b.dtype)), state.buffer, updates)

        def amplify(g, b):
            mean = jnp.sum(b, axis=0) / seen.astype(b.dtype)
            return jnp.where(on, g + lamb * mean, g).astype(g.dtype)

        out = jax.tree.map(amplify, updates, buffer)
        return out, MaState(buffer, state.count + 1)

    return optax.GradientTransformation(init_fn, update_fn)


def _check_ema(values: Mapping[str, Any]) -> None:
    if not 0.0 <= values["alpha"] < 1.0:
        raise ConfigError("optim.grokfast_ema.alpha", values["alpha"], "a number in [0, 1)")


def _check_ma(values: Mapping[str, Any]) -> None:
    if values["window"] < 1:
        raise ConfigError("optim.grokfast_ma.window", values["window"], "an integer >= 1")


register_transform("grokfast_ema", grokfast_ema, check=_check_ema, alpha=0.98, lamb=2.0)
register_transform("grokfast_ma", grokfast_ma, static=("window",), check=_check_ma, window=100, lamb=5.0, warmup=True)
