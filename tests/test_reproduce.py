"""`grok reproduce NAME` (grok/reproduce.py): the catalogue, the schedule of a shortened run, the
command's output files and exit status, and its errors. Runs here are shortened (`--steps`) and,
for the [D] and [K] settings, shrunk with `--set`; the paper sizes are for a GPU."""

import json

import numpy as np
import pytest
from helpers import assert_png, run_command

import grok
from grok.cli import build_parser
from grok.errors import ConfigError
from grok.presets import KUMAR_LOG_POINTS
from grok.reproduce import LOG_POINTS, REPRODUCTIONS, build_config, reproduce

# Every preset at the paper's size (the `-small` ones are CPU variants); tests/test_config.py
# checks that the docs/architecture.md names are among them.
PAPER_PRESETS = {name for name in grok.presets() if not name.endswith("-small")}


def cli(argv: list[str]) -> int:
    return run_command(["reproduce", *argv])


def test_catalogue_covers_the_paper_presets_at_their_size():
    # every paper preset, and the LLC reproductions (on their CPU-size presets, λ̂ over the snapshots)
    assert {name for name, rep in REPRODUCTIONS.items() if rep.llc is None} == PAPER_PRESETS
    assert {rep.preset for rep in REPRODUCTIONS.values() if rep.llc is not None} == {
        "llc-mlp-small",
        "llc-transformer-small",
    }
    for name, rep in REPRODUCTIONS.items():
        cfg = build_config(name)
        paper = grok.preset(rep.preset)
        assert rep.preset in grok.presets() and (rep.llc is not None or not rep.preset.endswith("-small"))
        # the paper's size and recipe: only the probes and the (log) evaluation schedule are added; a
        # preset on a log schedule already keeps its own
        assert cfg.train.steps == paper.train.steps and cfg.train.schedule == "log"
        if paper.train.schedule == "log":
            assert cfg.train.log_points == paper.train.log_points
        else:
            assert cfg.train.log_points == LOG_POINTS
        back = {
            "train.probes": [],
            "train.schedule": paper.train.schedule,
            "train.log_points": paper.train.log_points,
            "train.ntk_every": None,
        }
        assert cfg.override(**back) == paper
        assert set(cfg.train.probes) == set(rep.probes)
        assert rep.paper.startswith(("[P]", "[D]", "[K]", "[N]", "[O]", "[PM]", "[L]")) and rep.claim
    assert build_config("kumar-fig1").train.ntk_every is None  # the NTK at each of the log-spaced steps


def test_kumar_presets_evaluate_on_the_log_schedule_reproduce_uses():
    """[K] draws time on a log axis: its presets are on a log schedule, and a reproduction evaluates
    at exactly the preset's steps (only the probes are added)."""
    for name in ("kumar-fig1", "kumar-fig3a"):
        paper = grok.preset(name)
        assert paper.train.schedule == "log" and paper.train.log_points == KUMAR_LOG_POINTS
        steps = grok.schedule.eval_steps(paper.train)
        assert set(range(11)) <= set(steps.tolist()) and steps[-1] == paper.train.steps
        assert len(steps) >= KUMAR_LOG_POINTS
        np.testing.assert_array_equal(grok.schedule.eval_steps(build_config(name).train), steps)
    for name in ("prieto-stablemax", "doshi-coexistence"):  # [P] and [D] draw linear time: a linear grid
        assert grok.preset(name).train.schedule == "linear"


@pytest.mark.parametrize("name", ["prieto-stablemax", "kumar-fig1"])
@pytest.mark.parametrize("steps", [1, 7, 60, 300, 1000, 80_000])
def test_log_plan_covers_the_first_decade(name, steps):
    cfg = build_config(name, steps)
    points = KUMAR_LOG_POINTS if name.startswith("kumar") else LOG_POINTS
    evaluated = grok.schedule.eval_steps(cfg.train)
    assert evaluated[0] == 0 and evaluated[-1] == steps and len(evaluated) <= 1.11 * points
    assert len(evaluated) == steps + 1 if steps < points else len(evaluated) >= points
    assert set(range(min(steps, 10) + 1)) <= set(evaluated.tolist())  # every one of the first ten steps


def test_bad_input_is_a_config_error(capsys):
    with pytest.raises(ConfigError, match="NAME"):
        cli(["no-such-paper"])
    with pytest.raises(ConfigError, match="--steps"):
        cli(["prieto-perpgrad", "--steps", "0"])
    with pytest.raises(ConfigError, match="optim.lr"):
        cli(["prieto-perpgrad", "--set", "optim.lr=-1"])
    with pytest.raises(ConfigError, match="--seeds"):
        reproduce("prieto-perpgrad", steps=10, seeds=[])
    # LLC settings: only where the reproduction estimates λ̂, and checked like grok.llc's
    with pytest.raises(ConfigError, match=r"--chains/--draws.*only for llc-grokking"):
        cli(["prieto-perpgrad", "--chains", "2"])
    with pytest.raises(ConfigError, match="chains.*a whole number ≥ 1"):
        cli(["llc-grokking", "--chains", "0"])
    with pytest.raises(ConfigError, match="llc_settings.*step_size"):
        reproduce("llc-grokking", llc_settings={"step": 1e-3})
    # the help lists every reproduction with its claim
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reproduce", "--help"])
    helptext = capsys.readouterr().out
    assert all(name in helptext and rep.claim[:40] in helptext for name, rep in REPRODUCTIONS.items())


