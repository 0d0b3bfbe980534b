"""Phases of training [D] and grokking delay (docs/formulas.md §6). Pure NumPy, vectorised over members.

Phases from final accuracies (fractions in [0, 1]; train is against the noisy labels), with
threshold t = 0.9 and corruption fraction ξ:

| phase             | test        | train                        |
|-------------------|-------------|------------------------------|
| coexistence       | ≥ t         | ≥ t                          |
| partial_inversion | ≥ t         | (1.05 − ξ) ≤ train < t       |
| full_inversion    | ≥ t         | < (1.05 − ξ)                 |
| memorization      | < t         | ≥ t                          |
| forgetting        | < t         | < t, and max test over run ≥ t |
| confusion         | < t         | < t, and max test over run < t |

Where [D] is ambiguous (docs/formulas.md §6.1) we decide:
- memorization ignores the run's maximum test accuracy (a run that generalized earlier and
  now memorizes, train ≥ t, is memorization, not forgetting);
- if 1.05 − ξ > t (ξ < 0.15) the partial-inversion band is empty: test ≥ t with train < t is
  full inversion (train < t < 1.05 − ξ);
- NaN accuracies compare as "below" every bound; a diverged member (the engine froze it at its
  last finite parameters and flags it, `diverged` = 1) is not classified at all: a sweep labels it
  `DIVERGED`, which a cell's majority leaves out like a missing member;
- every comparison allows an absolute slack `atol` (default 1e-7) so that float rounding
  cannot flip a boundary: 1.05 − 0.35 is 0.7000000000000001 in float64 and 0.9 stored as
  float32 is 0.89999998; accuracies are ratios of counts, coarser than 1e-7 for any set
  under 10⁷ examples. Pass `atol=0` for the bare ≥ / < comparisons.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

# The slack an accuracy comparison allows for rounding (see the module docstring)
ACC_ATOL = 1e-7

PHASES = ("coexistence", "partial_inversion", "full_inversion", "memorization", "forgetting", "confusion")
# "doshi": [D]'s rule on total train accuracy (classify_phase, the default); "corrupted_subset":
# the sharper rule on the corrupted subset's accuracies (classify_phase_corrupted, §7.3)
PHASE_RULES = ("doshi", "corrupted_subset")
# The label of a member whose training diverged (not a phase: its accuracies are those it was frozen at)
DIVERGED = "diverged"


def classify_phase(
    train_acc: ArrayLike,
    test_acc: ArrayLike,
    max_test_acc: ArrayLike,
    corrupt_fraction: ArrayLike,
    threshold: float = 0.9,
    *,
    atol: float = ACC_ATOL,
) -> np.ndarray:
    """Phase name per member [D, §6]; arguments broadcast together, result is a str array."""
    train, test, max_test, xi = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (train_acc, test_acc, max_test_acc, corrupt_fraction))
    )

    def ge(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
        return a >= np.asarray(b, dtype=np.float64) - atol

    inv_bound = 1.05 - xi
    test_hi, train_hi = ge(test, threshold), ge(train, threshold)
    conditions = [
        test_hi & train_hi,
        test_hi & ~train_hi & ge(train, inv_bound),
        test_hi & ~train_hi & ~ge(train, inv_bound),
        ~test_hi & train_hi,
        ~test_hi & ~train_hi & ge(max_test, threshold),
    ]
    index = np.select(conditions, list(range(5)), default=5)
    return np.asarray(PHASES)[index]


def classify_phase_corrupted(
    train_acc_clean: ArrayLike,
    train_acc_corrupted: ArrayLike,
    corrupted_true_acc: ArrayLike,
    test_acc: ArrayLike,
    max_test_acc: ArrayLike,
    threshold: float = 0.9,
    *,
    atol: float = ACC_ATOL,
) -> np.ndarray:
    """Phase name per member by the corrupted subset (docs/formulas.md §7.3); str array.

    c = clean train accuracy, m = accuracy on the corrupted labels (fitted noise), v = how often
    the corrupted examples are predicted with their true label, t = `threshold`:
    test ≥ t: coexistence if m ≥ t, full inversion if v ≥ t, else partial inversion; test < t:
    memorization if c ≥ t, forgetting if the best test ≥ t, else confusion. Without
    corrupted examples (m NaN while c is finite, ξ·n_train < 1) m counts as fitted. NaN (a diverged
    run) compares as below every bound. `phases = classify_phase_corrupted(c, m, v, test, best)`.
    """
    clean, noisy, true, test, max_test = np.broadcast_arrays(
        *(
            np.asarray(a, dtype=np.float64)
            for a in (train_acc_clean, train_acc_corrupted, corrupted_true_acc, test_acc, max_test_acc)
        )
    )

    def ge(a: np.ndarray) -> np.ndarray:
        return a >= threshold - atol

    no_corrupted = np.isnan(noisy) & np.isfinite(clean)
    fitted = ge(noisy) | no_corrupted
    inverted = ge(true) & ~no_corrupted
    test_hi = ge(test)
    conditions = [
        test_hi & fitted,
        test_hi & ~fitted & ~inverted,
        test_hi & inverted,
        ~test_hi & ge(clean),
        ~test_hi & ge(max_test),
    ]
    index = np.select(conditions, list(range(5)), default=5)
    return np.asarray(PHASES)[index]


def majority_phase(phase: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(majority phase, agreement fraction) over the last axis (the seeds).

    Ties go to the phase that comes first in `PHASES`; entries that are not phases ("missing",
    `DIVERGED`, "") are ignored; a cell without any is `DIVERGED` if one of its members diverged,
    else "missing", with agreement 0.
    `major, agree = majority_phase(sw.phase)`.
    """
    counts = phase_counts(phase)
    present = counts.sum(axis=-1)
    best = np.argmax(counts, axis=-1)  # first maximum: PHASES order breaks ties
    diverged = np.any(np.asarray(phase).astype(str) == DIVERGED, axis=-1)
    none = np.where(diverged, DIVERGED, "missing")
    majority = np.where(present > 0, np.asarray(PHASES, dtype=object)[best], none).astype(str)
    top = np.take_along_axis(counts, best[..., None], -1)[..., 0]
    return majority, np.where(present > 0, top / np.maximum(present, 1), 0.0).astype(np.float64)


