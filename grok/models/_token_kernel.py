"""A fused token-pair layer and readout for GPUs: φ(E[a] + E[p + b]) Wᵀ without the hidden tensor.

A one-hidden-layer token model ([D]'s quadratic MLP) spends most of a GPU step moving its hidden
tensor, [n, N] per member, through memory: XLA writes it out in the forward pass and reads it in
each of the three matrix products and the token rows' scatter-add (docs/architecture.md). The
Pallas (Triton) kernels here never write it. Each recomputes a tile of z = E[a] + E[p + b]
from E's rows (a few kilobytes per member, held in cache) where it is needed:

- `_logits_kernel`: logits [n, C] = φ(z) Wᵀ, one program per tile of examples;
- `_token_gradient_kernel`: ∂E [2p, N], one program per few rows of E (first the first token's
  rows, then the second's), summing φ'(z) ⊙ (g W) over the examples that use each row
  (`_examples_by_row`: one stable sort per step), one tile of hidden units after another,
  `row_tile_for` examples at a time. No atomics, so a run repeats bit for bit; the price is that
  g W is computed twice, once for each row an example uses. By default its first-token programs
  also sum gᵀ φ(z) over their examples (each example has one first token): parts of ∂W [C, N],
  added up afterwards, so that z and g are loaded once for both gradients;
- `_readout_gradient_kernel` (with `Tiling(readout_in_token_kernel=False)`): ∂W = gᵀ φ(z) in a
  kernel of its own, one program per tile of hidden units, summing over the examples in order.

Matrix products run at the precision JAX's default gives float32 on the GPU (TF32 on recent ones),
as XLA's do. `interpret=True` runs the kernels as ordinary JAX (any backend): the tests check
the values and gradients on a CPU that way, and lower the kernels for CUDA without a GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltr

from grok.models._common import Array, activation

FUSED_ACTIVATIONS = ("quadratic", "relu", "linear")


@dataclass(frozen=True)
class Tiling:
    """How the kernels cut their work: tile sizes (powers of two ≥ 16) and warps per program.

    The defaults are the tiling with the fewest modelled reads from L2 among those that spill
    (almost) no registers when compiled for an H200 (`benchmarks/gpu_aot.py`; docs/architecture.md,
    "Fused token kernels"); they are not yet timed on a GPU.
    """

    logits_examples: int = 128  # examples per program of the logits kernel
    logits_units: int = 64  # hidden units per step of its loop
    logits_warps: int = 8
    readout_units: int = 128  # hidden units per program of the readout-gradient kernel
    readout_examples: int = 32  # examples per step of its loop
    readout_warps: int = 8
    token_rows: int = 8  # rows of E per program of the embedding-gradient kernel (they share W's tiles)
    token_units: int = 64  # hidden units per step of its loop
    token_row_tiles: tuple[int, ...] = (64,)  # examples of one row per step (`row_tile_for` picks)
    token_warps: int = 8
    readout_in_token_kernel: bool = True  # ∂W summed by the embedding-gradient kernel, not its own


TILING = Tiling()


def token_readout_fusable(*, activation_name: str, dtype: jnp.dtype) -> bool:
    """Whether `token_readout` computes this layer: float32 and an activation its kernels know."""
    return activation_name in FUSED_ACTIVATIONS and jnp.dtype(dtype) == jnp.float32


def _class_tile(n_classes: int) -> int:
    return max(16, pl.next_power_of_2(n_classes))  # a Triton dot needs every side ≥ 16


def _rows_and_tokens(a_ref, b_ref, start, n: int, tile: int):
    rows = start + jnp.arange(tile)
    in_rows = rows < n
    a = pltr.load(a_ref.at[pl.ds(start, tile)], mask=in_rows, other=0)
    b = pltr.load(b_ref.at[pl.ds(start, tile)], mask=in_rows, other=0)
    return rows, in_rows, a, b


def _pre_activation(e_ref, a, b, in_rows, units, in_units):
    mask = in_rows[:, None] & in_units[None, :]
    za = pltr.load(e_ref.at[a[:, None], units[None, :]], mask=mask, other=0.0)
    zb = pltr.load(e_ref.at[b[:, None], units[None, :]], mask=mask, other=0.0)
    return za + zb


def _readout_tile(w_ref, units, in_units, classes, in_classes):
    """Wᵀ's tile [units, classes] read from W [C, N]."""
    mask = in_units[:, None] & in_classes[None, :]
    return pltr.load(w_ref.at[classes[None, :], units[:, None]], mask=mask, other=0.0)


