"""The built-in task kinds, registered like a user's: modular arithmetic [D], polynomial
regression [K], sparse parity [P], binary operations in the symmetric group [Power]
(docs/formulas.md §2, §7.1). The data code is in `tasks/`."""

from __future__ import annotations

import math

import tasks
from grok.errors import ConfigError
from grok.registry import register_task


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
