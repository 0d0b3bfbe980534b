"""`benchmarks/step_products.py`: a step's matrix products read from its program, and each timed alone."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import grok
from benchmarks.bench_limits import plain_program, step_flops
from benchmarks.step_products import Product, _alone, product_seconds, products_alone, step_products


def _mlp_program(steps: int = 3):
    """A plain two-product MLP trained by gradient descent in a scan, with a dot outside the scan."""
    x = jnp.ones((40, 12))
    w = (jnp.ones((12, 24)), jnp.ones((24, 10)))

    def loss(w, x):
        return jnp.sum(jnp.tanh(x @ w[0]) @ w[1])

    def train(w, x):
        w = jax.tree.map(lambda a: a * jnp.sum(x[:2] @ x[:2].T), w)  # before the loop: not a step's product
        step = lambda w, _: (jax.tree.map(lambda a, g: a - 0.1 * g, w, jax.grad(loss)(w, x)), None)  # noqa: E731
        return jax.lax.scan(step, w, None, length=steps)[0]

    return jax.jit(train), (w, x)


def test_products_of_a_step_are_the_forward_and_gradient_products_once_each():
    found = step_products(_mlp_program())
    shapes = sorted((p.lhs, p.rhs, p.count) for p in found)
    # forward x·W0 and h·W1; backward: dW1 = hᵀ·g, dh = g·W1ᵀ, dW0 = xᵀ·dz (dx is not needed)
    assert sum(p.count for p in found) == 5
    assert ((40, 12), (12, 24), 1) in shapes
    assert ((40, 24), (24, 10), 1) in shapes
    flops = {2 * 40 * 12 * 24, 2 * 40 * 24 * 10}
    assert {p.flops for p in found} <= flops
    assert sum(p.flops * p.count for p in found) == 3 * 2 * 40 * 12 * 24 - 2 * 40 * 12 * 24 + 3 * 2 * 40 * 24 * 10


def test_a_nested_scan_counts_its_products_as_often_as_it_runs():
    def train(w, x):
        def inner(w, _):
            return w @ x, None

        def step(w, _):
            return jax.lax.scan(inner, w, None, length=4)[0], None

        return jax.lax.scan(step, w, None, length=2)[0]

    (p,) = step_products((jax.jit(train), (jnp.ones((3, 8)), jnp.ones((8, 8)))))
    assert p.count == 4 and p.flops == 2 * 3 * 8 * 8


def test_a_program_without_a_scan_is_refused():
    with pytest.raises(ValueError, match="no lax.scan"):
        step_products((jax.jit(lambda a: a @ a), (jnp.ones((4, 4)),)))


def test_the_products_of_p_account_for_xla_s_flops_of_its_step():
    cfg = grok.preset("prieto-softmax-collapse").override(**{"task.p": 23, "model.widths": [32, 32]})
    program = plain_program(cfg, 1)
    products = step_products(program)
    dots = sum(p.flops * p.count for p in products)
    # XLA's count adds the elementwise work (softmax, ReLU, AdamW) to the products
    assert 0.85 * step_flops(program) < dots <= step_flops(program)
    assert all(p.is_matrix_product for p in products)


def test_batched_and_degenerate_products():
    dn = (((2,), (2,)), ((0,), (0,)))  # [b, m, k]·[b, n, k]
    p = Product((6, 5, 16), (6, 3, 16), "float32", "float32", dn, None, None)
    assert p.mnk == (5, 3, 16) and p.flops == 2 * 6 * 5 * 3 * 16
    assert not p.is_matrix_product
    assert p.describe() == "[b6,5,16*]·[b6,3,16*]"
    matrix = Product((64, 32), (32, 16), "float32", "float32", (((1,), (0,)), ((), ())), None, None, count=2)
    assert matrix.is_matrix_product and matrix.describe() == "[64,32*]·[32*,16] ×2"


def test_a_product_timed_alone_computes_the_product_each_iteration():
    dn = (((1,), (1,)), ((), ()))
    p = Product((20, 7), (9, 7), "float32", "float32", dn, None, None)
    fn, (a, b) = _alone(p, repeats=5)
    np.testing.assert_allclose(np.asarray(fn(a, b)), np.asarray(a) @ np.asarray(b).T, rtol=1e-5)
    # XLA does not hoist the product out of the loop: the compiled while body computes it
    hlo = fn.lower(a, b).compile().as_text()
    body_name = re.search(r" while\(.*body=%([\w.\-]+)", hlo).group(1)
    body = hlo[hlo.index(f"%{body_name} ") :].split("\n}\n")[0]
    assert re.search(r"= f32\[20,9\]\S* (dot|fusion)\(.*op_name=\"[^\"]*dot_general", body)
    # and nowhere else: a call is exactly `repeats` products
    entry = hlo[hlo.index("\nENTRY") :].split("\n}\n")[0]
    assert "dot_general" not in entry


def test_products_alone_times_every_matrix_product():
    total, library, timed = products_alone(_mlp_program(), rounds=1)
    assert library in {"eigen", "ynnpack", "default"}
    assert len(timed) == len(step_products(_mlp_program()))
    assert all(math.isfinite(s) and s > 0 for _, s in timed)
    assert total == pytest.approx(sum(p.count * s for p, s in timed))
    assert set(product_seconds(timed[0][0], rounds=1)) in ({"eigen", "ynnpack"}, {"default"})
