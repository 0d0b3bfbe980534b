"""Boundaries found by refinement (docs/formulas.md §7.4): geometric bisection on a log axis, labels of
refined points equal to the members trained alone, resume after a lost batch, errors before anything runs."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from helpers import assert_png, run_command

import grok
from grok.cli import main
from grok.errors import ConfigError
from grok.sweep import SweepSpec
from grok.sweep.refine import check_refine, load_refinement, numeric_axes

refine_module = importlib.import_module("grok.sweep.refine")  # the module (grok.refine is the function)

# lr ∈ {1e-4, 1e-1} (log: a factor 1000) × weight decay {0, 1}: after 30 steps the train loss is
# below 0.04 at lr 0.1 and not at 1e-4, so every lr line has one crossing
SPEC = {
    "preset": "doshi-coexistence",
    "set": {"task.p": 7, "model.widths": [16], "train.steps": 30, "train.log_every": 10},
    "seeds": [0],
    "axes": {"optim.lr": {"logspace": [-4, -1, 2]}, "optim.weight_decay": [0.0, 1.0]},
}
THRESHOLD = 0.04


def test_axes_kinds_and_bad_requests_before_anything_runs(tmp_path, capsys):
    spec = SweepSpec.parse(SPEC)
    assert numeric_axes(spec) == (["optim.lr", "optim.weight_decay"], ["optim.lr"])
    with pytest.raises(ConfigError, match="--refine: got 0"):
        check_refine(spec, 0)
    strings = SweepSpec.parse({**SPEC, "axes": {"task.op": ["add", "sub"]}})
    with pytest.raises(ConfigError, match="an axis of two or more real values"):
        check_refine(strings, 2)
    # an integer field has no midpoints: refused before the grid trains, not after
    unset = {k: v for k, v in SPEC["set"].items() if k != "train.steps"}
    steps = SweepSpec.parse({**SPEC, "set": unset, "axes": {"train.steps": [20, 40]}})
    assert numeric_axes(steps) == ([], [])
    with pytest.raises(ConfigError, match="not integers"):
        check_refine(steps, 1)
    whole = SweepSpec.parse({**SPEC, "axes": {"optim.weight_decay": [0, 1]}})  # a float field written as ints
    assert numeric_axes(whole)[0] == ["optim.weight_decay"]
    with pytest.raises(ConfigError, match="--refine-metric: got 'train_loss_typo'"):  # before the grid too
        check_refine(spec, 1, metric="train_loss_typo", threshold=0.1)
    with pytest.raises(ConfigError, match="--rule"):
        check_refine(spec, 2, rule="paper")
    poly = SweepSpec.parse({"preset": "kumar-fig1", "axes": {"optim.lr": [0.1, 1.0]}})
    with pytest.raises(ConfigError, match="refine-metric"):
        check_refine(poly, 1)
    bad = [
        (["--refine", "-1"], "--refine: got -1"),
        (["--refine", "2", "--rule", "paper"], "--rule: got 'paper'"),
        (["--rule", "corrupted_subset"], "--refine"),
    ]
    for extra, words in bad:
        assert main(["sweep", "doshi-phase-small", "--out", str(tmp_path / "s"), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err
    strings = tmp_path / "strings.toml"
    strings.write_text('preset = "doshi-coexistence"\n[axes]\n"task.op" = ["add", "sub"]\n')
    assert main(["sweep", str(strings), "--out", str(tmp_path / "s"), "--refine", "1"]) == 2
    assert "real values" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_values_keep_12_significant_digits_and_points_are_labelled_as_grid_cells():
    """Axis values as keys keep 12 significant digits (1e-16 and 1e-14 were both 0.0 at 12 decimals);
    a refined point's metric label is the grid's rule, the seed mean (NaN seeds left out) ≥ threshold."""
    assert refine_module._key(1e-16) != refine_module._key(1e-14) and refine_module._key(0.1 + 0.2) == 0.3
    label = ("metric", "test_acc", 0.9)
    assert refine_module._point_label(np.array([0.0, 0.95, 0.95]), label) == "below"  # mean 0.63, not a majority
    assert refine_module._point_label(np.array([np.nan, 0.95]), label) == "above"


def test_a_points_label_counts_every_seed_across_batches(tmp_path, monkeypatch):
    """Three seeds in batches of two: each refined point is labelled once, from all three seeds."""
    seen = []
    label_of = refine_module._point_label
    monkeypatch.setattr(refine_module, "_point_label", lambda per, lab: seen.append(len(per)) or label_of(per, lab))
    spec = {**SPEC, "seeds": [0, 1, 2], "max_members_per_program": 2}
    grok.refine(spec, tmp_path / "r", 1, metric="train_loss", threshold=THRESHOLD, progress=False)
    assert seen and set(seen) == {3}


@pytest.mark.slow
def test_bisection_labels_and_resume(tmp_path):
    out = tmp_path / "sw"
    rounds = 3
    ref = grok.refine(SPEC, out, rounds, metric="train_loss", threshold=THRESHOLD, progress=False)
    grid = [p for p, r in zip(ref.points, ref.rounds, strict=True) if r == 0]
    assert len(grid) == 4 and ref.n_runs == len(ref.points)
    crossings = [b for b in ref.boundaries() if b[0] == "optim.lr"]
    assert len(crossings) == 2  # one per weight decay
    for _, _, lo, hi in crossings:
        assert math.log10(hi / lo) == pytest.approx(3 / 2**rounds, abs=1e-9)  # geometric bisection
    added = [(p, lab) for p, lab, r in zip(ref.points, ref.labels, ref.rounds, strict=True) if r]
    assert {r for r in ref.rounds if r} == {1, 2, 3}
    for point, _ in added:  # on a grid line: only the lr coordinate is off the grid
        assert point["optim.weight_decay"] in (0.0, 1.0)
    for point, label in added[:2]:  # a refined point's label is its member trained alone
        run = grok.train_members(grok.preset("doshi-coexistence").override(**SPEC["set"]), [point], progress=False)
        assert label == ("above" if run.history["train_loss"][0, -1] >= THRESHOLD else "below")
    # labels along each lr line change exactly once, at the located crossing
    for wd in (0.0, 1.0):
        line = sorted(
            (p["optim.lr"], lab) for p, lab in zip(ref.points, ref.labels, strict=True) if p["optim.weight_decay"] == wd
        )
        flips = sum(a[1] != b[1] for a, b in zip(line, line[1:], strict=False))
        assert flips == 1 and line[0][1] == "above" and line[-1][1] == "below"
    # a lost batch (no status.json: a killed write) is retrained, the others are kept untouched
    batches = sorted((out / "refine").glob("*/r*/g*/b*/status.json"))
    assert len(batches) == rounds
    kept = {p: p.stat().st_mtime_ns for p in batches[:-1]}
    batches[-1].unlink()
    again = grok.refine(SPEC, out, rounds, metric="train_loss", threshold=THRESHOLD, progress=False)
    assert again == ref
    assert {p: p.stat().st_mtime_ns for p in batches[:-1]} == kept and batches[-1].is_file()
    assert load_refinement(out, ref.label_name) == ref


@pytest.mark.slow
def test_refined_phase_diagram_drawn_with_boundary(tmp_path):
    spec = {**SPEC, "axes": {"optim.lr": {"logspace": [-4, -1, 2]}, "task.corrupt_fraction": [0.0, 0.5]}}
    ref = grok.refine(spec, tmp_path / "sw", 1, progress=False)
    assert ref.label_name == "doshi" and all(lab in grok.phases.PHASES for lab in ref.labels)
    sw = grok.load_sweep(tmp_path / "sw")
    grid = np.asarray(ref.labels[: sw.phase[..., 0].size]).reshape(sw.phase.shape[:-1])
    np.testing.assert_array_equal(grid, sw.phase[..., 0])
    assert run_command(["phase", str(tmp_path / "sw"), "--quiet"]) == 0
    assert_png(tmp_path / "sw" / "phase.png", 5_000)
