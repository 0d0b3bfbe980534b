"""Models (docs/formulas.md §3): formulas against NumPy references, shapes, dropout, BatchNorm,
the analytic solution [D, Gromov], the α-net [K], neuron masks, and vmapped construction.

Speed (the whole cost here is XLA compilation): models are built under `jax.jit` (one
compile per config instead of one per eager op) from `rbg` keys, forwards go through
`nnx.jit` (which keeps BatchNorm / RNG-stream updates), inputs come from NumPy, and tests
share shapes. Tests that compare vmapped with unbatched builds use the default threefry keys
(vmap-invariant).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import assert_token_layer_form_trains_the_same

from grok.config import ModelConfig
from grok.models import (
    MLP,
    AlphaNet,
    Hyper,
    InitParam,
    QuadraticMLP,
    Transformer,
    analytic_solution,
    apply_neuron_mask,
    build_model,
    neuron_weights,
    param_count,
)
from grok.models._common import dropout as dropout_fn

P, D, N = 7, 12, 16  # tokens, α-net input dim, hidden width


class Spec(NamedTuple):
    """The fields of tasks.TaskSpec that models read (hashable, so it can be a static jit argument)."""

    kind: str
    n_classes: int
    n_tokens: int
    input_dim: int


def modular_spec(p: int = P) -> Spec:
    return Spec("modular", p, p, 2)


def parity_spec() -> Spec:
    return Spec("parity", 2, 0, D)


def poly_spec() -> Spec:
    return Spec("polynomial", 0, 0, D)


@functools.partial(jax.jit, static_argnums=(0, 1), static_argnames="param_dtype")
def _build(cfg, spec, seed, init_scale, dropout, alpha, epsilon, param_dtype=jnp.float32):
    rngs = nnx.Rngs(params=jax.random.key(seed, impl="rbg"), dropout=jax.random.key(seed + 1000, impl="rbg"))
    return build_model(
        cfg,
        spec,
        rngs=rngs,
        init_scale=init_scale,
        dropout=dropout,
        alpha=alpha,
        epsilon=epsilon,
        param_dtype=param_dtype,
    )


def build(cfg: ModelConfig, spec: Spec, seed: int = 0, *, dropout=0.0, alpha=1.0, epsilon=0.02, init_scale=1.0, **kw):
    """A concrete model, constructed under jit (NNX modules are pytrees)."""
    return _build(cfg, spec, seed, init_scale, dropout, alpha, epsilon, **kw)


@nnx.jit(static_argnames="train")
def apply(model: nnx.Module, x: jax.Array, train: bool = False) -> jax.Array:
    """A jitted forward that, like an eager call, advances the dropout stream and BatchNorm stats."""
    return model(x, train=train)


jit_mask = jax.jit(apply_neuron_mask, static_argnums=2)


def all_pairs(p: int = P) -> jax.Array:
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    return jnp.asarray(np.stack([a.ravel(), b.ravel()], axis=1), dtype=jnp.int32)


def dense_x(n: int = 5) -> jax.Array:
    return jnp.asarray(np.random.default_rng(3).standard_normal((n, D)), jnp.float32)


def np_(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def first_layer_np(model: MLP, x) -> np.ndarray:
    """E[a] + E[p + b] in NumPy (no bias)."""
    e, x = np_(model.first.kernel[...]), np.asarray(x)
    return e[x[:, 0]] + e[model.n_tokens + x[:, 1]]


# Shared configurations: a jit cache hit whenever two tests use the same one.
MLP1 = ModelConfig(kind="mlp", widths=(N,))
MLP2 = ModelConfig(kind="mlp", widths=(N, 8))
MLP_BIAS = ModelConfig(kind="mlp", widths=(N, 8), use_bias=True)
MLP_BN = ModelConfig(kind="mlp", widths=(N,), use_bias=True, batchnorm=True, activation="gelu")
MLP_PARITY = ModelConfig(kind="mlp", widths=(N, 8), activation="tanh", init="normal")
MLP_POLY = ModelConfig(kind="mlp", widths=(N,), activation="quadratic", init="doshi")
QUAD = ModelConfig(kind="quadratic_mlp", widths=(N,))
QUAD_BN = ModelConfig(kind="quadratic_mlp", widths=(N,), batchnorm=True)
ALPHA = ModelConfig(kind="alpha_net", widths=(N,))  # centered, fixed readouts
ALPHA_RO = ModelConfig(kind="alpha_net", widths=(N,), train_readout=True)
TRANSFORMER = ModelConfig(kind="transformer", d_model=N, n_heads=4, d_mlp=32, layernorm=True, use_bias=True)


# ----------------------------------------------------------------------------- MLP
def test_gather_equals_one_hot_concat_matmul():
    model = build(MLP_BIAS, modular_spec())
    x = all_pairs()
    e = np_(model.first.kernel[...])
    one_hot = np.concatenate([np.eye(P)[np.asarray(x[:, 0])], np.eye(P)[np.asarray(x[:, 1])]], axis=1)  # [n, 2p]
    ref = one_hot @ e + np_(model.first.bias[...])[None, :]
    np.testing.assert_allclose(np_(jax.jit(lambda m, x: m.first_layer(x))(model, x)), ref, rtol=1e-6, atol=1e-7)
    # the whole forward against a NumPy one-hot reference
    h = np.maximum(ref, 0.0)
    h = np.maximum(h @ np_(model.hidden[0].kernel[...]) + np_(model.hidden[0].bias[...]), 0.0)
    out = h @ np_(model.readout.kernel[...]).T + np_(model.readout.bias[...])
    np.testing.assert_allclose(np_(apply(model, x)), out, rtol=1e-5, atol=1e-6)
    # torch init: U(±1/√fan_in) with fan_in = 2p for the token layer
    assert 0.8 / np.sqrt(2 * P) < np.abs(e).max() <= 1 / np.sqrt(2 * P)


SHAPE_CASES = [
    (MLP_BIAS, modular_spec(), (P * P, P)),
    (MLP_BN, modular_spec(), (P * P, P)),
    (MLP_PARITY, parity_spec(), (5, 2)),
    (MLP_POLY, poly_spec(), (5,)),
    (QUAD_BN, modular_spec(), (P * P, P)),
    (ALPHA, poly_spec(), (5,)),
    (TRANSFORMER, modular_spec(), (P * P, P)),
]


@pytest.mark.parametrize("cfg, spec, shape", SHAPE_CASES, ids=lambda v: getattr(v, "kind", None))
def test_output_shapes_and_graphdef(cfg, spec, shape):
    model = build(cfg, spec, dropout=0.1)
    abstract = nnx.eval_shape(lambda: build(cfg, spec, dropout=0.1))
    assert nnx.split(abstract, nnx.Param, ...)[0] == nnx.split(model, nnx.Param, ...)[0]  # the engine's graphdef
    x = all_pairs() if spec.n_tokens else dense_x()
    for train in (False, True):
        out = apply(model, x, train=train)
        assert out.shape == shape and out.dtype == jnp.float32
        assert bool(jnp.all(jnp.isfinite(out)))


def test_param_dtype_is_respected():
    model = build(QUAD_BN, modular_spec(), param_dtype=jnp.float16)
    assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))} == {jnp.dtype(jnp.float16)}
    assert apply(model, all_pairs(), train=True).dtype == jnp.float16


def _scale_params(model: nnx.Module, c: float) -> nnx.Module:
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    return nnx.merge(graphdef, jax.tree_util.tree_map(lambda w: w * c, params), rest)


@pytest.mark.parametrize("cfg", [MLP1, MLP2], ids=["L2", "L3"])
def test_relu_mlp_without_bias_is_positively_homogeneous(cfg):
    """f(cθ) = c^L f(θ) for a bias-free ReLU net with L weight layers [P] (the NLM direction is θ)."""
    model = build(cfg, modular_spec())
    x = all_pairs()
    depth = len(cfg.widths) + 1
    base = np_(apply(model, x))
    for c in (0.5, 3.0):
        expected = c**depth * base
        np.testing.assert_allclose(
            np_(apply(_scale_params(model, c), x)), expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max()
        )


def test_relu_mlp_with_bias_is_not_homogeneous():
    """The homogeneity check can fail: biases break it."""
    model = build(MLP_BIAS, modular_spec())
    x = all_pairs()
    assert not np.allclose(np_(apply(_scale_params(model, 3.0), x)), 27.0 * np_(apply(model, x)), rtol=1e-3)


# ----------------------------------------------------------------------------- quadratic MLP
def test_quadratic_mlp_matches_numpy_and_init_std():
    model = build(QUAD, modular_spec(), init_scale=2.0)
    assert isinstance(model, QuadraticMLP)
    u, v, w = np_(model.U), np_(model.V), np_(model.W)
    assert u.shape == (N, P) and v.shape == (N, P) and w.shape == (P, N)
    x = np.asarray(all_pairs())
    ref = (w @ np.square(u[:, x[:, 0]] + v[:, x[:, 1]])).T  # f = W (U e_a + V e_b)²
    np.testing.assert_allclose(np_(apply(model, jnp.asarray(x))), ref, rtol=1e-5, atol=1e-7)
    expected = 2.0 * 0.5 / (2 * N) ** (1 / 3)  # both layers ~ N(0, 0.5/(2N)^{1/3}) × init_scale
    for a in (np.concatenate([u, v]), w):
        assert abs(a.std() / expected - 1) < 0.15
    assert param_count(model) == 3 * N * P


# ----------------------------------------------------------------------------- dropout
def test_dropout_function_inverted_scaling_with_traced_rate():
    x = jnp.full((4000,), 3.0)

    @jax.jit
    @jax.vmap
    def go(rate, key):
        return dropout_fn(x, rate, key)

    out = np.asarray(go(jnp.asarray([0.0, 0.25]), jax.random.split(jax.random.key(0), 2)))
    np.testing.assert_array_equal(out[0], np.asarray(x))  # rate 0: exact identity
    kept = out[1] != 0
    assert abs(1 - kept.mean() - 0.25) < 0.03
    np.testing.assert_allclose(out[1][kept], 3.0 / 0.75, rtol=1e-6)


def test_dropout_in_model_zeroes_units_before_square_with_inverted_scaling():
    """Readout = [I; 0], so output k is (dropout(z_k))² for k < p: the hidden units are visible."""
    rate = 0.5
    model = build(dataclasses.replace(QUAD, dropout=rate), modular_spec(), dropout=rate)
    model.readout.kernel[...] = jnp.eye(P, N, dtype=model.readout.kernel.dtype)
    x = all_pairs()
    clean = np_(apply(model, x, train=False))
    np.testing.assert_array_equal(clean, np_(apply(model, x, train=False)))  # evaluation is deterministic
    z2 = np.square(first_layer_np(model, x))[:, :P]
    np.testing.assert_allclose(clean, z2, rtol=1e-5)
    noisy = np_(apply(model, x, train=True))
    dropped = noisy == 0
    assert 0.35 < dropped.mean() < 0.65
    np.testing.assert_allclose(noisy[~dropped], z2[~dropped] / (1 - rate) ** 2, rtol=1e-5)  # (z/(1−r))²
    assert not np.array_equal(noisy, np_(apply(model, x, train=True)))  # the stream advances


def test_dropout_rate_traced_inside_jit_vmap_over_members():
    cfg, spec, x = dataclasses.replace(MLP2, dropout=0.5), modular_spec(), all_pairs()  # dropout on; rate traced

    def init(key, rate):
        m = build_model(
            cfg, spec, rngs=nnx.Rngs(params=key, dropout=jax.random.fold_in(key, 1)),
            init_scale=1.0, dropout=rate, alpha=1.0, epsilon=0.0,
        )  # fmt: skip
        return nnx.split(m, nnx.Param, ...)[1:]

    graphdef = nnx.split(nnx.eval_shape(lambda: build(cfg, spec)), nnx.Param, ...)[0]
    params, rest = jax.jit(jax.vmap(init))(jax.random.split(jax.random.key(0), 2), jnp.asarray([0.0, 0.5]))

    @jax.jit
    @jax.vmap
    def run(params, rest):
        model = nnx.merge(graphdef, params, rest)
        train, evaluation = model(x, train=True), model(x, train=False)
        return train, evaluation, nnx.split(model, nnx.Param, ...)[2]

    train, evaluation, new_rest = run(params, rest)
    np.testing.assert_array_equal(np.asarray(train[0]), np.asarray(evaluation[0]))  # rate 0
    assert not np.allclose(np.asarray(train[1]), np.asarray(evaluation[1]))  # rate 0.5
    np.testing.assert_array_equal(np.asarray(new_rest["rng"]["count"][...]), [2, 2])  # a draw per hidden layer
    np.testing.assert_array_equal(np.asarray(rest["rate"][...]), [0.0, 0.5])


# ----------------------------------------------------------------------------- BatchNorm
def test_batchnorm_train_uses_batch_stats_eval_uses_running_stats():
    model = build(QUAD_BN, modular_spec())
    x = all_pairs()
    bn, readout = model.bn[0], np_(model.readout.kernel[...]).T
    h = np.square(first_layer_np(model, x))
    out_train = np_(apply(model, x, train=True))
    hb = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5)  # batch statistics (biased variance)
    np.testing.assert_allclose(out_train, hb @ readout, rtol=1e-4, atol=1e-5)
    mean, var = np_(bn.mean[...]), np_(bn.var[...])  # moved by (1 − momentum) = 0.1 (torch's 0.1)
    np.testing.assert_allclose(mean, 0.1 * h.mean(0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(var, 0.9 + 0.1 * h.var(0), rtol=1e-4)
    out_eval = np_(apply(model, x, train=False))
    np.testing.assert_allclose(out_eval, ((h - mean) / np.sqrt(var + 1e-5)) @ readout, rtol=1e-4, atol=1e-5)
    assert not np.allclose(out_eval, out_train, rtol=1e-2)
    np.testing.assert_array_equal(np_(bn.mean[...]), mean)  # evaluation leaves the statistics alone
    assert len(jax.tree_util.tree_leaves(nnx.state(model, nnx.BatchStat))) == 2


# ----------------------------------------------------------------------------- analytic solution
def _ipr(v: np.ndarray) -> np.ndarray:
    f = np.abs(np.fft.rfft(v, axis=-1))
    return (f**4).sum(-1) / np.square((f**2).sum(-1))


@pytest.mark.parametrize("p, n", [(23, 500), (31, 300)])
def test_analytic_solution_is_perfect_on_all_pairs(p, n):
    model = analytic_solution(p, n, jax.random.key(p))
    x = all_pairs(p)
    pred = np.asarray(jnp.argmax(apply(model, x), axis=-1))
    np.testing.assert_array_equal(pred, (np.asarray(x[:, 0]) + np.asarray(x[:, 1])) % p)
    u, v, w = (np_(a) for a in neuron_weights(model))
    assert u.shape == v.shape == (n, p) and w.shape == (p, n)
    assert np.abs(u).max() <= (2 / n) ** (1 / 3) * (1 + 1e-6)  # A = (2/N)^{1/3}
    for a in (u, v, w.T):
        np.testing.assert_allclose(_ipr(a), 1.0, atol=1e-4)  # every neuron is one Fourier mode


def test_random_quadratic_mlp_is_not_a_solution():
    """Control for the oracle: a random init is far from 100% accuracy and has low IPR."""
    p = 23
    model = build(QUAD, modular_spec(p))
    x = all_pairs(p)
    acc = np.mean(np.asarray(jnp.argmax(apply(model, x), -1)) == (np.asarray(x[:, 0] + x[:, 1]) % p))
    assert acc < 0.5
    assert _ipr(np_(neuron_weights(model)[0])).mean() < 0.5


# ----------------------------------------------------------------------------- α-net [K]
def _alpha_np(x, w, alpha, eps, a=None):
    h = np_(x) @ np_(w).T / np.sqrt(x.shape[1])
    phi = h + eps / 2 * h**2
    a = np.ones(w.shape[0]) if a is None else np_(a)
    return alpha / w.shape[0] * (phi @ a)


def test_alpha_net_centered_is_zero_at_init_and_matches_formula():
    alpha, eps = 3.0, 0.25
    x = dense_x(9)
    model = build(ALPHA, poly_spec(), alpha=alpha, epsilon=eps)
    assert isinstance(model, AlphaNet)
    np.testing.assert_array_equal(np.asarray(apply(model, x, train=True)), np.zeros(9, np.float32))
    w0 = np_(model.w0[...])
    model.w[...] = model.w[...] + 0.1 * np.random.default_rng(6).standard_normal((N, D)).astype(np.float32)
    ref = _alpha_np(x, model.w[...], alpha, eps) - _alpha_np(x, w0, alpha, eps)  # f(θ) − f(θ₀)
    np.testing.assert_allclose(np_(apply(model, x)), ref, rtol=1e-4, atol=1e-6)
    # uncentered: the closed formula itself; wᵢ ~ N(0, I) × init_scale
    plain = build(
        ModelConfig(kind="alpha_net", widths=(N,), centered=False),
        poly_spec(),
        alpha=alpha,
        epsilon=eps,
        init_scale=0.5,
    )
    np.testing.assert_allclose(np_(apply(plain, x)), _alpha_np(x, plain.w[...], alpha, eps), rtol=1e-5)
    assert abs(np_(plain.w[...]).std() / 0.5 - 1) < 0.2
    assert len(jax.tree_util.tree_leaves(nnx.state(model, nnx.Param))) == 1
    assert len(jax.tree_util.tree_leaves(nnx.state(model, Hyper))) == 2
    assert len(jax.tree_util.tree_leaves(nnx.state(model, InitParam))) == 1


def test_alpha_net_train_readout_flag_changes_param_count():
    fixed = build(ALPHA, poly_spec())
    trained = build(ALPHA_RO, poly_spec())
    assert param_count(fixed) == N * D
    assert param_count(trained) == N * D + N
    x = dense_x(9)
    np.testing.assert_array_equal(np.asarray(apply(trained, x)), np.zeros(9, np.float32))
    trained.a[...] = trained.a[...] * 2.0
    w = trained.w[...]
    ref = _alpha_np(x, w, 1.0, 0.02, 2.0 * np.ones(N)) - _alpha_np(x, w, 1.0, 0.02)
    np.testing.assert_allclose(np_(apply(trained, x)), ref, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- transformer
def _layernorm_np(x: np.ndarray, ln) -> np.ndarray:
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * np_(ln.scale[...]) + np_(ln.bias[...])


def test_transformer_last_position_equals_full_and_causal_attention():
    """A NumPy pre-LN transformer over all three positions; at '=' full and causal attention agree."""
    model = build(TRANSFORMER, modular_spec())
    assert isinstance(model, Transformer)
    x = np.asarray(all_pairs())
    tokens = np.concatenate([x, np.full((x.shape[0], 1), P)], axis=1)  # [a, b, =]
    h = np_(model.tok_embed[...])[tokens] + np_(model.pos_embed[...])[None]
    n, t, d = h.shape
    heads, hd = TRANSFORMER.n_heads, N // TRANSFORMER.n_heads

    def dense(layer, a):
        w = np_(layer.kernel[...])
        out = a @ (w.T if layer.transposed else w)
        return out if layer.bias is None else out + np_(layer.bias[...])

    hn = _layernorm_np(h, model.ln1)
    q, k, v = (dense(w, hn).reshape(n, t, heads, hd) for w in (model.wq, model.wk, model.wv))
    s = np.einsum("nqhe,nkhe->nhqk", q, k) / np.sqrt(hd)
    outs = []
    for causal in (False, True):
        sc = np.where(np.tril(np.ones((t, t), bool))[None, None], s, -np.inf) if causal else s
        att = np.exp(sc - sc.max(-1, keepdims=True))
        att = att / att.sum(-1, keepdims=True)
        r = h + dense(model.wo, np.einsum("nhqk,nkhe->nqhe", att, v).reshape(n, t, d))
        r = r + dense(model.mlp_out, np.maximum(dense(model.mlp_in, _layernorm_np(r, model.ln2)), 0))
        outs.append(dense(model.unembed, _layernorm_np(r, model.ln_f))[:, -1])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-10)
    np.testing.assert_allclose(np_(apply(model, jnp.asarray(x))), outs[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layernorm", [True, False])
def test_one_layer_attention_equals_the_general_path_and_computes_the_query_once(layernorm):
    """With one block, '=' has the same input for every example: its query, key and value are computed
    from one row; the attention output, the residual and the gradient equal the per-example path's."""
    cfg = dataclasses.replace(TRANSFORMER, layernorm=layernorm)
    model = build(cfg, modular_spec())
    x = all_pairs()
    assert not model.lower
    z_one, r_one = model._one_layer_attention(x)
    z_all, r_all = model._last_attention(x, lambda u: u)
    np.testing.assert_allclose(np_(z_one), np_(z_all), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_(jnp.broadcast_to(r_one, r_all.shape)), np_(r_all), rtol=0, atol=0)

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, path):
        m = nnx.merge(graphdef, params, rest)
        z, r = m._one_layer_attention(x) if path == "one" else m._last_attention(x, lambda u: u)
        return jnp.sum(jnp.sin(r + m.wo(z)))

    grad = jax.jit(jax.grad(loss), static_argnums=1)
    g_one, g_all = grad(params, "one"), grad(params, "all")
    for a, b in zip(jax.tree.leaves(g_one), jax.tree.leaves(g_all), strict=True):
        np.testing.assert_allclose(np_(a), np_(b), rtol=2e-4, atol=2e-5)
    # the query's product has one row, not one per example; the keys' and values' 2n + 1, not 3n
    rows = [
        e.invars[0].aval.shape[0]
        for e in jax.make_jaxpr(lambda m: m.forward(x, train=False))(model).jaxpr.eqns
        if e.primitive.name == "dot_general"
    ]
    n = x.shape[0]
    assert 1 in rows and 2 * n + 1 in rows and 3 * n not in rows


