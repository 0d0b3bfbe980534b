"""The spectral formulas (probes/spectral.py, docs/formulas.md §5.6) against NumPy/SciPy on the host."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from probes import spectral


def _reference_fit(evals: np.ndarray, ks: str, threshold: float = spectral.EVAL_THRESHOLD):
    """Brute force: every eigenvalue above the threshold but the largest tried as x_min, one by one."""
    lam = np.sort(np.asarray(evals, np.float64))
    lam = lam[lam > threshold]
    best = None
    for k in range(len(lam) - 1):
        tail, xmin = lam[k:], lam[k]
        spread = np.sum(np.log(tail / xmin))
        if spread <= 0:
            continue
        alpha = 1 + len(tail) / spread
        cdf = lambda x, a=alpha, m=xmin: 1 - (x / m) ** (1 - a)
        if ks == "csn":  # the two-sided supremum distance, as SciPy computes it
            dist = scipy.stats.kstest(tail, cdf).statistic
        else:  # weightwatcher's: the empirical CDF j/n at the j-th point
            dist = np.max(np.abs(cdf(tail) - np.arange(len(tail)) / len(tail)))
        if best is None or dist < best[2]:
            best = (alpha, xmin, dist, len(tail))
    return best


def _pareto(rng, alpha: float, n: int, xmin: float = 1.0) -> np.ndarray:
    """Samples of the continuous power law p(x) ∝ x^(−α), x ≥ xmin (inverse CDF)."""
    return xmin * (1 - rng.random(n)) ** (-1 / (alpha - 1))


def _heavy_matrix(seed: int, shape=(120, 80)) -> np.ndarray:
    """A matrix with Student-t entries: its ESD has a power-law tail."""
    return np.random.default_rng(seed).standard_t(2.5, size=shape)


@pytest.mark.parametrize("ks", spectral.KS_CONVENTIONS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_powerlaw_fit_matches_brute_force(ks, seed):
    rng = np.random.default_rng(seed)
    # a power-law tail above a lognormal bulk, so x_min is not the smallest eigenvalue
    evals = np.concatenate([np.exp(rng.normal(0, 0.3, 60)), _pareto(rng, 2.0 + seed / 2, 60, xmin=2.0)])
    alpha, xmin, dist, n_tail = _reference_fit(evals, ks)
    with jax.enable_x64(True):
        fit = spectral.powerlaw_fit(jnp.asarray(rng.permutation(evals)), ks=ks)
        np.testing.assert_allclose(float(fit.alpha), alpha, rtol=1e-10)
        np.testing.assert_allclose(float(fit.xmin), xmin, rtol=1e-12)
        np.testing.assert_allclose(float(fit.ks_distance), dist, rtol=1e-9)
        assert int(fit.n_tail) == n_tail and int(fit.status) == 0


@pytest.mark.parametrize("ks", spectral.KS_CONVENTIONS)
def test_htsr_alpha_of_a_matrix_matches_brute_force_in_float32(ks):
    w = _heavy_matrix(3)
    evals = np.linalg.svd(w, compute_uv=False) ** 2
    alpha, xmin, dist, n_tail = _reference_fit(evals, ks)
    fit = spectral.htsr_alpha(jnp.asarray(w, jnp.float32), ks=ks)
    assert int(fit.n_tail) == n_tail
    np.testing.assert_allclose(float(fit.alpha), alpha, rtol=1e-4)
    np.testing.assert_allclose(float(fit.xmin), xmin, rtol=1e-4)
    np.testing.assert_allclose(float(fit.ks_distance), dist, rtol=1e-3)


def test_alpha_recovers_a_known_exponent():
    evals = _pareto(np.random.default_rng(7), 2.5, 4000)
    fit = spectral.powerlaw_fit(jnp.asarray(evals, jnp.float32))
    # the MLE's standard error is (α − 1)/√n_tail ≈ 0.03 here
    assert abs(float(fit.alpha) - 2.5) < 0.15 and int(fit.n_tail) > 500


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), log_scale=st.floats(-3, 3))
def test_alpha_is_scale_invariant(seed, log_scale):
    """λ → cλ leaves α, the KS distance and the tail unchanged and scales x_min by c."""
    evals = _pareto(np.random.default_rng(seed), 3.0, 50, xmin=1.0)
    c = 10.0**log_scale
    with jax.enable_x64(True):
        a = spectral.powerlaw_fit(jnp.asarray(evals), threshold=0.0)
        b = spectral.powerlaw_fit(jnp.asarray(evals * c), threshold=0.0)
        np.testing.assert_allclose(float(b.alpha), float(a.alpha), rtol=1e-9)
        np.testing.assert_allclose(float(b.xmin), c * float(a.xmin), rtol=1e-9)
        assert int(a.n_tail) == int(b.n_tail)


def test_undefined_fits_are_nan_with_a_reason():
    ones = jnp.ones(30)
    few = jnp.asarray(_pareto(np.random.default_rng(0), 2.0, 30))
    bad = few.at[3].set(jnp.nan)
    fits = jax.vmap(lambda e: spectral.powerlaw_fit(e, min_evals=20))(jnp.stack([few, few[:30] * 0 + ones, bad]))
    assert list(np.asarray(fits.status)) == [0, 2, 3]
    assert np.isfinite(fits.alpha[0]) and np.isnan(fits.alpha[1:]).all() and np.isnan(fits.xmin[1:]).all()
    tiny = spectral.powerlaw_fit(few.at[:15].set(0.0), min_evals=20)  # 15 eigenvalues at zero
    assert int(tiny.status) == 1 and np.isnan(float(tiny.alpha)) and int(tiny.n_tail) == 0
    assert set(spectral.FIT_STATUS) == {0, 1, 2, 3}


def test_ranks_and_norms_match_numpy():
    w = _heavy_matrix(4, (40, 70))
    sv = np.linalg.svd(w, compute_uv=False)
    p = sv / sv.sum()
    out = spectral.spectral_summary(jnp.asarray(w, jnp.float32))
    np.testing.assert_allclose(out["spectral_norm"], np.linalg.norm(w, 2), rtol=1e-5)
    np.testing.assert_allclose(out["frobenius_norm"], np.linalg.norm(w, "fro"), rtol=1e-5)
    np.testing.assert_allclose(out["stable_rank"], np.linalg.norm(w, "fro") ** 2 / sv[0] ** 2, rtol=1e-5)
    np.testing.assert_allclose(out["effective_rank"], np.exp(-np.sum(p * np.log(p))), rtol=1e-5)
    np.testing.assert_allclose(spectral.stable_rank(w), out["stable_rank"], rtol=1e-6)
    np.testing.assert_allclose(spectral.effective_rank(w), out["effective_rank"], rtol=1e-6)
    np.testing.assert_allclose(spectral.esd(w), np.sort(sv**2), rtol=1e-4)


def test_ranks_of_a_low_rank_matrix_match_numpy():
    """Rank 5 in 120×80, with a spread of singular values: the Gram matrix's rounding noise is not counted."""
    rng = np.random.default_rng(6)
    w = rng.normal(size=(120, 5)) * np.geomspace(1, 0.05, 5) @ rng.normal(size=(5, 80))
    sv = np.linalg.svd(w, compute_uv=False)[:5]
    p = sv / sv.sum()
    out = spectral.spectral_summary(jnp.asarray(w, jnp.float32))
    np.testing.assert_allclose(out["effective_rank"], np.exp(-np.sum(p * np.log(p))), rtol=1e-4)
    np.testing.assert_allclose(out["stable_rank"], np.sum(sv**2) / sv[0] ** 2, rtol=1e-5)
    assert int(np.sum(np.asarray(spectral.esd(w)) > spectral.EVAL_THRESHOLD)) == 5