def _logits_kernel(
    a_ref, b_ref, e_ref, w_ref, out_ref, *, n: int, width: int, n_classes: int, name: str, tiling: Tiling
):
    examples, unit_tile = tiling.logits_examples, tiling.logits_units
    start = pl.program_id(0) * examples
    rows, in_rows, a, b = _rows_and_tokens(a_ref, b_ref, start, n, examples)
    classes = jnp.arange(_class_tile(n_classes))
    in_classes = classes < n_classes

    def add_units(k, acc):
        units = k * unit_tile + jnp.arange(unit_tile)
        in_units = units < width
        h = activation(name, _pre_activation(e_ref, a, b, in_rows, units, in_units))
        return acc + pltr.dot(h, _readout_tile(w_ref, units, in_units, classes, in_classes))

    acc = jax.lax.fori_loop(
        0, pl.cdiv(width, unit_tile), add_units, jnp.zeros((examples, classes.shape[0]), jnp.float32)
    )
    pltr.store(out_ref.at[rows[:, None], classes[None, :]], acc, mask=in_rows[:, None] & in_classes[None, :])


def _readout_gradient_kernel(
    a_ref, b_ref, e_ref, g_ref, out_ref, *, n: int, width: int, n_classes: int, name: str, tiling: Tiling
):
    unit_tile, examples = tiling.readout_units, tiling.readout_examples
    units = pl.program_id(0) * unit_tile + jnp.arange(unit_tile)
    in_units = units < width
    classes = jnp.arange(_class_tile(n_classes))
    in_classes = classes < n_classes

    def add_examples(i, acc):
        rows, in_rows, a, b = _rows_and_tokens(a_ref, b_ref, i * examples, n, examples)
        h = activation(name, _pre_activation(e_ref, a, b, in_rows, units, in_units))
        g = pltr.load(g_ref.at[rows[:, None], classes[None, :]], mask=in_rows[:, None] & in_classes[None, :], other=0.0)
        return acc + pltr.dot(h, g, trans_a=True)

    acc = jax.lax.fori_loop(
        0, pl.cdiv(n, examples), add_examples, jnp.zeros((unit_tile, classes.shape[0]), jnp.float32)
    )
    pltr.store(out_ref.at[classes[None, :], units[:, None]], acc, mask=in_units[:, None] & in_classes[None, :])


