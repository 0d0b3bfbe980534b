"""`grok.compare` on a hand-made sweep (best lr per method, never-reached counts, the baseline's lr)
and `grok compare DIR` on a tiny real one."""

import math

import numpy as np
import pytest

import grok
from grok.cli import main
from grok.compare import compare, method_label, steps_to_threshold


def test_steps_to_threshold_first_crossing_or_nan():
    acc = np.asarray([[0.1, 0.95, 0.5, 0.99], [0.1, 0.2, 0.3, 0.89]])
    got = steps_to_threshold(acc, np.asarray([0, 10, 20, 30]), 0.9)
    assert got[0] == 10 and math.isnan(got[1])


class FakeSweep:
    """axes: method (2) × lr (3) × seed (3); test accuracy jumps to 1 at a chosen step per member."""

    def __init__(self, jump: np.ndarray, tuned: str = "optim.lr"):
        self.tuned = tuned
        self.axes = {
            "optim.transforms": np.asarray([(), ("grokfast_ema",)], dtype=object),
            tuned: np.asarray([1e-3, 3e-3, 1e-2]),
            "seed": np.asarray([0, 1, 2]),
        }
        self.steps = np.arange(0, 1001, 100)
        self.jump = jump

    def history(self, name):
        if name == "test_acc":
            return (self.steps[None, None, None, :] >= self.jump[..., None]).astype(float)
        assert name == "path_length"
        lr = self.axes[self.tuned][None, :, None, None]
        return np.broadcast_to(lr * self.steps, (*self.jump.shape, self.steps.size))


def test_each_method_at_its_best_lr_and_at_the_baselines():
    never = 10_000  # beyond the last step: never reached
    jump = np.asarray(
        [
            [[900, 800, never], [500, 600, 700], [200, never, never]],  # adamw: best lr 3e-3 (no never)
            [[300, 300, 400], [100, 200, never], [never, never, never]],  # grokfast: best lr 1e-3
        ]
    )
    cmp = compare(FakeSweep(jump))
    base, gf = cmp.best
    assert (base.method, gf.method) == ("base", "grokfast_ema")
    assert base.lr == 3e-3 and base.median == 600 and base.never == 0 and base.range == (500, 700)
    assert gf.lr == 1e-3 and gf.median == 300
    assert cmp.baseline_lr == 3e-3
    at = cmp.at_baseline_lr[1]
    assert at.lr == 3e-3 and at.never == 1 and at.median == 200 and at.range == (100, 200)
    np.testing.assert_allclose(gf.step_size, 1e-3)
    table = cmp.table()
    assert "grokfast_ema" in table and "1/3" in table and "600" in table
    assert table.count("(grid edge)") == 1  # grokfast's best lr is the grid's smallest


def test_any_numeric_axis_can_be_the_tuned_one():
    cmp = compare(FakeSweep(np.full((2, 3, 3), 100), "optim.weight_decay"), lr_axis="optim.weight_decay")
    assert cmp.tuned == "weight_decay" and compare(FakeSweep(np.full((2, 3, 3), 100))).tuned == "lr"
    assert "best weight_decay" in cmp.table() and "baseline's weight_decay" in cmp.table()


def test_never_reaching_seeds_make_the_median_never():
    jump = np.full((2, 3, 3), 10_000)
    jump[0, 0] = [100, 200, 300]
    cmp = compare(FakeSweep(jump))
    assert math.isinf(cmp.best[1].median) and cmp.best[1].never == 3
    assert "never" in cmp.table()


def test_bad_arguments_are_config_errors():
    sw = FakeSweep(np.full((2, 3, 3), 100))
    with pytest.raises(grok.ConfigError, match="lr_axis"):
        compare(sw, lr_axis="optim.b1")
    with pytest.raises(grok.ConfigError, match="baseline"):
        compare(sw, baseline="nope")


def test_method_labels():
    assert method_label({"optim.kind": "muon", "optim.transforms": ("perp_grad", "grokfast_ema")}) == (
        "muon + perp_grad + grokfast_ema"
    )
    assert method_label({"optim.transforms": ()}) == "base"
    assert method_label({"optim.transforms": ("grokfast_ema",)}, "adamw") == "adamw + grokfast_ema"


def test_grok_compare_on_a_tiny_sweep(tmp_path, capsys):
    spec = {
        "preset": "prieto-perpgrad-small",
        "seeds": [0, 1],
        "set": {"train.steps": 40, "train.log_every": 10},
        "axes": {"optim.transforms": [[], ["grokfast_ema"]], "optim.lr": [3e-3, 1e-2]},
    }
    grok.sweep(spec, out=tmp_path / "sw", progress=False)
    assert main(["compare", str(tmp_path / "sw"), "--threshold", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "adamw + grokfast_ema" in out and "‖Δθ‖/step" in out and (tmp_path / "sw" / "compare.png").is_file()
    sw = grok.load_sweep(tmp_path / "sw")
    path = sw.history("path_length")
    assert np.all(np.diff(path, axis=-1) > 0)  # every step moves the weights
    assert main(["compare", str(tmp_path / "sw"), "--lr-axis", "optim.b2"]) == 2
