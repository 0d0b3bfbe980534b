"""The plain-JAX AdamW loop the benchmarks compare the engine with is optax's AdamW, step for step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.plain_adamw import adamw_scan


def test_plain_adamw_equals_optax_adamw():
    x = jax.random.normal(jax.random.key(0), (16, 3))
    y = jax.random.normal(jax.random.key(1), (16,))
    params = {"w": jnp.arange(3.0), "b": jnp.array(0.5)}

    def loss(p, x, y):
        return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)

    hyper = dict(lr=0.03, b1=0.9, b2=0.98, eps=1e-8, weight_decay=0.1)
    ours = jax.jit(lambda p: adamw_scan(loss, p, (x, y), steps=7, **hyper))(params)
    opt = optax.adamw(hyper["lr"], b1=hyper["b1"], b2=hyper["b2"], eps=hyper["eps"], weight_decay=hyper["weight_decay"])
    state, p = opt.init(params), params
    for _ in range(7):
        updates, state = opt.update(jax.grad(loss)(p, x, y), state, p)
        p = optax.apply_updates(p, updates)
    for k in params:
        np.testing.assert_allclose(ours[k], p[k], rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours["w"], params["w"])