@pytest.mark.slow
def test_perpgrad_at_paper_size_writes_run_figure_and_verdict(tmp_path, capsys):
    # [P] Fig. 1a is cheap enough for a CPU at the paper's size (p = 113, 300 steps)
    out = tmp_path / "perp"
    code = cli(["prieto-perpgrad", "--out", str(out), "--quiet"])
    text = capsys.readouterr().out
    assert code == 0, text  # ⊥AdamW generalizes: the claim is shown
    assert REPRODUCTIONS["prieto-perpgrad"].claim in text and "shown: final test accuracy" in text
    run = grok.load_run(out)
    assert run.config.task.p == 113 and run.config.train.steps == 300
    assert run.final("test_acc")[0] >= 0.9 and np.max(run.history["sc_fraction"]) == 0
    assert_png(out / "figure.png")
    meta = json.loads((out / "reproduce.json").read_text())
    assert meta["shown"] is True and meta["claim"] == REPRODUCTIONS["prieto-perpgrad"].claim


@pytest.mark.slow
def test_shrunk_runs_draw_their_figures_and_report_a_claim_not_shown(tmp_path, capsys):
    # 20 steps of a tiny [D] network cannot reach Full Inversion: the run finishes, the command says so, exit 1
    out = tmp_path / "d"
    argv = ["doshi-full-inversion", "--out", str(out), "--steps", "20", "--quiet"]
    assert cli([*argv, "--set", "task.p=11", "--set", "model.widths=[16]"]) == 1
    text = capsys.readouterr().out
    assert "NOT shown: phase" in text and "(expected full_inversion)" in text
    meta = json.loads((out / "reproduce.json").read_text())
    assert meta["shown"] is False and "task.p=11" in meta["size"]
    doshi = grok.load_run(out)
    assert doshi.config.train.steps == 20 and doshi.config.task.p == 11 and "ipr_hist" in doshi.history
    assert_png(out / "figure.png")

    small = {"task.dim": 8, "task.n_train": 40, "task.n_test": 100, "model.widths": [16], "optim.lr": 8.0}
    kumar = reproduce("kumar-fig3a", tmp_path / "k", steps=200, overrides=small, progress=False)
    alphas = sorted(kumar.run.member_config(i).model.alpha for i in range(kumar.run.n_members))
    assert np.allclose(alphas, sorted(REPRODUCTIONS["kumar-fig3a"].sweep["model.alpha"]))
    assert kumar.run.config.train.schedule == "log" and np.isfinite(kumar.run.history["ntk_alignment"]).all()
    assert "grokking delay α=0.03125" in kumar.message
    assert_png(kumar.figure)


def test_llc_reproduction_estimates_and_saves_llc_beside_the_run(tmp_path, capsys):
    # shrunk: 200 steps of add mod 11, 2 chains × 20 draws per snapshot; the hook, not the effect
    out = tmp_path / "llc"
    argv = ["llc-grokking", "--out", str(out), "--steps", "200", "--chains", "2", "--draws", "20", "--quiet"]
    code = cli([*argv, "--set", "task.p=11", "--set", "model.widths=[16,16]"])
    text = capsys.readouterr().out
    assert code in (0, 1) and "grok.llc(chains=2, draws=20, step_size=0.001, localization=100.0)" in text
    assert "λ̂" in text and ("NOT shown: λ̂" in text or "shown: λ̂" in text)
    run = grok.load_run(out)
    assert run.llc is not None and run.llc.mean.shape == (1, len(run.steps_with_snapshots))
    assert run.llc.per_chain.shape[-1] == 2 and run.llc.traces.shape[-1] == 20
    assert run.llc.settings["localization"] == 100.0
    meta = json.loads((out / "reproduce.json").read_text())
    assert meta["members"]["llc_steps"] == [int(s) for s in run.llc.steps]
    assert len(meta["members"]["llc"][0]) == len(run.llc.steps)
    assert_png(out / "figure.png")


def test_llc_check_reads_rise_and_fall_from_the_estimates():
    from types import SimpleNamespace

    from grok.reproduce import llc_rise_and_fall

    steps = np.array([0, 10, 100, 1000, 3000])
    history = {
        "step": steps,
        "train_acc": np.array([[0.0, 0.5, 1.0, 1.0, 1.0]]),
        "test_acc": np.array([[0.0, 0.0, 0.1, 0.5, 0.99]]),
    }

    def run_with(lam):
        return SimpleNamespace(history=history, llc=SimpleNamespace(steps=steps, mean=np.array([lam])))

    shown, message = llc_rise_and_fall(run_with([1.0, 3.0, 20.0, 10.0, 2.0]))
    assert shown and "peak 20.0 at step 100" in message and "test ≥ 90% at step 3000" in message
    assert not llc_rise_and_fall(run_with([1.0, 3.0, 4.0, 3.0, 2.0]))[0]  # peak < 5× the start
    assert not llc_rise_and_fall(run_with([1.0, 30.0, 20.0, 10.0, 2.0]))[0]  # peak before memorization
    assert not llc_rise_and_fall(run_with([1.0, 3.0, 20.0, 10.0, 8.0]))[0]  # does not fall back
    assert not llc_rise_and_fall(run_with([np.nan] * 5))[0]
