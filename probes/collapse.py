"""Softmax Collapse, naive loss minimization and norm probes [P].

All functions are pure and jit/vmap-able; they take plain arrays or parameter pytrees.

[P] Prieto et al., *Grokking at the Edge of Numerical Stability* (ICLR 2025), §3-4.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.tree_util import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey

Array = jax.Array

__all__ = ["sc_fraction", "zero_terms", "nlm_cosine", "logit_norm", "weight_norms"]


def _loss_dtype(dtype) -> jnp.dtype:
    """Resolve a loss dtype; refuse float64 when x64 is off (JAX would silently use float32)."""
    dt = jnp.dtype(dtype)
    if not jnp.issubdtype(dt, jnp.floating):
        raise ValueError(f"loss dtype must be a float dtype (float16, float32, float64), got {dtype!r}")
    if dt.itemsize == 8 and not jax.config.jax_enable_x64:
        raise ValueError(
            f"loss dtype {dtype!r} needs jax_enable_x64 (set it before any array exists, "
            "or use `with jax.enable_x64(True):`); without it JAX silently computes in float32"
        )
    return dt


@functools.partial(jax.jit, static_argnames=("dtype",))
def sc_fraction(logits_NxC: Array, dtype="float32") -> Array:
    """Softmax Collapse fraction [P, §3]: share of rows whose softmax denominator rounds to exactly 1.

    In the loss dtype: z = x − max_c x_c, S = Σ_c exp(z_c); SC = mean_n [S_n == 1].
    When S == 1 the gradient of the correct class, p_y − 1 = 1/S − 1, is exactly 0: the
    example has stopped learning although its loss is not 0. Note XLA on CPU flushes
    subnormals to zero, so float32 ``exp(-100)`` is 0 under jit (3.8e-44 in NumPy); this only
    strengthens the collapse, it never creates one (1 + subnormal rounds to 1 in any case).
    ``float64`` needs ``jax_enable_x64``; a ValueError is raised otherwise.
    """
    dt = _loss_dtype(dtype)
    z = logits_NxC.astype(dt)
    z = z - jnp.max(z, axis=-1, keepdims=True)
    sum_exp = jnp.sum(jnp.exp(z), axis=-1)
    return jnp.mean((sum_exp == jnp.asarray(1, dt)).astype(jnp.float32))


@jax.jit
def zero_terms(per_example_losses: Array) -> Array:
    """Fraction of per-example training losses that are exactly 0 [P, §3] (float rounding of −log p_y)."""
    return jnp.mean((per_example_losses == 0).astype(jnp.float32))


def _tree_vdot(a, b) -> Array:
    """Σ over leaves of Σ a·b, elementwise (no matmul, so no TF32 on GPUs), accumulated in ≥ float32."""
    leaves = jax.tree.leaves(jax.tree.map(lambda u, v: jnp.sum(_acc(u) * _acc(v)), a, b))
    return sum(leaves, jnp.zeros((), _acc_dtype(leaves)))


def _acc(u: Array) -> Array:
    return u.astype(jnp.promote_types(u.dtype, jnp.float32))


def _acc_dtype(leaves) -> jnp.dtype:
    return jnp.result_type(jnp.float32, *leaves) if leaves else jnp.dtype(jnp.float32)


def _safe_div(num: Array, den: Array, fill: float = 0.0) -> Array:
    """num / den where den > 0, else ``fill``; the double ``where`` keeps gradients finite."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), fill)


@jax.jit
def nlm_cosine(grads, params) -> Array:
    """Naive-loss-minimization alignment [P, §4]: cos(−∇L, θ) over all parameters flattened.

    cos = −⟨∇L, θ⟩ / (‖∇L‖ ‖θ‖), the inner products summed over every leaf of the two
    (same-structure) pytrees. For positively homogeneous nets (no biases, ReLU), scaling θ
    scales the logits, so θ itself is the NLM direction; cos → 1 means the gradient mostly
    just grows the logits. Returns 0 when either norm is 0.
    """
    dot = _tree_vdot(grads, params)
    den = jnp.sqrt(_tree_vdot(grads, grads) * _tree_vdot(params, params))
    return _safe_div(-dot, den)


@jax.jit
def logit_norm(logits_NxC: Array) -> Array:
    """Mean over examples of the L2 norm of the logit row [P]: (1/N) Σ_n ‖x_n‖₂ (scalar logits: mean |x_n|)."""
    x = _acc(logits_NxC)
    if x.ndim == 1:
        return jnp.mean(jnp.abs(x))
    return jnp.mean(jnp.sqrt(jnp.sum(x * x, axis=-1)))


def _key_name(k) -> str:
    if isinstance(k, DictKey):
        return str(k.key)
    if isinstance(k, SequenceKey):
        return str(k.idx)
    if isinstance(k, GetAttrKey):
        return k.name
    if isinstance(k, FlattenedIndexKey):
        return str(k.key)
    return str(k)


def leaf_name(path) -> str:
    """Readable, stable name for a pytree path: keys joined by '/', a trailing NNX ``.value`` dropped.

    ``(DictKey('layers'), SequenceKey(0), DictKey('kernel'), GetAttrKey('value'))`` → ``'layers/0/kernel'``;
    the empty path (the params are one array) → ``'params'``.
    """
    keys = list(path)
    if keys and isinstance(keys[-1], GetAttrKey) and keys[-1].name == "value":
        keys = keys[:-1]
    return "/".join(_key_name(k) for k in keys) or "params"


@jax.jit
def weight_norms(params) -> dict[str, Array]:
    """Frobenius norm of every parameter leaf [P], keyed by :func:`leaf_name`, plus ``'total'`` = ‖θ‖₂.

    total = sqrt(Σ_leaves ‖leaf‖²) (the norm of all parameters flattened, not the sum of norms).
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(params)
    out: dict[str, Array] = {}
    total = jnp.zeros((), _acc_dtype([leaf for _, leaf in flat]))
    for path, leaf in flat:
        name = leaf_name(path)
        if name in out or name == "total":
            raise ValueError(f"weight_norms: parameter name {name!r} is ambiguous (duplicate or reserved)")
        sq = jnp.sum(jnp.square(_acc(leaf)))
        out[name] = jnp.sqrt(sq)
        total = total + sq
    out["total"] = jnp.sqrt(total)
    return out
