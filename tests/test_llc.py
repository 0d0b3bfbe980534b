"""The local learning coefficient (grok.llc, docs/formulas.md §8): the sampler against exact answers,
the closed-form λ of reduced-rank regression, the estimate against it, reproducibility, files, CLI."""

import importlib
import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_png, run_command
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import grok
from grok.cli import main

L = importlib.import_module("grok.llc")  # the module (grok.llc is the function)

# --------------------------------------------------------------------------- Aoyagi & Watanabe 2005


@pytest.mark.parametrize(
    "mhnr, value",
    [
        ((5, 3, 5, 0), 6.5),  # case 1, M + H + N odd: the parity term 1/8
        ((5, 4, 5, 0), 8.0),  # case 1, even
        ((4, 3, 8, 0), 6.0),  # case 2: HM/2
        ((8, 3, 4, 0), 6.0),  # case 3: HN/2
        ((3, 8, 4, 0), 6.0),  # case 4: MN/2
        ((5, 3, 5, 1), 8.0),  # case 1 with a rank-1 teacher: (2·4·10 − 0 − 16)/8
        ((7, 3, 3, 2), 8.5),  # case 3 with a rank-2 teacher: (9 − 6 + 14)/2
        ((2, 1, 2, 0), 1.0),  # case 1, odd: (2·1·4 − 0 − 1 + 1)/8
    ],
)
def test_reduced_rank_lambda_known_values(mhnr, value):
    assert grok.reduced_rank_lambda(*mhnr) == value


dims = st.integers(1, 12)


@given(dims, dims, dims, st.data())
def test_reduced_rank_lambda_properties(m, h, n, data):
    r = data.draw(st.integers(0, min(m, h, n)))
    lam = grok.reduced_rank_lambda(m, h, n, r)
    assert lam == grok.reduced_rank_lambda(n, h, m, r)  # transposing the map changes nothing
    assert 0 < lam <= h * (m + n) / 2  # at most half the parameter count
    if r == h:  # a regular model: half the dimension of the rank-H matrices, H(M + N − H)/2
        assert lam == h * (m + n - h) / 2
    if r < min(m, h, n):  # a larger true rank never lowers λ
        assert grok.reduced_rank_lambda(m, h, n, r + 1) >= lam


def test_reduced_rank_lambda_bad_input():
    with pytest.raises(ValueError, match="rank"):
        grok.reduced_rank_lambda(3, 2, 3, 3)
    with pytest.raises(ValueError, match="hidden"):
        grok.reduced_rank_lambda(3, 0, 3)


# --------------------------------------------------------------------------- the linear teacher, linear MLP


def teacher_config(m=5, h=3, n=5, r=0, noise=1.0, steps=5000, **extra):
    return grok.Config.from_dict(
        {
            "task": {
                "kind": "linear_teacher",
                "n_train": 1000,
                "n_test": 100,
                "options": {
                    "linear_teacher.input_dim": m,
                    "linear_teacher.output_dim": n,
                    "linear_teacher.rank": r,
                    "linear_teacher.noise": noise,
                },
            },
            "model": {"kind": "mlp", "widths": [h], "activation": "linear"},
            "loss": {"kind": "mse"},
            "optim": {"kind": "adam", "lr": 0.01, "weight_decay": 0.0},
            "train": {"steps": steps, "log_every": steps},
        }
    ).override(**extra)


