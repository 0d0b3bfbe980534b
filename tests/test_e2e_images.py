"""Omnigrok on images, end to end (presets `omnigrok-digits`, `omnigrok-digits-fixed-norm` at a CPU size):
with the initialization ×8 and MSE the network fits the training digits while the test accuracy is still
low; with the weight norm held at the standard initialization's, the test accuracy follows the training
accuracy [O]."""

import numpy as np
import pytest

import grok

pytest.importorskip("sklearn")

# 500 training images and lr 3e-3 instead of 1 000 and 1e-3: the same effect ~4× sooner
SMALL = {"task.n_train": 500, "optim.lr": 3e-3, "train.steps": 2000, "train.log_points": 30}


def _test_acc_when_fitted(run) -> float:
    """Test accuracy at the first evaluation with training accuracy ≥ 99%."""
    h = run.history
    hit = np.flatnonzero(h["train_acc"][0] >= 0.99)
    assert hit.size, h["train_acc"][0]
    return float(h["test_acc"][0, hit[0]])


@pytest.mark.slow
def test_large_init_memorizes_first_and_the_fixed_norm_removes_the_delay():
    large = grok.train(grok.preset("omnigrok-digits").override(**SMALL), seeds=(0,), progress=False)
    fixed = grok.train(grok.preset("omnigrok-digits-fixed-norm").override(**SMALL), seeds=(0,), progress=False)
    assert _test_acc_when_fitted(large) < 0.5
    assert _test_acc_when_fitted(fixed) >= 0.8
    np.testing.assert_allclose(fixed.history["weight_norm"][0, 1:], fixed.history["weight_norm"][0, 0] / 8, rtol=1e-3)