def test_rank_extremes():
    """A rank-one matrix has stable and effective rank 1; an orthogonal one has both equal to its size."""
    u = np.random.default_rng(0).normal(size=(30, 1))
    q = np.linalg.qr(np.random.default_rng(1).normal(size=(25, 25)))[0]
    np.testing.assert_allclose(spectral.stable_rank(u @ u.T), 1.0, rtol=1e-5)
    np.testing.assert_allclose(spectral.effective_rank(u @ u.T), 1.0, rtol=1e-3)
    np.testing.assert_allclose(spectral.stable_rank(q), 25.0, rtol=1e-5)
    np.testing.assert_allclose(spectral.effective_rank(q), 25.0, rtol=1e-5)
    zero = spectral.spectral_summary(jnp.zeros((30, 30)))
    assert float(zero["stable_rank"]) == 0 and float(zero["effective_rank"]) == 0 and int(zero["alpha_status"]) == 1


def test_non_finite_weights_give_nan_and_status_3():
    w = jnp.asarray(_heavy_matrix(5)).at[0, 0].set(jnp.inf)
    out = jax.jit(spectral.spectral_summary)(w)
    assert int(out["alpha_status"]) == 3
    assert all(np.isnan(float(out[k])) for k in ("alpha", "spectral_norm", "stable_rank", "effective_rank"))


