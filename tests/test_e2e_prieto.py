"""End-to-end [P]: ⊥AdamW generalizes without weight decay; plain AdamW memorizes and stalls."""

import numpy as np
import pytest

import grok

pytestmark = pytest.mark.slow

STEPS = 400


def first_step(run: grok.Run, metric: str, threshold: float) -> np.ndarray:
    """Per member: first logged step with metric ≥ threshold (inf if never)."""
    hit = run.history[metric] >= threshold
    steps = np.where(hit.any(axis=1), run.history["step"][hit.argmax(axis=1)], np.inf)
    return steps


@pytest.fixture(scope="module")
def runs():
    # the paper's setting at add mod 53, where plain AdamW stalls for the whole run
    base = grok.preset("prieto-perpgrad").override(**{"task.p": 53, "train.steps": STEPS, "train.log_every": 10})
    perp = grok.train(base, seeds=(0, 1), progress=False)
    plain = grok.train(base.override(**{"optim.transforms": []}), seeds=(0, 1), progress=False)
    return perp, plain


def test_perp_adamw_generalizes_long_before_plain_adamw(runs):
    perp, plain = runs
    perp_at = first_step(perp, "test_acc", 0.95)
    plain_at = first_step(plain, "test_acc", 0.95)
    assert (perp_at <= STEPS * 0.75).all(), perp_at
    assert np.isinf(plain_at).all(), plain_at  # plain AdamW has not generalized in the whole run


def test_plain_softmax_float32_memorizes_while_test_stays_low(runs):
    _, plain = runs
    assert (plain.final("train_acc") == 1.0).all()
    memorized = first_step(plain, "train_acc", 1.0)
    assert (memorized < STEPS / 2).all()
    after = plain.history["step"] >= memorized.max()
    assert plain.history["test_acc"][:, after].max() < 0.2
