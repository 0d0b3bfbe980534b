"""Per-example losses and accuracy (docs/formulas.md §4). Pure and jittable.

StableMax [P]: s(x) = x + 1 for x ≥ 0, 1/(1 − x) for x < 0 and
StableMax(x)_i = s(x_i) / Σ_j s(x_j). Softmax CE, StableMax CE, MSE on one-hot targets [D]
and MSE for regression [K] are computed in a chosen *loss dtype* (float16 / float32 /
float64): the logits are cast to it first, so Softmax Collapse [P] happens where the paper
says it does. Note that XLA on CPU flushes subnormals to zero, so float32 `exp(-100)` is 0
under jit (3.8e-44 in NumPy): the loss dtype is a user-visible precision setting.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

LOSS_KINDS = ("softmax_ce", "stablemax_ce", "mse_onehot", "mse")
LOSS_DTYPES = {"float16": jnp.float16, "float32": jnp.float32, "float64": jnp.float64}


def stablemax_terms(x: Array) -> Array:
    """s(x) = x + 1 (x ≥ 0), 1/(1 − x) (x < 0) [P, eq. StableMax].

    Two-`where` form: each branch only sees inputs from its own side, so the unused branch
    never produces inf/NaN values or gradients (1/(1 − x) at x = 1 would).
    """
    pos = x >= 0
    x_pos = jnp.where(pos, x, jnp.zeros_like(x))
    x_neg = jnp.where(pos, jnp.zeros_like(x), x)
    return jnp.where(pos, x_pos + 1, 1 / (1 - x_neg))


def _log_s(x: Array) -> Array:
    """log s(x) = log1p(x) (x ≥ 0), −log1p(−x) (x < 0), in two-`where` form [P]."""
    pos = x >= 0
    x_pos = jnp.where(pos, x, jnp.zeros_like(x))
    x_neg = jnp.where(pos, jnp.zeros_like(x), x)
    return jnp.where(pos, jnp.log1p(x_pos), -jnp.log1p(-x_neg))


def stablemax(x: Array, axis: int = -1) -> Array:
    """StableMax(x)_i = s(x_i) / Σ_j s(x_j) along `axis` [P].

    The sum is taken of s/max(s) (max(s) > 0 always), so it cannot overflow, even in float16.
    """
    s = stablemax_terms(x)
    m = jax.lax.stop_gradient(jnp.max(s, axis=axis, keepdims=True))
    r = s / m
    return r / jnp.sum(r, axis=axis, keepdims=True)


def log_stablemax(x: Array, axis: int = -1) -> Array:
    """log StableMax(x)_i = log s(x_i) − log Σ_j s(x_j) along `axis` [P].

    log s uses log1p on each branch; log Σ_j s_j = log M + log Σ_j (s_j / M) with
    M = max_j s_j (held constant for the gradient, which is exact since the expression does
    not depend on M), so nothing overflows and the arg-max term gives exactly 1 — a
    sample whose other terms are negligible has loss exactly 0 (the "zero terms" of [P]).
    """
    s, log_s = stablemax_terms(x), _log_s(x)
    m = jax.lax.stop_gradient(jnp.max(s, axis=axis, keepdims=True))
    log_m = jax.lax.stop_gradient(jnp.max(log_s, axis=axis, keepdims=True))
    log_sum = log_m + jnp.log(jnp.sum(s / m, axis=axis, keepdims=True))
    return log_s - log_sum


def _loss_dtype(dtype: str) -> jnp.dtype:
    if dtype not in LOSS_DTYPES:
        raise ValueError(f"loss dtype {dtype!r}: allowed: {', '.join(LOSS_DTYPES)}")
    if dtype == "float64" and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            "loss dtype 'float64' needs jax_enable_x64 (set it before any array is created); "
            "without it JAX silently computes in float32"
        )
    return LOSS_DTYPES[dtype]


def _pick(logp_NxC: Array, targets_N: Array) -> Array:
    """logp[n, y_n] over any leading axes."""
    idx = jnp.expand_dims(targets_N.astype(jnp.int32), -1)
    return jnp.take_along_axis(logp_NxC, idx, axis=-1)[..., 0]


def per_example_loss(kind: str, outputs: Array, targets: Array, *, n_classes: int, dtype: str) -> Array:
    """Loss per example, shape `targets.shape`, in the loss dtype `dtype`.

    - "softmax_ce": −log_softmax(z)_y, logits z cast to `dtype` first.
    - "stablemax_ce" [P]: −log StableMax(z)_y in `dtype`.
    - "mse_onehot" [D]: mean_c (z_c − onehot(y)_c)², so the mean over examples is the mean
      over samples × classes.
    - "mse" [K]: (ŷ − y)² for regression, `outputs` and `targets` of shape [n]; with several
      outputs ([n, k], the linear teacher) the mean over the k outputs, shape [n].
    """
    dt = _loss_dtype(dtype)
    z = outputs.astype(dt)
    if kind == "softmax_ce":
        return -_pick(jax.nn.log_softmax(z, axis=-1), targets)
    if kind == "stablemax_ce":
        return -_pick(log_stablemax(z, axis=-1), targets)
    if kind == "mse_onehot":
        onehot = jax.nn.one_hot(targets, n_classes, dtype=dt)
        return jnp.mean(jnp.square(z - onehot), axis=-1)
    if kind == "mse":
        if z.shape != targets.shape:
            raise ValueError(f"loss 'mse': outputs shape {z.shape} must equal targets shape {targets.shape}")
        sq = jnp.square(z - targets.astype(dt))
        return jnp.mean(sq, axis=-1) if sq.ndim > 1 else sq
    raise ValueError(f"loss kind {kind!r}: allowed: {', '.join(LOSS_KINDS)}")


def accuracy(outputs: Array, labels: Array) -> Array:
    """Per-example correctness, argmax_c outputs[..., c] == label (bool)."""
    return jnp.argmax(outputs, axis=-1) == labels
