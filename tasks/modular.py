"""Modular arithmetic c = (a op b) mod p, with label corruption [D] (docs/formulas.md §2).

All pairs and their labels are static (they depend on p and op only), so they are computed
once in NumPy at trace time; only the split and the corruption depend on the key and ξ.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tasks.dataset import Dataset, TaskSpec, count_of, dataset_from_table

MODULAR_OPS = ("add", "sub", "mul", "div", "x2y2", "x2xyy2", "x3xy")

# Largest p for which every intermediate (< p²) fits in int32.
MAX_INT32_P = math.isqrt(2**31 - 1)


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def inverse_table(p: int) -> np.ndarray:
    """int32 [p]: b⁻¹ = b^(p−2) mod p (Fermat; p prime). Entry 0 is 0 (no inverse)."""
    if not _is_prime(p):
        raise ValueError(f"division mod p needs a prime p, got {p}")
    return np.array([0] + [pow(b, p - 2, p) for b in range(1, p)], dtype=np.int32)


def modular_label(a: Any, b: Any, p: int, op: str) -> Any:
    """(a op b) mod p for ints, NumPy or JAX integer arrays (elementwise).

    Reduces mod p after every product, so no intermediate exceeds p² + p: exact in int32
    for p ≤ 46340. For div, b must be nonzero and p prime (b⁻¹ from `inverse_table`).
    """
    if op not in MODULAR_OPS:
        raise ValueError(f"op must be one of {', '.join(MODULAR_OPS)}, got {op!r}")
    if p > MAX_INT32_P:
        raise ValueError(f"p={p} too large for int32 labels (at most {MAX_INT32_P})")
    sq = lambda z: (z * z) % p
    if op == "add":
        return (a + b) % p
    if op == "sub":
        return (a + (p - b)) % p
    if op == "mul":
        return (a * b) % p
    if op == "div":
        inv = inverse_table(p)
        inv_b = jnp.asarray(inv)[b] if isinstance(b, jax.Array) else inv[b]
        return (a * inv_b) % p
    if op == "x2y2":
        return (sq(a) + sq(b)) % p
    if op == "x2xyy2":
        return (sq(a) + (a * b) % p + sq(b)) % p
    # x3xy: a³ + ab
    return ((sq(a) * a) % p + (a * b) % p) % p


def all_pairs(p: int, op: str) -> tuple[np.ndarray, np.ndarray]:
    """Every pair in canonical order (a-major; b ≠ 0 for div) and its label: int32 [N, 2], [N]."""
    a, b = np.meshgrid(np.arange(p, dtype=np.int64), np.arange(p, dtype=np.int64), indexing="ij")
    a, b = a.ravel(), b.ravel()
    if op == "div":
        a, b = a[b != 0], b[b != 0]
    y = modular_label(a, b, p, op)
    return np.stack([a, b], axis=1).astype(np.int32), np.asarray(y, dtype=np.int32)


def modular_spec(task: Any) -> TaskSpec:
    """Static sizes: p classes, token pairs, ⌊f·N⌋ train pairs of N = p² (p(p − 1) for div)."""
    n_all = task.p * (task.p - 1) if task.op == "div" else task.p * task.p
    n_train = count_of(task.train_fraction, n_all)
    return TaskSpec("modular", task.p, task.p, 2, n_train, n_all - n_train, n_all)


def build_modular(
    task: Any,
    key: jax.Array,
    corrupt_fraction: jax.Array | float = 0.0,
    dtype: Any = jnp.float32,
) -> Dataset:
    """Modular task [D]: shuffle all pairs (subkey `fold_in(key, 0)`), first ⌊f·N⌋ are train.

    Then the first ⌊ξ·n_train⌋ of a random order of the train set (subkey `fold_in(key, 1)`)
    get a uniform random label among p (subkey `fold_in(key, 2)`). `dtype` is unused (inputs
    are int32 tokens; `beta` is zeros [1] of it).
    """
    s = modular_spec(task)
    x_all_np, y_all_np = all_pairs(task.p, task.op)
    x_all, y_all = jnp.asarray(x_all_np), jnp.asarray(y_all_np)
    return dataset_from_table(x_all, y_all, s.n_train, s.n_classes, key, corrupt_fraction, dtype)
