"""Probes after the fact on a run's snapshots: equal to the in-run values, one program, CLI, bad input."""

import numpy as np
import pytest
from helpers import run_command

import grok

TINY = {"task.p": 23, "task.train_fraction": 0.5, "model.widths": [32, 32]}


@pytest.fixture(scope="module")
def snap_run():
    cfg = grok.preset("prieto-perpgrad").override(
        **TINY,
        **{
            "train.steps": 100,
            "train.schedule": "log",
            "train.log_points": 16,
            "train.snapshots": 5,
            "train.probes": ["neurons", "collapse"],
        },
    )
    return grok.train(cfg, seeds=(0, 1, 2), progress=False)


def test_post_hoc_probes_equal_the_values_logged_during_training(snap_run):
    values = grok.probe_history(snap_run, ["neurons", "collapse"])
    steps = values["step"]
    assert list(steps) == snap_run.steps_with_snapshots
    at = np.searchsorted(snap_run.history["step"], steps)
    for name in ("ipr", "ipr_mean", "ipr_hist", "sc_fraction", "nlm_cosine", "logit_norm"):
        logged = snap_run.history[name][:, at]
        assert values[name].shape == logged.shape  # [members, snapshots, ...] like run.history
        np.testing.assert_allclose(values[name], logged, rtol=1e-5, atol=1e-6, err_msg=name)
    assert not np.allclose(values["ipr_mean"][:, 0], values["ipr_mean"][:, -1])  # it did change


def test_a_user_probe_after_the_fact_runs_as_one_program(snap_run):
    calls = []

    def first_layer_norm(x):
        calls.append(1)
        return {"first_norm": (x.params["first"]["kernel"][...] ** 2).sum()}

    grok.register_probe("first_norm_posthoc", first_layer_norm)
    values = grok.probe_history(snap_run, ["first_norm_posthoc"], steps=snap_run.steps_with_snapshots[1:3])
    assert len(calls) == 1  # traced once for every member and snapshot: one vmapped program
    assert values["first_norm"].shape == (3, 2)
    kernel = snap_run.params_at(snap_run.steps_with_snapshots[2], 1)["first/kernel"]
    assert values["first_norm"][1, 1] == pytest.approx(float((kernel.astype(np.float64) ** 2).sum()), rel=1e-5)


def test_post_hoc_bad_input(snap_run):
    with pytest.raises(grok.ConfigError, match="the nearest are"):
        grok.probe_history(snap_run, ["neurons"], steps=[50])
    with pytest.raises(grok.ConfigError, match="a registered probe"):
        grok.probe_history(snap_run, ["nope"])
    no_snaps = grok.train(snap_run.config.override(**{"train.snapshots": 0}), progress=False)
    with pytest.raises(grok.ConfigError, match="a run trained with train.snapshots"):
        grok.probe_history(no_snaps, ["neurons"])
    rest_less = grok.Run(**{**snap_run.__dict__})
    rest_less.snapshots = grok.snapshots.Snapshots(
        {s: {k: v for k, v in snap_run.snapshots[s].items() if not k.endswith("first/kernel")} for s in [0]}
    )
    with pytest.raises(grok.ConfigError, match="'neurons' needs 'params/first/kernel', which these snapshots lack"):
        grok.probe_history(rest_less, ["neurons"])


def _lacking(run, suffix):
    """`run` with snapshots that lack the leaf ending in `suffix`."""
    steps = run.steps_with_snapshots
    lacking = grok.Run(**{**run.__dict__})
    lacking.snapshots = grok.snapshots.Snapshots(
        {s: {k: v for k, v in run.snapshots[s].items() if not k.endswith(suffix)} for s in steps}
    )
    return lacking


def test_missing_state_names_the_probe_that_reads_it(snap_run):
    no_readout = _lacking(snap_run, "readout/kernel")
    # `neurons` reads only the first layer of an MLP: snapshots without the readout serve it, unchanged
    alone = grok.probe_history(no_readout, ["neurons"])
    np.testing.assert_array_equal(alone["ipr"], grok.probe_history(snap_run, ["neurons"])["ipr"])
    # `collapse` reads the logits, so the readout: the error names it, and not `neurons`
    with pytest.raises(grok.ConfigError, match="probe 'collapse' needs 'params/readout/kernel'") as err:
        grok.probe_history(no_readout, ["neurons", "collapse"])
    assert "'neurons'" not in str(err.value)
    # two probes reading the missing first layer: each is named with it
    with pytest.raises(grok.ConfigError) as err:
        grok.probe_history(_lacking(snap_run, "first/kernel"), ["neurons", "collapse"])
    for probe in ("neurons", "collapse"):
        assert f"probe {probe!r} needs 'params/first/kernel'" in str(err.value)


