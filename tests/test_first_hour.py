"""A researcher's first hour: no silent mistakes, errors that say what to do, a command line that
takes what a user types, results in pandas (docs/architecture.md, *Public surface*)."""

from __future__ import annotations

import warnings

import numpy as np
import optax
import pytest
from helpers import TINY

import grok
from grok.cli import main
from grok.cli.args import parse_sets
from grok.registry import PROBES, TASKS, RegistryError


def tiny(**over) -> grok.Config:
    return grok.preset("prieto-perpgrad-small").override(**(TINY | over))


# --------------------------------------------------------------------------- silent mistakes
def test_an_option_of_a_transform_not_in_the_chain_is_refused_with_what_to_do():
    cfg = grok.preset("prieto-perpgrad-small")
    with pytest.raises(grok.ConfigError) as err:
        cfg.override(**{"optim.grokfast_ema.alpha": 0.9})
    msg = str(err.value)
    assert msg.startswith("optim.grokfast_ema.alpha: got 0.9")
    assert "'grokfast_ema' is not in optim.transforms=['perp_grad']" in msg
    assert "optim.transforms=['perp_grad', 'grokfast_ema']" in msg
    # set together with the transform it belongs to, it is taken
    both = cfg.override(**{"optim.transforms": ["perp_grad", "grokfast_ema"], "optim.grokfast_ema.alpha": 0.9})
    assert both.get("optim.grokfast_ema.alpha") == 0.9
    # an option of a task kind that is not chosen
    modular = TASKS.get("modular")
    try:
        grok.register_task("first_hour_task", spec=modular.spec, build=modular.build, size=3)
        with pytest.raises(grok.ConfigError, match=r"task.first_hour_task.size.*set task.kind='first_hour_task'"):
            cfg.override(**{"task.first_hour_task.size": 4})
        assert (
            cfg.override(**{"task.kind": "first_hour_task", "task.first_hour_task.size": 4}).get(
                "task.first_hour_task.size"
            )
            == 4
        )
    finally:
        TASKS._items.pop("first_hour_task", None)


def test_options_of_a_transform_taken_out_of_the_chain_go_with_it():
    cfg = grok.preset("grokfast-ema-small")
    assert "grokfast_ema" in cfg.optim.chain
    baseline = cfg.override(**{"optim.transforms": []})  # what a user means: the same run without it
    assert not any(k.startswith("grokfast_ema.") for k, _ in baseline.optim.options)
    # a sweep's [set] covers every member, also those without the transform: still accepted there
    spec = grok.SweepSpec.parse(
        {
            "preset": "prieto-perpgrad-small",
            "set": TINY | {"optim.grokfast_ema.lamb": 3.0},
            "axes": {"optim.transforms": [[], ["grokfast_ema"]]},
        }
    )
    assert [g.config.get("optim.grokfast_ema.lamb") for g in spec.groups()][1] == 3.0


def test_training_members_with_an_option_of_a_transform_not_in_the_chain_names_it():
    before = grok.trace_count()
    with pytest.raises(grok.ConfigError, match=r"^optim.grokfast_ema.alpha: got 0.5; allowed: an option of a tr"):
        grok.train_members(tiny(), [{"optim.grokfast_ema.alpha": a} for a in (0.5, 0.9)], progress=False)
    with pytest.raises(grok.ConfigError, match=r"axes.optim.grokfast_ema.alpha.*unless 'grokfast_ema' is chosen"):
        grok.SweepSpec.parse(
            {"preset": "prieto-perpgrad-small", "set": TINY, "axes": {"optim.grokfast_ema.alpha": [0.5, 0.9]}}
        )
    assert grok.trace_count() == before


