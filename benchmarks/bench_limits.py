"""How close a training step comes to the CPU's limit: the engine, plain JAX and the matmul peak, in one process.

For [P]'s softmax-collapse setting (add mod 113, 40% train, ReLU MLP 200-200), [D]'s paper-size
member (add mod 97, 50% train, quadratic MLP N = 500) and the small [N] transformer
(`nanda-progress-small`), and a tiny [D] member (p = 23, N = 64, `bench_cpu_floor`'s size):

- **FLOPs of one step**, counted by XLA's cost analysis of the compiled plain-JAX step
  (`jax.jit(f).lower(...).compile().cost_analysis()` of a `scan` of one step; XLA counts a loop's
  body once, so a scan of two steps counts the same, checked); the engine's own step counts
  0.1–0.3% more (2.7% at the tiny size: its divergence check and path length), except [N]'s,
  whose one-layer transformer computes the '=' position's query, key and value once, not once per
  example (printed below the table where the two counts differ by more than 5%);
- **the limit**: those FLOPs at the rate of a 2048² float32 matmul timed in this process: the
  fastest of the matmuls timed before the first row and after each (on a shared machine the
  fastest is the one least disturbed), each compiled with both of XLA:CPU's matrix-product
  libraries (Eigen and YNNPACK, `benchmarks/xla_cpu_arms.py`), so that the limit is the faster's;
- **the step's matrix products alone** (`benchmarks/step_products.py`): each product of the
  engine's step (its shapes and dimension numbers from the jaxpr, the gradient's included; the
  plain step's are the same but for [N]'s) compiled and
  timed on its own, with the library whose sum is smaller, and summed; no step that computes them
  as matrix products can be faster, so its ratio to the limit is how close these shapes let a step
  come on this machine;
- **the engine's step alone** (`MemberProgram.step` — divergence check, path length, the
  optimizer with injected hyperparameters — as `jit(scan)`, returning the whole state but the
  data, as a chunk keeps it), **its lone run**
  (`grok.train_members`, one member, evaluations at the start and the end only), **16 members
  vmapped** (`jit(vmap(scan))` of the step, per member-step), and **the plain-JAX step** of the
  same model (nothing but loss, gradient and AdamW, `jit(scan)`).

Every figure is the fastest of at least 3 calls, and of as many more as fit in 1 s of timed calls
(`GROK_BENCH_MIN_SECONDS`), after an untimed compiling call; "of limit" is
limit / time, the fraction of the matmul rate the step reaches. On a shared machine the ratios,
taken minutes apart in one process, mean more than the absolute times.
"""

from __future__ import annotations

import math
import os
import time

import jax
import jax.numpy as jnp

import grok
from benchmarks import bench_cpu_floor, bench_transformer
from benchmarks.plain_adamw import adamw_scan
from benchmarks.step_products import products_alone
from benchmarks.timing import best_seconds
from benchmarks.xla_cpu_arms import compiled_arms
from grok import cpu_matmul, engine
from grok.forward import MEMBER_BATCH_AXIS

MATMUL_N = 2048
MEMBERS = 16
# (label, preset, overrides, steps of a lone timing, steps of a 16-member timing)
SETTINGS = (
    ("[P] softmax collapse", "prieto-softmax-collapse", {}, 30, 4),
    ("[D] paper-size member", "doshi-coexistence", {}, 30, 4),
    ("[N] small transformer", "nanda-progress-small", {}, 100, 20),
    ("[D] tiny, p=23 N=64", "doshi-coexistence", {"task.p": 23, "model.widths": [64]}, 300, 40),
)
REPEATS = int(os.environ.get("GROK_BENCH_REPEATS", "3"))
# and at least this many seconds of timed calls per figure, so that short calls (the tiny member's)
# are sampled as often as long ones
MIN_SECONDS = float(os.environ.get("GROK_BENCH_MIN_SECONDS", "1.0"))
# The CPU speed goals this benchmark measures (the README's "Close to the limit" tracks them):
# (what, key of `run()`'s result, "min" (the value must reach the bound) or "max", bound, unit)
GOALS = (
    ("[P] engine step", "prieto_softmax_collapse_engine_step_of_limit", "min", 0.75, "of the limit"),
    ("[D] paper-size lone step", "doshi_coexistence_engine_step_of_limit", "min", 0.60, "of the limit"),
    ("tiny lone run", "doshi_coexistence_tiny_engine_run_over_plain", "max", 1.3, "the plain-JAX step"),
)


def setting_key(preset: str, overrides: dict) -> str:
    """The prefix of a setting's figures in `run()`'s result: the preset's name, `_tiny` when resized."""
    return preset.replace("-", "_") + ("_tiny" if overrides else "")


def goal_lines(out: dict[str, float]) -> list[str]:
    """One line per goal of `GOALS` whose figure `out` holds: the figure, the bound, met or not."""
    lines = []
    for what, key, kind, bound, unit in GOALS:
        if key not in out:
            continue
        value = out[key]
        met = value >= bound if kind == "min" else value <= bound
        shown, goal = (f"{value:.1%}", f"≥ {bound:.0%}") if kind == "min" else (f"{value:.2f}×", f"≤ {bound:g}×")
        lines.append(f"{what}: {shown} {unit} (goal {goal}): {'met' if met else 'not met'}")
        budget = _budget_line(out, key, bound) if kind == "min" and not met else None
        if budget:
            lines.append(f"  {budget}")
    return lines


