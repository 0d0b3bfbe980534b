"""Sparse parity [P] (Prieto et al. 2025, docs/formulas.md §2).

n = k + noise bits as ±1 floats; bit value 1 ↔ input −1. The label is the parity of the first
k bits: **label = 1 iff the product of the first k ±1 inputs is −1** (an odd number of −1s).
The samples are unique rows of {±1}^n.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tasks.dataset import Dataset, TaskSpec, corrupt_labels, count_of, subkeys

# Up to 2**PERMUTE_MAX_BITS possible rows, sample them as a prefix of a permutation of all.
PERMUTE_MAX_BITS = 20
# Beyond this a permutation of all 2**n rows is too big to hold.
PERMUTE_LIMIT_BITS = 26


def _draw_unique_words(key: jax.Array, n_bits: int, n_samples: int) -> jax.Array:
    """uint32 [n_samples, ⌈n_bits/32⌉]: distinct n-bit integers, by sequential rejection.

    Draw C = S + margin i.i.d. uniform rows, keep each value's first occurrence in draw order,
    take the first S kept. The first S distinct values of an i.i.d. uniform sequence are an
    exact uniform sample without replacement. Among C draws from N = 2^n about μ = C²/2N
    repeat; the margin 2⌈μ₀⌉ + 10⌈√μ₀⌉ + 32 (μ₀ = S²/N, needs S ≤ N/8) makes running short a
    many-sigma event (at the default n = 43, S = 2000: μ ≈ 2e-7 repeats against a margin of
    44). If it ever happened, the missing rows would repeat row 0.
    """
    n_words = -(-n_bits // 32)
    mu = n_samples * n_samples / 2.0**n_bits
    n_draws = n_samples + 2 * math.ceil(mu) + 10 * math.ceil(math.sqrt(mu)) + 32
    top = n_bits - 32 * (n_words - 1)
    masks = np.array([0xFFFFFFFF] * (n_words - 1) + [(1 << top) - 1], dtype=np.uint32)
    words = jax.random.bits(key, (n_draws, n_words), jnp.uint32) & jnp.asarray(masks)[None, :]
    idx = jnp.arange(n_draws, dtype=jnp.int32)
    # Lexicographic over the words (last key is primary); ties broken by draw index.
    order = jnp.lexsort((idx,) + tuple(words[:, w] for w in range(n_words)))
    sorted_words = words[order]
    repeat = jnp.all(sorted_words[1:] == sorted_words[:-1], axis=1)
    first = jnp.concatenate([jnp.ones((1,), bool), ~repeat])
    keep = jnp.zeros((n_draws,), bool).at[order].set(first)
    (chosen,) = jnp.nonzero(keep, size=n_samples, fill_value=0)
    return words[chosen]


def unique_bit_rows(key: jax.Array, n_bits: int, n_samples: int, permute_max_bits: int = PERMUTE_MAX_BITS) -> jax.Array:
    """int32 [n_samples, n_bits] of 0/1: distinct rows, a uniform sample without replacement.

    n_bits ≤ `permute_max_bits` (or S > 2^n/8, n ≤ 26): prefix of a permutation of all 2^n
    integers. Otherwise sequential rejection over i.i.d. draws (`_draw_unique_words`).
    """
    if n_samples > 2**n_bits:
        raise ValueError(f"{n_samples} unique samples of {n_bits} bits do not exist")
    dense = n_samples * 8 > 2**n_bits
    if n_bits <= permute_max_bits or dense:
        if n_bits > PERMUTE_LIMIT_BITS:
            raise ValueError(f"{n_samples} samples of {n_bits} bits: too many to draw unique ones")
        ints = jax.random.permutation(key, 2**n_bits)[:n_samples].astype(jnp.int32)
        shifts = jnp.arange(n_bits, dtype=jnp.int32)
        return (ints[:, None] >> shifts[None, :]) & 1
    words = _draw_unique_words(key, n_bits, n_samples)
    word_of_bit = np.arange(n_bits) // 32
    shifts = jnp.asarray(np.arange(n_bits) % 32, dtype=jnp.uint32)
    return ((words[:, word_of_bit] >> shifts[None, :]) & 1).astype(jnp.int32)


def parity_label(bits: jax.Array, k: int) -> jax.Array:
    """int32: 1 iff an odd number of the first k bits are 1 (product of their ±1 values is −1) [P]."""
    return (jnp.sum(bits[:, :k], axis=1) % 2).astype(jnp.int32)


def parity_spec(task: Any) -> TaskSpec:
    """Static sizes: 2 classes, k + noise bits, ⌊f·S⌋ of the S samples for training."""
    n_train = count_of(task.train_fraction, task.parity_samples)
    n_test = task.parity_samples - n_train
    return TaskSpec("parity", 2, 0, task.parity_k + task.parity_noise, n_train, n_test, n_test)


def build_parity(
    task: Any,
    key: jax.Array,
    corrupt_fraction: jax.Array | float = 0.0,
    dtype: Any = jnp.float32,
) -> Dataset:
    """Sparse parity [P]: `parity_samples` unique rows (subkey `fold_in(key, 0)`), split by a
    permutation (`fold_in(key, 1)`): first ⌊f·S⌋ train, rest test. Inputs x = 1 − 2·bit.

    ξ corrupts train labels as for the modular task [D], with 2 classes (order `fold_in(key, 2)`,
    labels `fold_in(key, 3)`). `x_all`/`y_all` are the test set.
    """
    s = parity_spec(task)
    sample_key, split_key, order_key, label_key = subkeys(key, 4)
    bits = unique_bit_rows(sample_key, s.input_dim, task.parity_samples)
    x = (1 - 2 * bits).astype(dtype)
    y = parity_label(bits, task.parity_k)
    perm = jax.random.permutation(split_key, task.parity_samples)
    train, test = perm[: s.n_train], perm[s.n_train :]
    y_true = y[train]
    y_noisy, corrupted = corrupt_labels(order_key, label_key, y_true, s.n_classes, corrupt_fraction)
    return Dataset(
        x_train=x[train],
        y_train=y_noisy,
        y_train_true=y_true,
        corrupted=corrupted,
        x_test=x[test],
        y_test=y[test],
        x_all=x[test],
        y_all=y[test],
        beta=jnp.zeros((1,), dtype),
    )
