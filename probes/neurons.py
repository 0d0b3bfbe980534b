"""Memorizing vs generalizing neurons: Fourier IPR and key frequencies [D].

All functions are pure and jit/vmap-able. Fourier transforms run over the token axis
(length p); rfft gives p//2 + 1 frequencies 0..p//2 (index = frequency, 0 = DC).

[D] Doshi, Das, He, Gromov, *To grok or not to grok* (ICLR 2024), §4 (IPR, pruning).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

Array = jax.Array

__all__ = ["ipr", "neuron_ipr", "dominant_frequency", "key_frequencies", "ipr_histogram", "ipr_summary"]


def _power(v: Array, axis: int) -> Array:
    """|rfft(v)|² along ``axis``, computed as re² + im² (no |·| so the gradient at 0 stays finite)."""
    f = jnp.fft.rfft(v, axis=axis)
    return jnp.square(f.real) + jnp.square(f.imag)


@functools.partial(jax.jit, static_argnames=("axis",))
def ipr(v: Array, axis: int = -1) -> Array:
    """Fourier inverse participation ratio [D]: IPR(v) = ‖ṽ‖₄⁴ / ‖ṽ‖₂⁴ with ṽ = |rfft(v)|.

    The released code's convention (docs/formulas.md §5): a pure cosine cos(2πkj/p + φ), 1 ≤ k < p/2,
    scores 1; white Gaussian noise scores ≈ 2/(p//2+1) (≈ 0.04 at p = 97). For any nonzero v,
    1/(p//2+1) ≤ IPR ≤ 1 (Cauchy-Schwarz over the p//2+1 bins). Scale invariant: v is first
    divided by max|v|, so decayed neurons (tiny but nonzero) are not lost to float underflow.
    The zero vector (a neuron decayed to exactly 0) scores 0, with a finite (zero) gradient.
    Reduces ``axis``.
    """
    v = jnp.moveaxis(v, axis, -1)
    v = v.astype(jnp.promote_types(v.dtype, jnp.float32))
    scale = jnp.max(jnp.abs(v), axis=-1, keepdims=True)
    nonzero = scale > 0
    v = v / jnp.where(nonzero, scale, 1)
    pw = _power(v, axis=-1)
    num = jnp.sum(jnp.square(pw), axis=-1)
    den = jnp.square(jnp.sum(pw, axis=-1))
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), 0.0)


@jax.jit
def neuron_ipr(U_Nxp: Array, V_Nxp: Array, W_CxN: Array | None = None) -> Array:
    """Per-neuron IPR [D]: mean of IPR(U row k), IPR(V row k) and IPR(W column k) → [N].

    U, V are the input weights of the a- and b-tokens (for a token-gather first layer
    W₁ [2p, N]: U = W₁[:p].T, V = W₁[p:].T); W [C, N] is the readout. With ``W=None`` the
    mean is over U and V only (e.g. a deeper MLP, where the first layer is used).
    """
    parts = [ipr(U_Nxp, axis=-1), ipr(V_Nxp, axis=-1)]
    if W_CxN is not None:
        parts.append(ipr(W_CxN, axis=0))
    return sum(parts[1:], parts[0]) / len(parts)


@jax.jit
def dominant_frequency(U_Nxp: Array) -> Array:
    """Dominant frequency of each row [D]: argmax_k |rfft(U_n)|_k over k = 1..p//2 (DC excluded) → int [N].

    The DC bin is excluded because a constant offset carries no modular structure; an
    all-zero row returns 1 (the first non-DC frequency).
    """
    pw = _power(U_Nxp.astype(jnp.promote_types(U_Nxp.dtype, jnp.float32)), axis=-1)
    return jnp.argmax(pw[..., 1:], axis=-1).astype(jnp.int32) + 1


@functools.partial(jax.jit, static_argnames=("top", "axis", "exclude_dc"))
def key_frequencies(E: Array, top: int | None = None, axis: int = 0, exclude_dc: bool = True) -> tuple[Array, Array]:
    """Key frequencies (Nanda-style) [D]: total Fourier power per frequency over the token axis.

    ``E`` is an embedding E [p, d] (token ``axis=0``, the default) or neuron weights U [N, p]
    (pass ``axis=-1``). power_k = Σ_other-axes |rfft(E, axis)|²_k → [p//2+1] (index = frequency,
    DC included in ``power``). ``order`` is the frequencies by decreasing power, DC ranked last
    when ``exclude_dc`` (the default); ``top`` (static int) truncates it. Returns (power, order).
    """
    pw = _power(E.astype(jnp.promote_types(E.dtype, jnp.float32)), axis=axis)
    pw = jnp.moveaxis(pw, axis, -1)
    power = jnp.sum(pw.reshape(-1, pw.shape[-1]), axis=0)
    rank = power.at[0].set(-jnp.inf) if exclude_dc else power
    order = jnp.argsort(-rank).astype(jnp.int32)
    if top is not None:
        order = order[:top]
    return power, order


@functools.partial(jax.jit, static_argnames=("bins",))
def ipr_histogram(ipr_N: Array, bins: int = 20) -> Array:
    """Histogram of per-neuron IPRs over [0, 1] with ``bins`` equal bins (static) → int32 counts [bins] [D].

    Values are clipped into [0, 1] first, so float rounding (1 + 1e-7) never drops a neuron;
    1.0 falls in the last bin (NumPy convention).
    """
    counts, _ = jnp.histogram(jnp.clip(ipr_N, 0.0, 1.0), bins=bins, range=(0.0, 1.0))
    return counts.astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("bins",))
def ipr_summary(U_Nxp: Array, V_Nxp: Array, W_CxN: Array | None = None, bins: int = 20) -> dict[str, Array]:
    """IPR report [D, docs/formulas.md §5]: dict(ipr=[N] per neuron, ipr_mean=scalar, ipr_hist=int [bins])."""
    v = neuron_ipr(U_Nxp, V_Nxp, W_CxN)
    return {"ipr": v, "ipr_mean": jnp.mean(v), "ipr_hist": ipr_histogram(v, bins)}
