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
    with pytest.raises(grok.ConfigError, match="the probes need 'params/first/kernel', which these snapshots lack"):
        grok.probe_history(rest_less, ["neurons"])


def test_grok_probe_command_writes_the_arrays(snap_run, tmp_path, capsys):
    path = snap_run.save(tmp_path / "run")
    out = tmp_path / "neurons.npz"
    assert run_command(["probe", str(path), "--probes", "neurons", "--out", str(out)]) == 0
    with np.load(out) as z:
        assert z["ipr_mean"].shape == (3, 5) and list(z["step"]) == snap_run.steps_with_snapshots
    assert "5 snapshots x 3 member(s)" in capsys.readouterr().out
    with pytest.raises(grok.ConfigError, match="--out"):
        run_command(["probe", str(path), "--probes", "neurons", "--out", str(tmp_path / "x.txt")])
