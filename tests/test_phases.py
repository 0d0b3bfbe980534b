"""Phase classification [D] and grokking delay (docs/formulas.md §6) on hand-made tables."""

import numpy as np
import pytest

from grok.phases import PHASES, classify_phase, first_crossing, grokking_delay, regression_grokking_delay

XI = 0.35  # partial-inversion band: 0.7 ≤ train < 0.9

# (train, test, max_test, ξ, expected) — one or more rows per phase, boundaries included.
TABLE = [
    (1.0, 1.0, 1.0, XI, "coexistence"),
    (0.9, 0.9, 0.9, XI, "coexistence"),  # both exactly at the threshold
    (0.95, 0.92, 0.97, XI, "coexistence"),
    (0.8, 0.95, 0.99, XI, "partial_inversion"),
    (1.05 - XI, 0.95, 0.95, XI, "partial_inversion"),  # train exactly (1.05 − ξ)
    (0.7, 0.95, 0.95, XI, "partial_inversion"),  # 0.7 as written, though 1.05 − 0.35 = 0.7000000000000001
    (0.89999, 0.9, 0.9, XI, "partial_inversion"),
    (0.69, 0.95, 0.95, XI, "full_inversion"),
    (0.65, 1.0, 1.0, XI, "full_inversion"),
    (0.5, 0.9, 0.9, 0.6, "partial_inversion"),  # ξ = 0.6: band is 0.45 ≤ train < 0.9
    (0.4, 0.9, 0.9, 0.6, "full_inversion"),
    (1.0, 0.5, 0.6, XI, "memorization"),
    (0.9, 0.89999, 0.89999, XI, "memorization"),
    (1.0, 0.3, 0.95, XI, "memorization"),  # generalized earlier, memorizes now: still memorization
    (0.5, 0.4, 0.95, XI, "forgetting"),
    (0.89, 0.89, 0.9, XI, "forgetting"),  # max test exactly 0.9
    (0.5, 0.4, 0.89, XI, "confusion"),
    (0.0, 0.0, 0.0, XI, "confusion"),
    (0.85, 0.95, 0.95, 0.05, "full_inversion"),  # ξ < 0.15: 1.05 − ξ > 0.9, partial band empty
]


def test_table_rows_one_by_one():
    for train, test, max_test, xi, want in TABLE:
        got = classify_phase(train, test, max_test, xi)
        assert got.shape == () and str(got) == want, (train, test, max_test, xi, str(got), want)


def test_vectorised_over_members():
    cols = [np.array(c) for c in zip(*TABLE, strict=True)]
    got = classify_phase(*cols[:4])
    assert got.shape == (len(TABLE),)
    np.testing.assert_array_equal(got, cols[4])
    assert set(cols[4]) == set(PHASES)  # every phase is exercised
    # broadcasting a scalar ξ over a [2, 3] grid
    grid = classify_phase(np.full((2, 3), 0.8), np.full((2, 3), 0.95), np.full((2, 3), 0.95), XI)
    assert grid.shape == (2, 3) and np.all(grid == "partial_inversion")


def test_float32_accuracies_at_boundary():
    # 0.9 stored as float32 is 0.89999998; it still counts as reaching 0.9
    f = np.float32
    assert str(classify_phase(f(0.9), f(0.9), f(0.9), XI)) == "coexistence"
    assert str(classify_phase(f(0.7), f(0.95), f(0.95), XI)) == "partial_inversion"


def test_atol_zero_is_bare_comparison():
    assert str(classify_phase(0.89999, 0.9, 0.9, XI, atol=0.0)) == "partial_inversion"
    assert str(classify_phase(0.9 - 1e-6, 0.95, 0.95, XI)) == "partial_inversion"  # slack is tiny


def test_custom_threshold():
    assert str(classify_phase(0.85, 0.85, 0.85, 0.0, threshold=0.8)) == "coexistence"


def test_nan_counts_as_below():
    assert str(classify_phase(np.nan, np.nan, np.nan, XI)) == "confusion"


