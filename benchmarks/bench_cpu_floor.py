"""How much a CPU sweep can gain at all: the [D] step in plain JAX, one member vs vmapped blocks.

`bench_sweep` compares the engine's sweep with the engine's one-by-one runs. This asks what
XLA:CPU itself allows: the same full-batch step as the engine's [D] member (first layer
E[a] + E[p + b] as a gather, z², readout stored [C, N], one-hot MSE, AdamW) written directly
in JAX — no divergence checks, metrics or probes — trained as `jit(scan)` for one member and
as `jit(vmap(scan))` for blocks of members, on one device. The engine's lone member is timed
beside it. A sweep on a C-core CPU beats one-by-one runs by at most about
C × (engine, lone) / (plain JAX, best block): what a block saves is per-operation overhead; its
matrix products run no faster per member than a lone member's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import grok
from benchmarks.bench_sweep import SIZES
from benchmarks.plain_adamw import adamw_scan
from benchmarks.timing import best_seconds
from grok.sweep import SweepSpec

SETTING = "[D] p=23, N=64"
BLOCKS = (1, 6, 16, 64)
REPEATS = 5


def plain_program(p: int, n: int, m: int, steps: int, block: int):
    """`jit(vmap(scan))` of `steps` full-batch AdamW steps of `block` quadratic-MLP members, and inputs."""
    k_e, k_w, k_x, k_y = jax.random.split(jax.random.key(0), 4)
    emb = 0.1 * jax.random.normal(k_e, (block, 2 * p, n))
    readout = 0.1 * jax.random.normal(k_w, (block, p, n))
    x = jax.random.randint(k_x, (block, m, 2), 0, p)
    y = jax.nn.one_hot(jax.random.randint(k_y, (block, m), 0, p), p)
    weight_decay = jnp.linspace(0.0, 1.0, block)

    def loss(params, x, y):
        emb, readout = params
        z = emb[x[:, 0]] + emb[p + x[:, 1]]
        out = jnp.square(z) @ readout.T
        return jnp.mean(jnp.square(out - y))  # [D]: averaged over samples × classes

    def member(emb, readout, x, y, wd):
        return adamw_scan(
            loss, (emb, readout), (x, y), steps=steps, lr=0.01, b1=0.9, b2=0.98, eps=1e-8, weight_decay=wd
        )

    return jax.jit(jax.vmap(member)), (emb, readout, x, y, weight_decay)


def run() -> dict[str, float]:
    spec = SweepSpec.parse(SIZES[SETTING])
    (group,) = spec.groups()
    cfg, (_, first) = group.config, group.members[0]
    p, n, steps = cfg.task.p, cfg.model.widths[0], cfg.train.steps
    m = cfg.n_train
    cores = len(jax.devices())

    def lone_member():
        return grok.train_members(cfg, [first], progress=False).history

    engine_us = 1e6 * best_seconds(lone_member, repeats=REPEATS) / steps
    print(f"{SETTING}, {m} training pairs, {steps} steps; the engine's lone member: {engine_us:.0f} µs/step")
    print(f"{'plain JAX block':>16}{'µs/member-step':>16}{'ceiling':>9}")
    out = {"engine_lone_us": engine_us, "cores": float(cores)}
    for block in BLOCKS:
        fn, args = plain_program(p, n, m, steps, block)
        us = 1e6 * best_seconds(fn, *args, repeats=REPEATS) / (steps * block)
        ceiling = cores * engine_us / us
        print(f"{block:>16}{us:>16.0f}{ceiling:>8.1f}x", flush=True)
        out |= {f"plain_block_{block}_us": us, f"ceiling_block_{block}": ceiling}
    return out


if __name__ == "__main__":
    run()
