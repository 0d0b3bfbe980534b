"""Single-index polynomial regression [K] (docs/formulas.md §2).

x ~ N(0, I_D), β ~ N(0, I_D), z = β·x/√D; target y = ½z² ("quadratic", [K]'s Fig. 1), z² ("square",
the authors' code for Fig. 3) or He_k(z) ("hermite", probabilists' Hermite polynomial of degree k).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from tasks.dataset import Dataset, TaskSpec, dataset_from_split, subkeys


def hermite_e(z: jax.Array, degree: int) -> jax.Array:
    """Probabilists' Hermite polynomial He_degree(z): He₀=1, He₁=z, He_{n+1} = z·He_n − n·He_{n−1}."""
    prev, cur = jnp.ones_like(z), z
    if degree == 0:
        return prev
    for n in range(1, degree):
        prev, cur = cur, z * cur - n * prev
    return cur


# y = c·z² for these targets, by name
QUADRATIC_SCALE = {"quadratic": 0.5, "square": 1.0}


def polynomial_target(z: jax.Array, target: str = "quadratic", degree: int = 2) -> jax.Array:
    """Target of the projection z = β·x/√D [K]: ½z² ("quadratic"), z² ("square") or He_degree(z) ("hermite")."""
    if target in QUADRATIC_SCALE:
        return QUADRATIC_SCALE[target] * z * z
    if target == "hermite":
        return hermite_e(z, degree)
    raise ValueError(f"target must be 'quadratic', 'square' or 'hermite', got {target!r}")


def project(x: jax.Array, beta: jax.Array) -> jax.Array:
    """z = β·x/√D per row of x [n, D] (full float32 precision, also on GPUs/TPUs)."""
    d = beta.shape[0]
    z = jnp.dot(x, beta, precision=jax.lax.Precision.HIGHEST)
    return z / jnp.sqrt(jnp.asarray(d, x.dtype))


def polynomial_spec(task: Any) -> TaskSpec:
    """Static sizes: regression (0 classes), D-dimensional inputs, P train and `n_test` test points."""
    return TaskSpec("polynomial", 0, 0, task.dim, task.n_train, task.n_test, task.n_test)


def build_polynomial(
    task: Any,
    key: jax.Array,
    corrupt_fraction: jax.Array | float = 0.0,
    dtype: Any = jnp.float32,
) -> Dataset:
    """Polynomial regression [K]: subkeys `fold_in(key, 0/1/2)` for train x, test x and β.

    `corrupt_fraction` is ignored (no label noise for regression): `corrupted` is all False
    and `y_train_true` is `y_train`. `x_all`/`y_all` are the test set.
    """
    del corrupt_fraction
    s = polynomial_spec(task)
    dtype = jnp.dtype(dtype)
    train_key, test_key, beta_key = subkeys(key, 3)
    x_train = jax.random.normal(train_key, (s.n_train, task.dim), dtype)
    x_test = jax.random.normal(test_key, (s.n_test, task.dim), dtype)
    beta = jax.random.normal(beta_key, (task.dim,), dtype)
    target = lambda x: polynomial_target(project(x, beta), task.target, task.hermite_degree)
    y_train, y_test = target(x_train), target(x_test)
    return dataset_from_split(x_train, y_train, x_test, y_test, beta=beta)
