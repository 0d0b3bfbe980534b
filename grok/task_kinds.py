"""The built-in task kinds, registered like a user's: modular arithmetic [D], polynomial
regression [K], sparse parity [P], binary operations in the symmetric group [Power]
(docs/formulas.md §2, §7.1), the linear teacher of reduced-rank regression (§8), and the image
tasks `digits` and `mnist` [O] (§2.4). The data code is in `tasks/`."""

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
    n_train = tasks.count_of(fraction, n)
    if n_train < 1 or n_train >= n:
        raise ConfigError(
            "task.train_fraction", fraction, f"a fraction leaving at least one train and one test {what} of {n}"
        )


MAX_MODULUS = 46340  # the largest p whose products of residues stay exact in int32 (46340² < 2³¹)


def _check_modular(task) -> None:
    if task.p > MAX_MODULUS:
        raise ConfigError("task.p", task.p, f"an integer ≤ {MAX_MODULUS} (labels are computed in int32)")
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


def _check_permutation(task) -> None:
    n, op = task.option("permutation", "n"), task.option("permutation", "op")
    lo, hi = tasks.PERMUTATION_N
    if isinstance(n, bool) or not isinstance(n, int) or not lo <= n <= hi:
        raise ConfigError("task.permutation.n", n, f"an integer from {lo} to {hi} (the group S_n)")
    if op not in tasks.PERMUTATION_OPS:
        raise ConfigError("task.permutation.op", op, "one of " + ", ".join(tasks.PERMUTATION_OPS))
    _check_split(task.train_fraction, math.factorial(n) ** 2, "pair")


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
register_task(
    "permutation",
    spec=tasks.permutation_spec,
    build=tasks.build_permutation,
    fields=("train_fraction", "corrupt_fraction"),
    check=_check_permutation,
    n=5,
    op="compose",
)


def _check_linear_teacher(task) -> None:
    opt = task.options_of("linear_teacher")
    for key in ("input_dim", "output_dim"):
        if not isinstance(opt[key], int) or isinstance(opt[key], bool) or opt[key] < 1:
            raise ConfigError(f"task.linear_teacher.{key}", opt[key], "a whole number ≥ 1")
    limit = min(opt["input_dim"], opt["output_dim"])
    if not isinstance(opt["rank"], int) or isinstance(opt["rank"], bool) or not 0 <= opt["rank"] <= limit:
        allowed = f"a whole number from 0 to min(input_dim, output_dim) = {limit}"
        raise ConfigError("task.linear_teacher.rank", opt["rank"], allowed)
    noise = opt["noise"]
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not (math.isfinite(noise) and noise >= 0):
        raise ConfigError("task.linear_teacher.noise", noise, "a finite number ≥ 0")


register_task(
    "linear_teacher",
    spec=tasks.linear_teacher_spec,
    build=tasks.build_linear_teacher,
    fields=("n_train", "n_test"),
    check=_check_linear_teacher,
    input_dim=5,
    output_dim=5,
    rank=0,
    noise=1.0,
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
