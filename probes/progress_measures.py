"""Progress measures of a modular-addition transformer [N]: Fourier spectra, key frequencies,
restricted and excluded loss, Gini coefficients, neuron frequency clusters.

All functions are pure and jit/vmap-able; p is static and odd (the modular task's prime).
Frequencies are indexed 0..K with K = (p − 1)/2 (0 = the constant). The orthonormal real
Fourier basis over Z_p has p rows: the constant 1/√p, then √(2/p)·cos(2πkj/p) and
√(2/p)·sin(2πkj/p) for k = 1..K (docs/formulas.md §5).

[N] Nanda, Chan, Lieberum, Smith, Steinhardt, *Progress measures for grokking via mechanistic
interpretability* (ICLR 2023).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

# A frequency is key when its embedding power (squared norm) exceeds both KEY_OVER_MEDIAN × the
# median power of the non-constant frequencies (it stands out of the noise floor) and
# KEY_OF_MAX × the largest power (it is one of the leading few) — docs/formulas.md §5.
KEY_OVER_MEDIAN = 10.0
KEY_OF_MAX = 0.1

__all__ = [
    "KEY_OF_MAX",
    "KEY_OVER_MEDIAN",
    "excluded_loss",
    "fourier_basis",
    "frequency_power",
    "gini",
    "key_frequency_mask",
    "neuron_frequency_fraction",
    "restricted_loss",
    "sum_index",
]


def fourier_basis(p: int) -> np.ndarray:
    """The orthonormal real Fourier basis [p, p] over Z_p (rows: 1, cos 1, sin 1, …, cos K, sin K)."""
    if p % 2 == 0:
        raise ValueError(f"p must be odd, got {p}")
    j = np.arange(p)
    rows = [np.full(p, 1.0 / math.sqrt(p))]
    for k in range(1, (p - 1) // 2 + 1):
        rows.append(np.cos(2 * np.pi * k * j / p) * math.sqrt(2.0 / p))
        rows.append(np.sin(2 * np.pi * k * j / p) * math.sqrt(2.0 / p))
    return np.stack(rows)


@jax.jit
def frequency_power(W_pxd: Array) -> Array:
    """Power per frequency of a map over tokens (rows = tokens) → [K+1]: ‖cos_k·W‖² + ‖sin_k·W‖² (k=0: constant)."""
    p = W_pxd.shape[0]
    F = jnp.asarray(fourier_basis(p), jnp.promote_types(W_pxd.dtype, jnp.float32))
    c = jnp.sum(jnp.square(F @ W_pxd.astype(F.dtype)), axis=-1)  # [p] per basis row
    return jnp.concatenate([c[:1], c[1::2] + c[2::2]])


@jax.jit
def key_frequency_mask(power: Array) -> Array:
    """Which frequencies are key [N] → bool [K+1] (the constant never is).

    Key: power_k > KEY_OVER_MEDIAN · median(power_1..K) and power_k ≥ KEY_OF_MAX · max(power_1..K).
    A random (or memorizing) embedding has a flat spectrum and no key frequency; an all-zero one neither.
    """
    pk = power[1:]
    med = jnp.median(pk)
    top = jnp.max(pk)
    key = (pk > KEY_OVER_MEDIAN * med) & (pk >= KEY_OF_MAX * top) & (pk > 0)
    return jnp.concatenate([jnp.zeros((1,), bool), key])


@jax.jit
def gini(x: Array) -> Array:
    """Gini coefficient of nonnegative values, Σᵢⱼ|xᵢ − xⱼ| / (2n Σx): 0 when all are equal (or zero).

    One nonzero value among n gives (n − 1)/n.
    """
    x = jnp.sort(jnp.ravel(x))
    n = x.shape[0]
    total = jnp.sum(x)
    i = jnp.arange(1, n + 1, dtype=x.dtype)
    g = (2.0 * jnp.sum(i * x)) / (n * jnp.where(total > 0, total, 1)) - (n + 1.0) / n
    return jnp.where(total > 0, g, 0.0)


def sum_index(p: int, sign: int) -> np.ndarray:
    """s = (a + sign·b) mod p for every pair of the a-major grid → int [p²]."""
    a, b = np.divmod(np.arange(p * p), p)
    return ((a + sign * b) % p).astype(np.int32)


def _sum_directions(p: int, dtype) -> Array:
    """T [p, 2K]: cos(w_k s), sin(w_k s) at every s, w_k = 2πk/p (unnormalized)."""
    s = np.arange(p)[:, None]
    w = 2 * np.pi * np.arange(1, (p - 1) // 2 + 1)[None, :] / p
    return jnp.asarray(np.concatenate([np.cos(w * s), np.sin(w * s)], axis=1), dtype)


def _key_component(values_p2xn: Array, mask: Array, sign: int) -> Array:
    """Component of grid values [p², n] along cos(w_k(a + sign·b)), sin(·) of the key frequencies → [p, n] per s.

    Over the p² grid the directions are orthogonal with squared norm p²/2, so the projection is
    (2/p²)·Σ_k d_k (d_k · values); it depends on (a, b) only through s, hence the [p, n] result.
    """
    p = int(round(math.sqrt(values_p2xn.shape[0])))
    s = jnp.asarray(sum_index(p, sign))
    by_s = jax.ops.segment_sum(values_p2xn, s, num_segments=p)  # [p, n]
    T = _sum_directions(p, values_p2xn.dtype)
    m = jnp.concatenate([mask[1:], mask[1:]]).astype(values_p2xn.dtype)  # [2K]
    return (T * m[None, :]) @ (T.T @ by_s) * (2.0 / (p * p))


def _ce(logits: Array, labels: Array) -> Array:
    z = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    logp = jax.nn.log_softmax(z, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))


@functools.partial(jax.jit, static_argnames=("sign",))
def restricted_loss(
    acts_p2xN: Array, W_NxC: Array, logits_p2xC: Array, labels_p2: Array, mask: Array, sign: int = 1
) -> Array:
    """Restricted loss [N] on the full p² grid; NaN without key frequencies.

    The neuron activations (at '=') keep only their mean over the grid and their components along
    cos(w_k(a+b)), sin(w_k(a+b)) of the key frequencies; the logits they give through W_L = W_out·W_U
    are shifted by mean(logits) − mean(restricted logits) (the input-independent paths), then
    cross-entropy against `labels_p2`.
    """
    p = int(round(math.sqrt(acts_p2xN.shape[0])))
    s = jnp.asarray(sum_index(p, sign))
    mean = jnp.mean(acts_p2xN, axis=0, keepdims=True)
    approx = mean + _key_component(acts_p2xN, mask, sign)  # [p, N] per s
    logits_s = approx @ W_NxC
    bias = jnp.mean(logits_p2xC, axis=0) - (mean @ W_NxC)[0]  # projections have zero grid mean
    loss = _ce(logits_s[s] + bias[None, :], labels_p2)
    return jnp.where(jnp.any(mask), loss, jnp.nan)


@functools.partial(jax.jit, static_argnames=("sign",))
def excluded_loss(logits_p2xC: Array, train_index: Array, train_labels: Array, mask: Array, sign: int = 1) -> Array:
    """Excluded loss [N]: training loss after removing the key frequencies' cos/sin(w_k(a+b)) components
    from the logits over the full grid; NaN without key frequencies. `train_index` = a·p + b."""
    p = int(round(math.sqrt(logits_p2xC.shape[0])))
    s = jnp.asarray(sum_index(p, sign))
    removed = _key_component(logits_p2xC, mask, sign)  # [p, C] per s
    logits = logits_p2xC[train_index] - removed[s[train_index]]
    return jnp.where(jnp.any(mask), _ce(logits, train_labels), jnp.nan)


@jax.jit
def neuron_frequency_fraction(acts_pxpxN: Array) -> tuple[Array, Array]:
    """Neuron clusters [N]: for each neuron, the largest fraction of its variance over the grid explained
    by one frequency k (the 2D Fourier terms in {1, cos k, sin k}² minus the constant), and that k.

    Returns (fraction [N] in [0, 1], frequency int [N] in 1..K); a constant (dead) neuron gives (0, 1).
    Each neuron's grid mean is subtracted first (it is the constant term, left out anyway): otherwise
    the variance would be a difference of two large sums, lost to rounding for a neuron whose mean
    is large against its spread.
    """
    p = acts_pxpxN.shape[0]
    F = jnp.asarray(fourier_basis(p), jnp.promote_types(acts_pxpxN.dtype, jnp.float32))
    acts = acts_pxpxN.astype(F.dtype)
    acts = acts - jnp.mean(acts, axis=(0, 1), keepdims=True)
    c = jnp.einsum("xa,yb,abn->xyn", F, F, acts)
    c2 = jnp.square(c)
    const = c2[0, 0]
    total = jnp.sum(c2, axis=(0, 1)) - const
    # per frequency k: rows {0, 2k−1, 2k} × cols {0, 2k−1, 2k}, minus the constant term
    rows = jnp.concatenate([c2[:1], c2[1::2] + c2[2::2]])  # [K+1, p, N]: x-frequency
    block = jnp.concatenate([rows[:, :1], rows[:, 1::2] + rows[:, 2::2]], axis=1)  # [K+1, K+1, N]
    k = jnp.arange(1, block.shape[0])
    per_k = block[k, k] + block[k, 0] + block[0, k]  # [K, N]
    ok = total > 0
    frac = per_k / jnp.where(ok, total, 1)[None, :]
    best = jnp.where(ok, jnp.argmax(frac, axis=0), 0)
    return jnp.where(ok, jnp.max(frac, axis=0), 0.0), (best + 1).astype(jnp.int32)
