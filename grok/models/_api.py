"""Model construction and the neuron-level views used by IPR and pruning [D]."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from grok.models._alpha_net import AlphaNet
from grok.models._common import Array, DType
from grok.models._mlp import MLP, QuadraticMLP
from grok.models._transformer import Transformer


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
    """The network of `model_cfg.kind` for a task of shape `spec` (DESIGN.md §3).

    `spec` needs `.n_classes` (0: regression, output [n]), `.n_tokens` (p for token pairs,
    0 for dense inputs) and `.input_dim`. `init_scale`, `dropout`, `alpha`, `epsilon` may be
    traced scalars (build inside `jax.jit(jax.vmap(...))`); they are used arithmetically only.
    Uses `rngs.params` for weights and `rngs.dropout` (if present) to seed the dropout stream.
    Whether dropout is applied at all is static (`model_cfg.dropout > 0`): with rate 0 the
    training step draws no random numbers; the rate itself is the (dynamic) `dropout`.
    """
    kind = model_cfg.kind
    use_dropout = model_cfg.dropout > 0
    n_tokens, n_classes, input_dim = int(spec.n_tokens), int(spec.n_classes), int(spec.input_dim)
    if kind == "mlp":
        return MLP(
            n_in=input_dim,
            n_tokens=n_tokens,
            n_classes=n_classes,
            widths=tuple(model_cfg.widths),
            activation=model_cfg.activation,
            init=model_cfg.init,
            use_bias=model_cfg.use_bias,
            batchnorm=model_cfg.batchnorm,
            init_scale=init_scale,
            dropout=dropout,
            param_dtype=param_dtype,
            rngs=rngs,
            use_dropout=use_dropout,
        )
    if kind == "quadratic_mlp":
        _need_tokens(kind, n_tokens)
        return QuadraticMLP(
            p=n_tokens,
            width=model_cfg.widths[0],
            n_classes=n_classes,
            batchnorm=model_cfg.batchnorm,
            init_scale=init_scale,
            dropout=dropout,
            param_dtype=param_dtype,
            rngs=rngs,
            use_dropout=use_dropout,
        )
    if kind == "alpha_net":
        if n_tokens:
            raise ValueError("model.kind='alpha_net' needs dense inputs (the polynomial task), not token pairs")
        return AlphaNet(
            input_dim=input_dim,
            width=model_cfg.widths[0],
            train_readout=model_cfg.train_readout,
            centered=model_cfg.centered,
            init_scale=init_scale,
            alpha=alpha,
            epsilon=epsilon,
            param_dtype=param_dtype,
            rngs=rngs,
        )
    if kind == "transformer":
        _need_tokens(kind, n_tokens)
        return Transformer(
            p=n_tokens,
            n_classes=n_classes,
            d_model=model_cfg.d_model,
            n_heads=model_cfg.n_heads,
            d_mlp=model_cfg.d_mlp,
            layernorm=model_cfg.layernorm,
            init=model_cfg.init,
            use_bias=model_cfg.use_bias,
            init_scale=init_scale,
            dropout=dropout,
            param_dtype=param_dtype,
            rngs=rngs,
            use_dropout=use_dropout,
        )
    raise ValueError(f"unknown model kind {kind!r}; allowed: mlp, quadratic_mlp, alpha_net, transformer")


def _need_tokens(kind: str, n_tokens: int) -> None:
    if not n_tokens:
        raise ValueError(f"model.kind={kind!r} needs token-pair inputs (the modular task)")


def param_count(model: nnx.Module) -> int:
    """Number of trainable scalars (elements of `nnx.Param`s)."""
    return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))


def neuron_weights(model: nnx.Module) -> tuple[Array, Array, Array | None]:
    """(U [N, p], V [N, p], W_out [C, N] or None) of the first hidden layer, for IPR [D].

    U row k / V row k: neuron k's first-layer weights on token a / token b. W_out column k:
    its readout weights — None when the next layer is not the readout (deeper MLPs).
    """
    if not isinstance(model, MLP) or not model.n_tokens:
        raise ValueError("neuron_weights needs a token-input MLP or quadratic MLP (modular task)")
    p = model.n_tokens
    e = model.first.kernel[...]
    w_out = model.readout.kernel[...] if len(model.widths) == 1 and model.n_classes > 0 else None
    return e[:p].T, e[p:].T, w_out


def _key_names(path: tuple) -> tuple:
    names = []
    for entry in path:
        if isinstance(entry, jax.tree_util.DictKey):
            names.append(str(entry.key))
        elif isinstance(entry, jax.tree_util.SequenceKey):
            names.append(str(entry.idx))
        elif isinstance(entry, jax.tree_util.GetAttrKey) and entry.name != "value":
            names.append(entry.name)
    return tuple(names)


def apply_neuron_mask(params_state: Any, mask: Array, model_cfg: Any) -> Any:
    """Zero the incoming and outgoing weights of first-hidden-layer neurons where `mask` == 0 [D].

    Pure (returns a new tree; jit/vmap friendly). `params_state`: the `nnx.State` of Params
    (`nnx.split(model, nnx.Param, ...)[1]`) or its pure dict; `mask`: [N] of 0/1 (or bool).
    Zeroed: columns of `first.kernel` (U, V rows), `first.bias`, the first BatchNorm's scale
    and bias, and the neuron's weights in the next layer (rows of `hidden[0].kernel`, columns of
    `readout.kernel` [C, N]). Defined for the MLP and the quadratic MLP (pruning is a
    classification experiment, DESIGN.md §6); the centered α-net's f(θ₀) part and the
    transformer have no such neuron view (ValueError).
    """
    kind = model_cfg.kind
    if kind not in ("mlp", "quadratic_mlp"):
        raise ValueError(f"apply_neuron_mask: defined for mlp and quadratic_mlp, not model.kind={kind!r}")
    keep = jnp.asarray(mask) != 0
    deeper = kind == "mlp" and len(model_cfg.widths) > 1
    cols = {("first", "kernel")} | (set() if deeper else {("readout", "kernel")})  # readout: [C, N₀]
    vecs = {("first", "bias"), ("bn", "0", "scale"), ("bn", "0", "bias")}
    rows = {("hidden", "0", "kernel")} if deeper else set()

    def one(path: tuple, leaf: Array) -> Array:
        names = _key_names(path)
        if names in cols:
            m = keep[None, :]
        elif names in rows:
            m = keep[:, None]
        elif names in vecs:
            m = keep
        else:
            return leaf
        return jnp.where(m, leaf, jnp.zeros_like(leaf))

    return jax.tree_util.tree_map_with_path(one, params_state)


def analytic_solution(p: int, N: int, key: Array, *, param_dtype: DType = jnp.float32) -> QuadraticMLP:
    """Gromov's constructed quadratic MLP solving (a + b) mod p [D, Gromov 2023].

    U_ki = A cos(2π i σ(k)/p + φᵘ_k), V_kj = A cos(2π j σ(k)/p + φᵛ_k),
    W_qk = A cos(−2π q σ(k)/p − φᵘ_k − φᵛ_k), A = (2/N)^{1/3} (DESIGN.md §3; the paper's
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
