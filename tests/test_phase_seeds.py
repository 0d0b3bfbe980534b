"""Phase diagrams with seeds: Wilson intervals, per-cell phase fractions, the corrupted-subset rule,
the phase table and the mixed-cell figure, on hand-made phase arrays (docs/formulas.md §7.2–7.3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import assert_png
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from grok.phases import (
    classify_phase,
    classify_phase_corrupted,
    phase_counts,
    phase_summary,
    wilson_interval,
)
from grok.plots import phase as phase_plots
from grok.sweep.report import phase_table


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_matches_scipy(kn):
    k, n = kn
    lo, hi = wilson_interval(k, n)
    ref = binomtest(k, n).proportion_ci(method="wilson")
    assert lo == pytest.approx(ref.low, abs=1e-12) and hi == pytest.approx(ref.high, abs=1e-12)
    assert lo - 1e-12 <= k / n <= hi + 1e-12


def test_wilson_vectorised_and_empty():
    lo, hi = wilson_interval(np.array([0, 4, 0]), np.array([4, 4, 0]))
    assert lo[0] == 0.0 and hi[1] == 1.0 and np.isnan(lo[2]) and np.isnan(hi[2])
    assert hi[0] == pytest.approx(binomtest(0, 4).proportion_ci(method="wilson").high)


def test_phase_summary_fractions_majority_and_interval():
    c, f, m = "coexistence", "full_inversion", "memorization"
    phase = np.array([[c, c, c, c], [c, f, f, "missing"], [m, c, f, m], ["missing"] * 4])
    s = phase_summary(phase)
    assert s["majority"].tolist() == [c, f, m, "missing"]
    assert s["k"].tolist() == [4, 2, 2, 0] and s["n"].tolist() == [4, 3, 4, 0]
    np.testing.assert_allclose(s["fractions"][1], [1 / 3, 0, 2 / 3, 0, 0, 0])
    np.testing.assert_allclose(s["fractions"][2], [1 / 4, 0, 1 / 4, 1 / 2, 0, 0])
    assert np.all(np.isnan(s["fractions"][3]))
    ref = binomtest(2, 3).proportion_ci(method="wilson")
    assert (s["lo"][1], s["hi"][1]) == pytest.approx((ref.low, ref.high))
    assert phase_counts(phase).sum(-1).tolist() == [4, 3, 4, 0]


def test_corrupted_subset_rule_recognises_inversion_where_doshi_does_not():
    # [the case] ξ = 0.1: fits only the clean labels, predicts the true label on the corrupted
    # ones; total train accuracy 1 − ξ = 0.9 sits on [D]'s threshold and is called coexistence
    xi, clean, noisy, true, test = 0.1, 1.0, 1 / 97, 1.0, 1.0
    train = (1 - xi) * clean + xi * noisy
    assert classify_phase(train, test, test, xi) == "coexistence"
    assert classify_phase_corrupted(clean, noisy, true, test, test) == "full_inversion"
    cases = [  # clean, corrupted (noisy labels), corrupted → true, test, best test
        ((1.0, 1.0, 0.01, 0.95, 0.95), "coexistence"),
        ((1.0, 0.5, 0.45, 0.95, 0.95), "partial_inversion"),
        ((1.0, 0.02, 0.95, 0.99, 0.99), "full_inversion"),
        ((1.0, 1.0, 0.01, 0.2, 0.3), "memorization"),
        ((0.5, 0.1, 0.3, 0.3, 0.95), "forgetting"),
        ((0.5, 0.1, 0.3, 0.3, 0.5), "confusion"),
        ((1.0, np.nan, np.nan, 1.0, 1.0), "coexistence"),  # ξ = 0: nothing to fit or invert
        ((1.0, np.nan, np.nan, 0.1, 0.1), "memorization"),
        ((np.nan, np.nan, np.nan, np.nan, np.nan), "confusion"),  # diverged
        ((1.0, 0.9, 0.0, 0.9, 0.9), "coexistence"),  # thresholds inclusive
    ]
    args = np.array([a for a, _ in cases]).T
    assert classify_phase_corrupted(*args).tolist() == [p for _, p in cases]


class _HandSweep:
    """What the table and the figure read of a sweep, with hand-made phases."""

    def __init__(self, phases: np.ndarray, axes: dict, path: Path):
        self._phases, self.path = phases, path
        self.axes = axes | {"seed": np.arange(phases.shape[-1])}
        self.shape = phases.shape
        self.classification = np.ones(phases.shape, bool)

    def phases(self, rule="doshi"):
        return self._phases

    def phase_summary(self, rule="doshi"):
        return phase_summary(self._phases)


def test_table_and_figure_show_mixed_cells(tmp_path):
    c, f = "coexistence", "full_inversion"
    phases = np.array([[[c, c, c], [c, f, f]], [[f, f, f], ["missing"] * 3]])  # wd [2] × ξ [2] × seeds [3]
    sw = _HandSweep(
        phases, {"optim.weight_decay": np.array([0.0, 5.0]), "task.corrupt_fraction": np.array([0.1, 0.3])}, tmp_path
    )
    text = phase_table(sw)
    rows = text.splitlines()
    assert rows[0].split()[:4] == ["weight_decay", "corrupt_fraction", "majority", "k/n"]
    assert rows[2].split()[:4] == ["0", "0.3", f, "2/3"] and "coexistence 1, full_inversion 2" in rows[2]
    lo, hi = wilson_interval(2, 3)
    assert f"[{lo:.2f}, {hi:.2f}]" in rows[2]
    assert rows[1].split()[2:4] == [c, "3/3"] and rows[4].split()[2:4] == ["missing", "0/0"]
    assert rows[-1].endswith("1 cell(s) where seeds disagree")
    out = phase_plots.phase_diagram(sw, tmp_path / "p.png")
    assert_png(out, 5_000)
