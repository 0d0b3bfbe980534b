"""Eigen against YNNPACK for XLA:CPU's matrix products, in one process: is `GROK_CPU_MATMUL=eigen` faster here?

Each program below is lowered once and compiled with each of XLA:CPU's matrix-product libraries
(`benchmarks/xla_cpu_arms.py`: **eigen**, and **ynnpack**, XLA's default), then timed in
alternating rounds, the fastest call of each arm kept: the engine's lone step and 16 vmapped
members (per member-step) for each `bench_limits` setting, and a 2048² float32 matmul. The
process's own choice (`GROK_CPU_MATMUL`) does not matter: both arms set the option.
`ynnpack / eigen` > 1 means Eigen is faster.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp

import grok
from benchmarks import bench_limits
from benchmarks.timing import best_seconds
from benchmarks.xla_cpu_arms import available, compiled_arms
from grok import cpu_matmul, engine

ROUNDS = int(os.environ.get("GROK_BENCH_REPEATS", "3")) + 1
MATMUL_N = 2048


def programs() -> list[tuple[str, int, dict, tuple]]:
    """(label, steps per call, compiled arms, args) of every timed program."""
    out = []
    for label, name, overrides, steps, steps_many in bench_limits.SETTINGS:
        cfg = grok.preset(name).override(**overrides)
        cfg = cfg.override(**{"train.steps": steps, "train.log_every": steps, "train.probes": []})
        engine.ensure_precision(cfg)
        fn, args = bench_limits.engine_program(cfg, steps, 1)
        out.append((f"{label}, lone step", steps, compiled_arms(fn, args), args))
        fn, args = bench_limits.engine_program(cfg, steps_many, bench_limits.MEMBERS)
        members = bench_limits.MEMBERS
        out.append((f"{label}, {members} members", steps_many * members, compiled_arms(fn, args), args))
    a = jax.random.normal(jax.random.key(0), (MATMUL_N, MATMUL_N))
    b = jax.random.normal(jax.random.key(1), (MATMUL_N, MATMUL_N))
    out.append((f"{MATMUL_N}² float32 matmul", 1, compiled_arms(jax.jit(jnp.matmul), (a, b)), (a, b)))
    return out


def run() -> dict[str, float]:
    if not available():
        print(
            f"skipped: needs the CPU backend and jaxlib 0.10 or 0.11 (here {jax.default_backend()}, "
            f"jaxlib {cpu_matmul.jaxlib_version()})"
        )
        return {}
    start = time.perf_counter()
    rows = programs()
    best = {(label, arm): float("inf") for label, _, arms, _ in rows for arm in arms}
    for _ in range(ROUNDS):
        for label, per_call, arms, args in rows:
            for arm, compiled in arms.items():
                seconds = best_seconds(compiled, *args, repeats=3, min_seconds=0.3) / per_call
                best[label, arm] = min(best[label, arm], seconds)
    print(
        f"XLA:CPU products: Eigen against YNNPACK; {ROUNDS} alternating rounds, fastest call; this process "
        f"asks for {cpu_matmul.in_use()!r} (jaxlib {cpu_matmul.jaxlib_version()})"
    )
    print(f"{'program':>36}{'eigen':>12}{'ynnpack':>12}{'ynnpack/eigen':>15}")
    out: dict[str, float] = {}
    for label, _, _, _ in rows:
        eigen, ynn = best[label, "eigen"], best[label, "ynnpack"]
        unit, scale = ("GFLOP/s", None) if "matmul" in label else ("ms/step", 1e3)
        if scale is None:
            flops = 2 * MATMUL_N**3
            cells = f"{flops / eigen / 1e9:>12.1f}{flops / ynn / 1e9:>12.1f}"
        else:
            cells = f"{eigen * scale:>12.4g}{ynn * scale:>12.4g}"
        print(f"{label:>36}{cells}{ynn / eigen:>14.3f}×  ({unit})")
        key = label.replace(" ", "_").replace(",", "")
        out |= {f"{key}_eigen_s": eigen, f"{key}_ynnpack_s": ynn, f"{key}_ynnpack_over_eigen": ynn / eigen}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {time.perf_counter() - start:.0f} s in all")
    return out


if __name__ == "__main__":
    run()
