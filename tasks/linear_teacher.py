"""Reduced-rank regression with a linear teacher (docs/formulas.md §8): the setting whose learning
coefficient is known in closed form (Aoyagi & Watanabe 2005), and the classic setting of
saddle-to-saddle, rank-by-rank learning in deep linear networks.

x ~ N(0, I_M); y = x T + σ ε with ε ~ N(0, I_N) and T = A Bᵀ/√r a random rank-r matrix
(A [M, r], B [N, r] standard normal); r = 0 gives T = 0 (pure-noise targets).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from tasks.dataset import Dataset, TaskSpec, dataset_from_split, subkeys


def linear_teacher_spec(task: Any) -> TaskSpec:
    """Static sizes: regression (0 classes) with M inputs and N outputs, `n_train`/`n_test` examples."""
    m, n = task.option("linear_teacher", "input_dim"), task.option("linear_teacher", "output_dim")
    return TaskSpec("linear_teacher", 0, 0, m, task.n_train, task.n_test, task.n_test, n)


def teacher_matrix(key: jax.Array, m: int, n: int, rank: int, dtype: Any = jnp.float32) -> jax.Array:
    """T = A Bᵀ/√r [m, n] of rank r (almost surely) from standard normal A [m, r], B [n, r]; zeros for r = 0."""
    if rank == 0:
        return jnp.zeros((m, n), dtype)
    k_a, k_b = subkeys(key, 2)
    a = jax.random.normal(k_a, (m, rank), dtype)
    b = jax.random.normal(k_b, (n, rank), dtype)
    return jnp.dot(a, b.T, precision=jax.lax.Precision.HIGHEST) / jnp.sqrt(jnp.asarray(rank, dtype))


def build_linear_teacher(task: Any, key: jax.Array, corrupt_fraction: Any = 0.0, dtype: Any = jnp.float32) -> Dataset:
    """Linear-teacher data: subkeys `fold_in(key, 0..4)` for train x, test x, the teacher and the
    train and test noise. `corrupt_fraction` is ignored (regression); `beta` holds T flattened."""
    del corrupt_fraction
    opt = dict(task.options_of("linear_teacher"))
    s = linear_teacher_spec(task)
    dtype = jnp.dtype(dtype)
    k_train, k_test, k_teacher, k_noise_train, k_noise_test = subkeys(key, 5)
    t = teacher_matrix(k_teacher, s.input_dim, s.n_outputs, opt["rank"], dtype)
    sigma = jnp.asarray(opt["noise"], dtype)

    def sample(k_x, k_noise, n):
        x = jax.random.normal(k_x, (n, s.input_dim), dtype)
        noise = jax.random.normal(k_noise, (n, s.n_outputs), dtype)
        return x, jnp.dot(x, t, precision=jax.lax.Precision.HIGHEST) + sigma * noise

    x_train, y_train = sample(k_train, k_noise_train, s.n_train)
    x_test, y_test = sample(k_test, k_noise_test, s.n_test)
    return dataset_from_split(x_train, y_train, x_test, y_test, beta=t.reshape(-1))
