"""Pruning memorizing neurons by IPR [D] (docs/formulas.md §5–6): `grok.prune.prune`, its table, plot and CLI.

The module trains one small [D] Coexistence run (quadratic MLP, ξ = 0.1, no weight decay) that
generalizes (test ≈ 0.98) while fitting every corrupted label, then prunes it in the three orders.
"""

import json
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import assert_png, run_command

import grok
from grok import losses
from grok.models import analytic_solution, apply_neuron_mask, build_model
from grok.phases import classify_phase
from grok.plots.prune import plot_prune_curves
from grok.prune import (
    _COUNTS,
    ACCURACY_NAMES,
    model_run,
    neuron_iprs,
    prune,
    prune_all,
    pruned_run,
    save_pruned,
)
from grok.run import Run
from grok.store import RunDirError

# Coexistence at CPU size: p = 41, 60% train, N = 200, ξ = 0.1, AdamW lr 0.01, wd 0, 500 steps.
# (COEXIST restates the preset doshi-coexistence-small so the test does not depend on the preset.)
COEXIST = {
    "task.p": 41,
    "task.train_fraction": 0.6,
    "task.corrupt_fraction": 0.1,
    "model.widths": [200],
    "optim.lr": 0.01,
    "optim.weight_decay": 0.0,
    "train.steps": 500,
    "train.log_every": 50,
}
FRACTIONS = np.linspace(0.0, 1.0, 41)


def independent_accuracies(model, data) -> dict[str, float]:
    """The six accuracies of a model, computed directly (plain forward passes, NumPy means)."""

    def hits(x, y):
        return np.asarray(losses.accuracy(model(x, train=False), y))

    train, true = hits(data.x_train, data.y_train), hits(data.x_train, data.y_train_true)
    c = np.asarray(data.corrupted)
    return {
        "train_acc": train.mean(),
        "train_acc_clean": train[~c].mean(),
        "train_acc_corrupted": train[c].mean() if c.any() else np.nan,
        "corrupted_true_acc": true[c].mean() if c.any() else np.nan,
        "test_acc": hits(data.x_test, data.y_test).mean(),
        "all_acc": hits(data.x_all, data.y_all).mean(),
    }


def auc(res, name="test_acc"):
    """Area under an accuracy-vs-fraction curve (trapezoid rule)."""
    f, y = res.fractions, getattr(res, name)
    return float(np.sum((f[1:] - f[:-1]) * (y[1:] + y[:-1]) / 2))


@pytest.fixture(scope="module")
def coexist(tmp_path_factory):
    cfg = grok.preset("doshi-coexistence-small").override(**COEXIST)
    run = grok.train(cfg, seeds=(0,), progress=False)
    path = run.save(tmp_path_factory.mktemp("prune") / "coexist")
    return run, path, prune_all(run, fractions=FRACTIONS)


# --------------------------------------------------------------------------- the [D] experiment
@pytest.mark.slow
def test_the_run_shows_coexistence(coexist):
    run, _, _ = coexist
    train, test = run.final("train_acc")[0], run.final("test_acc")[0]
    assert test >= 0.9 and train >= 0.9, (train, test)
    assert run.final("train_acc_corrupted")[0] >= 0.9  # the corrupted labels are memorized
    assert str(classify_phase(train, test, run.history["test_acc"].max(), 0.1)) == "coexistence"


@pytest.mark.slow
def test_low_ipr_first_removes_memorization_and_keeps_generalization(coexist):
    _, _, res = coexist
    low = res["low"]
    assert low.train_acc_corrupted[0] >= 0.9
    keeps = low.test_acc >= 0.9
    # at some fraction the network still generalizes but has forgotten most corrupted labels …
    assert keeps.any() and low.train_acc_corrupted[keeps].min() <= 0.3, low.table()
    # … and predicts their true labels instead [D, Fig. 4]
    assert low.corrupted_true_acc[keeps].max() >= 0.5
    # the low-IPR neurons go first
    pruned = low.neuron_order[: low.n_pruned[10]]
    kept = low.neuron_order[low.n_pruned[10] :]
    assert low.ipr[pruned].max() <= low.ipr[kept].min()


