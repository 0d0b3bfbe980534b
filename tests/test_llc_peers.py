"""`grok.llc` against devinterp 2.0.1 on the same weights, data and sampler settings (docs/formulas.md
§8): the two estimates agree within their chains' spread, full batch and minibatches. Needs the
optional `peers` extra (torch, devinterp, datasets); skipped without it."""

import numpy as np
import pytest

import grok

pytest.importorskip("torch")
pytest.importorskip("datasets")
pytest.importorskip("devinterp")

from benchmarks import bench_llc  # noqa: E402

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def trained():
    return grok.train(bench_llc._config(300), progress=False)


@pytest.mark.parametrize("batch_size", [256, None])
def test_llc_agrees_with_devinterp_on_the_same_weights(trained, batch_size, monkeypatch):
    monkeypatch.setattr(bench_llc, "CHAINS", 4)
    monkeypatch.setattr(bench_llc, "DRAWS", 200)
    _, ours = bench_llc._lab(trained, batch_size)
    _, mean, std = bench_llc._devinterp(trained, batch_size, ours.nbeta)
    lab = ours.per_chain[0, 0]  # every chain, burn-in 0: devinterp's reduction
    assert lab.shape == (4,) and np.isfinite(lab).all() and mean > 1.0
    assert abs(lab.mean() - mean) <= lab.std() + std, (lab.mean(), lab.std(), mean, std)
    assert abs(lab.mean() - mean) <= 0.1 * mean
