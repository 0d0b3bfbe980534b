"""Probes vs brute force: collapse [P], NTK / alignment / α-net loss [K], Fourier IPR [D]."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import probes

P97 = 97
# Jitted handles: one compile each instead of op-by-op dispatch (keeps the file fast on 2 cores).
ipr = jax.jit(probes.ipr, static_argnames="axis")
neuron_ipr = jax.jit(probes.neuron_ipr)
centered_alignment = jax.jit(probes.centered_alignment)


# --------------------------------------------------------------------------- collapse [P]


def _peaked_logits(gaps, C=113, seed=0):
    """Rows whose target logit is ``gap`` above all the other (equal) logits."""
    base = np.zeros((len(gaps), C), np.float32) + np.float32(np.random.default_rng(seed).normal())
    base[np.arange(len(gaps)), np.arange(len(gaps)) % C] += np.asarray(gaps, np.float32)
    return jnp.asarray(base)


def test_sc_fraction_float32_collapses_at_30_not_10():
    sc = jax.jit(probes.sc_fraction, static_argnums=1)
    # 1 + 112·e^-30 = 1 + 1e-11 rounds to 1 in float32 (eps 6e-8); 1 + 112·e^-10 = 1.005 does not.
    assert float(sc(_peaked_logits([30.0]), "float32")) == 1.0
    assert float(sc(_peaked_logits([10.0]), "float32")) == 0.0
    assert float(sc(_peaked_logits([30.0, 30.0, 10.0, 40.0]), "float32")) == 0.75
    # float16 (eps 4.9e-4) already collapses at 15 (112·e^-15 = 3.4e-5); float32 does not.
    assert float(sc(_peaked_logits([15.0]), "float16")) == 1.0
    assert float(sc(_peaked_logits([15.0]), "float32")) == 0.0


def test_sc_fraction_float64_does_not_collapse_at_30():
    with jax.enable_x64(True):
        logits = _peaked_logits([30.0, 30.0])
        assert float(probes.sc_fraction(logits, "float64")) == 0.0
        assert float(probes.sc_fraction(_peaked_logits([60.0]), "float64")) == 1.0  # 112·e^-60 ≪ 2^-53


def test_sc_fraction_float64_without_x64_is_refused():
    with jax.enable_x64(False), pytest.raises(ValueError, match="jax_enable_x64"):
        probes.sc_fraction(_peaked_logits([30.0]), "float64")


def test_zero_terms():
    assert float(probes.zero_terms(jnp.array([0.0, 1e-30, 0.0, 2.0]))) == 0.5


def _random_tree(seed):
    rng = np.random.default_rng(seed)
    return {"a": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32), "b": [jnp.asarray(rng.normal(size=5), jnp.float32)]}


def test_nlm_cosine_basic_and_vs_numpy():
    params, grads = _random_tree(0), _random_tree(1)
    neg = jax.tree.map(lambda a: -2.5 * a, params)
    np.testing.assert_allclose(probes.nlm_cosine(neg, params), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probes.nlm_cosine(params, params), -1.0, rtol=1e-6)
    g, p = ravel_pytree(grads)[0], ravel_pytree(params)[0]
    want = -np.dot(g, p) / (np.linalg.norm(g) * np.linalg.norm(p))
    np.testing.assert_allclose(probes.nlm_cosine(grads, params), want, rtol=1e-5)
    zeros = jax.tree.map(jnp.zeros_like, params)
    assert float(probes.nlm_cosine(zeros, params)) == 0.0


@pytest.mark.parametrize("scale", [0.1, 1.0, 10.0])
def test_nlm_cosine_homogeneous_linear_softmax(scale):
    """Bias-free linear net f = Wx (degree-1 homogeneous), one example of class y.

    With W = c(e_y − 1/C)xᵀ the softmax residual p − e_y is a negative multiple of (e_y − 1/C),
    so −∇L ∥ W: the NLM direction is θ itself, cos = 1 at every scale c > 0; −1 for c < 0.
    """
    C, y = 7, 2
    x = jnp.asarray(np.random.default_rng(0).normal(size=4), jnp.float32)
    d = jax.nn.one_hot(y, C) - 1.0 / C

    def loss(W):
        return -jax.nn.log_softmax(W @ x)[y]

    for sign in (1.0, -1.0):
        W = sign * scale * jnp.outer(d, x)
        np.testing.assert_allclose(probes.nlm_cosine(jax.grad(loss)(W), W), sign, rtol=1e-5)


def test_logit_norm_and_weight_norms():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(6, 5)), jnp.float32)
    np.testing.assert_allclose(probes.logit_norm(logits), np.linalg.norm(np.asarray(logits), axis=1).mean(), rtol=1e-6)
    params = {"layers": [{"kernel": jnp.ones((2, 3))}, {"kernel": 2 * jnp.ones((3,))}], "out": jnp.full((2,), 3.0)}
    norms = jax.jit(probes.weight_norms)(params)
    assert set(norms) == {"layers/0/kernel", "layers/1/kernel", "out", "total"}
    np.testing.assert_allclose(norms["layers/0/kernel"], np.sqrt(6), rtol=1e-6)
    np.testing.assert_allclose(norms["total"], np.sqrt(6 + 12 + 18), rtol=1e-6)


def test_weight_norms_names_nnx_state():
    from flax import nnx

    _, state = nnx.split(nnx.Linear(2, 3, use_bias=False, rngs=nnx.Rngs(0)), nnx.Param)
    assert set(probes.weight_norms(state)) == {"kernel", "total"}


# --------------------------------------------------------------------------- NTK [K]


def _mlp_params(out_shape, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    return {
        "w1": jax.random.normal(k1, (3, 5)),
        "b1": jax.random.normal(k2, (5,)),
        "w2": jax.random.normal(k3, (5, *out_shape)),
    }


def _mlp(params, x):
    return jnp.tanh(x @ params["w1"] + params["b1"][None]) @ params["w2"]


@functools.partial(jax.jit, static_argnums=0)
def _jacobian(apply_fn, params, x):
    """Forward-mode Jacobian w.r.t. the flattened parameters: [n, (C,) P]."""
    flat, unravel = ravel_pytree(params)
    return jax.jacfwd(lambda th: apply_fn(unravel(th), x))(flat)


def _brute_ntk(apply_fn, params, x):
    J = _jacobian(apply_fn, params, x)
    J = np.asarray(J, np.float64).reshape(x.shape[0], -1, J.shape[-1])
    return np.einsum("icp,jcp->ij", J, J)


@pytest.mark.parametrize("out_shape", [(4,), ()], ids=["vector", "scalar"])
@pytest.mark.parametrize("max_size", [2**27, 900], ids=["one-block", "blocks"])
def test_empirical_ntk_vs_brute_force(out_shape, max_size):
    """max_size=900 forces blocks of 3 of the 4 logits (n·P = 7·40): two blocks, the last one padded."""
    params = _mlp_params(out_shape)
    x = jax.random.normal(jax.random.key(1), (7, 3))
    K = jax.jit(lambda p, x: probes.empirical_ntk(_mlp, p, x, max_jacobian_size=max_size))(params, x)
    assert K.shape == (7, 7)
    np.testing.assert_allclose(K, _brute_ntk(_mlp, params, x), rtol=1e-4, atol=1e-4)


def test_empirical_ntk_token_gather_and_vmap_over_members():
    p, h = 5, 6

    def apply(params, tokens):
        return jax.nn.relu(params["emb"][tokens[:, 0]] + params["emb"][p + tokens[:, 1]]) @ params["out"]

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"emb": jax.random.normal(k1, (2 * p, h)), "out": jax.random.normal(k2, (h, p))}

    tokens = jnp.array([[0, 1], [2, 3], [4, 4], [1, 0]])
    members = jax.vmap(init)(jax.random.split(jax.random.key(0), 2))
    Ks = jax.jit(jax.vmap(lambda prm: probes.empirical_ntk(apply, prm, tokens)))(members)
    for m in range(2):
        prm = jax.tree.map(lambda a, m=m: a[m], members)
        np.testing.assert_allclose(Ks[m], _brute_ntk(apply, prm, tokens), rtol=1e-4, atol=1e-4)


def test_empirical_ntk_alpha_net_closed_form():
    """f(x) = (α/N) Σ φ(wᵢ·x/√D), φ(h) = h + (ε/2)h²: K(x, x') = (α²/N²) Σᵢ φ'(hᵢ)φ'(h'ᵢ) x·x'/D."""
    N, D, n, alpha, eps = 8, 6, 5, 1.7, 0.3
    W = jax.random.normal(jax.random.key(0), (N, D))
    x = jax.random.normal(jax.random.key(1), (n, D))

    def apply(W, x):
        h = x @ W.T / np.sqrt(D)
        return alpha / N * jnp.sum(h + eps / 2 * h * h, axis=-1)

    dphi = 1 + eps * np.asarray(x @ W.T / np.sqrt(D), np.float64)  # [n, N]
    xx = np.asarray(x, np.float64)
    want = alpha**2 / N**2 * (dphi @ dphi.T) * (xx @ xx.T) / D
    np.testing.assert_allclose(jax.jit(probes.empirical_ntk, static_argnums=0)(apply, W, x), want, rtol=1e-5, atol=1e-6)