@pytest.mark.slow
def test_high_ipr_first_collapses_test_early(coexist):
    _, _, res = coexist

    def first_below(r, level=0.5):
        below = np.nonzero(r.test_acc < level)[0]
        return r.fractions[below[0]] if len(below) else math.inf

    assert first_below(res["high"]) < first_below(res["random"]) < first_below(res["low"])
    assert res["high"].test_acc[FRACTIONS <= 0.35].min() < 0.5  # gone within the first third


@pytest.mark.slow
def test_random_order_lies_in_between(coexist):
    _, _, res = coexist
    assert auc(res["high"]) < auc(res["random"]) < auc(res["low"])
    # memorization is lost fastest with the low-IPR neurons, slowest with the high-IPR ones
    name = "train_acc_corrupted"
    assert auc(res["low"], name) < auc(res["random"], name) < auc(res["high"], name)


@pytest.mark.slow
def test_pruning_no_neurons_changes_nothing(coexist):
    run, _, res = coexist
    want = independent_accuracies(run.model(0), run.dataset(0))
    for r in res.values():
        assert r.n_pruned[0] == 0
        for name in ACCURACY_NAMES:
            assert r[name][0] == want[name], (r.order, name)
    # the engine's own final test accuracy agrees too (stored in float32)
    assert res["low"].test_acc[0] == pytest.approx(run.final("test_acc")[0], abs=1e-6)


@pytest.mark.slow
def test_pruning_everything_leaves_chance(coexist):
    run, _, res = coexist
    data = run.dataset(0)
    for r in res.values():
        assert r.n_pruned[-1] == 200
        # all first-layer neurons zeroed: the quadratic net outputs zeros, argmax is class 0
        assert r.test_acc[-1] == np.mean(np.asarray(data.y_test) == 0)


@pytest.mark.slow
def test_curve_is_one_batched_evaluation_equal_to_a_loop(coexist, monkeypatch):
    run, _, res = coexist
    calls = _COUNTS["calls"]
    r = prune(run, "random", fractions=[0.0, 0.3, 0.7], seed=3)
    assert _COUNTS["calls"] == calls + 1  # one batched call for the whole curve
    graphdef, params, rest = nnx.split(run.model(0), nnx.Param, ...)
    data = run.dataset(0)
    for i, f in enumerate(r.fractions):
        masked = apply_neuron_mask(params, jnp.asarray(r.mask(f)), run.config.model)
        want = independent_accuracies(nnx.merge(graphdef, masked, rest), data)
        for name in ACCURACY_NAMES:
            assert r[name][i] == want[name], (f, name)
    # the chunked path (lax.map over groups of masks, still one program) gives the same numbers
    # (the module via sys.modules: `grok.prune` may be the exported function, not the module)
    monkeypatch.setattr(sys.modules["grok.prune"], "EVAL_BYTES", 1)
    chunked = prune(run, "random", fractions=[0.0, 0.3, 0.7], seed=3)
    for name in ACCURACY_NAMES:
        np.testing.assert_array_equal(chunked[name], r[name])


@pytest.mark.slow
def test_random_order_depends_on_seed_and_cumulative_masks(coexist):
    run, _, res = coexist
    r0, r1 = res["random"], prune(run, "random", fractions=[0.5], seed=1)
    assert not np.array_equal(r0.neuron_order, r1.neuron_order)
    assert sorted(r0.neuron_order.tolist()) == list(range(200))
    low = res["low"]
    masks = np.stack([low.mask(f) for f in low.fractions])
    assert (masks.sum(axis=1) == 200 - low.n_pruned).all()
    assert (np.diff(masks, axis=0) <= 0).all()  # cumulative: a pruned neuron stays pruned
    np.testing.assert_array_equal(low.ipr, neuron_iprs(run))


# --------------------------------------------------------------------------- pruned runs
@pytest.mark.slow
def test_pruned_run_saves_and_reloads(coexist, tmp_path):
    run, _, res = coexist
    low = res["low"]
    path = low.save_pruned(0.5, tmp_path / "pruned")
    back = grok.load_run(path)
    assert back.n_members == 1 and back.status["pruned"]["n_pruned"] == 100
    got = independent_accuracies(back.model(0), back.dataset(0))
    row = int(np.nonzero(low.fractions == 0.5)[0][0])
    for name in ACCURACY_NAMES:
        assert got[name] == low[name][row], name
        assert back.status["pruned"]["accuracy"][name] == low[name][row]
    gone, kept = low.neuron_order[:100], low.neuron_order[100:]
    first, readout = back.state["params/first/kernel"][0], back.state["params/readout/kernel"][0]
    assert not first[:, gone].any() and not readout[:, gone].any()  # readout [C, N]
    np.testing.assert_array_equal(first[:, kept], run.state["params/first/kernel"][0][:, kept])
    # the functional form writes the same parameters
    again = grok.load_run(save_pruned(run, low, 0.5, tmp_path / "again"))
    for k, v in back.state.items():
        np.testing.assert_array_equal(again.state[k], v)


