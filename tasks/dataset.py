"""Task data as pytrees: static facts (`TaskSpec`), arrays (`Dataset`), label corruption [D].

Each task module gives a `spec` function (static sizes, no arrays) and a pure `build` function:
jit it with the config static and vmap it over `key` and `corrupt_fraction` (ξ). grok finds
them by `task.kind` in its task registry.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

# A product f·n that lies within this many units of its dtype's eps, relative to f·n, of an integer
# counts as that integer: floating point cannot tell 0.57·100 from 56.99999… (float32's ξ and its
# product with n are each within eps/2 of exact).
COUNT_TOLERANCE_EPS = 2


class TaskSpec(NamedTuple):
    """Static facts about a task, computed from its config alone (docs/formulas.md §2)."""

    kind: str  # the registered task kind
    n_classes: int  # p for modular, 2 for parity, 0 for regression
    n_tokens: int  # p for modular (inputs are token pairs), 0 otherwise
    input_dim: int  # 2 tokens (a, b) for modular; D for polynomial; k + noise bits for parity
    n_train: int
    n_test: int
    n_all: int  # modular: every pair (p² or p(p−1) for div); otherwise = n_test
    n_outputs: int = 1  # regression: outputs per example (targets [n] when 1, [n, n_outputs] otherwise)


class Dataset(NamedTuple):
    """The arrays of one task instance (a pytree; one leading member axis under vmap).

    Modular: `x_*` int32 [n, 2] token pairs (a, b), `y_*` int32 labels. Parity: `x_*` ±1 floats
    [n, k + noise], `y_*` int32 in {0, 1}. Polynomial: `x_*` floats [n, D], `y_*` floats [n].
    """

    x_train: jax.Array
    y_train: jax.Array  # after corruption [D]: "train accuracy" is measured against these
    y_train_true: jax.Array  # before corruption (regression: == y_train)
    corrupted: jax.Array  # bool [n_train]: which train labels were replaced
    x_test: jax.Array
    y_test: jax.Array  # never corrupted
    x_all: jax.Array  # modular: every pair, a-major, true labels; otherwise the test set
    y_all: jax.Array
    beta: jax.Array  # polynomial: teacher vector [D]; otherwise zeros [1]


def subkeys(key: jax.Array, n: int) -> jax.Array:
    """Keys [n]: entry i is `jax.random.fold_in(key, i)` (one vmapped hash, so one compiled site)."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n, dtype=jnp.uint32))


def count_of(fraction: float, n: int) -> int:
    """⌊f·n⌋ of a static fraction (a train split's size), where f·n within `COUNT_TOLERANCE_EPS`
    float64 eps (relative) of an integer counts as that integer: 0.57·100 is 57, not 56."""
    product = fraction * n
    nearest = round(product)
    if abs(product - nearest) <= COUNT_TOLERANCE_EPS * float(jnp.finfo(jnp.float64).eps) * max(product, 1.0):
        return int(nearest)
    return math.floor(product)


def n_corrupted(corrupt_fraction: jax.Array | float, n_train: int) -> jax.Array:
    """⌊ξ·n_train⌋ as a traced int32 [D], clipped to [0, n_train].

    A product within `COUNT_TOLERANCE_EPS` float32 eps (relative) of an integer counts as that
    integer, so float32 rounding of ξ never drops an example (0.57·100 gives 57, not 56) and never
    adds one: the snap is relative to ξ·n, not to n (at n = 466 560 an allowance of 10⁻⁶·n gave
    ⌊0.123·n⌋ + 1). Above ~10⁶ examples float32 cannot hold ξ·n to within 1, so the count is
    exact only to float32's precision there.
    """
    xi = jnp.asarray(corrupt_fraction)
    if not jnp.issubdtype(xi.dtype, jnp.floating):
        xi = xi.astype(jnp.float32)
    product = xi * n_train
    nearest = jnp.round(product)
    # float32's eps whatever ξ's dtype: a member's ξ may have passed through float32 (its dynamic
    # value) before a float64 program (x64 on) multiplies it, and the count must not depend on that
    eps32 = float(jnp.finfo(jnp.float32).eps)
    close = jnp.abs(product - nearest) <= COUNT_TOLERANCE_EPS * eps32 * jnp.maximum(product, 1.0)
    count = jnp.where(close, nearest, jnp.floor(product))
    return jnp.clip(count, 0, n_train).astype(jnp.int32)


def corrupt_labels(
    order_key: jax.Array,
    label_key: jax.Array,
    y: jax.Array,
    n_classes: int,
    corrupt_fraction: jax.Array | float,
) -> tuple[jax.Array, jax.Array]:
    """Label noise [D]: (noisy labels, corrupted mask).

    The first ⌊ξ·n⌋ examples of a random order of the training set (`order_key`) get a label
    drawn uniformly from all `n_classes` (`label_key`); it may equal the true label
    (≈ 1/n_classes of the time). The count is a traced value and the mask is rank-based, so ξ
    may vary along a vmapped member axis without recompiling.
    """
    (n,) = y.shape
    order = jax.random.permutation(order_key, n)
    rank = jnp.zeros((n,), jnp.int32).at[order].set(jnp.arange(n, dtype=jnp.int32))
    corrupted = rank < n_corrupted(corrupt_fraction, n)
    noise = jax.random.randint(label_key, (n,), 0, n_classes, dtype=y.dtype)
    return jnp.where(corrupted, noise, y), corrupted


def dataset_from_split(
    x_train: jax.Array, y_train: jax.Array, x_test: jax.Array, y_test: jax.Array, beta: jax.Array | None = None
) -> Dataset:
    """A `Dataset` of a task without label noise or a separate full set: `x_all` is the test set,
    `y_train_true` is `y_train`, nothing is corrupted; `beta` (the task's hidden direction or
    teacher, flattened) defaults to zeros [1]."""
    return Dataset(
        x_train=x_train,
        y_train=y_train,
        y_train_true=y_train,
        corrupted=jnp.zeros((x_train.shape[0],), bool),
        x_test=x_test,
        y_test=y_test,
        x_all=x_test,
        y_all=y_test,
        beta=jnp.zeros((1,), jnp.float32) if beta is None else beta,
    )


def dataset_from_table(
    x_all: jax.Array,
    y_all: jax.Array,
    n_train: int,
    n_classes: int,
    key: jax.Array,
    corrupt_fraction: jax.Array | float,
    dtype,
) -> Dataset:
    """An algorithmic task's `Dataset` from its whole table (every pair and its answer): the pairs
    shuffled (subkey `fold_in(key, 0)`), the first `n_train` are train, the rest test; label
    corruption [D] on the train labels (subkeys 1 and 2). `beta` is zeros [1] of `dtype`."""
    split_key, order_key, label_key = subkeys(key, 3)
    perm = jax.random.permutation(split_key, x_all.shape[0])
    train, test = perm[:n_train], perm[n_train:]
    y_true = y_all[train]
    y_noisy, corrupted = corrupt_labels(order_key, label_key, y_true, n_classes, corrupt_fraction)
    return Dataset(
        x_train=x_all[train],
        y_train=y_noisy,
        y_train_true=y_true,
        corrupted=corrupted,
        x_test=x_all[test],
        y_test=y_all[test],
        x_all=x_all,
        y_all=y_all,
        beta=jnp.zeros((1,), dtype),
    )