def test_rounding_noise_of_a_low_rank_float32_matrix_is_not_fitted():
    """Rank 10 in 300×200 with λ_max ~ 10¹¹: float32's SVD leaves ~150 noise σ² above 1e-5, which are
    0 in the ESD (below max(N, M)·eps·σ_max), so there are 10 eigenvalues, too few to fit, as in float64."""
    rng = np.random.default_rng(2)
    w = 1e3 * (rng.normal(size=(300, 10)) @ rng.normal(size=(10, 200)))
    raw = np.asarray(jnp.linalg.svd(jnp.asarray(w, jnp.float32), compute_uv=False)) ** 2
    assert np.sum(raw > spectral.EVAL_THRESHOLD) > 100  # the noise the floor removes
    assert np.sum(np.linalg.svd(w, compute_uv=False) ** 2 > spectral.EVAL_THRESHOLD) == 10  # float64
    assert np.sum(np.asarray(spectral.esd(jnp.asarray(w, jnp.float32))) > spectral.EVAL_THRESHOLD) == 10
    assert int(spectral.spectral_summary(jnp.asarray(w, jnp.float32))["alpha_status"]) == 1
    assert int(spectral.htsr_alpha(jnp.asarray(w, jnp.float32)).status) == 1


def test_a_spectrum_flat_to_rounding_has_no_fit():
    """An orthogonal matrix × 3: every σ² is 9 up to float32 rounding, so no tail is a power law (status 2),
    where a test of `spread > 0` fitted α ~ 4·10⁶."""
    q = np.linalg.qr(np.random.default_rng(3).normal(size=(64, 64)))[0]
    fit = spectral.htsr_alpha(jnp.asarray(3 * q, jnp.float32))
    assert int(fit.status) == 2 and np.isnan(float(fit.alpha))


def test_ranks_of_non_finite_weights_are_nan():
    w = jnp.asarray(_heavy_matrix(5)).at[1, 2].set(jnp.nan)
    assert np.isnan(float(spectral.stable_rank(w))) and np.isnan(float(spectral.effective_rank(w)))


def test_the_esd_figure_of_a_zero_matrix_draws_a_note():
    from matplotlib.figure import Figure

    from grok.plots.spectral import plot_esd_fit

    ax = Figure().subplots()
    assert int(plot_esd_fit(ax, spectral.esd(jnp.zeros((30, 30)))).status) == 1
    assert "no eigenvalue" in ax.texts[0].get_text()


def test_esd_histogram_matches_numpy():
    evals = np.concatenate([[0.0, 1e-7], _pareto(np.random.default_rng(2), 2.0, 200)])
    counts, span = spectral.esd_histogram(jnp.asarray(evals, jnp.float32), 12)
    kept = np.log10(evals[evals > spectral.EVAL_THRESHOLD])
    ref, edges = np.histogram(kept, bins=12)
    np.testing.assert_array_equal(counts, ref)
    np.testing.assert_allclose(span, [edges[0], edges[-1]], rtol=1e-5)


def test_fit_is_vmappable_over_members_and_snapshots():
    ws = jnp.asarray(np.stack([[_heavy_matrix(10 * m + s, (50, 40)) for s in range(3)] for m in range(2)]), jnp.float32)
    batched = jax.jit(jax.vmap(jax.vmap(spectral.spectral_summary)))(ws)
    for m in range(2):
        for s in range(3):
            one = spectral.spectral_summary(ws[m, s])
            np.testing.assert_allclose(batched["alpha"][m, s], one["alpha"], rtol=1e-5)
            assert int(batched["alpha_tail"][m, s]) == int(one["alpha_tail"])


# --------------------------------------------------------------------------- the `spectral` probe
def _spectral_config(**overrides):
    import grok

    base = {"train.steps": 60, "train.log_every": 20, "train.probes": ["spectral"], "train.snapshots": [20, 60]}
    return grok.preset("omnigrok-large-init-small").override(**(base | overrides))


