"""HTSR α against weightwatcher 0.7.7's default `analyze()` (docs/formulas.md §5.6). Needs the optional
`peers` extra (torch, weightwatcher); skipped without it."""

import logging

import jax.numpy as jnp
import numpy as np
import pytest

from probes import spectral

torch = pytest.importorskip("torch")
ww = pytest.importorskip("weightwatcher")

pytestmark = pytest.mark.peers


def _matrices() -> dict[str, np.ndarray]:
    """Heavy-tailed random matrices (Student-t entries, ν = 1.5–4), a Gaussian one (a bulk with a thin
    tail), and the layers of a digits MLP after 300 steps of the omnigrok-digits recipe."""
    import grok

    rng = np.random.default_rng(0)
    out = {f"t{nu}": rng.standard_t(nu, size=(300, 150)) for nu in (1.5, 2.5, 4.0)}
    out["gauss"] = rng.normal(size=(256, 128))
    cfg = grok.preset("omnigrok-digits").override(**{"train.steps": 300, "train.log_points": 10})
    run = grok.train(cfg, seeds=(0,), progress=False)
    for name in ("first/kernel", "hidden/0/kernel", "readout/kernel"):
        out[name] = np.asarray(run.state[f"params/{name}"][0])
    return out


def _ww_fit(w: np.ndarray):
    """weightwatcher's default analysis of one dense layer (a torch Linear holding W)."""
    lin = torch.nn.Linear(w.shape[0], w.shape[1], bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T, np.float32)))
    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    row = ww.WeightWatcher(model=torch.nn.Sequential(lin)).analyze().iloc[0]
    return float(row["alpha"]), float(row["xmin"]), float(row["D"])


def test_alpha_matches_weightwatcher():
    rows = []
    for name, w in _matrices().items():
        a_ww, xmin_ww, d_ww = _ww_fit(w)
        same_rule = spectral.htsr_alpha(jnp.asarray(w, jnp.float32))  # the default rule is weightwatcher's
        csn = spectral.htsr_alpha(jnp.asarray(w, jnp.float32), ks="csn")
        rows.append((name, a_ww, float(same_rule.alpha), float(csn.alpha), xmin_ww, float(csn.xmin)))
        if min(w.shape) < spectral.MIN_EVALS:
            # weightwatcher switches to its small-sample estimator there; this lab records no fit
            assert np.isfinite(a_ww) and int(same_rule.status) == 1 and np.isnan(float(same_rule.alpha)), name
            continue
        # the same estimator; only the SVD's precision differs (float32 here, float64 there)
        assert abs(float(same_rule.alpha) - a_ww) < 0.05, (name, float(same_rule.alpha), a_ww)
        np.testing.assert_allclose(float(same_rule.xmin), xmin_ww, rtol=1e-3, err_msg=name)
        np.testing.assert_allclose(float(same_rule.ks_distance), d_ww, rtol=1e-2, atol=1e-4, err_msg=name)
    # the exact KS distance ("csn") may choose another x_min, hence another α (t2.5: 3.38 against 3.69)
    for r in rows:
        print(f"{r[0]:>16}  ww {r[1]:.3f}  grok {r[2]:.3f}  grok csn {r[3]:.3f}  x_min {r[4]:.4g} / csn {r[5]:.4g}")
