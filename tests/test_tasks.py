"""Tasks: label formulas vs brute force, split, corruption [D], polynomial targets [K], parity [P].

Compiles are the cost here, so every test goes through a few shared jitted builders and a
handful of configs (each compiled once per session).
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import hermite_e as npherm

import tasks
from grok.config import Config, LossConfig, TaskConfig
from grok.errors import ConfigError
from grok.registry import TASKS


def _build(task, key, corrupt_fraction=0.0, dtype=jnp.float32):
    """The registered task's data (what the engine calls)."""
    return TASKS.get(task.kind).build(task, key, corrupt_fraction, dtype)


def _spec(task):
    return TASKS.get(task.kind).spec(task)


build = jax.jit(_build, static_argnums=(0, 3))

ADD11 = TaskConfig(p=11, op="add", train_fraction=0.5)  # 121 pairs, 60 train
DIV7 = TaskConfig(p=7, op="div", train_fraction=0.6)  # 42 pairs, 25 train
POLY = TaskConfig(kind="polynomial", dim=8, n_train=20, n_test=30)
HERM = TaskConfig(kind="polynomial", dim=8, n_train=20, n_test=30, target="hermite", hermite_degree=3)
PARITY_DEFAULT = TaskConfig(kind="parity")  # 43 bits, 2000 samples: sequential rejection


def reference_label(a: int, b: int, p: int, op: str) -> int:
    """Brute force with Python's unbounded ints."""
    return {
        "add": lambda: (a + b) % p,
        "sub": lambda: (a - b) % p,
        "mul": lambda: (a * b) % p,
        "div": lambda: (a * pow(b, -1, p)) % p,
        "x2y2": lambda: (a**2 + b**2) % p,
        "x2xyy2": lambda: (a**2 + a * b + b**2) % p,
        "x3xy": lambda: (a**3 + a * b) % p,
    }[op]()


def expected_count(xi: Fraction, n: int) -> int:
    """⌊ξ·n⌋ in exact arithmetic."""
    return math.floor(xi * n)


def key(seed: int) -> jax.Array:
    return jax.random.key(seed)


def as_pairs(x: jax.Array) -> list[tuple[int, int]]:
    return [tuple(map(int, row)) for row in np.asarray(x)]


# --------------------------------------------------------------------- modular labels


@pytest.mark.parametrize("p", [7, 11])
@pytest.mark.parametrize("op", tasks.MODULAR_OPS)
def test_all_pairs_labels_match_brute_force(p: int, op: str) -> None:
    x, y = tasks.all_pairs(p, op)
    bs = range(1, p) if op == "div" else range(p)
    pairs = [(a, b) for a in range(p) for b in bs]  # canonical a-major order
    assert x.dtype == np.int32 and y.dtype == np.int32
    assert as_pairs(x) == pairs
    assert y.tolist() == [reference_label(a, b, p, op) for a, b in pairs]


def test_modular_label_int32_without_overflow() -> None:
    """p = 1009: a³ and a²+ab+b² overflow int32 unless reduced at each step."""
    p = 1009
    rng = np.random.default_rng(0)
    a = rng.integers(0, p, 500)
    b = rng.integers(1, p, 500)
    a[:3], b[:3] = p - 1, p - 1  # the largest intermediates
    for op in tasks.MODULAR_OPS:
        got = np.asarray(tasks.modular_label(jnp.asarray(a, jnp.int32), jnp.asarray(b, jnp.int32), p, op))
        want = [reference_label(int(i), int(j), p, op) for i, j in zip(a, b, strict=True)]
        assert got.tolist() == want, op


def test_inverse_table() -> None:
    for p in (2, 3, 7, 97):
        inv = tasks.inverse_table(p)
        assert all(b * int(inv[b]) % p == 1 for b in range(1, p))
    with pytest.raises(ValueError):
        tasks.inverse_table(9)


# ------------------------------------------------------------------------------ spec


def test_spec_sizes_match_config() -> None:
    cases = [
        (ADD11, Config(task=ADD11), (11, 11, 2, 60, 61, 121)),
        (DIV7, Config(task=DIV7), (7, 7, 2, 25, 17, 42)),
        (POLY, Config(task=POLY, loss=LossConfig(kind="mse")), (0, 0, 8, 20, 30, 30)),
        (PARITY_DEFAULT, Config(task=PARITY_DEFAULT), (2, 0, 43, 1000, 1000, 1000)),
    ]
    for task, cfg, sizes in cases:
        s = _spec(task)
        assert s.kind == task.kind
        assert (s.n_classes, s.n_tokens, s.input_dim, s.n_train, s.n_test, s.n_all) == sizes
        assert s.n_train == cfg.n_train
    with pytest.raises(ConfigError, match="task.train_fraction"):
        _spec(TaskConfig(kind="parity", train_fraction=1.0))