def test_linear_teacher_data_and_deep_linear_network():
    cfg = teacher_config(m=6, h=4, n=3, r=2, noise=0.0, steps=10)
    run = grok.train(cfg, progress=False)
    data = run.dataset(0)
    x, y, t = (np.asarray(a, np.float64) for a in (data.x_train, data.y_train, data.beta))
    assert x.shape == (1000, 6) and y.shape == (1000, 3)
    t = t.reshape(6, 3)
    assert np.linalg.matrix_rank(t, tol=1e-5) == 2
    np.testing.assert_allclose(y, x @ t, rtol=1e-5, atol=1e-5)  # noise 0: y = x T exactly
    # the bias-free MLP with the identity activation is x ↦ x W₁ W₂ (readout stored transposed)
    model = run.model(0)
    w1, w2 = np.asarray(model.first.kernel[...]), np.asarray(model.readout.kernel[...]).T
    out = np.asarray(model(data.x_test, train=False))
    np.testing.assert_allclose(out, np.asarray(data.x_test) @ w1 @ w2, rtol=1e-4, atol=1e-5)
    noisy = grok.train(teacher_config(r=0, noise=0.5, steps=1), progress=False).dataset(0)
    assert np.std(np.asarray(noisy.y_train)) == pytest.approx(0.5, rel=0.05)  # r = 0: pure noise of std σ
    with pytest.raises(grok.ConfigError, match="task.linear_teacher.rank"):
        teacher_config(m=2, n=3, r=3)


# --------------------------------------------------------------------------- the sampler, exactly


def test_mala_log_ratio_is_the_metropolis_hastings_ratio_of_the_langevin_proposal():
    rng = np.random.default_rng(0)
    d, eps = 4, 0.3
    a = np.diag(rng.uniform(0.5, 2.0, d))  # U(w) = ½ wᵀ A w
    prev_w, w = rng.normal(size=d), rng.normal(size=d)

    def u(x):
        return 0.5 * x @ a @ x

    q = lambda to, frm: stats.multivariate_normal(frm - 0.5 * eps * a @ frm, eps * np.eye(d)).logpdf(to)  # noqa: E731
    expected = q(prev_w, w) - q(w, prev_w) + u(prev_w) - u(w)
    got = L.mala_log_ratio(
        {"w": jnp.asarray(prev_w)}, {"w": jnp.asarray(a @ prev_w)}, u(prev_w), {"w": jnp.asarray(w)},
        {"w": jnp.asarray(a @ w)}, u(w), eps,
    )  # fmt: skip
    assert abs(expected) > 0.01 and float(got) == pytest.approx(expected, rel=1e-3)


def test_sgld_on_a_quadratic_loss_has_the_exact_stationary_variance():
    """L(w) = ½ Σ h_i w_i²: each coordinate of the Euler chain is an AR(1) with stationary variance
    1/(a(1 − εa/4)), a = nβ h + γ, so λ̂ = nβ Σ ½ h_i Var_i (→ d/2 as ε, γ → 0)."""
    h = jnp.asarray([1.0, 2.0, 4.0])
    nbeta, gamma, eps, draws, chains = 50.0, 1.0, 2e-3, 4000, 64

    def loss_at(w, _):
        return 0.5 * jnp.sum(h * w["w"] ** 2)

    w_star = {"w": jnp.zeros(3)}

    def chain(c):
        start = L.ChainState(w_star, w_star, jnp.zeros(()), w_star)
        return L.sgld_draws(loss_at, w_star, start, jax.random.key(c), 0, eps, nbeta, gamma, draws)[1]

    losses, accept = jax.jit(jax.vmap(chain))(jnp.arange(chains))
    a = nbeta * np.asarray(h, np.float64) + gamma
    exact = nbeta * np.sum(0.5 * np.asarray(h) / (a * (1 - eps * a / 4)))
    per = L.chain_estimates(np.asarray(losses), np.asarray(accept), np.zeros(()), nbeta, burnin=500)
    assert per.llc.mean() == pytest.approx(exact, rel=0.03)
    assert exact == pytest.approx(1.5, rel=0.1)  # ≈ d/2 for this small ε and γ
    assert 0.9 < per.acceptance.mean() <= 1.0
    assert not per.flagged.any()