def test_grokking_delay_synthetic_curves():
    steps = np.arange(0, 1000, 100)
    train = np.array([0.1, 0.5, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    test = np.array([0.0, 0.1, 0.1, 0.2, 0.3, 0.5, 0.89, 0.9, 0.95, 1.0])
    never = np.full(10, 0.5)
    assert grokking_delay(steps, train, test, 0.9) == 700 - 200  # ≥ 0.9 (exactly 0.9 counts)
    assert np.isnan(grokking_delay(steps, train, never, 0.9))
    assert np.isnan(grokking_delay(steps, never, test, 0.9))
    batch = grokking_delay(steps, np.stack([train, train, never]), np.stack([test, train, test]), 0.9)
    np.testing.assert_array_equal(batch, [500.0, 0.0, np.nan])
    assert grokking_delay(steps, test, train, 0.9) == -500  # test first: negative delay
    assert first_crossing(steps, test, 0.5) == 500


def test_grokking_delay_below_and_per_member_threshold():
    steps = np.array([10, 20, 30, 40])
    curves = np.array([[1.0, 0.5, 0.05, 0.01], [2.0, 1.0, 0.5, 0.1]])
    np.testing.assert_array_equal(first_crossing(steps, curves, np.array([0.1, 0.2]), "below"), [30.0, 40.0])
    with pytest.raises(ValueError, match="mode"):
        grokking_delay(steps, curves, curves, 0.1, mode="sideways")
    with pytest.raises(ValueError, match="shape"):
        grokking_delay(steps[:3], curves, curves, 0.1)


def test_regression_grokking_delay():
    steps = np.arange(6) * 10
    train = np.array([1.0, 0.5, 0.09, 0.01, 0.0, 0.0])  # < 0.1 at step 20
    test = np.array([4.0, 3.0, 2.0, 0.5, 0.39, 0.1])  # < 0.4 at step 40
    assert regression_grokking_delay(steps, train, test) == 20.0
    both = regression_grokking_delay(steps, np.stack([train, train]), np.stack([test, train]))
    np.testing.assert_array_equal(both, [20.0, 0.0])
    # initial values given explicitly (step 0 not logged)
    assert regression_grokking_delay(steps, train, test, train_initial=10.0, test_initial=4.0) == 30.0


def test_progress_phases_on_constructed_curves():
    from grok.phases import progress_phases

    steps = np.arange(0, 1000, 100)
    train = np.array([[0.1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [0.1, 0.5, 0.9, 0.95, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98]])
    test_loss = np.array([[4.0, 9, 12, 15, 10, 2.0, 0.3, 0.01, 0.001, 0.001], [4.0, 9, 12, 15, 10, 9, 9, 9, 9, 9]])
    test_acc = np.array([[0, 0.1, 0.1, 0.1, 0.3, 0.8, 0.95, 0.995, 1, 1], [0.0] * 10])
    ph = progress_phases(steps, train, test_loss, test_acc)
    assert list(ph["memorization"]) == [0, 0]
    assert ph["circuit_formation"][0] == 100 and np.isnan(ph["circuit_formation"][1])
    assert ph["cleanup"][0] == 600  # 0.3 ≤ 15/10; 2.0 is not
    assert np.isnan(ph["cleanup"][1])
    assert ph["generalized"][0] == 700 and np.isnan(ph["generalized"][1])


def test_progress_phase_record_is_json_with_none_for_never():
    import json

    from grok.phases import progress_phase_record

    steps = np.arange(0, 500, 100)
    history = {
        "step": steps,
        "train_acc": np.array([[0.2, 1, 1, 1, 1], [0.2, 0.3, 0.3, 0.3, 0.3]]),
        "test_loss": np.array([[4.0, 6, 0.5, 0.1, 0.01], [4.0, 5, 6, 7, 8]]),
        "test_acc": np.array([[0.0, 0.1, 0.9, 0.99, 1], [0.0] * 5]),
    }
    record = progress_phase_record(history)
    assert record == {
        "memorization": [0, 0],
        "circuit_formation": [100, None],
        "cleanup": [200, None],  # 0.5 ≤ 6/10
        "generalized": [300, None],
    }
    assert json.loads(json.dumps(record)) == record
    assert all(type(v) is int for v in record["cleanup"][:1])


def test_a_float32_accuracy_of_exactly_90_percent_crosses_0_9():
    """90% stored as float32 is 0.89999998: it reaches 0.9 for the delay as it does for the phase rule."""
    from grok.compare import steps_to_threshold

    curve = np.asarray([0.5, np.float32(0.9)], np.float64)
    assert curve[1] < 0.9
    assert first_crossing(np.asarray([0, 10]), curve, 0.9) == 10
    assert steps_to_threshold(curve, np.asarray([0, 10]), 0.9) == 10
    assert np.isnan(first_crossing(np.asarray([0, 10]), np.asarray([0.5, 0.8999]), 0.9))


def test_a_diverged_member_is_left_out_of_its_cells_majority():
    from grok.phases import DIVERGED, majority_phase

    cells = [[DIVERGED, DIVERGED], [DIVERGED, "memorization"], ["missing", "missing"]]
    major, agree = majority_phase(np.asarray(cells))
    assert major.tolist() == [DIVERGED, "memorization", "missing"] and agree.tolist() == [0.0, 1.0, 0.0]