# ------------------------------------------------------------------------- the split


@pytest.mark.parametrize("task", [ADD11, DIV7], ids=["add11", "div7"])
def test_split_partitions_all_pairs(task: TaskConfig) -> None:
    s = _spec(task)
    d = build(task, key(0), 0.0, jnp.float32)
    assert d.x_train.shape == (s.n_train, 2) and d.x_test.shape == (s.n_test, 2)
    assert d.x_all.shape == (s.n_all, 2) and d.x_train.dtype == jnp.int32
    train, test = as_pairs(d.x_train), as_pairs(d.x_test)
    assert len(set(train)) == s.n_train and len(set(test)) == s.n_test
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(as_pairs(d.x_all))
    x_all, y_all = tasks.all_pairs(task.p, task.op)
    np.testing.assert_array_equal(d.x_all, x_all)
    np.testing.assert_array_equal(d.y_all, y_all)
    for x, y in ((d.x_train, d.y_train_true), (d.x_test, d.y_test)):
        assert np.asarray(y).tolist() == [reference_label(a, b, task.p, task.op) for a, b in as_pairs(x)]
    # A different key gives a different split; the same key the same one.
    assert not np.array_equal(build(task, key(1), 0.0, jnp.float32).x_train, d.x_train)
    np.testing.assert_array_equal(build(task, key(0), 0.0, jnp.float32).x_train, d.x_train)


# ------------------------------------------------------------------------ corruption


def check_corruption(d: tasks.Dataset, task: TaskConfig, xi: Fraction) -> None:
    """The invariants of [D] label noise for one built dataset."""
    s = _spec(task)
    corrupted = np.asarray(d.corrupted)
    y, y_true = np.asarray(d.y_train), np.asarray(d.y_train_true)
    assert corrupted.dtype == bool and corrupted.shape == (s.n_train,)
    assert corrupted.sum() == expected_count(xi, s.n_train)
    np.testing.assert_array_equal(y[~corrupted], y_true[~corrupted])  # only masked labels change
    assert ((0 <= y) & (y < s.n_classes)).all()
    want = [reference_label(a, b, task.p, task.op) for a, b in as_pairs(d.x_train)]
    assert y_true.tolist() == want  # the true labels are kept
    want = [reference_label(a, b, task.p, task.op) for a, b in as_pairs(d.x_test)]
    assert np.asarray(d.y_test).tolist() == want  # the test set is never corrupted


@pytest.mark.parametrize("xi", ["0", "0.35", "0.5", "1"])
def test_corruption_invariants(xi: str) -> None:
    d = build(ADD11, key(3), float(xi), jnp.float32)
    check_corruption(d, ADD11, Fraction(xi))
    if xi == "0":
        assert not np.asarray(d.corrupted).any()
        np.testing.assert_array_equal(d.y_train, d.y_train_true)
    if xi == "1":
        assert np.asarray(d.corrupted).all()


def test_corruption_keeps_split_and_is_nested_in_xi() -> None:
    """ξ changes only labels; a larger ξ corrupts a superset (prefix of the same order)."""
    ds = [build(ADD11, key(4), xi, jnp.float32) for xi in (0.0, 0.2, 0.5, 1.0)]
    for lo, hi in zip(ds, ds[1:], strict=False):
        np.testing.assert_array_equal(lo.x_train, hi.x_train)
        np.testing.assert_array_equal(lo.x_test, hi.x_test)
        np.testing.assert_array_equal(lo.y_train_true, hi.y_train_true)
        assert (np.asarray(hi.corrupted) | ~np.asarray(lo.corrupted)).all()