@pytest.mark.slow
def test_a_sweep_over_an_option_and_the_transforms_runs_the_option_only_where_it_is_read(tmp_path):
    spec = {
        "preset": "prieto-perpgrad-small",
        "set": TINY,
        "axes": {
            "optim.transforms": [["perp_grad"], ["perp_grad", "grokfast_ema"]],
            "optim.grokfast_ema.lamb": [0.0, 5.0],
        },
        "seeds": [0],
    }
    sw = grok.sweep(spec, out=tmp_path / "sw", progress=False)
    loss = sw.history("train_loss")  # [transforms, lamb, seeds, intervals]
    np.testing.assert_array_equal(loss[0, 0], loss[0, 1])  # without the transform, λ changes nothing
    assert not np.array_equal(loss[1, 0], loss[1, 1])  # with it, it does
    np.testing.assert_array_equal(loss[0, 0], loss[1, 0])  # λ = 0: the filter adds nothing


def test_a_bare_register_probe_registers_under_the_functions_name():
    try:

        @grok.register_probe
        def first_hour_bare(x):
            return {"first_hour_bare": x.outputs_train.max()}

        assert "first_hour_bare" in grok.registered()["probes"]
        assert PROBES.get("first_hour_bare").fn is first_hour_bare
        with pytest.raises(RegistryError, match="the first argument is the probe's name"):
            grok.register_probe(42, first_hour_bare)
    finally:
        PROBES._items.pop("first_hour_bare", None)


def test_a_transform_factory_without_a_registered_option_is_refused_naming_the_transform():
    with pytest.raises(RegistryError, match=r"transform 'first_hour_clip'.*no keyword argument 'max_norm'"):
        grok.register_transform("first_hour_clip", lambda limit: optax.clip_by_global_norm(limit), max_norm=1.0)
    assert "first_hour_clip" not in grok.registered()["transforms"]


@pytest.mark.slow
def test_probe_history_warns_when_a_probe_was_registered_anew_with_another_formula():
    def register(scale: float):
        ns: dict = {}
        # each formula as its own source, as a notebook cell would define it
        exec(  # noqa: S102
            f"def first_hour_probe(x):\n    return {{'first_hour_m': {scale} * x.outputs_train.max()}}\n", ns
        )
        grok.register_probe("first_hour_probe", ns["first_hour_probe"], replace=True)

    try:
        register(1.0)
        run = grok.train(tiny(**{"train.probes": ["first_hour_probe"], "train.snapshots": 2}), progress=False)
        assert run.status["registrations"]["probes"]["first_hour_probe"] == PROBES.item("first_hour_probe").fingerprint
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            same = grok.probe_history(run, ["first_hour_probe"])  # the same formula: no warning
        np.testing.assert_allclose(same["first_hour_m"][:, -1], run.history["first_hour_m"][:, -1], rtol=1e-6)
        register(2.0)
        with pytest.warns(grok.GrokWarning, match="probe 'first_hour_probe' is registered .* another formula"):
            other = grok.probe_history(run, ["first_hour_probe"])
        np.testing.assert_allclose(other["first_hour_m"], 2 * same["first_hour_m"], rtol=1e-6)
    finally:
        PROBES._items.pop("first_hour_probe", None)


# --------------------------------------------------------------------------- errors that say what to do
@pytest.mark.parametrize(
    "call, expected",
    [
        (lambda: grok.preset("prieto-perpgrad-smal"), "did you mean 'prieto-perpgrad-small'?"),
        (lambda: grok.Config().override(**{"optim.lrr": 0.1}), "did you mean 'optim.lr'?"),
        (lambda: grok.Config().override(**{"tsk.p": 7}), "did you mean 'task.p'?"),
        (lambda: grok.Config().override(**{"train.probes": ["neuron"]}), "did you mean 'neurons'?"),
        (lambda: grok.Config().override(**{"optim.transforms": ["perpgrad"]}), "did you mean 'perp_grad'?"),
        (lambda: grok.Config().override(**{"task.kind": "modullar"}), "did you mean 'modular'?"),
        (lambda: grok.SweepSpec.parse("doshi-phase-smal"), "did you mean 'doshi-phase-small'?"),
    ],
)
def test_misspelled_names_offer_the_closest(call, expected):
    with pytest.raises(grok.ConfigError) as err:
        call()
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(grok.ConfigError) as err:
        grok.preset("zzzzzz")
    assert "did you mean" not in str(err.value)


