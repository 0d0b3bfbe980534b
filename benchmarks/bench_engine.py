"""Training throughput at the [P] setting against the machine's matmul rate, in one process.

Setting: add mod 113, 40% train (5107 examples), MLP 200-200 ReLU without biases,
full batch, AdamW. Reports steps/s for 1 and for 16 members, the model FLOP rate
that implies, and its fraction of a large float32 matmul's FLOP rate measured here.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

import grok

STEPS = 200
MATMUL_N = 2048


def train_flops_per_step(cfg: grok.Config) -> float:
    """Matmul FLOPs of one full-batch step: forward + backward (≈ 3 × forward), gather layer excluded."""
    widths = list(cfg.model.widths) + [cfg.task.p]
    forward = sum(2 * cfg.n_train * a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return 3.0 * forward


def matmul_gflops(n: int = MATMUL_N, repeats: int = 10) -> float:
    """Achieved GFLOP/s of an n×n float32 matmul under jit."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        f(a).block_until_ready()
    return repeats * 2 * n**3 / (time.perf_counter() - start) / 1e9


def steps_per_second(cfg: grok.Config, members: int) -> float:
    """Training steps per second per member, compile time excluded (a warm-up run compiles)."""
    seeds = range(members)
    grok.train(cfg, seeds=seeds, progress=False)
    start = time.perf_counter()
    grok.train(cfg.override(**{"optim.lr": cfg.optim.lr * 0.5}), seeds=seeds, progress=False)
    return STEPS / (time.perf_counter() - start)


def run() -> dict[str, float]:
    cfg = grok.preset("prieto-perpgrad").override(
        **{"optim.transforms": [], "train.steps": STEPS, "train.log_every": STEPS // 2}
    )
    flops = train_flops_per_step(cfg)
    peak = matmul_gflops()
    results = {"matmul_gflops": peak, "train_gflop_per_step": flops / 1e9}
    print(f"matmul {MATMUL_N}² float32: {peak:.1f} GFLOP/s; one training step: {flops / 1e9:.2f} GFLOP")
    print(f"{'members':>8} {'steps/s':>9} {'member-steps/s':>15} {'GFLOP/s':>9} {'of matmul':>10}")
    for members in (1, 16):
        sps = steps_per_second(cfg, members)
        achieved = sps * members * flops / 1e9
        results[f"steps_per_s_{members}"] = sps
        results[f"fraction_of_matmul_{members}"] = achieved / peak
        print(f"{members:>8} {sps:>9.2f} {sps * members:>15.1f} {achieved:>9.1f} {achieved / peak:>10.1%}")
    return results


if __name__ == "__main__":
    run()