def test_the_chains_noise_is_jax_classic_threefry_normal_stream():
    """`standard_normal_like` is `jax.random.normal` of the flattened tree with the classic
    (non-partitionable) Threefry layout, bit for bit; standard normal moments; the same under vmap."""
    key = jax.random.key(3)
    tree = {"a": jnp.zeros((5, 7), jnp.float32), "b": jnp.zeros((13,), jnp.float16)}  # x64 may be on
    z = L.standard_normal_like(key, tree)
    assert z["a"].shape == (5, 7) and z["b"].dtype == jnp.float16
    with jax.threefry_partitionable(False):
        ref = np.asarray(jax.random.normal(key, (48,), jnp.float32))
    assert np.array_equal(np.asarray(z["a"]).ravel(), ref[:35])
    assert np.array_equal(np.asarray(z["b"]), ref[35:].astype(np.float16))
    big = np.asarray(L.standard_normal_like(key, jnp.zeros((200_001,), jnp.float32)), np.float64)
    assert abs(big.mean()) < 5 / np.sqrt(big.size) and abs(big.var() - 1) < 0.02
    assert stats.kstest(big[:20_000], "norm").pvalue > 1e-3
    keys = jax.random.split(key, 3)
    batched = jax.vmap(lambda k: L.standard_normal_like(k, tree)["a"])(keys)
    assert np.array_equal(np.asarray(batched[1]), np.asarray(L.standard_normal_like(keys[1], tree)["a"]))
    other = jax.random.key(0, impl="rbg")  # another key implementation: one jax.random.normal per leaf
    assert np.array_equal(
        np.asarray(L.standard_normal_like(other, tree)["a"]),
        np.asarray(jax.random.normal(jax.random.split(other, 2)[0], (5, 7), jnp.float32)),
    )


def test_minibatches_walk_one_permutation_per_epoch_across_chunks():
    """Draw t's rows: epoch t // (n // B) is a permutation of the n rows cut into batches, so no row
    repeats within an epoch; the batches do not depend on where the draws are cut into chunks."""
    n, size, draws = 23, 5, 13  # 4 batches an epoch, 3 rows left out of each
    shuffle = L.EpochShuffle(jax.random.key(3), n, size)

    def rows(t0, count):
        def one(order, t):
            return shuffle.batch(order, t)

        return jax.lax.scan(one, shuffle.order(t0), t0 + jnp.arange(count))[1]

    whole = np.asarray(jax.jit(rows, static_argnums=1)(0, draws))
    split = np.concatenate([np.asarray(rows(0, 6)), np.asarray(rows(6, draws - 6))])
    np.testing.assert_array_equal(whole, split)
    for e in range(3):
        epoch = whole[4 * e : 4 * e + 4].ravel()
        assert len(set(epoch.tolist())) == 4 * size and epoch.min() >= 0 and epoch.max() < n
    assert not np.array_equal(np.sort(whole[0:4].ravel()), np.sort(whole[4:8].ravel()))  # reshuffled


def test_a_chains_batch_keys_are_not_its_noise_keys():
    """Epoch e's permutation key is never draw t's noise key (with `split(key)[0]` as the batch stream,
    draw 0's noise key was epoch 1's under JAX's partitionable Threefry)."""
    key = jax.random.key(7)
    noise = {tuple(np.asarray(jax.random.key_data(jax.random.split(jax.random.fold_in(key, t))[1]))) for t in range(64)}
    root = L.shuffle_key(key)
    batches = {tuple(np.asarray(jax.random.key_data(jax.random.fold_in(root, e)))) for e in range(64)}
    assert not noise & batches and len(noise) == len(batches) == 64


def test_the_default_nbeta_needs_two_examples():
    with pytest.raises(grok.ConfigError, match="nbeta"):
        L.LLCSettings().nbeta_for(1)
    assert L.LLCSettings(nbeta=3.0).nbeta_for(1) == 3.0


