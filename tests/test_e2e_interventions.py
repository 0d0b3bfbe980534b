"""End-to-end [O]: a larger initialization delays grokking, and the fixed weight norm at the right
multiple of ‖θ₀‖ removes the delay (presets `omnigrok-large-init-small`, `omnigrok-fixed-norm-small`).
[G]: with its own optimizer (torch Adam + coupled L2), Grokfast-EMA turns a baseline that does not
grok into one that does within a few hundred steps, and the baseline at wd/(1 + λ) does the same
(presets `grokfast-adam-baseline-small`, `grokfast-adam-small`)."""

import numpy as np
import pytest

import grok
from grok.compare import steps_to_threshold

pytestmark = pytest.mark.slow

STEPS = 3000


def reach(run: grok.Run) -> np.ndarray:
    return steps_to_threshold(run.history["test_acc"], run.history["step"], 0.9)


def test_fixed_norm_removes_the_delay_a_large_initialization_creates():
    base = grok.preset("interventions-adamw-small").override(**{"train.steps": STEPS})
    large = grok.preset("omnigrok-large-init-small").override(**{"train.steps": STEPS})
    assert large.model.init_scale == 6.0
    # one program: the initialization scale is a per-member number
    delayed = reach(grok.train_members(base, [{"model.init_scale": 1.0}, {"model.init_scale": 6.0}], progress=False))
    fixed_cfg = grok.preset("omnigrok-fixed-norm-small").override(**{"train.steps": STEPS})
    fixed_run = grok.train_members(
        fixed_cfg, [{"optim.fixed_norm.multiple": 0.6}, {"optim.fixed_norm.multiple": 1.0}], progress=False
    )
    fixed = reach(fixed_run)
    t_small, t_large = delayed
    assert t_large >= t_small + 500, delayed  # grokking grows with the initial norm
    assert fixed[0] <= t_small + 0.5 * (t_large - t_small), (fixed, delayed)  # most of the delay is gone
    assert not fixed[1] <= fixed[0], fixed  # the multiple matters: the large norm itself stays slow
    norm = fixed_run.history["weight_norm"]
    np.testing.assert_allclose(norm[:, -1], norm[:, 0] * np.asarray([0.6, 1.0]), rtol=1e-4)


def test_grokfast_beats_its_baseline_and_a_smaller_l2_alone_does_as_well():
    base = grok.preset("grokfast-adam-baseline-small").override(**{"train.steps": 1500})
    fast = grok.preset("grokfast-adam-small").override(**{"train.steps": 1500})
    assert base.optim.kind == fast.optim.kind == "adam" and fast.optim.transforms == ("grokfast_ema",)
    lamb, wd = dict(fast.optim.options)["grokfast_ema.lamb"], fast.optim.weight_decay
    # one program: [G]'s baseline (no weight decay) and two controls without the filter
    controls = [{}, {"optim.weight_decay": wd}, {"optim.weight_decay": wd / (1 + lamb)}]
    unfiltered = grok.train_members(base, controls, progress=False)
    filtered = grok.train(fast, seeds=(0,), progress=False)
    train, test = unfiltered.history["train_acc"], unfiltered.history["test_acc"]
    assert train[0, -1] == 1.0 and np.max(test[0]) < 0.2, "[G]'s baseline memorizes and does not generalize"
    t_fast = reach(filtered)[0]
    assert t_fast <= 1000, t_fast  # measured 425–450 (seeds 0–3)
    assert np.max(train[1]) < 0.2, "the same L2 without the filter does not even fit"
    assert reach(unfiltered)[2] <= 1000, "a (1 + λ)× smaller L2 alone should grok as fast (measured 350)"
