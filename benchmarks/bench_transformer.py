"""The [N] transformer's training step: the engine against the same model in plain JAX, in one process.

The plain-JAX program is the step with nothing else: the one-layer transformer of
`grok/models/_transformer.py` (token + position embeddings, 4 heads, only the '=' query, ReLU MLP with
biases, unembedding stored [C, d], no LayerNorm) written as a dict of arrays, full-batch softmax
cross-entropy and AdamW (β = 0.9, 0.98, decoupled weight decay, as `nanda-progress`), trained as
`jit(scan)` of the step. The engine trains one member of the preset with an evaluation only at
step 0 and at the end (and, in the last row, with `nanda-progress`'s own logging: every 100 steps
with the `progress` probe). Everything is compiled by an untimed first call; a row is the fastest of
a few calls. The engine's extra work per step is its divergence check (a finiteness test of every
new parameter), the path length (‖θ_{t+1} − θ_t‖) and the optimizer's injected hyperparameters; the
row "the engine step alone" times just that step (`MemberProgram.step` in `jit(scan)`) at the small
size, without the run around it (initialization, evaluations, host loop).

Sizes: `nanda-progress-small` (p = 47) and the paper's `nanda-progress` (p = 113), each timed over
`STEPS` steps; the paper run's total is extrapolated to its 40 000 steps.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

import grok
from benchmarks.plain_adamw import adamw_scan
from benchmarks.timing import best_seconds
from grok import engine

STEPS = 1000


def plain_program(cfg: grok.Config, steps: int):
    """`jit(scan)` of `steps` full-batch AdamW steps of [N]'s transformer at `cfg`'s size, and its inputs."""
    p, d, d_mlp, heads = cfg.task.p, cfg.model.d_model, cfg.model.d_mlp, cfg.model.n_heads
    c, m = cfg.spec.n_classes, cfg.n_train
    o = cfg.optim
    keys = iter(jax.random.split(jax.random.key(0), 16))

    def normal(*shape, fan_in=d):
        return jax.random.normal(next(keys), shape) / math.sqrt(fan_in)

    params = {
        "tok": normal(p + 1, d),
        "pos": normal(3, d),
        "wq": normal(d, d),
        "wk": normal(d, d),
        "wv": normal(d, d),
        "wo": normal(d, d),
        "bo": jnp.zeros(d),
        "w_in": normal(d, d_mlp),
        "b_in": jnp.zeros(d_mlp),
        "w_out": normal(d_mlp, d, fan_in=d_mlp),
        "b_out": jnp.zeros(d),
        "unembed": normal(c, d),
    }
    x = jax.random.randint(next(keys), (m, 2), 0, p)
    y = jax.random.randint(next(keys), (m,), 0, c)
    hd = d // heads

    def loss(w, x, y):
        tokens = jnp.concatenate([x, jnp.full((m, 1), p, x.dtype)], axis=1)
        h = w["tok"][tokens] + w["pos"][None]  # [m, 3, d]
        q = (h[:, -1] @ w["wq"]).reshape(m, heads, hd)
        k = (h @ w["wk"]).reshape(m, 3, heads, hd)
        v = (h @ w["wv"]).reshape(m, 3, heads, hd)
        attn = jax.nn.softmax(jnp.einsum("nhe,nthe->nht", q, k) / math.sqrt(hd), axis=-1)
        r = h[:, -1] + jnp.einsum("nht,nthe->nhe", attn, v).reshape(m, d) @ w["wo"] + w["bo"]
        r = r + jax.nn.relu(r @ w["w_in"] + w["b_in"]) @ w["w_out"] + w["b_out"]
        logp = jax.nn.log_softmax(r @ w["unembed"].T, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))

    def train(params, x, y):
        return adamw_scan(
            loss, params, (x, y), steps=steps, lr=o.lr, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay
        )

    return jax.jit(train), (params, x, y)


def engine_seconds(cfg: grok.Config, repeats: int) -> float:
    """Seconds for one member of `cfg` through `grok.train_members` (one device), compile excluded."""

    def train():
        return grok.train_members(cfg, [{"seed": 0}], progress=False, shard=False).history

    return best_seconds(train, repeats=repeats)


def step_program(cfg: grok.Config, steps: int):
    """The engine's own step (`MemberProgram.step`: divergence check, path length, AdamW) as `jit(scan)`,
    with no evaluation or host loop around it, and its inputs: what the engine adds to the plain step."""
    static, dyn = engine.stack_dynamic([cfg])
    one = {k: jnp.asarray(v[0]) for k, v in dyn.items()}
    prog = engine.member_program(static)

    def train(state, dyn):
        # the whole state but the (unchanged) data, as a chunk keeps it: returning the parameters
        # alone would let XLA drop the per-step work that only feeds the rest (the path length)
        return jax.lax.scan(lambda s, _: (prog.step(s, dyn), None), state, None, length=steps)[0]._replace(data=None)

    return jax.jit(train), (jax.jit(lambda d: prog.init(d)[0])(one), one)


def run() -> dict[str, float]:
    out: dict[str, float] = {}
    print(f"{STEPS} full-batch steps, one member, one CPU device; µs per step (fastest of a few calls)")
    print(f"{'setting':>40}{'engine':>10}{'plain JAX':>11}{'ratio':>8}")
    for name, repeats in (("nanda-progress-small", 3), ("nanda-progress", 2)):
        paper = grok.preset(name)
        cfg = paper.override(**{"train.steps": STEPS, "train.log_every": STEPS, "train.probes": []})
        fn, args = plain_program(cfg, STEPS)
        plain_us = 1e6 * best_seconds(fn, *args, repeats=repeats) / STEPS
        engine_us = 1e6 * engine_seconds(cfg, repeats) / STEPS
        t = cfg.task
        label = f"{name} (p={t.p}, {cfg.n_train} pairs)"
        print(f"{label:>40}{engine_us:>10.0f}{plain_us:>11.0f}{engine_us / plain_us:>7.2f}x", flush=True)
        key = name.replace("-", "_")
        out |= {f"{key}_engine_us": engine_us, f"{key}_plain_us": plain_us, f"{key}_ratio": engine_us / plain_us}
        if name == "nanda-progress-small":
            fn, args = step_program(cfg, STEPS)
            step_us = 1e6 * best_seconds(fn, *args, repeats=repeats) / STEPS
            print(f"{'  the engine step alone, jit(scan)':>40}{step_us:>10.0f}{'':>11}{step_us / plain_us:>7.2f}x")
            out[f"{key}_step_us"] = step_us
    logged = paper.override(**{"train.steps": STEPS, "train.probes": ["progress"]})
    probe_us = 1e6 * engine_seconds(logged, 1) / STEPS
    per_step = {"probe": probe_us, "engine": engine_us, "plain": plain_us}
    hours = {k: us * paper.train.steps / 1e6 / 3600 for k, us in per_step.items()}
    total_h = hours["probe"]
    print(
        f"{'nanda-progress, log every 100 + probe':>40}{probe_us:>10.0f}{'':>11}{probe_us / plain_us:>7.2f}x\n"
        f"the paper's {paper.train.steps} steps on this CPU: ~{total_h:.1f} h with the probe, "
        f"~{hours['engine']:.1f} h without, ~{hours['plain']:.1f} h plain JAX"
    )
    out |= {"nanda_progress_probe_us": probe_us, "nanda_progress_paper_hours": total_h}
    return out


if __name__ == "__main__":
    run()
