"""End-to-end [O]: a larger initialization delays grokking, and the fixed weight norm at the right
multiple of ‖θ₀‖ removes the delay (presets `omnigrok-large-init-small`, `omnigrok-fixed-norm-small`)."""

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