def _token_gradient_kernel(
    examples_ref,
    starts_ref,
    a_ref,
    b_ref,
    e_ref,
    w_ref,
    g_ref,
    de_ref,
    *dw_refs,
    n: int,
    width: int,
    n_classes: int,
    name: str,
    tiling: Tiling,
    row_tile: int,
):
    """∂E's rows (and, with `tiling.readout_in_token_kernel`, each program's part of ∂W).

    Programs take `tiling.token_rows` rows of E at a time, first the p rows of the first token,
    then the p of the second, so that a program's rows are all of one kind. Every example is in
    exactly one first-token row, so the first-token programs' sums of gᵀ φ(z) over their examples
    add up to ∂W (`dw_refs`: one [C, N] part per first-token program, summed afterwards).
    """
    n_tokens, unit_tile, rows_per_program = e_ref.shape[0] // 2, tiling.token_units, tiling.token_rows
    programs_per_token = pl.cdiv(n_tokens, rows_per_program)
    half, local = pl.program_id(0) // programs_per_token, pl.program_id(0) % programs_per_token
    first_token = half == 0
    classes = jnp.arange(_class_tile(n_classes))
    in_classes = classes < n_classes

    def unit_step(k, carry):
        units = k * unit_tile + jnp.arange(unit_tile)
        in_units = units < width
        w = _readout_tile(w_ref, units, in_units, classes, in_classes)  # shared by the program's rows

        def one_row(i, dw):
            in_half = local * rows_per_program + i
            is_row = in_half < n_tokens  # the last program of each half may run past its rows
            row = half * n_tokens + jnp.minimum(in_half, n_tokens - 1)
            start = starts_ref[row]
            stop = jnp.where(is_row, starts_ref[row + 1], start)
            own = pltr.load(e_ref.at[row, units], mask=in_units, other=0.0)  # this row's part of every z

            def add_examples(j, sums):
                de, dw = sums
                at = start + j * row_tile + jnp.arange(row_tile)
                in_row = at < stop
                example = pltr.load(examples_ref.at[at], mask=in_row, other=0)
                a = pltr.load(a_ref.at[example], mask=in_row, other=0)
                b = pltr.load(b_ref.at[example], mask=in_row, other=0)
                other = jnp.where(in_row, a + b - row, 0)  # the example's other row: one of a, b is this one
                g_mask = in_row[:, None] & in_classes[None, :]
                g = pltr.load(g_ref.at[example[:, None], classes[None, :]], mask=g_mask, other=0.0)
                z_mask = in_row[:, None] & in_units[None, :]
                z = own[None, :] + pltr.load(e_ref.at[other[:, None], units[None, :]], mask=z_mask, other=0.0)
                h, pullback = jax.vjp(partial(activation, name), z)
                de = de + jnp.sum(pullback(pltr.dot(g, w, trans_b=True))[0], axis=0)
                if dw_refs:
                    dw = jax.lax.cond(first_token, lambda d: d + pltr.dot(h, g, trans_a=True), lambda d: d, dw)
                return de, dw

            chunks = (stop - start + row_tile - 1) // row_tile
            de, dw = jax.lax.fori_loop(0, chunks, add_examples, (jnp.zeros((unit_tile,), jnp.float32), dw))
            pltr.store(de_ref.at[row, units], de, mask=in_units & is_row)
            return dw

        no_dw = jnp.zeros((), jnp.float32)  # carried, never used, when ∂W has its own kernel
        dw = jnp.zeros((unit_tile, classes.shape[0]), jnp.float32) if dw_refs else no_dw
        dw = jax.lax.fori_loop(0, rows_per_program, one_row, dw)
        if dw_refs:
            mask = in_units[:, None] & in_classes[None, :] & first_token
            pltr.store(dw_refs[0].at[local, classes[None, :], units[:, None]], dw, mask=mask)
        return carry

    jax.lax.fori_loop(0, pl.cdiv(width, unit_tile), unit_step, 0)


