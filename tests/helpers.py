"""Helpers shared by several test modules (importable because tests/ is on pytest's sys.path)."""

from __future__ import annotations

from pathlib import Path

from grok.cli import build_parser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# overrides that make a modular preset train in a second (p = 13, 8 hidden units, 8 steps)
TINY = {
    "task.p": 13,
    "task.train_fraction": 0.5,
    "model.widths": [8],
    "train.steps": 8,
    "train.log_every": 4,
    "train.schedule": "linear",
}


def run_command(argv: list[str]) -> int:
    """Run a `grok` subcommand through the real parser, letting its errors propagate (no exit-2 handling)."""
    args = build_parser().parse_args(argv)
    return args.func(args)


def assert_png(path: Path, min_bytes: int = 10_000) -> None:
    """A PNG file with at least `min_bytes` (a figure with content, not an empty canvas)."""
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes, len(data)


def assert_token_layer_form_trains_the_same(switch_on, marker: str, rtol: float, atol: float) -> None:
    """A GPU form of the token layer, switched on by `switch_on()` (monkeypatches), trains the
    same parameters as the plain layer: 5 engine steps of 3 tiny [D] members each way.

    The plain run must move the parameters (a frozen run would match trivially), and the
    switched program must contain `marker` (its jaxpr), so that the form was really taken.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    import grok
    from benchmarks.bench_limits import engine_program

    cfg = grok.preset("doshi-coexistence").override(**{"task.p": 11, "model.widths": [16]})
    fn, args = engine_program(cfg, steps=5, members=3)
    want = jax.tree.leaves(fn(*args).params)
    moved = [float(jnp.max(jnp.abs(w - p))) for w, p in zip(want, jax.tree.leaves(args[0].params), strict=True)]
    assert min(moved) > 1e-4
    switch_on()
    jax.clear_caches()
    fn, args = engine_program(cfg, steps=5, members=3)
    assert marker in str(jax.make_jaxpr(fn)(*args))
    for got, w in zip(jax.tree.leaves(fn(*args).params), want, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(w), rtol=rtol, atol=atol)
