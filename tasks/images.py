"""Image classification from a fixed pool of images (docs/formulas.md §2.4): the split, label
corruption [D] and input standardization shared by `digits` and `mnist`.

The images are host arrays (uint8 or float, [n, D] flattened, pixel values in [0, `pixel_max`]);
they enter the compiled program as constants. Everything that depends on the member (the data
seed, ξ) is traced, so one program serves every member.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tasks.dataset import Dataset, corrupt_labels, subkeys

N_CLASSES = 10


def standardize(x_train: jax.Array, x_test: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(x − μ)/s with μ and s the mean and standard deviation of every pixel of the training images
    together (two scalars; s = 1 when the training images are constant)."""
    mu = jnp.mean(x_train)
    s = jnp.std(x_train)
    s = jnp.where(s > 0, s, 1.0)
    return (x_train - mu) / s, (x_test - mu) / s


def build_image_task(
    key: jax.Array,
    corrupt_fraction: jax.Array | float,
    dtype: Any,
    *,
    pool_x: np.ndarray,
    pool_y: np.ndarray,
    n_train: int,
    pixel_max: float,
    test_x: np.ndarray | None = None,
    test_y: np.ndarray | None = None,
) -> Dataset:
    """A `Dataset` of `n_train` images drawn from the pool without replacement (a permutation by
    `fold_in(key, 0)`), and as test set the rest of the pool (`test_x` None) or the given test images.

    Inputs are pixels / `pixel_max`, then standardized with the training images' mean and standard
    deviation (`standardize`). ξ replaces ⌊ξ·n_train⌋ training labels by uniform ones as for the
    modular task (order `fold_in(key, 1)`, labels `fold_in(key, 2)`); `x_all`/`y_all` are the test set.
    """
    split_key, order_key, label_key = subkeys(key, 3)
    x_pool = jnp.asarray(pool_x)
    y_pool = jnp.asarray(pool_y, jnp.int32)
    perm = jax.random.permutation(split_key, x_pool.shape[0])
    train = perm[:n_train]
    x_train = x_pool[train].astype(dtype) / pixel_max
    y_true = y_pool[train]
    if test_x is None:
        rest = perm[n_train:]
        x_test, y_test = x_pool[rest].astype(dtype) / pixel_max, y_pool[rest]
    else:
        x_test, y_test = jnp.asarray(test_x).astype(dtype) / pixel_max, jnp.asarray(test_y, jnp.int32)
    x_train, x_test = standardize(x_train, x_test)
    y_noisy, corrupted = corrupt_labels(order_key, label_key, y_true, N_CLASSES, corrupt_fraction)
    return Dataset(
        x_train=x_train,
        y_train=y_noisy,
        y_train_true=y_true,
        corrupted=corrupted,
        x_test=x_test,
        y_test=y_test,
        x_all=x_test,
        y_all=y_test,
        beta=jnp.zeros((1,), dtype),
    )
