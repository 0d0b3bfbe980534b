"""Empirical NTK, kernel alignment and movement, and α-net sufficient statistics [K].

All functions are pure and jit/vmap-able (the engine vmaps them over members).
GPU note: every contraction here asks for ``Precision.HIGHEST`` so float32 kernels are not
computed in TF32 on Ampere/Hopper GPUs (that would put ~1e-3 relative error into K).

[K] Kumar, Bordelon, Gershman, Pehlevan, *Grokking as the Transition from Lazy to Rich
Training Dynamics* (ICLR 2024).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from probes.collapse import _safe_div, _tree_vdot

Array = jax.Array
HIGHEST = lax.Precision.HIGHEST

__all__ = [
    "empirical_ntk",
    "centered_alignment",
    "kernel_distance",
    "param_distance",
    "kernel_regression_test_mse",
    "alpha_net_stats",
    "alpha_net_test_loss",
]


def _first_example(x):
    return jax.tree.map(lambda a: a[0], x)


def empirical_ntk(
    apply_fn: Callable,
    params,
    x,
    *,
    max_jacobian_size: int = 2**27,
) -> Array:
    """Empirical NTK on a probe batch [K]: K_ij = Σ_c Σ_θ ∂f_c(x_i)/∂θ · ∂f_c(x_j)/∂θ.

    ``apply_fn(params, x) -> [n, C]`` (summed over the C output logits, i.e. K = Σ_c J_c J_cᵀ)
    or ``-> [n]`` (scalar output). ``x`` is an array, or a pytree of arrays, with leading
    axis n. Each example is evaluated alone (``apply_fn(params, x_i[None])``), so ``apply_fn``
    must treat examples independently (evaluation mode: no batch statistics).

    Strategy — per-example reverse-mode Jacobian, then contraction: ``vmap`` over examples of
    ``jax.jacrev`` over the parameters gives J [n, C, P] (as a pytree, leaf by leaf, so the
    parameters are never concatenated), and K = Σ_leaves J Jᵀ is one matmul per leaf.
    Why, for n ≤ 256 probe examples and P ≤ ~1e5 parameters:

    - reverse mode costs one backward pass per output logit (C of them) per example, while
      forward mode (``jacfwd``/``jvp``) costs one pass per parameter (P ≫ C);
    - per-example ``vmap`` costs n·C single-example backward passes; ``jacrev`` of the
      *batched* function would cost n·C full-batch passes (n times more work);
    - the implicit "NTK-vector product" route (``vjp`` then ``jvp`` per column of K)
      saves memory but costs O(n²·C) passes; we can afford to hold J instead;
    - the contraction, n²·C·P flops, is a plain matmul and dominates the cost at these sizes.

    Memory is bounded: the outputs are processed in blocks of b logits (a ``lax.scan`` over
    blocks, accumulating K) with n·b·P ≤ ``max_jacobian_size`` elements (default 2²⁷, 512 MiB
    of float32 per vmapped member); each block recomputes the forward pass, an overhead of
    about one forward pass per b backward passes. Returns K [n, n] in the parameter dtype.
    """
    leaves = jax.tree.leaves(params)
    n_params = sum(math.prod(leaf.shape) for leaf in leaves)
    n = jax.tree.leaves(x)[0].shape[0]

    def f_one(p, xi):
        return apply_fn(p, jax.tree.map(lambda a: a[None], xi))[0]

    out = jax.eval_shape(f_one, params, _first_example(x))
    if out.ndim > 1:
        raise ValueError(f"empirical_ntk: apply_fn must return [n] or [n, C], got per-example shape {out.shape}")
    n_out = math.prod(out.shape)
    block = max(1, min(n_out, max_jacobian_size // max(1, n * n_params)))
    n_blocks = -(-n_out // block)

    def f_block(p, xi, start):
        o = jnp.reshape(f_one(p, xi), (n_out,))
        o = jnp.pad(o, (0, n_blocks * block - n_out))  # padded logits are constants: zero Jacobian
        return lax.dynamic_slice_in_dim(o, start, block)

    def block_kernel(start):
        jac = jax.vmap(jax.jacrev(f_block), in_axes=(None, 0, None))(params, x, start)  # leaves [n, b, *leaf]
        ks = [
            jnp.matmul(j.reshape(n, -1), j.reshape(n, -1).T, precision=HIGHEST) for j in jax.tree.leaves(jac) if j.size
        ]
        return sum(ks[1:], ks[0])

    if n_blocks == 1:
        return block_kernel(0)
    starts = jnp.arange(n_blocks) * block
    k0 = jax.eval_shape(block_kernel, 0)
    kernel, _ = lax.scan(lambda acc, s: (acc + block_kernel(s), None), jnp.zeros(k0.shape, k0.dtype), starts)
    return kernel


def _center(a: Array) -> Array:
    """H A for H = I − 11ᵀ/n (subtract the column means)."""
    return a - jnp.mean(a, axis=0, keepdims=True)


def _frob(a: Array) -> Array:
    return jnp.sqrt(jnp.sum(a * a))


@jax.jit
def centered_alignment(K: Array, Y: Array) -> Array:
    """Centered kernel-target alignment [K]: A = ⟨HKH, HYYᵀH⟩_F / (‖HKH‖_F ‖HYYᵀH‖_F).

    H = I − 11ᵀ/n; ``Y`` is [n] (scalar targets, where A = y_cᵀ K y_c / (‖HKH‖_F ‖y_c‖²))
    or [n, C] (one-hot targets). Computed without forming YYᵀ: with Y_c = HY,
    ⟨HKH, Y_cY_cᵀ⟩ = Tr(Y_cᵀ K_c Y_c) and ‖Y_cY_cᵀ‖_F = ‖Y_cᵀY_c‖_F. In [−1, 1]; returns 0
    when either centered norm is 0 (constant kernel or constant targets), with finite gradients.
    """
    y = Y.reshape(Y.shape[0], -1).astype(K.dtype)
    yc = _center(y)
    kc = _center(_center(K).T).T
    num = jnp.sum(yc * jnp.matmul(kc, yc, precision=HIGHEST))
    y_norm = _frob(jnp.matmul(yc.T, yc, precision=HIGHEST))
    return _safe_div(num, _frob(kc) * y_norm)


@jax.jit
def kernel_distance(K0: Array, Kt: Array) -> Array:
    """Kernel distance from init [K]: 1 − ⟨K₀, K_t⟩_F / (‖K₀‖_F ‖K_t‖_F); 0 for identical (or parallel) kernels.

    Computed as ½‖K₀/‖K₀‖ − K_t/‖K_t‖‖²_F, equal to it and ≥ 0, without the cancellation of 1 − cos:
    in float32, 1 − cos moves in steps of ~1.2·10⁻⁷ (and can go below 0), which is the whole range
    of a lazy run's distance. Returns 1 (cosine taken as 0) when either kernel is all zeros.
    """
    s0, st = jnp.sum(K0 * K0), jnp.sum(Kt * Kt)
    # K₀/‖K₀‖ − K_t/‖K_t‖ = (K₀ − K_t·‖K₀‖/‖K_t‖)/‖K₀‖, written so that identical kernels give exactly 0
    # in a compiled program too: there XLA would take x/√s as x·rsqrt(s) and contract a·b − c·d into an
    # FMA, which leaves ~10⁻¹⁶ for a·b = c·d; here the scale is √(s₀/s_t) = 1 and K₀ − K_t·1 = 0 exactly
    diff = K0 - Kt * jnp.sqrt(_safe_div(s0, st))
    return jnp.where((s0 > 0) & (st > 0), 0.5 * _safe_div(jnp.sum(jnp.square(diff)), s0), 1.0)


@jax.jit
def param_distance(params, params0) -> Array:
    """Relative parameter movement [K]: ‖θ − θ₀‖ / ‖θ₀‖ over all leaves flattened.

    When ‖θ₀‖ = 0 returns inf if θ ≠ θ₀ and 0 if θ = θ₀ = 0.
    """
    diff = jax.tree.map(lambda a, b: a - b, params, params0)
    num = jnp.sqrt(_tree_vdot(diff, diff))
    den = jnp.sqrt(_tree_vdot(params0, params0))
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1), jnp.where(num > 0, jnp.inf, 0.0))


@jax.jit
def kernel_regression_test_mse(
    K_train_train: Array,
    K_test_train: Array,
    y_train: Array,
    y_test: Array,
    ridge: float = 1e-6,
) -> Array:
    """Test MSE of kernel ridge regression with a fixed kernel (K₀ for the lazy limit) [K].

    a = (K + λI)⁻¹ y_train via ``solve`` (LU, never an explicit inverse), ŷ = K_test,train a,
    MSE = mean((ŷ − y_test)²) over all elements (for [n, C] targets: over samples × classes).
    The ridge is **relative**: λ = ridge · Tr(K)/n, so it is invariant to the kernel's scale
    (K ∝ α² for the α-net); pass ``ridge=0`` for plain interpolation.
    """
    n = K_train_train.shape[0]
    lam = ridge * jnp.trace(K_train_train) / n
    dt = K_train_train.dtype
    a = jnp.linalg.solve(K_train_train + lam * jnp.eye(n, dtype=dt), y_train.astype(dt))
    pred = jnp.matmul(K_test_train, a, precision=HIGHEST)
    return jnp.mean(jnp.square(pred - y_test.astype(pred.dtype)))


@jax.jit
def alpha_net_stats(W_NxD: Array) -> tuple[Array, Array]:
    """Sufficient statistics of the α-net [K]: w̄ = (1/N) Σᵢ wᵢ [D] and M = (1/N) Σᵢ wᵢwᵢᵀ [D, D]."""
    n = W_NxD.shape[0]
    return jnp.mean(W_NxD, axis=0), jnp.matmul(W_NxD.T, W_NxD, precision=HIGHEST) / n


@jax.jit
def alpha_net_test_loss(w_bar: Array, M: Array, beta: Array, alpha, eps, target_scale=0.5) -> Array:
    """Exact population test loss of the α-net on the single-index target y = c·z², c = `target_scale`
    (½: "quadratic", 1: "square") [K, docs/formulas.md §5]. With B = 2c·ββᵀ:

    L = ¼(Tr B/D − αε TrM/D)² + (1/2D²)‖αεM − B‖²_F + (α²/D)|w̄|².

    Derivation. With φ(h) = h + (ε/2)h² and readouts 1, f(x) = (α/N) Σᵢ φ(wᵢ·x/√D)
    = α w̄·x/√D + (αε/2D) xᵀMx, and y = c(β·x/√D)² = (1/2D) xᵀBx. So f − y = u·x + (1/2D) xᵀAx
    with u = αw̄/√D and A = αεM − B (symmetric). For x ~ N(0, I): E[(u·x)²] = |u|², the
    cross term is an odd moment (0), and E[(xᵀAx)²] = (TrA)² + 2‖A‖²_F. Hence
    E[(f − y)²] = α²|w̄|²/D + (TrA)²/(4D²) + ‖A‖²_F/(2D²), which is the formula above term by term.

    Conventions: this is the plain MSE E[(f − y)²] of the **uncentered** f (no ½, no 1/α²);
    the training loss of docs/formulas.md §3 is this divided by α². Since f is linear in (w̄, M), the
    **centered** net f̃ = f(θ) − f(θ₀) has the same loss with w̄ − w̄₀ and M − M₀ passed in.
    Verified against a Monte-Carlo estimate in tests/test_probes.py.
    """
    d = beta.shape[0]
    two_c = 2 * jnp.asarray(target_scale, M.dtype)
    b2 = two_c * jnp.sum(beta * beta)
    trace_term = 0.25 * jnp.square(b2 / d - alpha * eps * jnp.trace(M) / d)
    frob_term = jnp.sum(jnp.square(alpha * eps * M - two_c * jnp.outer(beta, beta))) / (2 * d * d)
    mean_term = jnp.square(alpha) / d * jnp.sum(w_bar * w_bar)
    return trace_term + frob_term + mean_term
