"""The transformer's `model.transformer.layers` (Power et al.'s 2 blocks): a NumPy causal pre-LN
transformer over all three positions gives the same logits; one layer keeps its parameters."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx

import grok
from grok.config import Config
from grok.models import Transformer
from tests.test_models import TRANSFORMER, N, P, _layernorm_np, all_pairs, apply, build, modular_spec, np_

TWO = TRANSFORMER.__class__(**{**TRANSFORMER.__dict__, "options": (("transformer.layers", 2),)})


def _dense(layer, a):
    w = np_(layer.kernel[...])
    out = a @ (w.T if layer.transposed else w)
    return out if layer.bias is None else out + np_(layer.bias[...])


def _block(h, blk, heads):
    n, t, d = h.shape
    hd = d // heads
    hn = _layernorm_np(h, blk.ln1)
    q, k, v = (_dense(w, hn).reshape(n, t, heads, hd) for w in (blk.wq, blk.wk, blk.wv))
    s = np.einsum("nqhe,nkhe->nhqk", q, k) / np.sqrt(hd)
    s = np.where(np.tril(np.ones((t, t), bool))[None, None], s, -np.inf)
    att = np.exp(s - s.max(-1, keepdims=True))
    att /= att.sum(-1, keepdims=True)
    r = h + _dense(blk.wo, np.einsum("nhqk,nkhe->nqhe", att, v).reshape(n, t, d))
    return r + _dense(blk.mlp_out, np.maximum(_dense(blk.mlp_in, _layernorm_np(r, blk.ln2)), 0))


def test_two_layers_equal_numpy_causal_transformer():
    model = build(TWO, modular_spec())
    assert isinstance(model, Transformer) and len(model.lower) == 1
    x = np.asarray(all_pairs())
    tokens = np.concatenate([x, np.full((x.shape[0], 1), P)], axis=1)
    h = np_(model.tok_embed[...])[tokens] + np_(model.pos_embed[...])[None]
    h = _block(h, model.lower[0], TRANSFORMER.n_heads)
    h = _block(h, model, TRANSFORMER.n_heads)  # the top block's weights live on the model itself
    ref = _dense(model.unembed, _layernorm_np(h, model.ln_f))[:, -1]
    np.testing.assert_allclose(np_(apply(model, x)), ref, rtol=1e-4, atol=1e-5)
    one = build(TRANSFORMER, modular_spec())
    np.testing.assert_array_equal(np_(one.wq.kernel[...]), np_(model.wq.kernel[...]))  # same draws below
    n_one = sum(a.size for a in jax.tree_util.tree_leaves(nnx.state(one, nnx.Param)))
    n_two = sum(a.size for a in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))
    # a block: q, k, v, o [N, N]; the MLP [N, 32] and [32, N]; biases of o and the MLP; two LayerNorms
    assert n_two - n_one == 4 * N * N + 2 * N * 32 + (2 * N + 32) + 2 * 2 * N


def test_layers_out_of_range_is_one_line():
    with pytest.raises(grok.ConfigError, match="model.transformer.layers: got 0"):
        Config().override(**{"model.kind": "transformer", "model.transformer.layers": 0})