def test_corrupted_labels_uniform_over_classes() -> None:
    """ξ = 1 over 40 seeds: 2400 noisy labels, uniform over p = 11 (chi-square, loose)."""
    noisy, true = [], []
    for seed in range(40):
        d = build(ADD11, key(100 + seed), 1.0, jnp.float32)
        noisy.append(np.asarray(d.y_train))
        true.append(np.asarray(d.y_train_true))
    noisy, true = np.concatenate(noisy), np.concatenate(true)
    counts = np.bincount(noisy, minlength=11)
    expected = noisy.size / 11
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 45  # 10 dof: mean 10, P(chi2 > 45) ≈ 2e-6
    same = (noisy == true).mean()  # may equal the true label, ≈ 1/p of the time
    assert 0.05 < same < 0.14
    # noise is independent of the true label: not a shift of it
    assert len(np.unique((noisy - true) % 11)) == 11


def test_n_corrupted_counts() -> None:
    assert int(tasks.n_corrupted(0.35, 4704)) == 1646
    assert int(tasks.n_corrupted(0.57, 100)) == 57  # float32 0.57·100 = 56.99999…
    assert int(tasks.n_corrupted(0.0, 10)) == 0 and int(tasks.n_corrupted(1.0, 10)) == 10
    xis = jnp.asarray([0.0, 0.1, 0.3, 0.7, 0.999, 1.0])
    got = jax.jit(jax.vmap(lambda x: tasks.n_corrupted(x, 1000)))(xis)
    assert got.dtype == jnp.int32
    assert got.tolist() == [0, 100, 300, 700, 999, 1000]
    # the snap to an integer is relative to ξ·n, not to n: 0.123·466 560 = 57 386.88 stays 57 386
    assert int(tasks.n_corrupted(0.123, 466_560)) == 57_386
    assert int(tasks.n_corrupted(0.57, 20_000)) == 11_400


def test_split_sizes_count_a_whole_fraction_whole() -> None:
    """⌊f·N⌋ where float64 makes 0.57·100 = 56.99999…: the split has 57 pairs, not 56."""
    assert (tasks.count_of(0.57, 100), tasks.count_of(0.29, 100), tasks.count_of(0.5, 9)) == (57, 29, 4)
    assert tasks.count_of(0.3, 9409) == 2822 and tasks.count_of(1 / 3, 10) == 3
    cfg = Config().override(**{"task.p": 10, "task.train_fraction": 0.57})
    assert cfg.n_train == 57
    with pytest.raises(ConfigError, match="task.p"):
        Config().override(**{"task.p": 46_341})


@settings(max_examples=40, deadline=None)
@given(
    task=st.sampled_from([ADD11, DIV7]),
    permille=st.integers(0, 1000),
    seed=st.integers(0, 2**31 - 1),
)
def test_corruption_count_property(task: TaskConfig, permille: int, seed: int) -> None:
    """For any ξ = m/1000 and key: exactly ⌊ξ·n_train⌋ corrupted, the rest untouched [D]."""
    xi = Fraction(permille, 1000)
    check_corruption(build(task, key(seed), float(xi), jnp.float32), task, xi)


# ------------------------------------------------------------------------------ vmap


def test_vmap_over_keys_and_xi_equals_single_calls() -> None:
    keys = jax.random.split(key(7), 3)
    xis = jnp.asarray([0.0, 0.35, 1.0], jnp.float32)
    batched = jax.jit(jax.vmap(functools.partial(_build, ADD11)))(keys, xis)
    s = _spec(ADD11)
    assert batched.x_train.shape == (3, s.n_train, 2) and batched.x_all.shape == (3, s.n_all, 2)
    assert np.asarray(batched.corrupted).sum(axis=1).tolist() == [0, math.floor(0.35 * 60), 60]
    for i in range(3):
        single = build(ADD11, keys[i], float(xis[i]), jnp.float32)  # same compiled program as above
        for got, want in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_array_equal(got[i], want)


# ------------------------------------------------------------------------ polynomial