def test_chain_flags_exclude_only_the_bad_chains():
    rng = np.random.default_rng(1)
    losses = 1.0 + 0.01 * rng.normal(size=(4, 200))
    losses[1, 150] = np.nan  # turns non-finite
    losses[2] += np.linspace(0.0, 0.5, 200)  # still rising after burn-in
    accept = np.full((4, 200), 0.95)
    per = L.chain_estimates(losses, accept, np.asarray(0.9), 10.0, burnin=50)
    assert per.nonfinite.tolist() == [False, True, False, False]
    assert per.trending.tolist() == [False, False, True, False]
    np.testing.assert_allclose(per.llc[[0, 3]], 10.0 * (losses[[0, 3], 50:].mean(-1) - 0.9))
    mean, _ = L._summary(per.llc, per.flagged)
    assert mean == pytest.approx(per.llc[[0, 3]].mean())


def test_auto_rule_takes_the_largest_usable_step_size():
    eps = np.asarray([1e-4, 1e-3, 1e-2])
    acc = np.asarray([[0.99, 0.99], [0.96, 0.97], [0.5, 0.6]])  # [K, chains]
    bad = np.zeros((3, 2), bool)
    chains = L._Chains(np.ones((3, 2)), acc, bad, bad)
    index, ok = L.choose_step(eps, chains)
    assert index == 1 and ok
    trending = bad.copy()
    trending[1] = True  # the middle one trends: the smallest passes
    index, ok = L.choose_step(eps, L._Chains(np.ones((3, 2)), acc, bad, trending))
    assert index == 0 and ok


# --------------------------------------------------------------------------- on runs

TINY = {"task.p": 11, "task.train_fraction": 0.6, "model.widths": [16]}


@pytest.fixture(scope="module")
def snap_run():
    cfg = grok.preset("prieto-perpgrad").override(
        **TINY, **{"train.steps": 60, "train.schedule": "log", "train.log_points": 8, "train.snapshots": 3}
    )
    return grok.train(cfg, seeds=(0, 1), progress=False)


FAST = {"chains": 3, "draws": 40, "step_size": 1e-4}


def test_llc_on_a_classification_run_is_reproducible_and_independent_of_grouping(snap_run):
    res = grok.llc(snap_run, **FAST)
    n_steps = len(snap_run.steps_with_snapshots)
    assert res.mean.shape == (2, n_steps) and res.traces.shape == (2, n_steps, 3, 40)
    assert np.isfinite(res.mean).all() and (res.step_size == 1e-4).all()
    np.testing.assert_array_equal(grok.llc(snap_run, **FAST).per_chain, res.per_chain)
    alone = grok.llc(snap_run.select([1]), **FAST, steps=snap_run.steps_with_snapshots[1:])
    np.testing.assert_array_equal(alone.traces[0], res.traces[1, 1:])
    assert not np.array_equal(grok.llc(snap_run, **FAST, seed=1).traces, res.traces)
    fewer = grok.llc(snap_run, **{**FAST, "chains": 2})  # a chain does not depend on how many run beside it
    np.testing.assert_array_equal(fewer.traces, res.traces[:, :, :2])
    # the minibatch estimate samples batches of 8; the reference loss stays the full-batch one
    mini = grok.llc(snap_run, **FAST, batch_size=8)
    np.testing.assert_array_equal(mini.init_loss, res.init_loss)
    assert mini.nbeta == pytest.approx(8 / np.log(8))
    mini_alone = grok.llc(snap_run.select([1]), **FAST, batch_size=8, steps=snap_run.steps_with_snapshots[1:])
    np.testing.assert_array_equal(mini_alone.traces[0], mini.traces[1, 1:])


