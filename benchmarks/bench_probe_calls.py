"""The public probe functions called by hand, as a notebook user calls them on a layer's weights:
each is one `jax.jit` program, against the same function run op by op (`jax.disable_jit()`, how
they ran before they were jitted: every jnp operation its own small compiled program).

Three figures per function, the two forms alternating, each printed with the ratio op-by-op /
jitted (> 1: the jitted form is faster):
- **first call in a fresh process** (what a user waits for on the first layer of a session): a new
  Python process per trial, compile included, nothing cached (`GROK_CACHE_DIR=off`);
- **a call on a new shape** in this process, after a call on another shape (the next layer of
  another size): compile included; op by op, the operations whose shapes were seen come from its caches;
- **a repeated call** on one shape, compile excluded (the best of several).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import probes
from probes import neurons, spectral

TRIALS = 3
REPEATS = 20


def _cases() -> dict[str, tuple[Callable, Callable[[int], tuple]]]:
    """name → (function, args for a shape index `i`: every i gives new shapes)."""
    rng = np.random.default_rng(0)

    def matrix(n: int, m: int) -> jax.Array:
        return jnp.asarray(rng.normal(size=(n, m)), jnp.float32)

    return {
        "spectral.spectral_summary": (
            lambda w: spectral.spectral_summary(w, ks="csn", esd_bins=8),
            lambda i: (matrix(96 + i, 64),),
        ),
        "spectral.htsr_alpha": (spectral.htsr_alpha, lambda i: (matrix(96 + i, 64),)),
        "neurons.ipr_summary": (neurons.ipr_summary, lambda i: (matrix(128, 31 + i), matrix(128, 31 + i))),
        "neurons.key_frequencies": (neurons.key_frequencies, lambda i: (matrix(31 + i, 64),)),
        "probes.centered_alignment": (probes.centered_alignment, lambda i: (matrix(64 + i, 64 + i), matrix(64 + i, 3))),
        "probes.sc_fraction": (probes.sc_fraction, lambda i: (matrix(800 + i, 31),)),
    }


def _seconds(fn: Callable, args: tuple, eager: bool) -> float:
    start = time.perf_counter()
    if eager:
        with jax.disable_jit():
            jax.block_until_ready(fn(*args))
    else:
        jax.block_until_ready(fn(*args))
    return time.perf_counter() - start


FRESH = """
import json, sys
from benchmarks.bench_probe_calls import _cases, _seconds
fn, make = _cases()[sys.argv[1]]
print(json.dumps(_seconds(fn, make(0), sys.argv[2] == "eager")))
"""


def _fresh_process_seconds(name: str, eager: bool) -> float:
    env = dict(os.environ) | {"GROK_CACHE_DIR": "off", "JAX_COMPILATION_CACHE_DIR": ""}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, "-c", FRESH, name, "eager" if eager else "jit"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True, cwd=root)
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def run() -> dict[str, float]:
    out: dict[str, float] = {}
    cases = _cases()
    fresh = {name: {True: [], False: []} for name in cases}
    for _ in range(TRIALS):
        for name in cases:
            for eager in (True, False):
                fresh[name][eager].append(_fresh_process_seconds(name, eager))
    head = ("first call, fresh process, s", "call on a new shape, s", "repeated call, ms")
    print(f"{'':28s}" + "".join(f"{h:>31s}" for h in head))
    print(f"{'function':28s}" + f"{'op by op':>12s}{'jitted':>12s}{'ratio':>7s}" * 3)
    for name, (fn, make) in cases.items():
        args = make(0)
        for eager in (True, False):
            _seconds(fn, args, eager)  # compile (jitted) or fill the per-operation caches (op by op)
        shape = 1 + 2 * list(cases).index(name)
        first = {eager: _seconds(fn, make(shape + eager), eager) for eager in (True, False)}
        again = {eager: [] for eager in (True, False)}
        for _ in range(REPEATS):
            for eager in (True, False):
                again[eager].append(_seconds(fn, args, eager))
        c_e, c_j = float(np.median(fresh[name][True])), float(np.median(fresh[name][False]))
        f_e, f_j = first[True], first[False]
        a_e, a_j = min(again[True]), min(again[False])
        row = [(c_e, c_j, 1), (f_e, f_j, 1), (a_e, a_j, 1e3)]
        print(f"{name:28s}" + "".join(f"{e * k:12.3f}{j * k:12.3f}{e / j:7.1f}" for e, j, k in row))
        key = name.split(".")[-1]
        out |= {
            f"{key}_fresh_ratio": c_e / c_j,
            f"{key}_fresh_jitted_s": c_j,
            f"{key}_new_shape_ratio": f_e / f_j,
            f"{key}_repeat_ratio": a_e / a_j,
        }
    return out


if __name__ == "__main__":
    run()