# --------------------------------------------------------------------------- other networks
@pytest.mark.slow
def test_analytic_solution_degrades_gracefully():
    p, N = 23, 100
    cfg = grok.preset("doshi-coexistence-small").override(
        **{"task.p": p, "model.widths": [N], "task.corrupt_fraction": 0.0}
    )
    run = model_run(cfg, analytic_solution(p, N, jax.random.key(0)))
    res = prune(run, "random", fractions=np.linspace(0, 1, 21))
    acc = res.all_acc
    assert np.all(res.ipr > 0.99)  # every neuron is a pure Fourier mode
    assert acc[0] == 1.0 and acc[res.fractions <= 0.1].min() >= 0.95
    assert acc[-1] < 0.1
    # monotone up to small bumps: never more than 0.1 above an earlier value
    assert np.all(acc <= np.minimum.accumulate(acc) + 0.1), acc
    assert acc[res.fractions == 0.5][0] > acc[res.fractions == 0.9][0]
    assert np.isnan(res.train_acc_corrupted).all()  # ξ = 0: no corrupted examples
    d = res.to_dict()
    assert d["train_acc_corrupted"][0] is None and d["all_acc"][0] == 1.0
    json.dumps(d, allow_nan=False)


@pytest.mark.slow
def test_relu_mlp_first_layer_neurons(tmp_path):
    cfg = grok.Config().override(
        **{"task.p": 13, "task.corrupt_fraction": 0.2, "model.kind": "mlp", "model.widths": [24, 16]}
    )
    model = build_model(cfg.model, cfg.spec, rngs=nnx.Rngs(0), init_scale=1.0, dropout=0.0, alpha=1.0, epsilon=0.0)
    run = model_run(cfg, model)
    res = prune(run, "low", fractions=[0.0, 0.5, 1.0])
    assert res.n_neurons == 24 and res.n_pruned.tolist() == [0, 12, 24]
    data = run.dataset(0)
    want = independent_accuracies(run.model(0), data)
    for name in ACCURACY_NAMES:
        assert res[name][0] == want[name]
    # all first-layer neurons gone: zero logits, argmax 0 (no biases)
    assert res.test_acc[-1] == np.mean(np.asarray(data.y_test) == 0)
    back = grok.load_run(res.save_pruned(0.5, tmp_path / "mlp"))
    gone = res.neuron_order[:12]
    assert not back.state["params/first/kernel"][0][:, gone].any()
    assert not back.state["params/hidden/0/kernel"][0][gone].any()  # next layer's rows: outgoing weights
    got = independent_accuracies(back.model(0), back.dataset(0))
    assert got["test_acc"] == res.test_acc[1]


# --------------------------------------------------------------------------- bad input
def _fake_run(cfg):
    return Run(config=cfg, members=[{"seed": 0}], history={}, state={}, status={"state": "finished"})


def test_unprunable_models_are_clear_errors():
    alpha = grok.preset("kumar-fig1")
    with pytest.raises(grok.ConfigError, match="alpha_net") as err:
        prune(_fake_run(alpha))
    assert err.value.field == "model.kind" and "quadratic_mlp" in str(err.value)
    transformer = grok.Config().override(**{"model.kind": "transformer", "task.p": 13})
    with pytest.raises(grok.ConfigError, match="transformer"):
        prune(_fake_run(transformer))
    parity = grok.Config().override(**{"task.kind": "parity"})
    with pytest.raises(grok.ConfigError, match="parity") as err:
        prune(_fake_run(parity))
    assert err.value.field == "task.kind"


@pytest.mark.parametrize("fractions", [[1.5], [0.0, -0.1], [float("nan")], [], ["half"], 2.0])
def test_fractions_outside_unit_interval(fractions):
    run = _fake_run(grok.preset("doshi-coexistence-small"))
    with pytest.raises(grok.ConfigError) as err:
        prune(run, fractions=fractions)
    assert err.value.field == "fractions"