def _np_alignment(K, Y):
    n = K.shape[0]
    H = np.eye(n) - np.ones((n, n)) / n
    Y = Y.reshape(n, -1)
    A, B = H @ K @ H, H @ Y @ Y.T @ H
    return np.sum(A * B) / (np.linalg.norm(A) * np.linalg.norm(B))


def test_centered_alignment_vs_numpy_and_ideal_kernel():
    rng = np.random.default_rng(0)
    n, C = 9, 4
    X = rng.normal(size=(n, 5))
    K = X @ X.T + 0.5
    y = rng.normal(size=n)
    Y1h = np.eye(C)[rng.integers(0, C, n)]
    for Y in (y, Y1h):
        got = centered_alignment(jnp.asarray(K, jnp.float32), jnp.asarray(Y, jnp.float32))
        np.testing.assert_allclose(got, _np_alignment(K, Y), rtol=1e-4)
        ideal = jnp.asarray(Y.reshape(n, -1) @ Y.reshape(n, -1).T, jnp.float32)
        np.testing.assert_allclose(centered_alignment(ideal, jnp.asarray(Y, jnp.float32)), 1.0, rtol=1e-5)
    const = jnp.ones(n)
    assert float(centered_alignment(jnp.asarray(K, jnp.float32), const)) == 0.0
    g = jax.jit(jax.grad(probes.centered_alignment))(jnp.asarray(K, jnp.float32), const)
    assert np.all(np.isfinite(g))