def test_cpu_chain_blocks_keep_a_blocks_state_within_the_cache():
    """(snapshots, chains) at a time on a CPU: a chain's state is 4 copies of its parameters."""
    budget = L.CHAIN_CACHE_BYTES
    assert L.chain_blocks(81_000 * 4, 20, 8) == (1, 1)  # bench_llc's MLP: one chain at a time
    assert L.chain_blocks(budget // 4 // 4, 20, 8) == (1, 4)  # 4 of a snapshot's 8 chains
    assert L.chain_blocks(budget // 4 // 32, 20, 8) == (4, None)  # 4 snapshots' 8 chains
    assert L.chain_blocks(budget // 4 // 32, 3, 8) == (None, None)  # all 3 snapshots
    assert L.chain_blocks(400, 3, 72) == (None, None)  # a deep linear network: everything at once


def test_chains_walked_in_blocks_agree_with_vmapped_chains(snap_run, monkeypatch):
    vmapped = grok.llc(snap_run, **FAST)
    monkeypatch.setattr(L, "CHAIN_CACHE_BYTES", 1)  # one chain at a time, as a large model on a CPU
    walked = grok.llc(snap_run, **FAST)
    np.testing.assert_allclose(walked.traces, vmapped.traces, rtol=1e-4)
    fewer = grok.llc(snap_run, **{**FAST, "chains": 2})
    np.testing.assert_array_equal(fewer.traces, walked.traces[:, :, :2])


def test_llc_sharded_over_devices_equals_each_member_alone(snap_run):
    """4 members on the tests' 4 CPU devices: one member per device (shard_map), each as if alone."""
    run4 = grok.train(snap_run.config, seeds=(0, 1, 2, 3), progress=False)
    steps = run4.steps_with_snapshots[-1:]
    res = grok.llc(run4, **FAST, steps=steps)
    for m in (0, 3):
        alone = grok.llc(run4.select([m]), **FAST, steps=steps)
        np.testing.assert_array_equal(alone.traces[0], res.traces[m])


def test_calibration_shares_the_chains_of_llc_and_the_figures_draw(snap_run, tmp_path):
    from grok.plots.llc import plot_chain_traces, plot_llc, save_calibration

    cal = grok.llc_calibrate(snap_run, step_sizes=[1e-5, 1e-4], nbetas=[5.0, 20.0], chains=3, draws=40)
    assert cal.mean.shape == (2, 3, 2, 2) and cal.chosen.shape == (2, 3, 2)
    res = grok.llc(snap_run, **FAST, nbeta=20.0)
    np.testing.assert_allclose(cal.mean[..., 1, 1], res.mean, rtol=1e-4)
    assert_png(plot_llc(snap_run, res, tmp_path / "llc.png"))
    assert_png(plot_chain_traces(res, tmp_path / "traces.png", member=1, step_index=1))
    assert_png(save_calibration(cal, tmp_path / "cal.png"))


@pytest.mark.filterwarnings("ignore::grok.errors.GrokWarning")  # 20 draws: λ̂ itself does not matter here
def test_llc_saved_beside_the_run_and_reloaded_with_it(tmp_path):
    run = grok.train(teacher_config(steps=50), progress=False)  # no snapshots: the final parameters
    run.save(tmp_path / "run")
    res = grok.llc(run, chains=2, draws=20, step_size=1e-3, out=tmp_path / "run")
    assert res.steps.tolist() == [50]
    again = grok.load_run(tmp_path / "run").llc
    for name in ("mean", "traces", "step_size", "acceptance", "flagged"):
        np.testing.assert_array_equal(getattr(again, name), getattr(res, name))
    assert json.loads((tmp_path / "run" / "llc.json").read_text())["chains"] == 2
    with pytest.raises(grok.ConfigError, match="steps"):
        grok.llc(run, steps=[10])


@pytest.mark.parametrize(
    "option, value, match",
    [
        ("chains", 0, "chains"),
        ("draws", -1, "draws"),
        ("burnin", 40, "burnin"),
        ("burnin", -1, "burnin"),
        ("step_size", 0.0, "step_size"),
        ("step_size", float("nan"), "step_size"),
        ("nbeta", -2.0, "nbeta"),
        ("nbeta", float("inf"), "nbeta"),
        ("localization", -1.0, "localization"),
        ("batch_size", 1, "batch_size"),
    ],
)
def test_bad_options_are_refused_before_anything_compiles(snap_run, option, value, match):
    with pytest.raises(grok.ConfigError, match=match):
        grok.llc(snap_run, **(FAST | {option: value}))


def test_calibration_refuses_a_batch_larger_than_the_training_set(snap_run):
    with pytest.raises(grok.ConfigError, match="batch_size"):
        grok.llc_calibrate(snap_run, step_sizes=[1e-4], nbetas=[5.0], chains=2, draws=8, batch_size=10_000)


def test_an_unreliable_estimate_warns(snap_run):
    import dataclasses

    res = grok.llc(snap_run, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        L._warn_if_unreliable(res, auto=False)  # the fast estimate is fine
    with pytest.warns(grok.GrokWarning, match="λ̂ is NaN at 1 of"):
        flagged = res.nonfinite.copy()
        flagged[0, 0] = True
        L._warn_if_unreliable(dataclasses.replace(res, nonfinite=flagged), auto=False)
    with pytest.warns(grok.GrokWarning, match="acceptance below"):
        L._warn_if_unreliable(dataclasses.replace(res, acceptance=np.full_like(res.acceptance, 0.3)), auto=False)
    with pytest.warns(grok.GrokWarning, match="λ̂ is NaN"):  # diverging chains, end to end
        grok.llc(snap_run, chains=2, draws=20, step_size=10.0)


def test_bad_steps_name_the_nearest_snapshot(snap_run):
    with pytest.raises(grok.ConfigError, match="the nearest are"):
        grok.llc(snap_run, **FAST, steps=[snap_run.steps_with_snapshots[1] + 1])


def test_cli_llc(tmp_path, snap_run, capsys):
    snap_run.save(tmp_path / "run")
    assert run_command(["llc", str(tmp_path / "run"), "--chains", "2", "--draws", "20", "--step-size", "1e-4"]) == 0
    assert grok.load_run(tmp_path / "run").llc.mean.shape == (2, 3)
    capsys.readouterr()
    cases = [
        ([], "--overwrite"),  # nothing overwritten unless asked
        (["--out", str(tmp_path / "x.npz"), "--chains", "0"], "chains"),
        (["--out", str(tmp_path / "x.npz"), "--step-size", "big"], "--step-size"),
        (["--out", str(tmp_path / "x.npz"), "--steps", "7"], "the nearest are"),
        (["--out", str(tmp_path / "x.txt")], "--out"),
    ]
    for args, word in cases:
        assert main(["llc", str(tmp_path / "run"), *args]) == 2
        err = capsys.readouterr().err
        assert word in err and len(err.strip().splitlines()) == 1, err
    assert main(["llc", str(tmp_path / "nowhere")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "x.npz").exists()
    # a run whose files are incomplete or damaged: one line, and nothing written
    for damage, word in (("status.json", "incomplete"), ("snapshots", "snapshot")):
        broken = tmp_path / f"broken-{word}"
        snap_run.save(broken)
        if damage == "snapshots":
            next(iter(sorted((broken / "snapshots").iterdir()))).write_bytes(b"not an npz")
        else:
            (broken / damage).unlink()
        assert main(["llc", str(broken), "--chains", "2", "--draws", "20", "--step-size", "1e-4"]) == 2
        err = capsys.readouterr().err
        assert word in err and len(err.strip().splitlines()) == 1, err
        assert not (broken / "llc.npz").exists()


# --------------------------------------------------------------------------- against theory


@pytest.mark.slow
@pytest.mark.parametrize(
    "mhnr",
    [(5, 3, 5, 0), (5, 4, 5, 0), (4, 3, 8, 0), (8, 3, 4, 0), (3, 8, 4, 0), (5, 3, 5, 1), (7, 3, 3, 2)],
    ids=lambda c: "M{}H{}N{}r{}".format(*c),
)
def test_llc_of_a_trained_deep_linear_network_is_aoyagi_watanabe(mhnr):
    m, h, n, r = mhnr
    run = grok.train(teacher_config(m, h, n, r), progress=False)
    res = grok.llc(run, draws=2000)  # defaults otherwise: auto step size, nβ = n/log n, γ = 1
    assert res.step_size_ok.all()
    assert res.mean[0, 0] == pytest.approx(grok.reduced_rank_lambda(m, h, n, r), rel=0.10)