def test_polynomial_quadratic_target() -> None:
    d = build(POLY, key(0), 0.0, jnp.float32)
    assert d.x_train.shape == (20, 8) and d.x_test.shape == (30, 8) and d.beta.shape == (8,)
    assert d.x_train.dtype == jnp.float32 and d.y_train.dtype == jnp.float32
    beta = np.asarray(d.beta, np.float64)
    for x, y in ((d.x_train, d.y_train), (d.x_test, d.y_test)):
        z = np.asarray(x, np.float64) @ beta / np.sqrt(8)
        np.testing.assert_allclose(y, 0.5 * z**2, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(d.y_train_true, d.y_train)
    assert not np.asarray(d.corrupted).any()
    np.testing.assert_array_equal(d.x_all, d.x_test)
    # separate subkeys: train x, test x and β are not copies of one another
    xtr, xte = np.asarray(d.x_train), np.asarray(d.x_test)
    assert not np.allclose(xtr[:, 0], xte[:20, 0]) and not np.allclose(xtr[0], beta)
    # ξ is ignored for regression
    d2 = build(POLY, key(0), 0.5, jnp.float32)
    np.testing.assert_array_equal(d2.y_train, d.y_train)


def test_polynomial_hermite_target() -> None:
    d = build(HERM, key(1), 0.0, jnp.float32)
    z = np.asarray(d.x_test, np.float64) @ np.asarray(d.beta, np.float64) / np.sqrt(8)
    np.testing.assert_allclose(d.y_test, z**3 - 3 * z, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("degree", [1, 2, 3, 4, 5, 7])
def test_hermite_e_matches_numpy(degree: int) -> None:
    z = np.linspace(-3, 3, 13)
    coef = np.zeros(degree + 1)
    coef[-1] = 1
    np.testing.assert_allclose(
        tasks.hermite_e(jnp.asarray(z, jnp.float32), degree), npherm.hermeval(z, coef), rtol=1e-4, atol=1e-3
    )


# ---------------------------------------------------------------------------- parity


def test_parity_labels_and_unique_samples() -> None:
    task = PARITY_DEFAULT
    s = _spec(task)
    d = build(task, key(2), 0.0, jnp.float32)
    n_bits = task.parity_k + task.parity_noise
    assert d.x_train.shape == (s.n_train, n_bits) and d.x_test.shape == (s.n_test, n_bits)
    x = np.concatenate([np.asarray(d.x_train), np.asarray(d.x_test)])
    y = np.concatenate([np.asarray(d.y_train_true), np.asarray(d.y_test)])
    assert set(np.unique(x).tolist()) == {-1.0, 1.0}
    assert len({row.tobytes() for row in x}) == task.parity_samples  # unique; train, test disjoint
    brute = [int(np.prod(row[: task.parity_k]) == -1) for row in x]
    assert y.tolist() == brute
    assert 0.4 < y.mean() < 0.6
    assert (np.abs(x.mean(axis=0)) < 0.2).all()  # every bit position is random


def test_parity_corruption() -> None:
    d = build(PARITY_DEFAULT, key(5), 0.3, jnp.float32)
    corrupted = np.asarray(d.corrupted)
    assert corrupted.sum() == 300
    np.testing.assert_array_equal(np.asarray(d.y_train)[~corrupted], np.asarray(d.y_train_true)[~corrupted])
    assert set(np.unique(d.y_train).tolist()) <= {0, 1}


@pytest.mark.parametrize(
    ("n_bits", "n_samples", "permute_max_bits"),
    [(10, 600, 20), (10, 100, 0)],
    ids=["permutation", "rejection"],
)
def test_unique_bit_rows(n_bits: int, n_samples: int, permute_max_bits: int) -> None:
    """Both samplers; rejection is forced where repeats are common (100 of 2^10: ~18 repeats)."""
    draw = jax.jit(lambda k: tasks.unique_bit_rows(k, n_bits, n_samples, permute_max_bits))
    seen = []
    for seed in range(5):
        rows = np.asarray(draw(key(seed)))
        assert rows.shape == (n_samples, n_bits) and set(np.unique(rows).tolist()) <= {0, 1}
        assert len({r.tobytes() for r in rows}) == n_samples
        seen.append(rows)
    assert not np.array_equal(seen[0], seen[1])
    assert (np.abs(np.concatenate(seen).mean(axis=0) - 0.5) < 0.1).all()
    with pytest.raises(ValueError):
        tasks.unique_bit_rows(key(0), 3, 9)


def test_subkeys_are_fold_in() -> None:
    k = key(11)
    ks = tasks.subkeys(k, 4)
    for i in range(4):
        np.testing.assert_array_equal(jax.random.key_data(ks[i]), jax.random.key_data(jax.random.fold_in(k, i)))


def test_the_corrupted_count_does_not_depend_on_x64() -> None:
    """ξ = 0.35 rounded to float32, then multiplied in float64 (x64 on, as a float64 run switches it):
    still ⌊0.35·60⌋ = 21, as in float32."""
    xi32 = float(np.float32(0.35))
    with jax.enable_x64(True):
        assert int(tasks.n_corrupted(xi32, 60)) == 21 and int(tasks.n_corrupted(0.35, 60)) == 21
    assert int(tasks.n_corrupted(xi32, 60)) == 21