def _budget_line(out: dict[str, float], key: str, bound: float) -> str | None:
    """For an unmet share of the limit: the step time the goal allows, the part of it the step's
    matrix products take on their own, and what is left for the rest of the step against what the
    rest takes now (None where `out` lacks a figure)."""
    stem = key.removesuffix("_of_limit")  # e.g. prieto_softmax_collapse_engine_step
    setting = stem.removesuffix("_engine_step")
    names = (f"{setting}_limit_ms", f"{setting}_products_ms", f"{stem}_ms")
    if not all(name in out for name in names):
        return None
    limit, products, step = (out[name] for name in names)
    allowed = limit / bound
    head = f"at {bound:.0%} a step takes {allowed:.2f} ms; its matrix products alone take {products:.2f} ms"
    if products >= allowed:
        return f"{head}: more than that, so no step made of these products reaches the goal on this machine"
    rest = f"leaving {allowed - products:.2f} ms for the rest of the step, which now takes {step - products:.2f} ms"
    return f"{head}, {rest}"


def step_flops(program) -> float:
    """FLOPs of one call of a `(jitted fn, args)` program as XLA's cost analysis of the compiled program counts them."""
    fn, args = program
    cost = fn.lower(*args).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jaxlibs: one dict per program
        cost = cost[0]
    return float(cost["flops"])


def matmul_seconds_per_flop(n: int = MATMUL_N, repeats: int = 10, dtype=jnp.float32) -> float:
    """Seconds per FLOP of an n×n matmul under jit on the default device (fastest of `repeats`; on a CPU,
    the faster of XLA's two matrix-product libraries, `benchmarks/xla_cpu_arms.py`)."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    arms = compiled_arms(jax.jit(jnp.matmul), (a, b))
    return min(best_seconds(c, a, b, repeats=repeats) for c in arms.values()) / (2 * n**3)


def prieto_plain_program(cfg: grok.Config, steps: int):
    """`jit(scan)` of `steps` full-batch AdamW steps of [P]'s MLP (gather first layer, ReLU, no
    biases, readout stored [C, N], softmax cross-entropy), and its inputs."""
    p, widths, m, o = cfg.task.p, cfg.model.widths, cfg.n_train, cfg.optim
    keys = iter(jax.random.split(jax.random.key(0), len(widths) + 3))
    sizes = [2 * p, *widths]
    params = [jax.random.normal(next(keys), (a, b)) / math.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    params.append(jax.random.normal(next(keys), (p, widths[-1])) / math.sqrt(widths[-1]))
    x = jax.random.randint(next(keys), (m, 2), 0, p)
    y = jax.random.randint(next(keys), (m,), 0, p)

    def loss(w, x, y):
        first, *hidden, readout = w
        h = jax.nn.relu(first[x[:, 0]] + first[p + x[:, 1]])
        for k in hidden:
            h = jax.nn.relu(h @ k)
        logp = jax.nn.log_softmax(h @ readout.T, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))

    def train(w, x, y):
        return adamw_scan(
            loss, w, (x, y), steps=steps, lr=o.lr, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay
        )

    return jax.jit(train), (params, x, y)


def plain_program(cfg: grok.Config, steps: int):
    """The plain-JAX `jit(scan)` training program of `cfg`'s model, and its inputs."""
    kind = cfg.model.kind
    if kind == "mlp":
        return prieto_plain_program(cfg, steps)
    if kind == "quadratic_mlp":
        return bench_cpu_floor.plain_program(cfg.task.p, cfg.model.widths[0], cfg.n_train, steps, 1)
    if kind == "transformer":
        return bench_transformer.plain_program(cfg, steps)
    raise ValueError(f"no plain-JAX program for model.kind={kind!r}")


def engine_program(cfg: grok.Config, steps: int, members: int):
    """The engine's step (`MemberProgram.step`) as `jit(scan)` for one member, or `jit(vmap(scan))`
    over `members` seeds, and its inputs (the initial state and the members' dynamic values)."""
    static, dyn = engine.stack_dynamic([cfg.override(seed=s) for s in range(members)])
    prog = engine.member_program(static)

    def train(state, dyn):
        # the whole state but the (unchanged) data, as a chunk keeps it: returning the parameters
        # alone would let XLA drop the per-step work that only feeds the rest (the path length)
        return jax.lax.scan(lambda s, _: (prog.step(s, dyn), None), state, None, length=steps)[0]._replace(data=None)

    def start(dyn):  # `init`, not `init_state`: the step-0 loss is what the step's divergence check compares to
        return prog.init(dyn)[0]

    if members == 1:
        one = {k: jnp.asarray(v[0]) for k, v in dyn.items()}
        return jax.jit(train), (jax.jit(start)(one), one)
    stacked = {k: jnp.asarray(v) for k, v in dyn.items()}
    return jax.jit(jax.vmap(train, axis_name=MEMBER_BATCH_AXIS)), (jax.jit(jax.vmap(start))(stacked), stacked)