def test_probe_in_run_and_on_snapshots_equal_the_pure_function():
    import grok

    cfg = _spectral_config(**{"train.spectral_esd_bins": 8, "train.spectral_ks": "csn"})
    run = grok.train(cfg, seeds=(0, 1), progress=False)
    layers = ["first/kernel", "hidden/0/kernel", "readout/kernel"]
    assert {k.split("/", 1)[1] for k in run.history if k.startswith("alpha/")} == set(layers)
    post = grok.probe_history(run, ["spectral"])
    assert post["step"].tolist() == [20, 60]
    at = [list(run.history["step"]).index(s) for s in (20, 60)]
    for name in layers:
        for key in ("alpha", "stable_rank", "effective_rank", "esd_hist"):
            np.testing.assert_allclose(post[f"{key}/{name}"], run.history[f"{key}/{name}"][:, at], rtol=1e-5)
        w = run.params_at(60, 1)[name]
        ref = spectral.spectral_summary(jnp.asarray(w), ks="csn")
        for key, value in ref.items():
            np.testing.assert_allclose(run.history[f"{key}/{name}"][1, -1], value, rtol=2e-5)
    assert run.history["esd_range/first/kernel"].shape == (2, cfg.n_intervals, 2)
    assert (run.history["alpha_status/readout/kernel"] == 0).all()  # 31 eigenvalues ≥ 20


def test_probe_refuses_models_it_cannot_measure_before_compiling():
    from flax import nnx

    import grok

    class OnlyBiases(nnx.Module):
        def __init__(self, n_out, rngs, param_dtype):
            self.b = nnx.Param(jnp.zeros((n_out,), param_dtype))

        def __call__(self, x, train=False):
            return jnp.zeros((x.shape[0], self.b.shape[0]), self.b.dtype) + self.b[...]

    def build(model_cfg, spec, *, rngs, param_dtype, **dynamic):
        return OnlyBiases(spec.n_classes, rngs, param_dtype)

    grok.register_model("only_biases", build=build)
    before = grok.trace_count()
    with pytest.raises(grok.ConfigError, match="'spectral' needs a model with weight matrices"):
        _spectral_config(**{"model.kind": "only_biases", "optim.transforms": []})
    with pytest.raises(grok.ConfigError, match=r"train.spectral_min_evals.*readout/kernel 31x128"):
        _spectral_config(**{"train.spectral_min_evals": 200})
    with pytest.raises(grok.ConfigError, match="train.spectral_ks"):
        _spectral_config(**{"train.spectral_ks": "powerlaw"})
    assert grok.trace_count() == before


def test_a_layer_below_min_evals_is_nan_with_its_reason():
    import grok

    cfg = _spectral_config(**{"train.spectral_min_evals": 100, "train.snapshots": 0})
    run = grok.train(cfg, seeds=(0,), progress=False)
    assert np.isnan(run.history["alpha/readout/kernel"]).all()  # 31 eigenvalues < 100
    assert (run.history["alpha_status/readout/kernel"] == 1).all()
    assert np.isfinite(run.history["alpha/hidden/0/kernel"]).all()
    assert np.isfinite(run.history["stable_rank/readout/kernel"]).all()


def test_the_esd_figure_draws_the_fit_of_the_probe():
    """`plot_esd_fit` chooses x_min by the probe's rule unless told otherwise, on a matrix where the rules differ."""
    from matplotlib.figure import Figure

    from grok.config import TrainConfig
    from grok.plots.spectral import plot_esd_fit

    w = jnp.asarray(_heavy_matrix(3, (300, 150)), jnp.float32)
    probe = {ks: float(spectral.htsr_alpha(w, ks=ks).alpha) for ks in spectral.KS_CONVENTIONS}
    assert abs(probe["csn"] - probe["weightwatcher"]) > 0.5  # 3.40 against 4.05
    ax = Figure().subplots()
    drawn = float(plot_esd_fit(ax, spectral.esd(w)).alpha)
    assert drawn == pytest.approx(probe[TrainConfig().spectral_ks], rel=1e-5)
    assert float(plot_esd_fit(ax, spectral.esd(w), ks="csn").alpha) == pytest.approx(probe["csn"], rel=1e-5)