def test_grok_probe_command_writes_the_arrays(snap_run, tmp_path, capsys):
    path = snap_run.save(tmp_path / "run")
    out = tmp_path / "neurons.npz"
    assert run_command(["probe", str(path), "--probes", "neurons", "--out", str(out)]) == 0
    with np.load(out) as z:
        assert z["ipr_mean"].shape == (3, 5) and list(z["step"]) == snap_run.steps_with_snapshots
    assert "5 snapshots x 3 member(s)" in capsys.readouterr().out
    with pytest.raises(grok.ConfigError, match="--out"):
        run_command(["probe", str(path), "--probes", "neurons", "--out", str(tmp_path / "x.txt")])


# --------------------------------------------------------------------------- sweeps
SWEEP = {  # 2 train fractions (static: 2 groups) x 2 weight decays x 2 seeds; batches of 2 members
    "preset": "prieto-perpgrad",
    "set": {
        "task.p": 23,
        "model.widths": [32, 32],
        "train.steps": 40,
        "train.log_every": 10,
        "train.snapshots": [0, 20, 40],
        "train.probes": ["neurons", "collapse"],
    },
    "seeds": [0, 1],
    "max_members_per_program": 3,
    "axes": {"task.train_fraction": [0.4, 0.5], "optim.weight_decay": [0.0, 1.0]},
}


@pytest.mark.slow
def test_sweep_probe_history_equals_the_logged_values_on_the_grid(tmp_path):
    sw = grok.sweep(SWEEP, tmp_path / "sweep", progress=False)
    assert len(sw.runs) == 4  # two batches per group: one post-hoc program each
    values = sw.probe_history(["neurons", "collapse"])
    assert list(values["step"]) == [0, 20, 40]
    at = np.searchsorted(sw.steps, values["step"])
    for name in ("ipr", "ipr_mean", "ipr_hist", "sc_fraction", "logit_norm"):
        logged = sw.history(name)[:, :, :, at]
        assert values[name].shape == logged.shape  # [*axes, seeds, snapshots(, extra)] like Sweep.history
        assert not np.isnan(values[name]).any()
        np.testing.assert_allclose(values[name], logged, rtol=1e-5, atol=1e-6, err_msg=name)
    # a member's values are its own: the batch's probe_history at its position
    run, j = sw.member((1, 0, 1))
    np.testing.assert_array_equal(values["ipr_mean"][1, 0, 1], grok.probe_history(run, ["neurons"])["ipr_mean"][j])
    some = sw.probe_history(["neurons"], steps=[40])
    np.testing.assert_array_equal(some["ipr_mean"][..., 0], values["ipr_mean"][..., -1])


@pytest.mark.slow
def test_sweep_probe_history_refuses_missing_or_different_snapshots(tmp_path):
    small = {**SWEEP, "seeds": [0], "axes": {"train.steps": [20, 40]}}
    small["set"] = {k: v for k, v in SWEEP["set"].items() if k not in ("train.steps", "train.snapshots")}
    none = grok.sweep(small, tmp_path / "none", progress=False)
    with pytest.raises(grok.ConfigError, match="2 batch\\(es\\) without snapshots.*set train.snapshots"):
        none.probe_history(["neurons"])
    differ = grok.sweep(small | {"set": small["set"] | {"train.snapshots": 3}}, tmp_path / "differ", progress=False)
    assert [r.steps_with_snapshots for r in differ.runs] == [[0, 10, 20], [0, 20, 40]]
    with pytest.raises(grok.ConfigError, match="different snapshot steps.*a subset of the 2 steps they all kept"):
        differ.probe_history(["neurons"])
    common = differ.probe_history(["neurons"], steps=[0, 20])  # kept by both: allowed
    assert common["ipr_mean"].shape == (2, 1, 2) and not np.isnan(common["ipr_mean"]).any()
