"""MNIST from a local file the user names (docs/formulas.md §2.4): the four standard IDX files in a
directory (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
`t10k-labels-idx1-ubyte`, each optionally `.gz`), or one `.npz` with `x_train`, `y_train`, `x_test`,
`y_test` (the layout of Keras's `mnist.npz`). Nothing is downloaded.

`n_train` images are drawn per data seed from the training images; the test set is the first
`n_test` test images. Pixels 0..255, 784 inputs, 10 classes.
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np

from tasks.dataset import Dataset, TaskSpec
from tasks.images import N_CLASSES, build_image_task

PIXEL_MAX = 255.0
N_PIXELS = 784  # 28 × 28
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
WHERE = (
    "the four IDX files from the MNIST distribution (e.g. the yann.lecun.com mirror or torchvision's "
    "MNIST/raw folder) in one directory, or an .npz with x_train, y_train, x_test, y_test (Keras's mnist.npz)"
)


class MnistFileError(ValueError):
    """A missing or malformed MNIST file; the message is one line saying what was expected."""


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise MnistFileError(f"{path} is not an IDX file of unsigned bytes (expected magic 0x0000080N)")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise MnistFileError(f"{path}: header says {dims} but holds {body.size} bytes (truncated?)")
    return body.reshape(dims)


def _idx_dir(root: Path) -> dict[str, np.ndarray]:
    out = {}
    for key, name in IDX_FILES.items():
        found = [root / name, root / (name + ".gz"), root / name.replace("-idx", ".idx")]
        path = next((p for p in found if p.is_file()), None)
        if path is None:
            raise MnistFileError(f"{root} has no {name}[.gz]: task.mnist.path needs {WHERE}")
        out[key] = _read_idx(path)
    return out


def _npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in IDX_FILES if k not in f.files]
            if missing:
                raise MnistFileError(f"{path} lacks {', '.join(missing)}: task.mnist.path needs {WHERE}")
            return {k: np.asarray(f[k]) for k in IDX_FILES}
    except (OSError, ValueError) as err:
        if isinstance(err, MnistFileError):
            raise
        raise MnistFileError(f"{path} is not a readable .npz ({err}): task.mnist.path needs {WHERE}") from None


@functools.lru_cache(maxsize=2)
def _load(path: str, mtime: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    del mtime  # part of the cache key: a replaced file is read again
    root = Path(path)
    arrays = _idx_dir(root) if root.is_dir() else _npz(root)
    x_train, x_test = (arrays[k].reshape(arrays[k].shape[0], -1) for k in ("x_train", "x_test"))
    y_train, y_test = (arrays[k].reshape(-1) for k in ("y_train", "y_test"))
    if x_train.shape[0] != y_train.shape[0] or x_test.shape[0] != y_test.shape[0]:
        raise MnistFileError(f"{path}: image and label counts differ ({x_train.shape[0]} vs {y_train.shape[0]})")
    if x_train.shape[1] != N_PIXELS or x_test.shape[1] != N_PIXELS:
        raise MnistFileError(f"{path}: images must be 28x28, got {x_train.shape[1]} and {x_test.shape[1]} pixels")
    labels = np.concatenate([y_train, y_test])
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise MnistFileError(f"{path}: labels outside 0..9")
    if x_train.dtype != np.uint8 or x_test.dtype != np.uint8:
        raise MnistFileError(f"{path}: images must be uint8 pixels 0..255, got {x_train.dtype}")
    return x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32)


def mnist_arrays(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train uint8 [n, 784], y_train int32, x_test, y_test) from `path` (IDX directory or .npz);
    `MnistFileError` (one line) for a missing or malformed file."""
    if not path:
        raise MnistFileError(f"no file given: task.mnist.path (the mnist presets read $GROK_MNIST) needs {WHERE}")
    if not os.path.exists(path):
        raise MnistFileError(f"{path} does not exist: task.mnist.path needs {WHERE}")
    return _load(os.path.abspath(path), _newest_mtime(path))


def _newest_mtime(path: str) -> float:
    """The newest modification time of `path` and, for a directory, of the files in it: a file
    rewritten in place inside an IDX directory leaves the directory's own time as it was."""
    if not os.path.isdir(path):
        return os.path.getmtime(path)
    return max([os.path.getmtime(path)] + [e.stat().st_mtime for e in os.scandir(path) if e.is_file()])


def mnist_spec(task: Any) -> TaskSpec:
    """10 classes, 784 inputs, `task.n_train` train and `task.mnist.n_test` test images (the file is
    not read: the task's check has made sure it holds that many)."""
    n_test = task.option("mnist", "n_test")
    return TaskSpec("mnist", N_CLASSES, 0, N_PIXELS, task.n_train, n_test, n_test)


def build_mnist(
    task: Any, key: jax.Array, corrupt_fraction: jax.Array | float = 0.0, dtype: Any = np.float32
) -> Dataset:
    """`n_train` training images drawn by `key` (the data seed), the first `n_test` test images,
    ξ-corrupted and standardized (`tasks.images.build_image_task`)."""
    x_train, y_train, x_test, y_test = mnist_arrays(task.option("mnist", "path"))
    n_test = task.option("mnist", "n_test")
    return build_image_task(
        key,
        corrupt_fraction,
        dtype,
        pool_x=x_train,
        pool_y=y_train,
        n_train=task.n_train,
        pixel_max=PIXEL_MAX,
        test_x=x_test[:n_test],
        test_y=y_test[:n_test],
    )