def _expected_padded_examples(n: int, n_tokens: int, tile: int) -> float:
    """Examples the embedding-gradient kernel works through per row of E, padding included.

    A row's count k is taken as Binomial(p, n / p²) (the pairs of one first token, say, in a
    random train set of n of the p² pairs), and the kernel steps through it `tile` at a time.
    """
    q = min(n / n_tokens**2, 1.0)
    if q >= 1.0:
        return float(tile * -(-n // n_tokens // tile))
    log_q, log_not_q = math.log(q), math.log1p(-q)
    total = 0.0
    for k in range(1, n_tokens + 1):
        log_choose = math.lgamma(n_tokens + 1) - math.lgamma(k + 1) - math.lgamma(n_tokens - k + 1)
        total += math.exp(log_choose + k * log_q + (n_tokens - k) * log_not_q) * tile * -(-k // tile)
    return total


def row_tile_for(n: int, n_tokens: int, candidates: tuple[int, ...] = TILING.token_row_tiles) -> int:
    """Examples per step of the embedding-gradient kernel for n train pairs of p tokens.

    Of the candidates (by default 64 and 128, sizes a Hopper tensor-core product takes whole), the one with the least
    expected padding, the larger on a tie; never larger than a row can fill (at most p pairs).
    At [D]'s 60% of p = 97 (58 pairs a row on average) that is 64, where 128 would do twice the work.
    """
    fill = max(16, pl.next_power_of_2(min(n, n_tokens)))
    tiles = sorted({min(tile, fill) for tile in candidates}, reverse=True)
    return min(tiles, key=lambda tile: _expected_padded_examples(n, n_tokens, tile))


def _examples_by_row(a: Array, b: Array, n_rows: int) -> tuple[Array, Array]:
    """The examples that use each row of E, grouped by row: (examples [2n], starts [n_rows + 1]).

    Row r's examples are examples[starts[r]:starts[r + 1]] (an example appears once under its a
    and once under its p + b), in their original order.
    """
    rows = jnp.concatenate([a, b])
    order = jnp.argsort(rows, stable=True)
    examples = (order % a.shape[0]).astype(jnp.int32)
    starts = jnp.searchsorted(rows[order], jnp.arange(n_rows + 1, dtype=rows.dtype)).astype(jnp.int32)
    return examples, starts


def _call(kernel, out_shape, grid, *args, interpret: bool, num_warps: int, **static):
    return pl.pallas_call(
        partial(kernel, **static),
        out_shape=out_shape,
        grid=grid,
        compiler_params=pltr.CompilerParams(num_warps=num_warps, num_stages=2),
        interpret=interpret,
    )(*args)


def _token_indices(x: Array, n_tokens: int) -> tuple[Array, Array]:
    return x[:, 0].astype(jnp.int32), (n_tokens + x[:, 1]).astype(jnp.int32)


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6))
def token_readout(
    e: Array, w: Array, x: Array, n_tokens: int, name: str, interpret: bool = False, tiling: Tiling | None = None
) -> Array:
    """Logits φ(E[a] + E[p + b]) Wᵀ for token pairs x [n, 2], E [2p, N], W [C, N]: [n, C].

    The same function as the token layer followed by a bias-free readout, computed by fused
    kernels that never write the [n, N] hidden tensor (module docstring). float32 only.
    `tiling` (default: the module's `TILING`) only changes how the work is cut, not the result
    beyond float rounding.
    """
    tiling = tiling or TILING
    a, b = _token_indices(x, n_tokens)
    n, (width, n_classes) = x.shape[0], (e.shape[1], w.shape[0])
    static = dict(n=n, width=width, n_classes=n_classes, name=name, tiling=tiling)
    out = jax.ShapeDtypeStruct((n, n_classes), e.dtype)
    grid = (pl.cdiv(n, tiling.logits_examples),)
    return _call(_logits_kernel, out, grid, a, b, e, w, interpret=interpret, num_warps=tiling.logits_warps, **static)


def _token_readout_fwd(e, w, x, n_tokens, name, interpret, tiling):
    return token_readout(e, w, x, n_tokens, name, interpret, tiling), (e, w, x)


def _token_readout_bwd(n_tokens, name, interpret, tiling, residuals, g):
    tiling = tiling or TILING
    e, w, x = residuals
    a, b = _token_indices(x, n_tokens)
    n, (width, n_classes) = x.shape[0], (e.shape[1], w.shape[0])
    static = dict(n=n, width=width, n_classes=n_classes, name=name, interpret=interpret, tiling=tiling)
    g = g.astype(e.dtype)
    examples, starts = _examples_by_row(a, b, e.shape[0])
    tile = row_tile_for(n, n_tokens, tiling.token_row_tiles)
    programs_per_token = pl.cdiv(n_tokens, tiling.token_rows)
    out = [jax.ShapeDtypeStruct(e.shape, e.dtype)]
    if tiling.readout_in_token_kernel:
        out.append(jax.ShapeDtypeStruct((programs_per_token, *w.shape), w.dtype))
    token_gradient = _call(
        _token_gradient_kernel,
        out,
        (2 * programs_per_token,),
        examples,
        starts,
        a,
        b,
        e,
        w,
        g,
        row_tile=tile,
        num_warps=tiling.token_warps,
        **static,
    )
    de = token_gradient[0]
    if tiling.readout_in_token_kernel:
        return de, jnp.sum(token_gradient[1], axis=0), None
    dw = _call(
        _readout_gradient_kernel,
        jax.ShapeDtypeStruct(w.shape, w.dtype),
        (pl.cdiv(width, tiling.readout_units),),
        a,
        b,
        e,
        g,
        num_warps=tiling.readout_warps,
        **static,
    )
    return de, dw, None


token_readout.defvjp(_token_readout_fwd, _token_readout_bwd)
