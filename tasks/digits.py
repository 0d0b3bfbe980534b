"""The 8×8 handwritten digits that scikit-learn ships inside its package (UCI optical digits test
set: 1 797 images, 64 pixels with values 0..16, 10 classes; no download) [O-style image task,
docs/formulas.md §2.4].

`n_train` images are drawn per data seed; the other 1 797 − n_train are the test set.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from tasks.dataset import Dataset, TaskSpec
from tasks.images import N_CLASSES, build_image_task

N_IMAGES = 1797
N_PIXELS = 64
PIXEL_MAX = 16.0


@functools.lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [1797, 64], labels int32 [1797]) from scikit-learn's bundled copy (ImportError without it)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(np.uint8), data.target.astype(np.int32)


def digits_spec(task: Any) -> TaskSpec:
    """10 classes, 64 inputs, `task.n_train` train images and the rest of the 1 797 as test images."""
    n_test = N_IMAGES - task.n_train
    return TaskSpec("digits", N_CLASSES, 0, N_PIXELS, task.n_train, n_test, n_test)


def build_digits(
    task: Any, key: jax.Array, corrupt_fraction: jax.Array | float = 0.0, dtype: Any = np.float32
) -> Dataset:
    """The digits split by `key` (the data seed), ξ-corrupted, standardized (`tasks.images.build_image_task`)."""
    x, y = digits_arrays()
    return build_image_task(key, corrupt_fraction, dtype, pool_x=x, pool_y=y, n_train=task.n_train, pixel_max=PIXEL_MAX)
