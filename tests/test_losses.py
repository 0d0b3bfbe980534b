"""Losses vs NumPy float64 references: StableMax [P], softmax CE dtypes, MSE on one-hot [D]."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from grok.losses import accuracy, log_stablemax, per_example_loss, stablemax


def _s_ref(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, x + 1, 1 / (1 - np.minimum(x, 0)))


def _ds_ref(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, 1.0, 1 / (1 - np.minimum(x, 0)) ** 2)


def _stablemax_ref(x: np.ndarray) -> np.ndarray:
    s = _s_ref(x)
    return s / s.sum(-1, keepdims=True)


def _ce_grad_ref(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """∂/∂x_j of −log StableMax(x)_y = −δ_jy s'(x_y)/s(x_y) + s'(x_j)/Σ s."""
    s, ds = _s_ref(x), _ds_ref(x)
    grad = ds / s.sum(-1, keepdims=True)
    rows = np.arange(x.shape[0])
    grad[rows, y] -= ds[rows, y] / s[rows, y]
    return grad


def _logits(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = np.array([1e-3, 1.0, 10.0, 1e2, 1e3, 1e4])[:, None]
    x = rng.normal(size=(6, 7)) * scales
    x[0, 0], x[1, 1], x[2, 2] = 0.0, 1.0, -1.0  # branch points and the 1/(1-x) pole of the other branch
    x[5, :2] = (1e4, -1e4)
    y = rng.integers(0, 7, size=6)
    return x, y


def _check_stablemax(dtype, rtol: float) -> None:
    x, y = _logits()
    xj = jnp.asarray(x, dtype)
    sm = jax.jit(stablemax)(xj)
    lsm = jax.jit(log_stablemax)(xj)
    assert sm.dtype == dtype and lsm.dtype == dtype
    np.testing.assert_allclose(np.asarray(sm, np.float64), _stablemax_ref(x), rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(np.asarray(lsm, np.float64), np.log(_stablemax_ref(x)), rtol=rtol, atol=rtol)

    def loss(z):
        return jnp.sum(per_example_loss("stablemax_ce", z, jnp.asarray(y), n_classes=7, dtype=str(z.dtype)))

    g = jax.jit(jax.grad(loss))(xj)
    assert g.dtype == dtype
    np.testing.assert_allclose(np.asarray(g, np.float64), _ce_grad_ref(x, y), rtol=rtol, atol=rtol * 1e-3)


def test_stablemax_float32_matches_reference():
    _check_stablemax(jnp.float32, rtol=2e-5)


def test_stablemax_float64_matches_reference():
    before = jnp.ones(1).dtype  # float64 if an earlier test in this process switched x64 on globally
    with jax.enable_x64(True):
        _check_stablemax(jnp.float64, rtol=1e-12)
    assert jnp.ones(1).dtype == before  # the scoped switch restored the setting


@pytest.mark.parametrize("fn", [stablemax, log_stablemax])
def test_stablemax_gradients_finite_at_extremes(fn):
    # (Not up to float32 max: XLA on CPU divides via a reciprocal, and 1/3e38 is a flushed subnormal.)
    x = jnp.asarray([[-1e30, 1e30, 1.0, 0.0, -1.0, -3e38]], jnp.float32)
    out = fn(x)
    assert np.all(np.isfinite(np.asarray(out)))
    jac = jax.jit(jax.jacrev(fn))(x)  # every output w.r.t. every input
    assert np.all(np.isfinite(np.asarray(jac)))


def test_stablemax_float16_does_not_overflow():
    x = jnp.asarray([[60000.0, 60000.0, -3.0]], jnp.float16)  # Σ s overflows float16 if summed directly
    np.testing.assert_allclose(np.asarray(stablemax(x), np.float64)[0, :2], [0.5, 0.5], rtol=1e-3)
    assert np.isfinite(np.asarray(log_stablemax(x))).all()


def test_stablemax_loss_exact_zero_when_others_negligible():
    # [P] "zero terms": float32 loss is exactly 0 once the other terms vanish in rounding.
    x = jnp.asarray([[1e9, -1e9, 0.0]], jnp.float32)
    loss = per_example_loss("stablemax_ce", x, jnp.asarray([0]), n_classes=3, dtype="float32")
    assert float(loss[0]) == 0.0


def test_softmax_ce_dtypes():
    x = np.array([[30.0, 0.0], [1.0, 2.0]])
    y = jnp.asarray([0, 0])
    ref = -(x - np.log(np.exp(x).sum(-1, keepdims=True)))[np.arange(2), [0, 0]]
    l16 = per_example_loss("softmax_ce", jnp.asarray(x, jnp.float32), y, n_classes=2, dtype="float16")
    l32 = per_example_loss("softmax_ce", jnp.asarray(x, jnp.float32), y, n_classes=2, dtype="float32")
    assert l16.dtype == jnp.float16 and l32.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(l16, np.float64), ref, rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(np.asarray(l32, np.float64), ref, rtol=1e-6, atol=1e-12)
    assert float(l32[0]) == 0.0  # Softmax Collapse in float32: exp(-30) is lost next to 1
    with jax.enable_x64(True):
        l64 = per_example_loss("softmax_ce", jnp.asarray(x, jnp.float32), y, n_classes=2, dtype="float64")
        assert l64.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(l64), ref, rtol=1e-12, atol=1e-14)
        assert float(l64[0]) > 0.0


def test_float64_without_x64_raises():
    with jax.enable_x64(False), pytest.raises(ValueError, match="x64"):
        per_example_loss("softmax_ce", jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), n_classes=3, dtype="float64")


def test_mse_onehot_is_mean_over_samples_and_classes():
    rng = np.random.default_rng(1)
    out = rng.normal(size=(5, 4)).astype(np.float32)
    y = rng.integers(0, 4, size=5)
    per = per_example_loss("mse_onehot", jnp.asarray(out), jnp.asarray(y), n_classes=4, dtype="float32")
    assert per.shape == (5,) and per.dtype == jnp.float32
    brute = np.mean([(out[n, c] - float(y[n] == c)) ** 2 for n in range(5) for c in range(4)])
    np.testing.assert_allclose(float(jnp.mean(per)), brute, rtol=1e-6)


def test_mse_regression():
    pred, tgt = jnp.asarray([1.0, 2.0, -1.0]), jnp.asarray([0.5, 2.0, 1.0])
    per = per_example_loss("mse", pred, tgt, n_classes=0, dtype="float32")
    np.testing.assert_allclose(np.asarray(per), [0.25, 0.0, 4.0])
    with pytest.raises(ValueError, match="shape"):
        per_example_loss("mse", pred[:, None], tgt, n_classes=0, dtype="float32")


def test_unknown_kind_and_dtype_raise():
    with pytest.raises(ValueError, match="hinge"):
        per_example_loss("hinge", jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), n_classes=3, dtype="float32")
    with pytest.raises(ValueError, match="bfloat16"):
        per_example_loss("softmax_ce", jnp.zeros((2, 3)), jnp.zeros(2, jnp.int32), n_classes=3, dtype="bfloat16")


def test_accuracy():
    out = jnp.asarray([[0.1, 0.9], [2.0, -1.0], [0.0, 3.0]])
    acc = accuracy(out, jnp.asarray([1, 1, 1]))
    assert acc.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(acc), [True, False, True])