# ----------------------------------------------------------------------------- neurons and masks
MASK_CFGS = [MLP1, MLP2, QUAD]


def test_neuron_weights_shapes():
    u, v, w = neuron_weights(build(MASK_CFGS[2], modular_spec()))
    assert u.shape == v.shape == (N, P) and w.shape == (P, N)
    u, v, w = neuron_weights(build(MASK_CFGS[1], modular_spec()))
    assert u.shape == (N, P) and w is None
    with pytest.raises(ValueError):
        neuron_weights(build(MLP_PARITY, parity_spec()))


def _kernel(state, path):
    for k in path:
        state = state[k]
    return np_(state[...])


@pytest.mark.parametrize("cfg", MASK_CFGS, ids=lambda c: f"{c.kind}{len(c.widths)}")
def test_apply_neuron_mask(cfg):
    model = build(cfg, modular_spec())
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    x = all_pairs()
    ones = jit_mask(params, jnp.ones(N), cfg)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(ones), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # bit-identical
    zero = jit_mask(params, jnp.zeros(N), cfg)
    np.testing.assert_array_equal(np.asarray(apply(nnx.merge(graphdef, zero, rest), x)), 0.0)

    mask = np.zeros(N)
    mask[[1, 4, 5, 9, 15]] = 1
    keep = mask == 1
    masked = jit_mask(params, jnp.asarray(mask), cfg)
    before, after = _kernel(params, ("first", "kernel")), _kernel(masked, ("first", "kernel"))
    np.testing.assert_array_equal(after[:, keep], before[:, keep])  # U, V rows of kept neurons
    np.testing.assert_array_equal(after[:, ~keep], 0.0)
    if len(cfg.widths) > 1:  # hidden[0].kernel [N₀, N₁]: rows; readout.kernel [C, N₀]: columns
        nxt_before, nxt_after = _kernel(params, ("hidden", 0, "kernel")), _kernel(masked, ("hidden", 0, "kernel"))
    else:
        nxt_before, nxt_after = _kernel(params, ("readout", "kernel")).T, _kernel(masked, ("readout", "kernel")).T
    np.testing.assert_array_equal(nxt_after[keep], nxt_before[keep])
    np.testing.assert_array_equal(nxt_after[~keep], 0.0)
    if len(cfg.widths) > 1:  # layers after the next one are untouched
        np.testing.assert_array_equal(_kernel(masked, ("readout", "kernel")), _kernel(params, ("readout", "kernel")))
    # a one-hidden-layer net with masked neurons equals the net restricted to the kept ones
    u, v, w = neuron_weights(nnx.merge(graphdef, params, rest))
    if w is not None:
        z = np_(u)[keep][:, np.asarray(x[:, 0])] + np_(v)[keep][:, np.asarray(x[:, 1])]
        act = np.square(z) if cfg.kind == "quadratic_mlp" else np.maximum(z, 0)
        out = np_(apply(nnx.merge(graphdef, masked, rest), x))
        np.testing.assert_allclose(out, (np_(w)[:, keep] @ act).T, rtol=1e-5, atol=1e-7)