@pytest.fixture(scope="module")
def small_run():
    return grok.train(tiny(**{"train.probes": ["collapse"]}), seeds=(0, 1), progress=False)


def test_a_metric_of_a_probe_the_run_did_not_enable_names_the_probe(small_run):
    with pytest.raises(KeyError) as err:
        small_run.history["ipr_mean"]
    assert isinstance(err.value, grok.MetricNotRecorded)
    msg = str(err.value)
    assert "the probe 'neurons' records it" in msg and "grok.probe_history(run, ['neurons'])" in msg
    assert "train.probes=['collapse']" in msg
    with pytest.raises(KeyError, match="did you mean 'test_acc'"):
        small_run.history["test_accc"]
    assert small_run.history.get("ipr_mean") is None and "sc_fraction" in small_run.history  # still a dict


# --------------------------------------------------------------------------- pandas
def test_run_frame_is_tidy_with_the_members_dynamic_values(small_run):
    pd = pytest.importorskip("pandas")
    df = small_run.frame()
    assert isinstance(df, pd.DataFrame)
    steps = small_run.history["step"]
    assert len(df) == 2 * len(steps)
    assert {"member", "step", "seed", "optim.lr", "test_acc", "sc_fraction"} <= set(df.columns)
    assert list(df.seed.unique()) == [0, 1]
    one = df[(df.member == 1) & (df.step == steps[-1])]
    assert one.test_acc.item() == pytest.approx(float(small_run.history["test_acc"][1, -1]))
    assert "ipr" not in df.columns
    assert list(small_run.frame(["train_loss"]).columns)[-1] == "train_loss"
    with pytest.raises(grok.ConfigError, match="metrics: got 'ipr_mean'"):
        small_run.frame(["ipr_mean"])


# --------------------------------------------------------------------------- command line
def test_list_fields_take_what_a_shell_user_types():
    got = parse_sets(
        ["train.probes=[neurons]", "optim.transforms=perp_grad,grokfast_ema", "model.widths=64,64", "task.op=add"]
    )
    assert got == {
        "train.probes": ["neurons"],
        "optim.transforms": ["perp_grad", "grokfast_ema"],
        "model.widths": [64, 64],
        "task.op": "add",
    }
    cfg = grok.Config().override(**parse_sets(["train.probes=neurons,collapse"]))
    assert cfg.train.probes == ("neurons", "collapse")
    assert parse_sets(["description=a, b"]) == {"description": "a, b"}  # a string field keeps its comma


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--set", "optim.lrr=0.1"], "optim.lrr: got 0.1 (did you mean 'optim.lr'?)"),
        (["train", "prieto-perpgrad-smal"], "did you mean 'prieto-perpgrad-small'?"),
        (["train", "prieto-perpgrad-small", "--preset", "prieto-stablemax"], "one preset: NAME or --preset"),
        (["train", "prieto-perpgrad-small", "--out", "/proc/grok-run"], "'/proc' is not a writable directory"),
        (["export", "/nonexistent-run", "--tensorboard", "/tmp/x"], "neither a run directory nor a sweep"),
    ],
)
def test_command_line_errors_are_one_line_and_exit_2(args, expected, capsys):
    before = grok.trace_count()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected in err, err
    assert grok.trace_count() == before


def test_train_takes_the_preset_name_as_an_argument(tmp_path, capsys):
    sets = [f"--set={k}={v}" for k, v in TINY.items() if k != "model.widths"] + ["--set=model.widths=[8]"]
    assert main(["train", "prieto-perpgrad-small", *sets, "--set", "train.probes=[neurons]", "--quiet"]) == 0
    assert "[seed=" in capsys.readouterr().out
