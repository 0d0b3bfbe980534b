"""Transformer on [a, b, =] (the Power et al. 2022 / Nanda et al. 2023 setting): one block by default,
`model.transformer.layers` blocks (Power et al.'s 2) with causal attention below the last."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from grok.models._common import (
    Array,
    Dense,
    DType,
    Hyper,
    UniformBank,
    dense_size,
    dropout,
    dropout_stream,
    hyper_dtype,
    member_kwargs,
    need_tokens,
)


class LayerNorm(nnx.Module):
    """y = (x − mean)/√(var + ε) · scale + bias over the last axis (torch's default ε = 1e-5).

    Hand-written: `nnx.LayerNorm` compiles ~3× slower here and we need none of its options.
    """

    def __init__(self, d: int, *, dtype: DType, epsilon: float = 1e-5):
        self.scale = nnx.Param(jnp.ones((d,), dtype))
        self.bias = nnx.Param(jnp.zeros((d,), dtype))
        self.epsilon = epsilon

    def __call__(self, x: Array) -> Array:
        mu = jnp.mean(x, axis=-1, keepdims=True)
        xc = x - mu
        var = jnp.mean(jnp.square(xc), axis=-1, keepdims=True)
        shape = (1,) * (x.ndim - 1) + (x.shape[-1],)
        y = xc * jax.lax.rsqrt(var + jnp.asarray(self.epsilon, x.dtype))
        return y * self.scale[...].reshape(shape) + self.bias[...].reshape(shape)


def _attention(q: Array, k: Array, v: Array, n_heads: int, causal: bool) -> Array:
    """Multi-head attention over the 3 positions: q [n, T, d] (T = 1 or 3), k, v [n, 3, d] → [n, T, d]."""
    n, t, d = q.shape
    hd = d // n_heads
    q, k, v = (a.reshape(a.shape[0], a.shape[1], n_heads, hd) for a in (q, k, v))
    scores = jnp.einsum("nqhe,nkhe->nhqk", q, k) * jnp.asarray(1.0 / math.sqrt(hd), q.dtype)
    if causal:
        scores = jnp.where(jnp.tril(jnp.ones((t, 3), bool)), scores, jnp.asarray(-jnp.inf, scores.dtype))
    attn = jax.nn.softmax(scores, axis=-1)
    return jnp.einsum("nhqk,nkhe->nqhe", attn, v).reshape(n, t, d)


class Block(nnx.Module):
    """A block below the last: pre-LN (optional) causal attention and a ReLU MLP at all 3 positions."""

    def __init__(self, *, d: int, d_mlp: int, n_heads: int, use_bias: bool, layernorm: bool, common: dict):
        self.n_heads = n_heads
        self.wq = Dense(d, d, use_bias=False, **common)
        self.wk = Dense(d, d, use_bias=False, **common)
        self.wv = Dense(d, d, use_bias=False, **common)
        self.wo = Dense(d, d, use_bias=use_bias, **common)
        self.mlp_in = Dense(d, d_mlp, use_bias=use_bias, **common)
        self.mlp_out = Dense(d_mlp, d, use_bias=use_bias, **common)
        self.ln1 = LayerNorm(d, dtype=common["dtype"]) if layernorm else None
        self.ln2 = LayerNorm(d, dtype=common["dtype"]) if layernorm else None

    def __call__(self, h: Array, drop) -> Array:
        n, t, d = h.shape
        flat = lambda f, a: f(a.reshape(n * t, -1)).reshape(n, t, -1)
        hn = self.ln1(h) if self.ln1 is not None else h
        z = _attention(flat(self.wq, hn), flat(self.wk, hn), flat(self.wv, hn), self.n_heads, causal=True)
        h = h + flat(self.wo, z)
        m = self.ln2(h) if self.ln2 is not None else h
        return h + flat(self.mlp_out, jax.nn.relu(drop(flat(self.mlp_in, m))))


def _block_size(d: int, d_mlp: int, use_bias: bool) -> int:
    size = 3 * dense_size(d, d, use_bias=False) + dense_size(d, d, use_bias=use_bias)
    return size + dense_size(d, d_mlp, use_bias=use_bias) + dense_size(d_mlp, d, use_bias=use_bias)


class Transformer(nnx.Module):
    """Token + learned positional embeddings, `layers` blocks (attention, ReLU MLP), unembed.

    Input x: int [n, 2] pairs; the sequence is [a, b, =] with '=' the token id p. Only the
    last position is read out, and the last block's output there depends only on its own
    query, so causal and full attention give identical logits — the last block computes just
    that query. With one block, that query (and the key and value at '=') is the same for every
    example and is computed once (`_one_layer_attention`). Blocks below it (`layers` > 1) run
    causal attention at all three positions.
    Optional pre-LN (LayerNorm before attention, before the MLP, and before the unembed).
    Embeddings ~ N(0, 1/d_model) (× init_scale); matrices follow `init` with fan_in.
    Dropout (traced rate) before the MLP's ReLU when training. No biases unless `use_bias`.
    """

    def __init__(
        self,
        *,
        p: int,
        n_classes: int,
        d_model: int,
        n_heads: int,
        d_mlp: int,
        layernorm: bool,
        init: str,
        use_bias: bool,
        init_scale: Any,
        dropout: Any,
        param_dtype: DType,
        rngs: nnx.Rngs,
        use_dropout: bool = True,
        layers: int = 1,
    ):
        self.p = p
        self.n_heads = n_heads
        d = d_model
        total = (p + 1 + 3) * d + 3 * dense_size(d, d, use_bias=False) + dense_size(d, d, use_bias=use_bias)
        total += dense_size(d, d_mlp, use_bias=use_bias) + dense_size(d_mlp, d, use_bias=use_bias)
        total += dense_size(d, n_classes, use_bias=False) + (layers - 1) * _block_size(d, d_mlp, use_bias)
        bank = UniformBank(rngs.params(), total, param_dtype)
        std = jnp.asarray(1.0 / math.sqrt(d), param_dtype) * jnp.asarray(init_scale, param_dtype)
        self.tok_embed = nnx.Param(bank.normal((p + 1, d)).astype(param_dtype) * std)
        self.pos_embed = nnx.Param(bank.normal((3, d)).astype(param_dtype) * std)
        common = dict(scheme=init, width=d, scale=init_scale, dtype=param_dtype, bank=bank)
        self.wq = Dense(d, d, use_bias=False, **common)
        self.wk = Dense(d, d, use_bias=False, **common)
        self.wv = Dense(d, d, use_bias=False, **common)
        self.wo = Dense(d, d, use_bias=use_bias, **common)
        self.mlp_in = Dense(d, d_mlp, use_bias=use_bias, **common)
        self.mlp_out = Dense(d_mlp, d, use_bias=use_bias, **common)
        self.unembed = Dense(d, n_classes, use_bias=False, transposed=True, **common)
        shape = dict(d=d, d_mlp=d_mlp, n_heads=n_heads, use_bias=use_bias, layernorm=layernorm, common=common)
        self.lower = nnx.List([Block(**shape) for _ in range(layers - 1)])  # drawn after the rest: 1 layer unchanged
        bank.check_done()
        self.ln1 = LayerNorm(d, dtype=param_dtype) if layernorm else None
        self.ln2 = LayerNorm(d, dtype=param_dtype) if layernorm else None
        self.ln_f = LayerNorm(d, dtype=param_dtype) if layernorm else None
        self.rate = Hyper(jnp.asarray(dropout, hyper_dtype(param_dtype)))
        self.use_dropout = use_dropout
        self.rng = dropout_stream(rngs)

    def __call__(self, x: Array, *, train: bool) -> Array:
        """Logits [n, C] at the '=' position."""
        return self.forward(x, train=train)[1]

    def forward(self, x: Array, *, train: bool) -> tuple[Array, Array]:
        """(MLP neuron activations after the ReLU [n, d_mlp], logits [n, C]) at the '=' position."""
        drop = (lambda u: dropout(u, self.rate[...], self.rng())) if train and self.use_dropout else (lambda u: u)
        z, residual = self._last_attention(x, drop) if self.lower else self._one_layer_attention(x)
        r = residual + self.wo(z)
        m = self.ln2(r) if self.ln2 is not None else r
        u = self.mlp_in(m)
        if train and self.use_dropout:
            u = dropout(u, self.rate[...], self.rng())
        acts = jax.nn.relu(u)
        r = r + self.mlp_out(acts)
        r = self.ln_f(r) if self.ln_f is not None else r
        return acts, self.unembed(r)

    def _last_attention(self, x: Array, drop) -> tuple[Array, Array]:
        """The last block's attention output at '=' [n, d] and the residual stream there [n, d], below
        it `layers` − 1 blocks over all three positions."""
        n = x.shape[0]
        tokens = jnp.concatenate([x.astype(jnp.int32), jnp.full((n, 1), self.p, jnp.int32)], axis=1)  # [n, 3]
        h = self.tok_embed[...][tokens] + self.pos_embed[...][None, :, :]  # [n, 3, d]
        for block in self.lower:
            h = block(h, drop)
        d = h.shape[-1]
        hd = d // self.n_heads
        hn = self.ln1(h) if self.ln1 is not None else h
        q = self.wq(hn[:, -1, :]).reshape(n, self.n_heads, hd)
        k = self.wk(hn.reshape(n * 3, d)).reshape(n, 3, self.n_heads, hd)
        v = self.wv(hn.reshape(n * 3, d)).reshape(n, 3, self.n_heads, hd)
        scores = jnp.einsum("nhe,nthe->nht", q, k) * jnp.asarray(1.0 / math.sqrt(hd), q.dtype)
        attn = jax.nn.softmax(scores, axis=-1)
        return jnp.einsum("nht,nthe->nhe", attn, v).reshape(n, d), h[:, -1, :]

    def _one_layer_attention(self, x: Array) -> tuple[Array, Array]:
        """As `_last_attention` with no block below: then the '=' position's input, E[=] + P[2], is
        the same for every example, so its query, key and value are computed once (one row), not
        once per example; the keys and values of a and b are one product over 2n + 1 rows."""
        n = x.shape[0]
        emb, pos = self.tok_embed[...], self.pos_embed[...]
        d = emb.shape[-1]
        heads, hd = self.n_heads, d // self.n_heads
        norm = self.ln1 if self.ln1 is not None else (lambda a: a)
        h_ab = emb[x.astype(jnp.int32)] + pos[None, :2, :]  # [n, 2, d]
        h_eq = (emb[self.p] + pos[2])[None]  # [1, d]
        rows = jnp.concatenate([norm(h_ab).reshape(2 * n, d), norm(h_eq)], axis=0)  # [2n + 1, d]
        k, v = self.wk(rows), self.wv(rows)
        q = self.wq(norm(h_eq)).reshape(heads, hd)
        scale = jnp.asarray(1.0 / math.sqrt(hd), q.dtype)
        scores_ab = jnp.einsum("he,nthe->nht", q, k[: 2 * n].reshape(n, 2, heads, hd)) * scale
        score_eq = jnp.einsum("he,he->h", q, k[2 * n].reshape(heads, hd)) * scale
        scores = jnp.concatenate([scores_ab, jnp.broadcast_to(score_eq[None, :, None], (n, heads, 1))], axis=-1)
        attn = jax.nn.softmax(scores, axis=-1)  # [n, heads, 3]
        z = jnp.einsum("nht,nthe->nhe", attn[..., :2], v[: 2 * n].reshape(n, 2, heads, hd))
        z = z + attn[..., 2:] * v[2 * n].reshape(1, heads, hd)
        return z.reshape(n, d), h_eq

    def neuron_logit_map(self) -> Array:
        """W_L = W_out · W_U [d_mlp, C]: how each neuron's activation moves the logits (without LayerNorm)."""
        w_out = self.mlp_out.kernel[...]  # [d_mlp, d]
        return w_out @ self.unembed.kernel[...].T


def _build_transformer(model_cfg: Any, spec: Any, *, alpha, epsilon, **member) -> Transformer:
    del alpha, epsilon
    need_tokens("transformer", spec)
    return Transformer(
        p=int(spec.n_tokens),
        n_classes=int(spec.n_classes),
        d_model=model_cfg.d_model,
        n_heads=model_cfg.n_heads,
        d_mlp=model_cfg.d_mlp,
        layernorm=model_cfg.layernorm,
        layers=int(model_cfg.option("transformer", "layers")),
        init=model_cfg.init,
        use_bias=model_cfg.use_bias,
        **member_kwargs(model_cfg, **member),
    )
