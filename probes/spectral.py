"""Spectral measures of one weight matrix: norms, stable and effective rank, and the HTSR power-law
exponent α of its empirical spectral density (docs/formulas.md §5.6).

All functions are pure and jit/vmap-able and take one matrix W [N, M] (a tensor of more axes is
read as [∏ leading axes, last axis]). The ESD is the eigenvalues of WᵀW, λ_i = σ_i² with σ the
singular values of W, not normalized (as weightwatcher's default; α does not depend on the scale).
A singular value at or below W's numerical-rank tolerance, max(N, M)·eps·σ_max (NumPy's
`matrix_rank`), is the SVD's rounding noise, not spectrum: its eigenvalue is taken as 0. In float64
(weightwatcher's precision) that never touches a fit; in float32 it keeps the noise of a low-rank
matrix with a large norm (λ_max ≳ 10⁹) out of it.

[MM] Martin & Mahoney, *Implicit self-regularization in deep neural networks*, JMLR 2021.
[CSN] Clauset, Shalizi & Newman, *Power-law distributions in empirical data*, SIAM Review 2009.
[RV] Roy & Vetterli, *The effective rank*, EUSIPCO 2007.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array

__all__ = [
    "FIT_STATUS",
    "KS_CONVENTIONS",
    "PowerLawFit",
    "as_matrix",
    "effective_rank",
    "esd",
    "esd_histogram",
    "frobenius_norm",
    "htsr_alpha",
    "powerlaw_fit",
    "singular_values",
    "spectral_norm",
    "spectral_summary",
    "stable_rank",
]

# An eigenvalue at or below this is treated as zero and left out of the fit (weightwatcher's EVALS_THRESH).
EVAL_THRESHOLD = 1e-5
# Fewer eigenvalues above the threshold than this: no fit (status 1). weightwatcher switches to a
# different small-sample estimator below 20 eigenvalues; this lab does not fit there at all.
MIN_EVALS = 20
# Why α is NaN, by the `status` code a fit returns.
FIT_STATUS = {
    0: "fitted",
    1: "too few eigenvalues above the threshold",
    2: "no candidate x_min: every tail of two or more eigenvalues is constant (to rounding)",
    3: "non-finite weights",
}
# The empirical CDF the KS distance compares with at the j-th (0-based) of n tail points:
# "weightwatcher" (default): |j/n − F|, weightwatcher 0.7.7's rule, so α matches its `analyze()`;
# "csn": the exact supremum distance max((j+1)/n − F, F − j/n) [CSN], which may choose another x_min.
KS_CONVENTIONS = ("csn", "weightwatcher")


class PowerLawFit(NamedTuple):
    """A continuous power-law fit of an ESD's tail: α, x_min, the KS distance, the tail count and
    a status code (`FIT_STATUS`; α, x_min and the distance are NaN unless it is 0)."""

    alpha: Array
    xmin: Array
    ks_distance: Array
    n_tail: Array
    status: Array


def _acc(x: Array) -> Array:
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def as_matrix(w: Array) -> Array:
    """W as a matrix [∏ leading axes, last axis], in at least float32."""
    w = _acc(jnp.asarray(w))
    if w.ndim < 2:
        raise ValueError(f"a weight matrix needs at least 2 axes, got shape {w.shape}")
    return w.reshape(-1, w.shape[-1])


@jax.jit
def singular_values(w: Array) -> Array:
    """σ of W, descending [min(N, M)]."""
    return jnp.linalg.svd(as_matrix(w), compute_uv=False)


@jax.jit
def esd(w: Array) -> Array:
    """The empirical spectral density of W: eigenvalues of WᵀW, λ_i = σ_i², ascending [min(N, M)];
    0 where σ_i is at or below the numerical-rank tolerance (`_esd_of`)."""
    m = as_matrix(w)
    return _esd_of(jnp.linalg.svd(m, compute_uv=False), m.shape)


def _esd_of(sv: Array, shape: tuple[int, int]) -> Array:
    """σ² ascending, with σ ≤ max(N, M)·eps·σ_max (rounding noise of the SVD) taken as 0."""
    tolerance = max(shape) * jnp.finfo(sv.dtype).eps * jnp.max(sv)
    return jnp.sort(jnp.where(sv > tolerance, jnp.square(sv), 0.0))


@jax.jit
def spectral_norm(w: Array) -> Array:
    """‖W‖₂ = σ_max."""
    return singular_values(w)[0]


@jax.jit
def frobenius_norm(w: Array) -> Array:
    """‖W‖_F = sqrt(Σ_ij W_ij²)."""
    m = as_matrix(w)
    return jnp.sqrt(jnp.sum(m * m))


def _stable_rank(sv: Array) -> Array:
    top = jnp.square(sv[0])
    return jnp.where(top > 0, jnp.sum(jnp.square(sv)) / jnp.where(top > 0, top, 1), 0.0)


def _effective_rank(sv: Array) -> Array:
    total = jnp.sum(sv)
    p = sv / jnp.where(total > 0, total, 1)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1)), 0.0))
    return jnp.where(total > 0, jnp.exp(entropy), 0.0)


def _guarded_singular_values(w: Array) -> tuple[Array, Array]:
    """(σ of W, whether W is finite); the SVD runs on zeros when it is not, so LAPACK never sees a NaN."""
    m = as_matrix(w)
    finite = jnp.all(jnp.isfinite(m))
    return jnp.linalg.svd(jnp.where(finite, m, 0.0), compute_uv=False), finite


@jax.jit
def stable_rank(w: Array) -> Array:
    """‖W‖_F² / ‖W‖₂² = Σσ² / σ_max² (0 for W = 0, NaN for a W with a non-finite entry)."""
    sv, finite = _guarded_singular_values(w)
    return jnp.where(finite, _stable_rank(sv), jnp.nan)


@jax.jit
def effective_rank(w: Array) -> Array:
    """exp(H(p)) with p_i = σ_i / Σ_j σ_j and H the Shannon entropy [RV] (0 for W = 0, NaN for a W
    with a non-finite entry)."""
    sv, finite = _guarded_singular_values(w)
    return jnp.where(finite, _effective_rank(sv), jnp.nan)


@functools.partial(jax.jit, static_argnames=("min_evals", "threshold", "ks"))
def powerlaw_fit(
    evals: Array,
    *,
    min_evals: int = MIN_EVALS,
    threshold: float = EVAL_THRESHOLD,
    ks: str = "weightwatcher",
) -> PowerLawFit:
    """Continuous power-law MLE with x_min chosen by the smallest KS distance [CSN] (formulas §5.6).

    Every eigenvalue above `threshold` but the largest is a candidate x_min = λ_k, unless its tail
    is constant to rounding (mean ln(λ/λ_k) within 16 ulps of ln λ_k: α there would only measure
    rounding); its tail is the
    n_k ≥ 2 eigenvalues λ ≥ λ_k, α_k = 1 + n_k / Σ_tail ln(λ/λ_k), and D_k the KS distance between
    the tail's empirical CDF (convention `ks`) and F(x) = 1 − (x/λ_k)^(1−α_k). All candidates are
    evaluated at once as a masked [n, n] array (jit/vmap-able); the first smallest D_k wins.
    Undefined fits are NaN with a `status` code (`FIT_STATUS`), never an exception.
    """
    if ks not in KS_CONVENTIONS:
        raise ValueError(f"ks must be one of {KS_CONVENTIONS}, got {ks!r}")
    lam = _acc(jnp.asarray(evals)).reshape(-1)
    n = lam.shape[0]
    finite = jnp.all(jnp.isfinite(lam))
    lam = jnp.sort(jnp.where(jnp.isfinite(lam), lam, 0.0))
    valid = lam > threshold
    n_valid = jnp.sum(valid)
    log = jnp.log(jnp.where(valid, lam, 1.0))
    idx = jnp.arange(n)
    n_k = (n - idx).astype(lam.dtype)  # tail size when x_min = λ_k
    tail_log_sum = jnp.cumsum(log[::-1])[::-1]  # Σ_{i ≥ k} ln λ_i
    spread = tail_log_sum - n_k * log  # Σ_tail ln(λ_i/λ_k) ≥ 0
    rounding = 16 * jnp.finfo(lam.dtype).eps * jnp.maximum(1.0, jnp.abs(log))  # per eigenvalue, in ln λ
    candidate = valid & (idx <= n - 2) & (spread > n_k * rounding)
    alpha = 1.0 + n_k / jnp.where(candidate, spread, 1.0)

    # KS distance of every candidate, as [k, i]: point i of the tail of candidate k
    in_tail = (idx[None, :] >= idx[:, None]) & candidate[:, None]
    j = (idx[None, :] - idx[:, None]).astype(lam.dtype)  # 0-based rank inside the tail
    dlog = log[None, :] - log[:, None]
    model_cdf = 1.0 - jnp.exp((1.0 - alpha[:, None]) * jnp.where(in_tail, dlog, 0.0))
    below = model_cdf - j / n_k[:, None]
    if ks == "csn":
        gap = jnp.maximum(below, (j + 1) / n_k[:, None] - model_cdf)
    else:
        gap = jnp.abs(below)
    distance = jnp.max(jnp.where(in_tail, gap, -jnp.inf), axis=1)
    distance = jnp.where(candidate, distance, jnp.inf)
    best = jnp.argmin(distance)

    status = jnp.where(
        ~finite,
        3,
        jnp.where(n_valid < min_evals, 1, jnp.where(jnp.any(candidate), 0, 2)),
    ).astype(jnp.int32)
    ok = status == 0
    nan = jnp.asarray(jnp.nan, lam.dtype)
    return PowerLawFit(
        alpha=jnp.where(ok, alpha[best], nan),
        xmin=jnp.where(ok, lam[best], nan),
        ks_distance=jnp.where(ok, distance[best], nan),
        n_tail=jnp.where(ok, n - best, 0).astype(jnp.int32),
        status=status,
    )


@functools.partial(jax.jit, static_argnames=("min_evals", "threshold", "ks"))
def htsr_alpha(w: Array, *, min_evals: int = MIN_EVALS, threshold: float = EVAL_THRESHOLD, ks: str = "weightwatcher"):
    """HTSR α of W [MM]: the power-law fit (`powerlaw_fit`) of its ESD λ = σ² → `PowerLawFit`
    (α, x_min, KS distance, tail count, status)."""
    return powerlaw_fit(esd(w), min_evals=min_evals, threshold=threshold, ks=ks)  # (noise σ² are 0 there)


@functools.partial(jax.jit, static_argnames=("bins", "threshold"))
def esd_histogram(evals: Array, bins: int, threshold: float = EVAL_THRESHOLD) -> tuple[Array, Array]:
    """Counts of log10 λ over `bins` equal bins spanning [log10 λ_min, log10 λ_max] of the eigenvalues
    above `threshold`, and that range [2] (NaN range and zero counts when none is above it)."""
    lam = _acc(jnp.asarray(evals)).reshape(-1)
    valid = jnp.isfinite(lam) & (lam > threshold)
    log = jnp.log10(jnp.where(valid, lam, 1.0))
    lo = jnp.min(jnp.where(valid, log, jnp.inf))
    hi = jnp.max(jnp.where(valid, log, -jnp.inf))
    width = jnp.where(hi > lo, hi - lo, 1.0)
    which = jnp.clip(jnp.floor((log - lo) / width * bins), 0, bins - 1).astype(jnp.int32)
    counts = jnp.zeros((bins,), jnp.int32).at[which].add(valid.astype(jnp.int32))
    span = jnp.where(jnp.any(valid), jnp.stack([lo, hi]), jnp.full((2,), jnp.nan, lam.dtype))
    return counts, span


@functools.partial(jax.jit, static_argnames=("min_evals", "threshold", "ks", "esd_bins"))
def spectral_summary(
    w: Array,
    *,
    min_evals: int = MIN_EVALS,
    threshold: float = EVAL_THRESHOLD,
    ks: str = "weightwatcher",
    esd_bins: int = 0,
) -> dict[str, Array]:
    """Everything above from one SVD of W: `spectral_norm`, `frobenius_norm`, `stable_rank`,
    `effective_rank`, and the fit's `alpha`, `alpha_xmin`, `alpha_ks`, `alpha_tail`, `alpha_status`
    (a W with a non-finite entry: NaN everywhere and status 3); with `esd_bins` > 0 also
    `esd_hist` and `esd_range` (`esd_histogram` of the same eigenvalues)."""
    sv, finite = _guarded_singular_values(w)
    nan = jnp.asarray(jnp.nan, sv.dtype)
    evals = jnp.where(finite, _esd_of(sv, as_matrix(w).shape), nan)
    fit = powerlaw_fit(evals, min_evals=min_evals, threshold=threshold, ks=ks)
    histogram = {}
    if esd_bins:
        counts, span = esd_histogram(evals, esd_bins, threshold)
        histogram = {"esd_hist": counts, "esd_range": span}
    return histogram | {
        "spectral_norm": jnp.where(finite, sv[0], nan),
        "frobenius_norm": jnp.where(finite, jnp.sqrt(jnp.sum(jnp.square(sv))), nan),
        "stable_rank": jnp.where(finite, _stable_rank(sv), nan),
        "effective_rank": jnp.where(finite, _effective_rank(sv), nan),
        "alpha": fit.alpha,
        "alpha_xmin": fit.xmin,
        "alpha_ks": fit.ks_distance,
        "alpha_tail": fit.n_tail,
        "alpha_status": fit.status,
    }