def test_apply_neuron_mask_bias_batchnorm_under_vmap():
    cfg = MLP_BN
    states = [nnx.split(build(cfg, modular_spec(), seed=s), nnx.Param, ...)[1] for s in (0, 1)]
    params = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *states)
    masks = jnp.asarray(np.random.default_rng(0).integers(0, 2, (2, N)), jnp.float32)
    out = jax.jit(jax.vmap(apply_neuron_mask, in_axes=(0, 0, None)), static_argnums=2)(params, masks, cfg)
    keep = np.asarray(masks) == 1
    for path in (("first", "bias"), ("bn", 0, "scale"), ("bn", 0, "bias")):
        np.testing.assert_array_equal(_kernel(out, path)[~keep], 0.0)
        np.testing.assert_array_equal(_kernel(out, path)[keep], _kernel(params, path)[keep])
    assert np.all(_kernel(out, ("bn", 0, "scale"))[keep] == 1.0)  # BatchNorm scale starts at 1
    np.testing.assert_array_equal(_kernel(out, ("readout", "bias")), _kernel(params, ("readout", "bias")))


def test_apply_neuron_mask_rejects_models_without_a_neuron_view():
    params = nnx.split(build(ALPHA_RO, poly_spec()), nnx.Param, ...)[1]
    for cfg in (ALPHA_RO, TRANSFORMER):
        with pytest.raises(ValueError, match="apply_neuron_mask"):
            apply_neuron_mask(params, jnp.ones(N), cfg)


