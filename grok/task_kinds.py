"""The built-in task kinds, registered like a user's: modular arithmetic [D], polynomial
regression [K], sparse parity [P], and the image tasks `digits` and `mnist` [O]
(docs/formulas.md §2). The data code is in `tasks/`."""

from __future__ import annotations

import math

import tasks
from grok.errors import ConfigError
from grok.registry import register_task
from tasks import digits, mnist


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def _check_split(fraction: float, n: int, what: str) -> None:
    """⌊f·n⌋ train examples must leave at least one train and one test example."""
    n_train = math.floor(fraction * n)
    if n_train < 1 or n_train >= n:
        raise ConfigError(
            "task.train_fraction", fraction, f"a fraction leaving at least one train and one test {what} of {n}"
        )


def _check_modular(task) -> None:
    if task.op == "div" and not _is_prime(task.p):
        raise ConfigError("task.p", task.p, "a prime when task.op is 'div'")
    _check_split(task.train_fraction, task.n_pairs, "pair")


def _check_parity(task) -> None:
    if task.parity_samples > 2 ** (task.parity_k + task.parity_noise):
        raise ConfigError(
            "task.parity_samples",
            task.parity_samples,
            f"at most 2**(parity_k + parity_noise) = {2 ** (task.parity_k + task.parity_noise)}",
        )
    _check_split(task.train_fraction, task.parity_samples, "sample")


register_task(
    "modular",
    spec=tasks.modular_spec,
    build=tasks.build_modular,
    fields=("op", "p", "train_fraction", "corrupt_fraction"),
    check=_check_modular,
)
register_task(
    "polynomial",
    spec=tasks.polynomial_spec,
    build=tasks.build_polynomial,
    fields=lambda t: ("dim", "n_train", "n_test", "target") + (("hermite_degree",) if t.target == "hermite" else ()),
)
register_task(
    "parity",
    spec=tasks.parity_spec,
    build=tasks.build_parity,
    fields=("parity_k", "parity_noise", "parity_samples", "train_fraction", "corrupt_fraction"),
    check=_check_parity,
)


def _check_digits(task) -> None:
    try:
        digits.digits_arrays()
    except ImportError:
        raise ConfigError(
            "task.kind",
            "digits",
            "a task whose data is installed: digits needs scikit-learn (pip install 'grok-lab[images]')",
        ) from None
    if task.n_train > digits.N_IMAGES - 1:
        raise ConfigError(
            "task.n_train", task.n_train, f"at most {digits.N_IMAGES - 1} of the {digits.N_IMAGES} digits"
        )


def _check_mnist(task) -> None:
    path = task.option("mnist", "path")
    try:
        x_train, _, x_test, _ = mnist.mnist_arrays(path)
    except mnist.MnistFileError as err:
        raise ConfigError("task.mnist.path", path, str(err)) from None
    if task.n_train > x_train.shape[0]:
        raise ConfigError("task.n_train", task.n_train, f"at most the {x_train.shape[0]} training images of {path}")
    n_test = task.option("mnist", "n_test")
    if not isinstance(n_test, int) or isinstance(n_test, bool) or not 1 <= n_test <= x_test.shape[0]:
        raise ConfigError(
            "task.mnist.n_test", n_test, f"an integer in [1, {x_test.shape[0]}] (the test images of {path})"
        )


register_task(
    "digits",
    spec=digits.digits_spec,
    build=digits.build_digits,
    fields=("n_train", "corrupt_fraction"),
    check=_check_digits,
)
register_task(
    "mnist",
    spec=mnist.mnist_spec,
    build=mnist.build_mnist,
    fields=("n_train", "corrupt_fraction"),
    check=_check_mnist,
    path="",
    n_test=10000,
)
