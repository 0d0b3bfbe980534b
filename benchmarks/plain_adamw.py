"""The plain-JAX AdamW loop the benchmarks measure the engine against (not a benchmark itself)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def adamw_scan(
    loss: Callable[..., jax.Array],
    params,
    data: tuple,
    *,
    steps: int,
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    weight_decay: float | jax.Array,
):
    """`steps` full-batch AdamW steps of `loss(params, *data)` as one `lax.scan`, with no checks,
    metrics or probes; returns the final parameters. Pure: call it under `jit` (and `vmap`).

    >>> import jax.numpy as jnp
    >>> w = adamw_scan(lambda w, x: jnp.sum((w - x) ** 2), jnp.zeros(2), (jnp.ones(2),),
    ...                steps=200, lr=0.05, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0)
    >>> bool(jnp.allclose(w, 1.0, atol=0.05))
    True
    """

    def step(carry, _):
        w, mu, nu, t = carry
        g = jax.grad(loss)(w, *data)
        t = t + 1.0
        mu = jax.tree.map(lambda a, b: b1 * a + (1 - b1) * b, mu, g)
        nu = jax.tree.map(lambda a, b: b2 * a + (1 - b2) * b * b, nu, g)

        def update(w, a, b):
            adam = (a / (1 - b1**t)) / (jnp.sqrt(b / (1 - b2**t)) + eps)
            return w - lr * (adam + weight_decay * w)

        return (jax.tree.map(update, w, mu, nu), mu, nu, t), None

    zeros = jax.tree.map(jnp.zeros_like, params)
    (w, *_), _ = jax.lax.scan(step, (params, zeros, zeros, 0.0), None, length=steps)
    return w
