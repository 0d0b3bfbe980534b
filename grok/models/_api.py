"""Model construction through the model registry, and the analytic solution of [D]."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from grok.models._common import Array, DType
from grok.models._mlp import QuadraticMLP
from grok.registry import MODELS


def build_model(
    model_cfg: Any,
    spec: Any,
    *,
    rngs: nnx.Rngs,
    init_scale: Any,
    dropout: Any,
    alpha: Any,
    epsilon: Any,
    param_dtype: DType = jnp.float32,
) -> nnx.Module:
    """The network of the registered `model_cfg.kind` for a task of shape `spec` (docs/formulas.md §3).

    `spec` needs `.n_classes` (0: regression, output [n]), `.n_tokens` (p for token pairs,
    0 for dense inputs) and `.input_dim`. `init_scale`, `dropout`, `alpha`, `epsilon` may be
    traced scalars (build inside `jax.jit(jax.vmap(...))`); they are used arithmetically only.
    Uses `rngs.params` for weights and `rngs.dropout` (if present) to seed the dropout stream.
    Whether dropout is applied at all is static (`model_cfg.dropout > 0`): with rate 0 the
    training step draws no random numbers; the rate itself is the (dynamic) `dropout`.
    """
    entry = MODELS.get(model_cfg.kind, "model.kind")
    return entry.build(
        model_cfg,
        spec,
        rngs=rngs,
        init_scale=init_scale,
        dropout=dropout,
        alpha=alpha,
        epsilon=epsilon,
        param_dtype=param_dtype,
    )


def param_count(model: nnx.Module) -> int:
    """Number of trainable scalars (elements of `nnx.Param`s)."""
    return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))


def analytic_solution(p: int, N: int, key: Array, *, param_dtype: DType = jnp.float32) -> QuadraticMLP:
    """Gromov's constructed quadratic MLP solving (a + b) mod p [D, Gromov 2023].

    U_ki = A cos(2π i σ(k)/p + φᵘ_k), V_kj = A cos(2π j σ(k)/p + φᵛ_k),
    W_qk = A cos(−2π q σ(k)/p − φᵘ_k − φᵛ_k), A = (2/N)^{1/3} (docs/formulas.md §3; the paper's
    printed −1/3 is a sign typo). σ(k) cycles through 1..(p−1)/2; phases uniform from `key`.
    Every neuron is a pure Fourier mode, so its IPR is 1.
    """
    u, v, w = _gromov_weights(key, p, N)
    drop_key = jax.random.fold_in(key, 2)
    return QuadraticMLP(p=p, width=N, param_dtype=param_dtype, rngs=nnx.Rngs(params=drop_key), weights=(u, v, w))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _gromov_weights(key: Array, p: int, N: int) -> tuple[Array, Array, Array]:
    """(U [N, p], V [N, p], W [p, N]) of the analytic solution, float32."""
    k_phase_u, k_phase_v = jax.random.split(key)
    amp = (2.0 / N) ** (1.0 / 3.0)
    n_freq = max((p - 1) // 2, 1)
    sigma = (1 + jnp.arange(N) % n_freq).astype(jnp.float32)  # [N]
    phi_u = jax.random.uniform(k_phase_u, (N,), jnp.float32, 0.0, 2 * math.pi)
    phi_v = jax.random.uniform(k_phase_v, (N,), jnp.float32, 0.0, 2 * math.pi)
    i = jnp.arange(p, dtype=jnp.float32)
    angle = 2 * math.pi * sigma[:, None] * i[None, :] / p  # [N, p]: 2π i σ(k)/p
    u = amp * jnp.cos(angle + phi_u[:, None])
    v = amp * jnp.cos(angle + phi_v[:, None])
    w = amp * jnp.cos(-angle - (phi_u + phi_v)[:, None])  # [N, q]
    return u, v, w.T
