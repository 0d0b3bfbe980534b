"""⊥Grad [P] and the optimizers vs hand-written torch-style updates (docs/formulas.md §4)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grok.config import OptimConfig
from grok.optim import hyperparams, make_optimizer, optimizer_from_config, perp_grad


def _tree(seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    shapes = {"a": (3, 4), "b": (5,), "c": (2, 3, 2)}
    w = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()}
    g = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()}
    return w, g


@functools.partial(jax.jit, static_argnums=2)
def _apply_perp(g, w, rescale: bool = True):
    tx = perp_grad(rescale)
    out, _ = tx.update(g, tx.init(w), w)
    return out


def _projection_ref(g: np.ndarray, w: np.ndarray) -> np.ndarray:
    g, w = np.asarray(g, np.float64).ravel(), np.asarray(w, np.float64).ravel()
    return g - (w @ g) / (w @ w) * w


def test_perp_orthogonal_per_tensor_and_norm_preserved():
    w, g = _tree()
    out = _apply_perp(g, w, rescale=True)
    for k in w:
        o, wk, gk = (np.asarray(t, np.float64).ravel() for t in (out[k], w[k], g[k]))
        assert abs(o @ wk) <= 1e-5 * np.linalg.norm(o) * np.linalg.norm(wk), k
        np.testing.assert_allclose(np.linalg.norm(o), np.linalg.norm(gk), rtol=1e-5)
        # rescaled projection: same direction as the plain projection
        ref = _projection_ref(g[k], w[k])
        np.testing.assert_allclose(o, ref * np.linalg.norm(gk) / np.linalg.norm(ref), rtol=1e-4, atol=1e-6)
        assert out[k].shape == g[k].shape and out[k].dtype == g[k].dtype


def test_perp_without_rescale_is_the_projection():
    w, g = _tree(1)
    out = _apply_perp(g, w, rescale=False)
    for k in w:
        np.testing.assert_allclose(np.asarray(out[k]).ravel(), _projection_ref(g[k], w[k]), rtol=1e-5, atol=1e-6)


def test_perp_is_per_tensor_not_global():
    # A global projection (one w·g over all leaves) would differ; per tensor each leaf is ⊥ its own w.
    w = {"a": jnp.asarray([1.0, 0.0]), "b": jnp.asarray([0.0, 1.0])}
    g = {"a": jnp.asarray([1.0, 1.0]), "b": jnp.asarray([1.0, 1.0])}
    out = _apply_perp(g, w, rescale=False)
    np.testing.assert_allclose(np.asarray(out["a"]), [0.0, 1.0])
    np.testing.assert_allclose(np.asarray(out["b"]), [1.0, 0.0])


@pytest.mark.parametrize("rescale", [True, False])
def test_perp_zero_guards(rescale):
    w = {"zero": jnp.zeros(4), "par": jnp.asarray([1.0, 2.0, 3.0]), "one": jnp.asarray([0.7])}
    g = {"zero": jnp.asarray([1.0, -2.0, 3.0, 0.5]), "par": jnp.asarray([2.0, 4.0, 6.0]), "one": jnp.asarray([0.3])}
    out = _apply_perp(g, w, rescale)
    for k in out:
        assert np.all(np.isfinite(np.asarray(out[k]))), k
    np.testing.assert_array_equal(np.asarray(out["zero"]), np.asarray(g["zero"]))  # w = 0: unchanged
    np.testing.assert_allclose(np.asarray(out["par"]), 0.0, atol=1e-6)  # g ∥ w: nothing left
    np.testing.assert_allclose(np.asarray(out["one"]), 0.0, atol=1e-6)
    # zero gradient: stays zero, no NaN
    z = _apply_perp({"a": jnp.zeros(3)}, {"a": jnp.ones(3)}, rescale)
    np.testing.assert_array_equal(np.asarray(z["a"]), 0.0)


def test_perp_needs_params():
    w, g = _tree()
    tx = perp_grad()
    with pytest.raises(ValueError, match="param"):
        tx.update(g, tx.init(w))
    with pytest.raises(ValueError, match="param"):
        tx2 = make_optimizer("adamw", lr=0.1, transforms=["perp_grad"])
        tx2.update(g, tx2.init(w))


@settings(max_examples=20, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3).filter(lambda s: int(np.prod(s)) >= 2),
    seed=st.integers(0, 2**31 - 1),
    w_scale=st.floats(1e-3, 1e3),
    g_scale=st.floats(1e-6, 1e6),
    rescale=st.booleans(),
)
def test_perp_orthogonality_property(shape, seed, w_scale, g_scale, rescale):
    rng = np.random.default_rng(seed)
    w = np.asarray(rng.normal(size=shape) * w_scale, np.float32)
    g = np.asarray(rng.normal(size=shape) * g_scale, np.float32)
    out = np.asarray(_apply_perp({"x": jnp.asarray(g)}, {"x": jnp.asarray(w)}, rescale)["x"], np.float64).ravel()
    w64, g64 = w.astype(np.float64).ravel(), g.astype(np.float64).ravel()
    # |w·out| relative to |w||g| (the scale of the float32 rounding in the projection)
    assert abs(w64 @ out) <= 1e-5 * np.linalg.norm(w64) * np.linalg.norm(g64)
    ref = _projection_ref(g, w)
    if rescale:
        assert np.linalg.norm(out) <= np.linalg.norm(g64) * (1 + 1e-5)
        if np.linalg.norm(ref) > 1e-3 * np.linalg.norm(g64):  # well-conditioned: full norm kept
            np.testing.assert_allclose(np.linalg.norm(out), np.linalg.norm(g64), rtol=1e-5)
    else:
        np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-5 * np.linalg.norm(g64))


def _adamw_ref(p, grads, *, lr, b1, b2, eps, wd):
    """torch.optim.AdamW in float64: p ← p(1 − lr·wd); p ← p − lr·m̂/(√v̂ + eps)."""
    p = np.asarray(p, np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, np.float64)
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        mhat, vhat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


def _run(tx, p, grads):
    state = tx.init(p)
    for g in grads:
        upd, state = tx.update(g, state, p)
        p = optax.apply_updates(p, upd)
    return p


@pytest.mark.parametrize("eps", [1e-8, 1e-25])
def test_adamw_matches_torch_formula(eps):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=(4, 3))
    grads = [rng.normal(size=(4, 3)) * 10.0 ** rng.uniform(-3, 1) for _ in range(3)]
    hp = dict(lr=0.05, b1=0.9, b2=0.98, eps=eps, wd=0.7)
    tx = make_optimizer("adamw", lr=0.05, b1=0.9, b2=0.98, eps=eps, weight_decay=0.7)
    got = _run(tx, jnp.asarray(p0, jnp.float32), [jnp.asarray(g, jnp.float32) for g in grads])
    np.testing.assert_allclose(np.asarray(got, np.float64), _adamw_ref(p0, grads, **hp), rtol=2e-5, atol=1e-6)


def test_adamw_one_step_decoupled_decay():
    # One step: p(1 − lr·wd) − lr·g/(|g| + eps).
    p0 = np.array([1.0, -2.0, 0.5])
    g = np.array([1e-10, -3e-10, 2e-10])
    lr, wd = 0.1, 0.5
    for eps, expected_ratio in [(1e-25, 1.0), (1e-8, None)]:
        tx = make_optimizer("adamw", lr=lr, b1=0.9, b2=0.99, eps=eps, weight_decay=wd)
        got = np.asarray(_run(tx, jnp.asarray(p0, jnp.float32), [jnp.asarray(g, jnp.float32)]), np.float64)
        want = p0 * (1 - lr * wd) - lr * g / (np.abs(g) + eps)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        if expected_ratio is not None:  # eps = 1e-25 really reaches Adam: the step is lr·sign(g)
            np.testing.assert_allclose(p0 * (1 - lr * wd) - got, lr * np.sign(g), rtol=1e-6)


def _adam_l2_ref(p, grads, *, lr, b1, b2, eps, wd):
    """torch.optim.Adam(weight_decay=wd) in float64: g ← g + wd·p, then the Adam step."""
    p = np.asarray(p, np.float64)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, np.float64) + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize("wd", [0.0, 3.0])
def test_adam_weight_decay_is_torch_coupled_l2(wd):
    rng = np.random.default_rng(2)
    p0 = rng.normal(size=(5,))
    grads = [rng.normal(size=(5,)) for _ in range(3)]
    hp = {"lr": 0.01, "b1": 0.9, "b2": 0.999, "eps": 1e-8}
    tx = make_optimizer("adam", **hp, weight_decay=jnp.asarray(wd))
    got = np.asarray(_run(tx, jnp.asarray(p0, jnp.float32), [jnp.asarray(g, jnp.float32) for g in grads]), np.float64)
    np.testing.assert_allclose(got, _adam_l2_ref(p0, grads, **hp, wd=wd), rtol=1e-5, atol=1e-7)
    if wd:  # not AdamW's decoupled decay
        assert np.max(np.abs(got - _adamw_ref(p0, grads, **hp, wd=wd))) > 1e-3


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_torch_formula(nesterov):
    rng = np.random.default_rng(3)
    p0 = rng.normal(size=(3, 2))
    grads = [rng.normal(size=(3, 2)) for _ in range(3)]
    lr, mu, wd = 0.1, 0.9, 0.01
    p, buf = p0.copy(), None
    for g in grads:  # torch.optim.SGD, dampening 0
        d = g + wd * p
        buf = d if buf is None else mu * buf + d
        p = p - lr * (d + mu * buf if nesterov else buf)
    tx = make_optimizer("sgd", lr=lr, momentum=mu, weight_decay=wd, nesterov=nesterov)
    got = _run(tx, jnp.asarray(p0, jnp.float32), [jnp.asarray(g, jnp.float32) for g in grads])
    np.testing.assert_allclose(np.asarray(got, np.float64), p, rtol=1e-5, atol=1e-6)


def test_perp_chained_before_sgd():
    w, g = _tree(4)
    tx = make_optimizer("sgd", lr=1.0, momentum=0.0, transforms=["perp_grad"], options={"perp_grad.rescale": False})
    upd, _ = tx.update(g, tx.init(w), w)
    for k in w:
        np.testing.assert_allclose(-np.asarray(upd[k]).ravel(), _projection_ref(g[k], w[k]), rtol=1e-5, atol=1e-6)


def _perp_adamw_ref(p, target, *, lr, steps, b1=0.9, b2=0.99, eps=1e-25, wd=0.1):
    """⊥AdamW in float64 on the loss Σ (p − target)²: rescaled ⊥Grad, then torch AdamW."""
    p = np.asarray(p, np.float64)
    m, v = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, steps + 1):
        g = 2 * (p - target)
        g_perp = _projection_ref(g, p).reshape(p.shape)
        g = g_perp * np.linalg.norm(g) / np.linalg.norm(g_perp)
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


def test_perp_adamw_jit_vmap_per_member_lr():
    w, _ = _tree(5)
    w = {k: w[k] for k in ("a", "b")}
    lrs = [1e-3, 1e-2, 1e-1]
    target = {k: np.asarray(x, np.float64) * 0.5 + 1.0 for k, x in w.items()}

    def loss(p):
        return sum(jnp.sum((p[k] - jnp.asarray(target[k], jnp.float32)) ** 2) for k in p)

    def run(lr, p):
        tx = make_optimizer("adamw", lr=lr, b1=0.9, b2=0.99, eps=1e-25, weight_decay=0.1, transforms=["perp_grad"])
        state = tx.init(p)

        def step(carry, _):
            p, state = carry
            upd, state = tx.update(jax.grad(loss)(p), state, p)
            return (optax.apply_updates(p, upd), state), None

        (p, state), _ = jax.lax.scan(step, (p, state), None, length=4)
        return p, hyperparams(state)["lr"]

    batched = jax.tree.map(lambda x: jnp.broadcast_to(x, (3, *x.shape)), w)
    p_v, lr_v = jax.jit(jax.vmap(run))(jnp.asarray(lrs, jnp.float32), batched)
    np.testing.assert_allclose(np.asarray(lr_v), lrs, rtol=1e-7)
    for i, lr in enumerate(lrs):
        for k in w:
            ref = _perp_adamw_ref(w[k], target[k], lr=lr, steps=4)
            np.testing.assert_allclose(np.asarray(p_v[k][i], np.float64), ref, rtol=1e-4, atol=1e-5)


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="rmsprop"):
        make_optimizer("rmsprop", lr=0.1)


def test_optimizer_from_config():
    cfg = OptimConfig(kind="sgd", lr=0.5, momentum=0.9, nesterov=True, weight_decay=0.0, transforms=("perp_grad",))
    values = {"optim.lr": jnp.asarray(0.25), "optim.weight_decay": jnp.asarray(0.01), "optim.momentum": 0.8}
    tx = optimizer_from_config(cfg, values)
    w, g = _tree(6)
    state = tx.init(w)
    hp = hyperparams(state)
    np.testing.assert_allclose(float(hp["lr"]), 0.25)
    np.testing.assert_allclose(float(hp["weight_decay"]), 0.01)
    np.testing.assert_allclose(float(hp["momentum"]), 0.8)
    assert "b2" not in hp  # SGD reads only its own fields from the config
    upd, _ = tx.update(g, state, w)
    ref = make_optimizer("sgd", lr=0.25, momentum=0.8, weight_decay=0.01, nesterov=True, transforms=["perp_grad"])
    upd_ref, _ = ref.update(g, ref.init(w), w)
    for k in w:
        np.testing.assert_allclose(np.asarray(upd[k]), np.asarray(upd_ref[k]), rtol=1e-6)