# ----------------------------------------------------------------------------- engine-style construction
@pytest.mark.parametrize(
    "cfg, spec",
    [
        (QUAD_BN, modular_spec()),
        (ALPHA, poly_spec()),
    ],
    ids=["quadratic_bn", "alpha_net"],
)
def test_build_inside_jit_vmap_matches_unbatched_build(cfg, spec):
    """The engine's pattern: graphdef once from eval_shape, states from jit(vmap(init)) over members."""

    def make(key, alpha, scale):
        return build_model(
            cfg, spec, rngs=nnx.Rngs(params=key, dropout=jax.random.fold_in(key, 1)),
            init_scale=scale, dropout=0.1, alpha=alpha, epsilon=0.02,
        )  # fmt: skip

    graphdef = nnx.split(nnx.eval_shape(lambda: make(jax.random.key(0), 1.0, 1.0)), nnx.Param, ...)[0]
    keys = jax.random.split(jax.random.key(7), 2)
    alphas, scales = jnp.asarray([0.5, 4.0]), jnp.asarray([2.0, 0.5])
    params, rest = jax.jit(jax.vmap(lambda *a: nnx.split(make(*a), nnx.Param, ...)[1:]))(keys, alphas, scales)
    x = all_pairs() if spec.n_tokens else dense_x()
    outs = jax.jit(jax.vmap(lambda p, r: nnx.merge(graphdef, p, r)(x, train=False)))(params, rest)
    make_one = jax.jit(make)
    for i in range(2):
        single = make_one(keys[i], alphas[i], scales[i])
        s_graphdef, s_params, _ = nnx.split(single, nnx.Param, ...)
        assert s_graphdef == graphdef
        for a, b in zip(jax.tree_util.tree_leaves(s_params), jax.tree_util.tree_leaves(params), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b[i]), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(apply(single, x)), np.asarray(outs[i]), rtol=1e-4, atol=1e-6)
    if cfg.kind == "alpha_net":
        np.testing.assert_array_equal(np.asarray(rest["alpha"][...]), np.asarray(alphas))
        np.testing.assert_array_equal(np.asarray(outs), 0.0)  # centered: exactly 0 at init, under jit(vmap)