def phase_counts(phase: ArrayLike) -> np.ndarray:
    """int [..., len(PHASES)]: how many entries along the last axis (the seeds) are in each phase."""
    phase = np.asarray(phase).astype(str)
    return np.stack([np.sum(phase == name, axis=-1) for name in PHASES], axis=-1)


def wilson_interval(successes: ArrayLike, trials: ArrayLike, z: float = 1.959963984540054) -> tuple:
    """Wilson score interval (lo, hi) for a binomial proportion k/n (default 95%); NaN where n = 0.

    centre = (k + z²/2)/(n + z²), half-width = z·√(k(n − k)/n + z²/4)/(n + z²).
    `lo, hi = wilson_interval(3, 4)`.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z2 = z * z
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (k + z2 / 2) / (n + z2)
        half = z * np.sqrt(np.maximum(k * (n - k) / n, 0.0) + z2 / 4) / (n + z2)
    lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return (float(lo), float(hi)) if lo.ndim == 0 else (lo, hi)


def phase_summary(phase: ArrayLike, z: float = 1.959963984540054) -> dict[str, np.ndarray]:
    """Per cell (all axes but the last, the seeds): the fraction of seeds in each phase
    (`fractions` [..., len(PHASES)], in `PHASES` order), the `majority` phase, its count `k` of
    the `n` seeds with a phase, and the Wilson interval (`lo`, `hi`) of the majority's share.
    `s = phase_summary(sw.phase)`; `s["majority"][cell]`, `s["lo"][cell]`."""
    counts = phase_counts(phase)
    n = counts.sum(axis=-1)
    majority, _ = majority_phase(phase)
    k = np.max(counts, axis=-1)
    lo, hi = wilson_interval(k, n, z)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(n[..., None] > 0, counts / np.maximum(n, 1)[..., None], np.nan)
    return {"fractions": fractions, "majority": majority, "k": k, "n": n, "lo": np.asarray(lo), "hi": np.asarray(hi)}


def first_crossing(steps: ArrayLike, curve: ArrayLike, threshold: ArrayLike, mode: str = "above") -> np.ndarray | float:
    """First step at which `curve[..., T]` crosses `threshold` (NaN if never).

    mode "above": curve ≥ threshold − `ACC_ATOL` (accuracy: 90% stored as float32 is 0.89999998, and
    counts as 0.9 here as in the phase rule); "below": curve < threshold (loss).
    `threshold` is a scalar or one value per leading index of `curve`.
    """
    steps = np.asarray(steps, dtype=np.float64)
    curve = np.asarray(curve, dtype=np.float64)
    thr = np.expand_dims(np.asarray(threshold, dtype=np.float64), -1)
    if steps.ndim != 1 or curve.shape[-1:] != steps.shape:
        raise ValueError(f"curve shape {curve.shape} must end with the steps length {steps.shape}")
    if mode == "above":
        hit = curve >= thr - ACC_ATOL
    elif mode == "below":
        hit = curve < thr
    else:
        raise ValueError(f"mode {mode!r}: allowed: above, below")
    first = np.argmax(hit, axis=-1)
    out = np.where(np.any(hit, axis=-1), steps[first], np.nan)
    return float(out) if out.ndim == 0 else out


def grokking_delay(
    steps: ArrayLike,
    train_curve: ArrayLike,
    test_curve: ArrayLike,
    threshold: ArrayLike = 0.9,
    mode: str = "above",
) -> np.ndarray | float:
    """Grokking delay: step of the test curve's first crossing minus the train curve's (§6).

    Curves are `[..., T]` (leading member axes) at `steps[T]`; NaN where either never crosses.
    Negative if test crosses first. mode "above" for accuracies (threshold 0.9), "below" for
    losses.
    """
    t_train = first_crossing(steps, train_curve, threshold, mode)
    t_test = first_crossing(steps, test_curve, threshold, mode)
    return t_test - t_train


def loss_crossings(
    steps: ArrayLike, train_loss: ArrayLike, test_loss: ArrayLike, factor: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test): per member, the first step at which each loss curve `[..., T]` falls below
    `factor` × its first entry (NaN if never); at least 1-d. Their difference is the [K] grokking delay."""
    train_loss, test_loss = np.asarray(train_loss), np.asarray(test_loss)
    fit = first_crossing(steps, train_loss, factor * train_loss[..., 0], "below")
    grokked = first_crossing(steps, test_loss, factor * test_loss[..., 0], "below")
    return np.atleast_1d(fit), np.atleast_1d(grokked)


