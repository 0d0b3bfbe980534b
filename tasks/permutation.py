"""Binary operations in the symmetric group S_n, with label corruption [D] (docs/formulas.md §7.1).

The n! permutations of {0, …, n−1} are the tokens, in lexicographic order (token 0 is the
identity). A permutation σ is stored as the array σ[i] = σ(i); composition is
(x∘y)(i) = x(y(i)), i.e. the array x[y]. Every pair (x, y) of the n!² is an example, labelled
by the token of `op(x, y)`. The table depends on n and op only, so it is computed once in NumPy
at trace time; the split and the corruption are those of the modular task.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tasks.dataset import Dataset, TaskSpec, count_of, dataset_from_table

# x∘y, x∘y∘x⁻¹, x∘y⁻¹, x∘y∘x
PERMUTATION_OPS = ("compose", "conjugate", "compose_inverse", "compose_aba")
PERMUTATION_N = (3, 6)  # supported n, inclusive: S_3 (6 elements) … S_6 (720 elements, 518 400 pairs)


def permutations(n: int) -> np.ndarray:
    """int64 [n!, n]: every permutation of {0, …, n−1} in lexicographic order (row 0 = identity)."""
    return np.asarray(list(itertools.permutations(range(n))), dtype=np.int64).reshape(math.factorial(n), n)


def _index_of(perms: np.ndarray) -> np.ndarray:
    """Lookup table mixed-radix code → token; a row's code is Σ σ[i]·n^(n−1−i)."""
    n = perms.shape[1]
    codes = perms @ (n ** np.arange(n - 1, -1, -1))
    table = np.full(n**n, -1, dtype=np.int64)
    table[codes] = np.arange(len(perms))
    return table


def permutation_table(n: int, op: str) -> np.ndarray:
    """int32 [n!, n!]: entry [x, y] is the token of op(x, y) (docs/formulas.md §7.1)."""
    if op not in PERMUTATION_OPS:
        raise ValueError(f"op must be one of {', '.join(PERMUTATION_OPS)}, got {op!r}")
    perms = permutations(n)
    inverse = np.argsort(perms, axis=1)  # σ⁻¹[σ[i]] = i
    x, y = perms[:, None, :], perms[None, :, :]  # [n!, 1, n], [1, n!, n]
    take = lambda a, b: np.take_along_axis(a, b, axis=-1)  # (a∘b)[i] = a[b[i]]
    xb, yb = np.broadcast_to(x, (len(perms),) * 2 + (n,)), np.broadcast_to(y, (len(perms),) * 2 + (n,))
    if op == "compose":
        out = take(xb, yb)
    elif op == "conjugate":
        out = take(take(xb, yb), np.broadcast_to(inverse[:, None, :], xb.shape))
    elif op == "compose_inverse":
        out = take(xb, np.broadcast_to(inverse[None, :, :], xb.shape))
    else:  # compose_aba: x∘y∘x
        out = take(take(xb, yb), xb)
    codes = out @ (n ** np.arange(n - 1, -1, -1))
    return _index_of(perms)[codes].astype(np.int32)


def permutation_pairs(n: int, op: str) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (x, y) of tokens, x-major, and its label: int32 [n!², 2], [n!²]."""
    m = math.factorial(n)
    x, y = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    return np.stack([x.ravel(), y.ravel()], axis=1).astype(np.int32), permutation_table(n, op).ravel()


def _options(task: Any) -> tuple[int, str]:
    return int(task.option("permutation", "n")), str(task.option("permutation", "op"))


def permutation_spec(task: Any) -> TaskSpec:
    """Static sizes: n! classes and tokens, token pairs, ⌊f·n!²⌋ train pairs."""
    n, _ = _options(task)
    m = math.factorial(n)
    n_all = m * m
    n_train = count_of(task.train_fraction, n_all)
    return TaskSpec("permutation", m, m, 2, n_train, n_all - n_train, n_all)


def build_permutation(
    task: Any,
    key: jax.Array,
    corrupt_fraction: jax.Array | float = 0.0,
    dtype: Any = jnp.float32,
) -> Dataset:
    """Group task: shuffle all n!² pairs (subkey `fold_in(key, 0)`), the first ⌊f·N⌋ are train;
    label corruption as in the modular task (subkeys 1 and 2). `dtype` is unused (int32 tokens)."""
    n, op = _options(task)
    s = permutation_spec(task)
    x_np, y_np = permutation_pairs(n, op)
    x_all, y_all = jnp.asarray(x_np), jnp.asarray(y_np)
    return dataset_from_table(x_all, y_all, s.n_train, s.n_classes, key, corrupt_fraction, dtype)