def test_wrong_input_kind_is_rejected():
    assert issubclass(QuadraticMLP, MLP)
    with pytest.raises(ValueError):
        build(QUAD, poly_spec())
    with pytest.raises(ValueError):
        build(ALPHA, modular_spec())


@pytest.mark.parametrize("stacked", [False, True])
@pytest.mark.parametrize("with_dropout", [False, True])
@pytest.mark.parametrize("name", ["quadratic", "relu"])
def test_rematerialized_token_layer_is_bit_identical_and_draws_dropout_once(monkeypatch, name, with_dropout, stacked):
    from grok.models import _mlp
    from grok.models._mlp import _token_activation

    monkeypatch.setattr(_mlp, "pair_gather_stacked", lambda: stacked)  # the GPU's one gather, or two
    jax.clear_caches()  # jax.checkpoint keeps its traced function: trace it afresh under the patch

    p, n = 7, 16
    e = jax.random.normal(jax.random.key(0), (2 * p, n))
    bias = jax.random.normal(jax.random.key(1), (n,))
    x = jax.random.randint(jax.random.key(2), (40, 2), 0, p)
    key = jax.random.key(3) if with_dropout else None
    rate = jnp.asarray(0.3)
    cot = jax.random.normal(jax.random.key(4), (40, n))

    def plain(e, bias):
        z = e[x[:, 0]] + e[p + x[:, 1]] + bias[None, :]
        z = dropout_fn(z, rate, key) if with_dropout else z
        return jnp.square(z) if name == "quadratic" else jax.nn.relu(z)

    def remat(e, bias):
        return _token_activation(e, bias, x, key, rate, p, name)

    def value_and_grads(f):
        out, pullback = jax.vjp(f, e, bias)
        return out, *pullback(cot)

    remat_out, plain_out = jax.jit(lambda: value_and_grads(remat))(), jax.jit(lambda: value_and_grads(plain))()
    for got, want in zip(remat_out, plain_out, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # the backward pass reuses the saved keep mask: random bits are drawn once, in the forward pass
    jaxpr = str(jax.make_jaxpr(lambda: value_and_grads(remat))())
    assert jaxpr.count("random_bits") == (1 if with_dropout else 0)
    # stacked (a GPU), both rows come from one gather and the embedding's gradient is one scatter-add
    gathers = 1 if stacked else 2  # per pass: the forward's and the rematerialized backward's
    assert jaxpr.count("scatter-add") == gathers and jaxpr.count(" gather[") == 2 * gathers


@pytest.mark.parametrize("classes", [11, 16])
def test_readout_padded_for_a_gpu_gives_the_same_logits_and_gradients(monkeypatch, classes):
    from grok.models import _common

    x = jax.random.normal(jax.random.key(0), (3, 40, 24))
    w_t = jax.random.normal(jax.random.key(1), (classes, 24))
    cot = jax.random.normal(jax.random.key(2), (3, 40, classes))

    def value_and_grads():  # traced afresh each time (JAX caches a traced function by identity)
        def f():
            out, pullback = jax.vjp(_common.readout_matmul, x, w_t)
            return out, *pullback(cot)

        return f

    want = jax.jit(value_and_grads())()
    assert "pad" not in str(jax.make_jaxpr(value_and_grads())())  # a CPU pads nothing: the same program as before
    monkeypatch.setattr(_common, "readout_row_multiple", lambda: 8)
    assert ("pad" in str(jax.make_jaxpr(value_and_grads())())) == (classes % 8 != 0)
    got = jax.jit(value_and_grads())()
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["quadratic", "relu"])
def test_sorted_pair_gradient_is_bit_identical_to_the_plain_layer(name):
    from grok.models._common import activation
    from grok.models._mlp import _pair_activation_sorted

    p, n, members = 7, 16, 3
    e = jax.random.normal(jax.random.key(0), (members, 2 * p, n))
    x = jax.random.randint(jax.random.key(1), (members, 40, 2), 0, p)
    cot = jax.random.normal(jax.random.key(2), (members, 40, n))

    def value_and_grad(layer):
        def one(e, x, cot):
            out, pullback = jax.vjp(lambda e: layer(e, x), e)
            return out, pullback(cot)[0]

        return jax.vmap(one)

    def plain(e, x):
        return activation(name, e[x[:, 0]] + e[p + x[:, 1]])

    def sorted_(e, x):
        return _pair_activation_sorted(e, x, p, name)

    sorted_out, plain_out = jax.jit(value_and_grad(sorted_))(e, x, cot), jax.jit(value_and_grad(plain))(e, x, cot)
    for got, want in zip(sorted_out, plain_out, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    jaxpr = str(jax.make_jaxpr(value_and_grad(sorted_))(e, x, cot))
    assert jaxpr.count("scatter-add") == 2 and jaxpr.count("indices_are_sorted=True") == 2


def test_sorted_pair_gradient_is_taken_on_a_gpu_for_large_groups_only(monkeypatch):
    from grok.forward import MEMBER_BATCH_AXIS
    from grok.models import _mlp

    def taken(members: int) -> bool:  # [D] paper-size members (5 645 examples × width 500) in one program
        flag = jax.vmap(lambda _: jnp.asarray(_mlp.pair_gradient_sorted(5645, 500)), axis_name=MEMBER_BATCH_AXIS)
        return bool(flag(jnp.zeros(members))[0])

    assert not taken(289)  # a CPU: never
    monkeypatch.setattr(_mlp, "on_gpu", lambda: True)
    assert taken(289) and not taken(16)
    assert not _mlp.pair_gradient_sorted(5645, 500)  # a lone run (no named member axis)


def test_engine_step_with_the_sorted_pair_gradient_trains_the_same_numbers(monkeypatch):
    from grok.models import _mlp

    def sorted_everywhere():  # the GPU's forms of the token layer, on this CPU
        monkeypatch.setattr(_mlp, "on_gpu", lambda: True)
        monkeypatch.setattr(_mlp, "SORTED_GRADIENT_MIN_ELEMENTS", 1)

    # the layer is bit for bit the plain one (above); XLA may fuse the program around it differently
    assert_token_layer_form_trains_the_same(sorted_everywhere, "indices_are_sorted=True", rtol=1e-6, atol=1e-7)