def regression_grokking_delay(
    steps: ArrayLike,
    train_loss: ArrayLike,
    test_loss: ArrayLike,
    factor: float = 0.1,
    *,
    train_initial: ArrayLike | None = None,
    test_initial: ArrayLike | None = None,
) -> np.ndarray | float:
    """Grokking delay for regression [K]: each loss curve must fall below `factor` × its initial
    value. The initial value is the curve's first entry unless given (pass the loss at
    initialisation when step 0 is not logged)."""
    train_loss = np.asarray(train_loss, dtype=np.float64)
    test_loss = np.asarray(test_loss, dtype=np.float64)
    train0 = train_loss[..., 0] if train_initial is None else np.asarray(train_initial, dtype=np.float64)
    test0 = test_loss[..., 0] if test_initial is None else np.asarray(test_initial, dtype=np.float64)
    t_train = first_crossing(steps, train_loss, factor * train0, "below")
    t_test = first_crossing(steps, test_loss, factor * test0, "below")
    return t_test - t_train


PROGRESS_PHASES = ("memorization", "circuit_formation", "cleanup")


def progress_phases(
    steps: ArrayLike, train_acc: ArrayLike, test_loss: ArrayLike, test_acc: ArrayLike
) -> dict[str, np.ndarray]:
    """Where [N]'s three phases begin, per member (docs/formulas.md §6.5); curves are `[members, T]`.

    - memorization begins at step 0;
    - circuit formation begins at the first step with train accuracy ≥ 0.99 (memorization done);
    - cleanup begins at the first later step where the test loss is ≤ 1/10 of its largest value
      since circuit formation began (the sharp fall of the test loss);
    - `generalized`: the first step with test accuracy ≥ 0.99 (the end of cleanup).

    NaN where a phase never begins. Returns {phase or "generalized": float array [members]}.
    """
    steps = np.asarray(steps, dtype=np.float64)
    train_acc, test_loss, test_acc = (
        np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (train_acc, test_loss, test_acc)
    )
    circuit = np.atleast_1d(first_crossing(steps, train_acc, 0.99, "above"))
    cleanup = np.full(circuit.shape, np.nan)
    for m, start in enumerate(circuit):
        if np.isnan(start):
            continue
        after = steps >= start
        peak = np.fmax.accumulate(np.where(after, test_loss[m], -np.inf))
        hit = after & (test_loss[m] <= 0.1 * peak)
        if hit.any():
            cleanup[m] = steps[np.argmax(hit)]
    generalized = np.atleast_1d(first_crossing(steps, test_acc, 0.99, "above"))
    return {
        "memorization": np.zeros(circuit.shape),
        "circuit_formation": circuit,
        "cleanup": cleanup,
        "generalized": generalized,
    }


def progress_phase_record(history: dict[str, np.ndarray]) -> dict[str, list[int | None]]:
    """`progress_phases` of a run's history as JSON for its `status.json`: {phase: [step or None per member]}."""
    phases = progress_phases(history["step"], history["train_acc"], history["test_loss"], history["test_acc"])
    return {name: [None if np.isnan(v) else int(v) for v in values] for name, values in phases.items()}
