"""A training step's matrix products, each timed on its own (not a benchmark itself: `bench_limits` uses it).

The products are the `dot_general`s in the body of the program's outermost `lax.scan` (one
training step; a scan nested in it counts as many times as its length), with their shapes, dtypes
and dimension numbers read from the program's jaxpr, the gradient's products included. Each is
then compiled alone, as a scan of `repeats` products whose left operand changes in one element
per iteration (so that XLA cannot hoist the product out of the loop; an O(1) in-place update), on
each of XLA:CPU's matrix-product libraries where both can be compiled (`xla_cpu_arms`), and the
fastest call kept. Their sum is what the step's products take at these shapes when nothing else
runs: a step that computes them as matrix products cannot come closer to the matmul limit than
that, whatever is fused or scheduled around them. Products with a side under `MIN_SIDE` (a
matrix-vector product, attention's scores over three positions) are left out: XLA computes those
inside its fusions, and alone they would be timed as something else.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import best_seconds
from benchmarks.xla_cpu_arms import compiled_arms

# a timed call runs at least this many FLOPs of products (a fraction of a second on a CPU), so that the
# per-call dispatch is a small part of it for the small products too
CALL_FLOPS = 2e8
MAX_REPEATS = 4096
# a product counts as a matrix product where its rows, columns and contracted length are all at least this
MIN_SIDE = 8


@dataclasses.dataclass(frozen=True)
class Product:
    """One `dot_general` of a step: its operands' shapes and dtypes, its parameters and how often a step runs it."""

    lhs: tuple[int, ...]
    rhs: tuple[int, ...]
    lhs_dtype: str
    rhs_dtype: str
    dimension_numbers: tuple
    precision: object
    preferred_element_type: object
    count: int = 1

    @property
    def flops(self) -> int:
        """2 × batch × m × n × k, per call."""
        (_, _), (lhs_batch, _) = self.dimension_numbers
        return 2 * math.prod(self.lhs[d] for d in lhs_batch) * math.prod(self.mnk)

    @property
    def mnk(self) -> tuple[int, int, int]:
        """Rows, columns and contracted length of each of its (batched) matrix products."""
        (lc, rc), (lb, rb) = self.dimension_numbers
        m = math.prod(n for d, n in enumerate(self.lhs) if d not in lc and d not in lb)
        n = math.prod(n for d, n in enumerate(self.rhs) if d not in rc and d not in rb)
        return m, n, math.prod(self.lhs[d] for d in lc)

    @property
    def is_matrix_product(self) -> bool:
        """Whether every one of m, n, k is at least `MIN_SIDE`: a matrix product, not a matrix-vector
        product, an outer product or attention's products over a few positions, which XLA computes
        inside its fusions (timed alone, those say nothing about the step)."""
        return min(self.mnk) >= MIN_SIDE

    def describe(self) -> str:
        """Its operands' shapes for a printed table, contracted axes starred and batch axes marked b:
        `[5107,200*]·[200*,200]`."""

        def shape(dims, contract, batch):
            return ",".join(
                f"{n}*" if d in contract else (f"b{n}" if d in batch else str(n)) for d, n in enumerate(dims)
            )

        (lc, rc), (lb, rb) = self.dimension_numbers
        times = f" ×{self.count}" if self.count > 1 else ""
        return f"[{shape(self.lhs, lc, lb)}]·[{shape(self.rhs, rc, rb)}]{times}"


def _sub_jaxprs(params: dict):
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if hasattr(item, "eqns"):
                yield item
            elif hasattr(item, "jaxpr") and hasattr(item.jaxpr, "eqns"):
                yield item.jaxpr


def _collect(jaxpr, multiplicity: int, found: dict) -> None:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            lhs, rhs = (v.aval for v in eqn.invars)
            p = eqn.params
            key = Product(
                tuple(lhs.shape),
                tuple(rhs.shape),
                str(lhs.dtype),
                str(rhs.dtype),
                p["dimension_numbers"],
                p.get("precision"),
                p.get("preferred_element_type"),
            )
            found[key] = found.get(key, 0) + multiplicity
        inner = multiplicity * (eqn.params["length"] if eqn.primitive.name == "scan" else 1)
        for sub in _sub_jaxprs(eqn.params):
            _collect(sub, inner, found)


def _outermost_scan_body(jaxpr):
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            return eqn.params["jaxpr"].jaxpr
        for sub in _sub_jaxprs(eqn.params):
            body = _outermost_scan_body(sub)
            if body is not None:
                return body
    return None


def step_products(program) -> list[Product]:
    """The matrix products of one step of a `(jitted fn, args)` training program (a `lax.scan` over
    steps), largest first; identical products are one entry with `count`."""
    fn, args = program
    body = _outermost_scan_body(jax.make_jaxpr(fn)(*args).jaxpr)
    if body is None:
        raise ValueError("the program has no lax.scan over steps")
    found: dict[Product, int] = {}
    _collect(body, 1, found)
    products = [dataclasses.replace(k, count=n) for k, n in found.items()]
    return sorted(products, key=lambda p: -p.flops * p.count)


def _alone(product: Product, repeats: int):
    def dot(a, b):
        return jax.lax.dot_general(
            a,
            b,
            product.dimension_numbers,
            precision=product.precision,
            preferred_element_type=product.preferred_element_type,
        )

    def loop(a, b):
        def body(carry, _):
            a, _ = carry
            out = dot(a, b)
            # `out`'s first element times 0 changes nothing but makes the next product depend on this one
            first = (0,) * a.ndim
            a = a.at[first].add((out.reshape(-1)[0] * 0).astype(a.dtype))
            return (a, out), None

        out = jax.eval_shape(dot, a, b)
        return jax.lax.scan(body, (a, jnp.zeros(out.shape, out.dtype)), None, length=repeats)[0][1]

    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal(product.lhs), dtype=product.lhs_dtype)
    b = jnp.asarray(rng.standard_normal(product.rhs), dtype=product.rhs_dtype)
    return jax.jit(loop), (a, b)


def product_seconds(product: Product, rounds: int = 3) -> dict[str, float]:
    """Seconds of one call of `product` alone, per matrix-product library (`eigen`/`ynnpack`, or
    `default` where only one can be compiled), fastest of `rounds` alternating rounds."""
    repeats = int(min(MAX_REPEATS, max(1, math.ceil(CALL_FLOPS / product.flops))))
    fn, args = _alone(product, repeats)
    arms = compiled_arms(fn, args)
    best = {arm: math.inf for arm in arms}
    for _ in range(rounds):
        for arm, compiled in arms.items():
            best[arm] = min(best[arm], best_seconds(compiled, *args, repeats=3, min_seconds=0.1) / repeats)
    return best


def products_alone(program, rounds: int = 3) -> tuple[float, str, list[tuple[Product, float]]]:
    """Seconds per step of the step's matrix products (`Product.is_matrix_product`), each alone, with
    the library whose sum is the smaller; that library's name; and (product, seconds per call) for each."""
    products = [p for p in step_products(program) if p.is_matrix_product]
    timed = [(p, product_seconds(p, rounds)) for p in products]
    arms = timed[0][1].keys() if timed else ["default"]
    totals = {arm: sum(p.count * t[arm] for p, t in timed) for arm in arms}
    arm = min(totals, key=totals.get)
    return totals[arm], arm, [(p, t[arm]) for p, t in timed]