def test_bad_order_member_and_seed():
    run = _fake_run(grok.preset("doshi-coexistence-small"))
    with pytest.raises(grok.ConfigError, match="low, high, random") as err:
        prune(run, order="middle")
    assert err.value.field == "order"
    with pytest.raises(grok.ConfigError) as err:
        prune(run, member=1)
    assert err.value.field == "member"
    with pytest.raises(grok.ConfigError) as err:
        prune(run, order="random", seed=-1)
    assert err.value.field == "seed"


def test_missing_or_incomplete_run_directory(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        grok.load_run(tmp_path / "nope")
    with pytest.raises(RunDirError):
        run_command(["prune", str(tmp_path / "nope")])
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(RunDirError, match="incomplete"):
        run_command(["prune", str(tmp_path / "half")])


# --------------------------------------------------------------------------- table, plot, CLI
@pytest.mark.slow
def test_table_and_plot(coexist, tmp_path):
    _, _, res = coexist
    lines = res["low"].table().splitlines()
    assert len(lines) == 1 + len(FRACTIONS)
    assert len({len(line) for line in lines}) == 1  # aligned columns
    assert lines[0].split()[:3] == ["fraction", "pruned", "train"] and lines[-1].split()[1] == "200/200"
    assert_png(plot_prune_curves(res, tmp_path / "curves.png"))


@pytest.mark.slow
def test_cli_prints_table_writes_plot_and_pruned_run(coexist, tmp_path, capsys):
    _, path, res = coexist
    out, js, saved = tmp_path / "p.png", tmp_path / "p.json", tmp_path / "saved"
    argv = ["prune", str(path), "--order", "low", "--fractions", "0", "0.5", "1", "--out", str(out)]
    argv += ["--json", str(js), "--save-pruned", str(saved), "--save-fraction", "0.5"]
    assert run_command(argv) == 0
    text = capsys.readouterr().out
    assert "lowest IPR first" in text and "100/200" in text and "corrupted" in text
    assert_png(out)
    table = json.loads(js.read_text())
    assert table["low"]["fractions"] == [0.0, 0.5, 1.0]
    assert table["low"]["test_acc"][1] == res["low"].test_acc[20]
    assert grok.load_run(saved).status["pruned"]["order"] == "low"

    assert run_command(["prune", str(path), "--fractions", "0", "1"]) == 0  # all three orders, default plot path
    text = capsys.readouterr().out
    assert all(s in text for s in ("lowest IPR first", "highest IPR first", "random order"))
    assert (path / "prune.png").is_file()

    bad = [["--fractions", "1.5"], ["--save-pruned", str(tmp_path / "x")], ["--member", "3"]]
    for extra in bad:
        with pytest.raises(grok.ConfigError):
            run_command(["prune", str(path), *extra])


def test_select_and_pruned_runs_are_built_from_one_member():
    run = grok.train(
        grok.preset("doshi-coexistence-small").override(**{"train.steps": 4, "train.log_every": 2}),
        seeds=(0, 1, 2),
        progress=False,
    )
    one = run.select([2])
    assert one.members == [run.members[2]] and one.status["diverged"] == [run.status["diverged"][2]]
    for name, value in run.history.items():
        np.testing.assert_array_equal(one.history[name], value if name == "step" else value[2:3])
    res = prune(run, order="low", fractions=[0.0, 0.5], member=2)
    pruned = pruned_run(run, res, 0.5)
    assert pruned.n_members == 1 and pruned.status["pruned"]["source_member"] == 2
    kept = {k: v for k, v in pruned.state.items() if not k.startswith("params/")}
    for name, value in kept.items():
        np.testing.assert_array_equal(value, run.state[name][2:3])


def test_neurons_and_pruning_refuse_the_permutation_task():
    """S_n has tokens but no order of them to take a Fourier transform over: no IPR, no pruning."""
    from grok.prune import check_prunable

    perm = {"task.kind": "permutation", "task.permutation.n": 3, "task.train_fraction": 0.5}
    cfg = grok.preset("doshi-coexistence").override(**perm)
    with pytest.raises(grok.ConfigError, match="task.kind"):
        check_prunable(cfg)
    with pytest.raises(grok.ConfigError, match="neurons"):
        cfg.override(**{"train.probes": ["neurons"]})