def engine_run_seconds(cfg: grok.Config, repeats: int) -> float:
    """Seconds of one member's run through `grok.train_members` (one device), compile excluded."""

    def train():
        return grok.train_members(cfg, [{"seed": 0}], progress=False, shard=False).history

    return best_seconds(train, repeats=repeats, min_seconds=MIN_SECONDS)


def per_step_ms(program, steps: int, members: int = 1, repeats: int = REPEATS) -> float:
    fn, args = program
    return 1e3 * best_seconds(fn, *args, repeats=repeats, min_seconds=MIN_SECONDS) / (steps * members)


def run() -> dict[str, float]:
    start = time.perf_counter()
    rows = []
    matmul = [matmul_seconds_per_flop()]
    for label, name, overrides, steps, steps_many in SETTINGS:
        base = grok.preset(name).override(**overrides)
        cfg = base.override(**{"train.steps": steps, "train.log_every": steps, "train.probes": []})
        engine.ensure_precision(cfg)
        times = {
            "engine_step": per_step_ms(engine_program(cfg, steps, 1), steps),
            "engine_run": 1e3 * engine_run_seconds(cfg, REPEATS) / steps,
            "vmapped": per_step_ms(engine_program(cfg, steps_many, MEMBERS), steps_many, MEMBERS, max(1, REPEATS - 1)),
            "plain": per_step_ms(plain_program(cfg, steps), steps),
        }
        matmul.append(matmul_seconds_per_flop())
        flops = step_flops(plain_program(cfg, 1))
        engine_flops = step_flops(engine_program(cfg, 1, 1))
        alone_s, library, products = products_alone(engine_program(cfg, 1, 1))
        times = {"products": 1e3 * alone_s, **times}
        key = setting_key(name, overrides)
        rows.append((label, key, flops, engine_flops, times, (library, products)))

    s_per_flop = min(matmul)
    peak = 1e-9 / s_per_flop
    on_cpu = jax.default_backend() == "cpu"
    libraries = f"; Eigen or YNNPACK, whichever is faster; the steps use {cpu_matmul.in_use()!r}" if on_cpu else ""
    print(
        f"the limit: XLA's FLOPs of one plain-JAX step at {peak:.1f} GFLOP/s, the fastest {MATMUL_N}² float32 "
        f"matmul of {len(matmul)} timed between the rows (slowest {1e-9 / max(matmul):.1f}{libraries}) on "
        f"{jax.devices()[0]}"
    )
    head = (
        "setting",
        "GFLOP",
        "limit ms",
        "products alone",
        "engine step",
        "engine run",
        f"{MEMBERS} vmapped",
        "plain JAX",
    )
    print(f"{head[0]:>22}{head[1]:>7}{head[2]:>9}" + "".join(f"{h:>15}" for h in head[3:]))
    out: dict[str, float] = {"matmul_gflops": peak, "matmul_gflops_slowest": 1e-9 / max(matmul)}
    for label, key, flops, engine_flops, times, _ in rows:
        limit = 1e3 * flops * s_per_flop
        cells = "".join(f"{f'{ms:.3g} ({limit / ms:.0%})':>15}" for ms in times.values())
        print(f"{label:>22}{flops / 1e9:>7.3f}{limit:>9.3g}{cells}")
        out |= {f"{key}_gflop": flops / 1e9, f"{key}_engine_gflop": engine_flops / 1e9, f"{key}_limit_ms": limit}
        out |= {f"{key}_{k}_ms": ms for k, ms in times.items()}
        out |= {f"{key}_{k}_of_limit": limit / ms for k, ms in times.items()}
        out[f"{key}_engine_step_over_plain"] = times["engine_step"] / times["plain"]
        out[f"{key}_engine_run_over_plain"] = times["engine_run"] / times["plain"]
        out[f"{key}_engine_step_over_products"] = times["engine_step"] / times["products"]
    for label, _, flops, engine_flops, _, _ in rows:
        if abs(engine_flops / flops - 1) > 0.05:
            print(
                f"{label}: the engine's step counts {engine_flops / 1e9:.3f} GFLOP against the plain step's "
                f"{flops / 1e9:.3f} (the limit and the ratios use the plain step's)"
            )
    print(
        "products alone: each matrix product of the engine's step timed on its own, summed (GFLOP/s of each, "
        "with the library whose sum is smaller):"
    )
    for label, _, _, _, _, (library, products) in rows:
        rates = ", ".join(f"{p.describe()} {p.flops / s / 1e9:.0f}" for p, s in products)
        print(f"  {label} ({library}): {rates}")
    print("goals on this machine:")
    for line in goal_lines(out):
        print(f"  {line}")
    print(
        f"ms per (member-)step, fastest of ≥ {REPEATS} calls and ≥ {MIN_SECONDS:g} s of calls; (x%) = limit / time. "
        f"Load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {time.perf_counter() - start:.0f} s in all"
    )
    return out


if __name__ == "__main__":
    run()