def test_kernel_and_param_distance():
    rng = np.random.default_rng(0)
    K0, Kt = rng.normal(size=(2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(probes.kernel_distance(K0, K0), 0.0, atol=1e-6)
    np.testing.assert_allclose(probes.kernel_distance(K0, 3 * K0), 0.0, atol=1e-6)
    want = 1 - np.sum(K0 * Kt) / (np.linalg.norm(K0) * np.linalg.norm(Kt))
    np.testing.assert_allclose(probes.kernel_distance(K0, Kt), want, rtol=1e-5)
    p0, p1 = _random_tree(0), _random_tree(1)
    a, b = ravel_pytree(p1)[0], ravel_pytree(p0)[0]
    np.testing.assert_allclose(probes.param_distance(p1, p0), np.linalg.norm(a - b) / np.linalg.norm(b), rtol=1e-5)
    assert float(probes.param_distance(p0, p0)) == 0.0


@pytest.mark.parametrize("ridge", [1e-3, 1e-6])
def test_kernel_regression_vs_numpy_solve(ridge):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    sq = np.sum((X[:, None] - X[None]) ** 2, axis=-1)
    K = np.exp(-sq / 4)
    y = np.sin(X[:, 0]) + X[:, 1]
    tr, te = slice(0, 20), slice(20, 30)
    lam = ridge * np.trace(K[tr, tr]) / 20
    pred = K[te, tr] @ np.linalg.solve(K[tr, tr] + lam * np.eye(20), y[tr])
    want = np.mean((pred - y[te]) ** 2)
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    got = probes.kernel_regression_test_mse(f32(K[tr, tr]), f32(K[te, tr]), f32(y[tr]), f32(y[te]), ridge)
    np.testing.assert_allclose(got, want, rtol=1e-2 if ridge == 1e-3 else 0.2)


@pytest.mark.parametrize("c", [0.5, 1.0])  # y = ½z² ("quadratic") and z² ("square")
def test_alpha_net_test_loss_monte_carlo(c):
    """Closed form vs a 5·10⁵-sample Monte Carlo of E[(f − y)²] (float64 NumPy), y = c·z².

    Parameters chosen so each of the three terms is ≥ 15% of the total: a factor-2 error in any
    of them moves the result by ≥ 15%; the tolerance is 2.5% (MC standard error ≈ 0.4%).
    """
    rng = np.random.default_rng(0)
    D, N, alpha, eps = 6, 5, 1.5, 1.2
    W = rng.normal(size=(N, D)) + 0.4
    beta = rng.normal(size=D)
    W0 = rng.normal(size=(N, D))
    w_bar, M = probes.alpha_net_stats(jnp.asarray(W, jnp.float32))
    np.testing.assert_allclose(w_bar, W.mean(0), rtol=1e-5)
    np.testing.assert_allclose(M, W.T @ W / N, rtol=1e-5)

    closed = float(probes.alpha_net_test_loss(w_bar, M, jnp.asarray(beta, jnp.float32), alpha, eps, c))
    A = alpha * eps * W.T @ W / N - 2 * c * np.outer(beta, beta)
    mean_term = alpha**2 / D * np.sum(W.mean(0) ** 2)
    terms = np.array([0.25 * (np.trace(A) / D) ** 2, np.sum(A * A) / (2 * D * D), mean_term])
    np.testing.assert_allclose(closed, terms.sum(), rtol=1e-5)
    assert np.all(terms / terms.sum() > 0.15), terms / terms.sum()

    x = rng.normal(size=(500_000, D))

    def f(W):
        h = x @ W.T / np.sqrt(D)
        return alpha / N * np.sum(h + eps / 2 * h * h, axis=1)

    y = c * (x @ beta / np.sqrt(D)) ** 2
    fw = f(W)
    np.testing.assert_allclose(closed, np.mean((fw - y) ** 2), rtol=0.025)
    # Centered net f̃ = f(θ) − f(θ₀): the same formula with w̄ − w̄₀ and M − M₀.
    w0_bar, M0 = probes.alpha_net_stats(jnp.asarray(W0, jnp.float32))
    centered = probes.alpha_net_test_loss(w_bar - w0_bar, M - M0, jnp.asarray(beta, jnp.float32), alpha, eps, c)
    np.testing.assert_allclose(centered, np.mean((fw - f(W0) - y) ** 2), rtol=0.025)


# --------------------------------------------------------------------------- neurons [D]


def test_ipr_pure_cosine_is_one_for_every_frequency():
    j = np.arange(P97)
    k = np.arange(1, P97 // 2 + 1)[:, None]
    phase = np.random.default_rng(0).uniform(0, 2 * np.pi, size=(k.shape[0], 1))
    rows = jnp.asarray(np.cos(2 * np.pi * k * j / P97 + phase), jnp.float32)
    np.testing.assert_allclose(ipr(rows), 1.0, rtol=1e-5)
    np.testing.assert_allclose(ipr(rows.T, axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(ipr(1e-30 * rows[:3]), 1.0, rtol=1e-5)  # scale invariant, no underflow


def test_ipr_gaussian_noise():
    """White noise: E[IPR] ≈ E|ṽ|⁴/((p//2+1) E[|ṽ|²]²) = 2/49 ≈ 0.041 at p = 97 (measured 0.0404).

    Tolerance ±0.002 on the mean of 2000 rows (its standard error ≈ 1.3e-4).
    """
    v = jax.random.normal(jax.random.key(0), (2000, P97))
    assert abs(float(jnp.mean(ipr(v))) - 2 / 49) < 0.002


def test_ipr_zero_vector_guard():
    z = jnp.zeros(P97)
    assert float(ipr(z)) == 0.0
    assert np.all(np.asarray(jax.jit(jax.grad(probes.ipr))(z)) == 0.0)
    U = jnp.zeros((3, P97)).at[0].set(jnp.cos(2 * jnp.pi * 5 * jnp.arange(P97) / P97))
    out = neuron_ipr(U, U, U.T)
    np.testing.assert_allclose(out, [1.0, 0.0, 0.0], atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.floats(-1e6, 1e6, allow_subnormal=False, width=32).filter(lambda t: t == 0 or abs(t) > 1e-30),
        min_size=P97,
        max_size=P97,
    ).filter(lambda v: any(t != 0 for t in v))
)
def test_ipr_bounds_property(v):
    val = float(ipr(jnp.asarray(v, jnp.float32)))
    assert 1 / (P97 // 2 + 1) * (1 - 1e-5) <= val <= 1 + 1e-5


def test_neuron_ipr_is_mean_of_parts():
    rng = np.random.default_rng(0)
    N = 6
    U, V = (jnp.asarray(rng.normal(size=(N, P97)), jnp.float32) for _ in range(2))
    W = jnp.asarray(rng.normal(size=(P97, N)), jnp.float32)
    parts = [ipr(U), ipr(V), ipr(W.T)]
    np.testing.assert_allclose(neuron_ipr(U, V, W), sum(parts) / 3, rtol=1e-6)
    np.testing.assert_allclose(neuron_ipr(U, V), (parts[0] + parts[1]) / 2, rtol=1e-6)


def test_analytic_solution_neurons_score_one():
    """Gromov's analytic solution [D]: every row / column is a single cosine, so IPR = 1."""
    p, N = 23, 40
    rng = np.random.default_rng(0)
    sig = rng.integers(1, p // 2 + 1, N)[:, None]
    pu, pv = rng.uniform(0, 2 * np.pi, (2, N, 1))
    i = np.arange(p)[None]
    A = (2 / N) ** (1 / 3)
    U = A * np.cos(2 * np.pi * i * sig / p + pu)
    V = A * np.cos(2 * np.pi * i * sig / p + pv)
    W = (A * np.cos(-2 * np.pi * i * sig / p - pu - pv)).T  # [p, N]
    U, V, W = (jnp.asarray(a, jnp.float32) for a in (U, V, W))
    out = jax.jit(probes.ipr_summary, static_argnames="bins")(U, V, W, bins=10)
    np.testing.assert_allclose(out["ipr"], 1.0, rtol=1e-5)
    assert out["ipr_hist"].tolist() == [0] * 9 + [N]
    np.testing.assert_array_equal(probes.dominant_frequency(U), sig[:, 0])


def test_dominant_and_key_frequencies():
    j = np.arange(P97)
    U = 10.0 + np.stack([np.cos(2 * np.pi * 7 * j / P97), 0.5 * np.sin(2 * np.pi * 30 * j / P97)])  # big DC
    np.testing.assert_array_equal(probes.dominant_frequency(jnp.asarray(U, jnp.float32)), [7, 30])
    rng = np.random.default_rng(0)
    E = (
        3 * np.cos(2 * np.pi * 11 * j[:, None] / P97 + rng.uniform(0, 6, 8))
        + np.cos(2 * np.pi * 4 * j[:, None] / P97 + rng.uniform(0, 6, 8))
        + 0.01 * rng.normal(size=(P97, 8))
        + 5.0
    )
    power, order = probes.key_frequencies(jnp.asarray(E, jnp.float32), top=2)
    assert power.shape == (P97 // 2 + 1,)
    assert order.tolist() == [11, 4]
    want = np.sum(np.abs(np.fft.rfft(E, axis=0)) ** 2, axis=1)
    np.testing.assert_allclose(power, want, rtol=1e-3)
    _, order_t = probes.key_frequencies(jnp.asarray(E.T, jnp.float32), top=2, axis=-1)
    assert order_t.tolist() == [11, 4]
    _, with_dc = probes.key_frequencies(jnp.asarray(E, jnp.float32), top=1, exclude_dc=False)
    assert with_dc.tolist() == [0]


def test_ipr_histogram_vs_numpy_and_jit():
    vals = np.random.default_rng(0).uniform(0, 1, 50).astype(np.float32)
    vals[:3] = [0.0, 1.0, 1.0000001]
    got = jax.jit(probes.ipr_histogram, static_argnums=1)(jnp.asarray(vals), 20)
    want, _ = np.histogram(np.clip(vals, 0, 1), bins=20, range=(0, 1))
    np.testing.assert_array_equal(got, want)
    assert int(got.sum()) == 50


def test_kernel_distance_resolves_a_lazy_runs_small_movement_in_float32():
    """½‖K₀/‖K₀‖ − K_t/‖K_t‖‖² equals 1 − cos, but keeps its precision near 0: a kernel moved by
    ~10⁻⁵ gets its distance (~10⁻¹¹) to a few percent, where 1 − cos in float32 reads 0 or −1.2·10⁻⁷."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(40, 40))
    k0 = a @ a.T
    kt = k0 + 1e-5 * np.linalg.norm(k0) / 40 * rng.normal(size=(40, 40))
    want = 1 - np.sum(k0 * kt) / (np.linalg.norm(k0) * np.linalg.norm(kt))  # float64
    got = float(probes.kernel_distance(jnp.asarray(k0, jnp.float32), jnp.asarray(kt, jnp.float32)))
    assert 0 < want < 1e-9 and got == pytest.approx(want, rel=0.05)
    assert float(probes.kernel_distance(jnp.asarray(k0, jnp.float32), jnp.asarray(k0, jnp.float32))) == 0.0
    # exactly 0 inside a larger compiled program too, where XLA contracts products into FMAs
    k32 = jnp.asarray(k0, jnp.float32)
    copy = jnp.array(np.asarray(k32))  # another buffer: the program cannot see that the two are equal
    assert float(jax.jit(probes.kernel_distance)(k32, copy)) == 0.0
    assert (
        np.asarray(jax.jit(jax.vmap(probes.kernel_distance))(jnp.stack([k32] * 3), jnp.stack([copy] * 3))) == 0
    ).all()
    assert float(probes.kernel_distance(jnp.zeros((3, 3)), jnp.asarray(k0[:3, :3], jnp.float32))) == 1.0


def test_every_public_probe_function_is_one_compiled_program():
    """Called by hand, each compiles once per shape, not once per operation (benchmarks/bench_probe_calls.py)."""
    from probes import neurons, progress_measures, spectral

    public = [getattr(probes, name) for name in probes.__all__ if name != "empirical_ntk"]  # takes a function
    public += [spectral.spectral_summary, spectral.htsr_alpha, spectral.powerlaw_fit, spectral.esd_histogram]
    public += [spectral.stable_rank, spectral.effective_rank, spectral.esd, neurons.ipr_summary]
    public += [progress_measures.frequency_power, progress_measures.restricted_loss, progress_measures.gini]
    assert all(hasattr(fn, "lower") and hasattr(fn, "__wrapped__") for fn in public), [
        fn.__name__ for fn in public if not hasattr(fn, "lower")
    ]
    # a string or integer option is static: a new value is a new program, an invalid one a clear error
    w = jnp.asarray(np.random.default_rng(0).normal(size=(40, 30)), jnp.float32)
    a, b = spectral.htsr_alpha(w, ks="csn"), spectral.htsr_alpha(w, ks="weightwatcher")
    assert int(a.status) == int(b.status) == 0
    with pytest.raises(ValueError, match="ks must be one of"):
        spectral.htsr_alpha(w, ks="powerlaw")
