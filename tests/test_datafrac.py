"""Power et al.'s data-fraction study (docs/formulas.md §7.5): steps to 99% with censored members kept
and counted, the table, the figure, and the sweep presets."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_png

import grok
from grok.cli import main
from grok.compare import steps_to_threshold
from grok.datafrac import FractionPoint, data_fraction_figure, data_fraction_points, data_fraction_table, min_fraction
from grok.sweep import SweepSpec


def test_censored_members_count_as_never_not_dropped(tmp_path):
    nan = np.nan
    pts = [
        FractionPoint("add mod 23", 0.3, np.array([nan, nan, 900.0]), 1000),
        FractionPoint("add mod 23", 0.6, np.array([100.0, 300.0, nan]), 1000),
        FractionPoint("S4 compose", 0.6, np.array([400.0, 500.0, 600.0]), 1000),
    ]
    assert [p.censored for p in pts] == [2, 1, 0]
    assert np.isinf(pts[0].median)  # 2 of 3 never arrived: the median is censored, not 900
    assert pts[1].median == 300.0  # the censored member counts as the latest, not dropped (which would give 200)
    assert min_fraction(pts) == {"add mod 23": np.inf, "S4 compose": 0.6}
    rows = data_fraction_table(pts).splitlines()
    assert rows[1].split()[:5] == ["add", "mod", "23", "0.3", "1/3"] and "≥ 1000 (censored)" in rows[1]
    assert "100–300" in rows[2] and rows[2].split()[-1] == "1"
    assert rows[-1].startswith("steps to 99% validation accuracy; 3 censored")
    assert_png(data_fraction_figure(pts, tmp_path / "d.png"), 10_000)


@pytest.mark.slow
def test_sweep_points_dedupe_inert_axes_and_cli(tmp_path, capsys):
    spec = {
        "preset": "interventions-adamw-small",
        "seeds": [0, 1],
        "set": {"task.p": 5, "task.permutation.n": 3, "model.widths": [16], "train.steps": 300, "train.log_every": 20},
        "axes": {"task.kind": ["modular", "permutation"], "task.op": ["add", "sub"], "task.train_fraction": [0.9]},
    }
    sw = grok.sweep(spec, tmp_path / "s", progress=False)
    pts = data_fraction_points(sw)
    assert sorted({p.operation for p in pts}) == ["S3 compose", "add mod 5", "sub mod 5"]
    assert all(len(p.steps) == 2 for p in pts)  # S3 trained once per task.op value, counted once
    s3 = [p for p in pts if p.operation == "S3 compose"]
    for p in s3:  # the duplicates are the same runs
        i = list(sw.axes["task.train_fraction"]).index(p.fraction)
        np.testing.assert_array_equal(sw.history("test_acc")[1, 0, i], sw.history("test_acc")[1, 1, i])
    acc = sw.history("test_acc")[0, 0, 0]  # add mod 5 at 0.9, both seeds
    for seed in range(2):
        hit = np.nonzero(acc[seed] >= 0.99)[0]
        want = sw.steps[hit[0]] if len(hit) else np.nan
        got = next(p for p in pts if p.operation == "add mod 5" and p.fraction == 0.9).steps[seed]
        assert got == want or (np.isnan(got) and np.isnan(want))
    assert main(["datafrac", str(tmp_path / "s")]) == 0
    assert "S3 compose" in capsys.readouterr().out and (tmp_path / "s" / "datafrac.png").is_file()
    assert main(["datafrac", str(tmp_path / "s"), "--threshold", "1.5"]) == 2


def test_another_axis_makes_its_own_lines(tmp_path):
    """A learning-rate axis beside the fraction: one line per lr, each with its own members' steps
    (before, the first lr's members stood for both and the other's vanished)."""
    spec = {
        "preset": "doshi-coexistence",
        "seeds": [0],
        "set": {"task.p": 7, "model.widths": [16], "train.steps": 60, "train.log_every": 10},
        "axes": {"task.train_fraction": [0.5, 0.9], "optim.lr": [1e-4, 0.1]},
    }
    sw = grok.sweep(spec, tmp_path / "s", progress=False)
    pts = data_fraction_points(sw, 0.5)
    assert sorted({p.operation for p in pts}) == ["add mod 7, optim.lr=0.0001", "add mod 7, optim.lr=0.1"]
    reached = steps_to_threshold(sw.history("test_acc"), sw.steps, 0.5)  # [fraction, lr, seed]
    for p in pts:
        i = [0.5, 0.9].index(p.fraction)
        j = 0 if p.operation.endswith("0.0001") else 1
        np.testing.assert_array_equal(p.steps, reached[i, j])


def test_the_figure_draws_the_tables_median(tmp_path, monkeypatch):
    """Half the seeds censored: the table's median is censored, and so is the line (at the budget)."""
    import matplotlib.axes

    drawn = []
    plot = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda ax, *a, **k: drawn.append(a) or plot(ax, *a, **k))
    pts = [
        FractionPoint("add mod 23", 0.5, np.array([100.0, np.nan]), 1000),
        FractionPoint("add mod 23", 0.7, np.array([100.0, 200.0]), 1000),
    ]
    assert np.isinf(pts[0].median)
    data_fraction_figure(pts, tmp_path / "d.png")
    line = next(a for a in drawn if len(a) == 3 and a[2] == "-o")
    np.testing.assert_array_equal(line[1], [1000.0, 150.0])


def test_presets_validate():
    small, big = SweepSpec.parse("power-data-fraction-small"), SweepSpec.parse("power-data-fraction")
    assert small.n_members == 72 and len(small.groups()) == 24
    cfg = big.config((1, 0, 0, 0))
    assert (cfg.task.kind, cfg.model.kind, cfg.model.option("transformer", "layers")) == (
        "permutation",
        "transformer",
        2,
    )
    assert (cfg.model.d_model, cfg.model.n_heads, cfg.optim.lr, cfg.optim.weight_decay) == (128, 4, 1e-3, 1.0)
    assert (cfg.optim.batch_size, cfg.train.steps, cfg.spec.n_all) == (512, 100_000, 14_400)
