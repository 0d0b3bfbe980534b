"""Latency a notebook user waits for: `import grok`, and the first `grok.train` of a small preset in a
fresh process, cold (empty compilation cache) and warm (JAX's persistent cache filled by an earlier
process), with where the time goes: Python imports, tracing (jaxpr), lowering (to StableHLO), XLA's
compile, reading the persistent cache, and running.

Each figure is measured in fresh processes (`REPEATS` each, the best and the median printed), as a
user meets it. The phases come from JAX's own monitoring events inside the measured process. Goals
(issue "first hour"): import ≤ 1.5 s, first run warm ≤ 3 s.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

PRESET = "prieto-perpgrad-small"
STEPS = 300
REPEATS = 3

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import grok
t_import = time.perf_counter() - t0
if sys.argv[1] == "import":
    print(json.dumps({"import": t_import})); raise SystemExit
from collections import defaultdict
import jax.monitoring as mon
events = defaultdict(float)
mon.register_event_duration_secs_listener(lambda ev, dur, **kw: events.__setitem__(ev, events[ev] + dur))
cfg = grok.preset(sys.argv[2]).override(**{"train.steps": int(sys.argv[3])})
t1 = time.perf_counter()
run = grok.train(cfg, progress=False)
t_train = time.perf_counter() - t1
e = lambda k: events.get(k, 0.0)
print(json.dumps({
    "import": t_import, "first_train": t_train,
    "trace": e("/jax/core/compile/jaxpr_trace_duration"),
    "lower": e("/jax/core/compile/jaxpr_to_mlir_module_duration"),
    "compile": e("/jax/core/compile/backend_compile_duration"),
    "cache_read": e("/jax/compilation_cache/cache_retrieval_time_sec"),
}))
"""


def _measure(what: str, cache: str | None) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)  # a user's process: one CPU device per core, as `import grok` sets
    env["GROK_CACHE_DIR"] = cache or "off"
    out = subprocess.run(
        [sys.executable, "-c", PROBE, what, PRESET, str(STEPS)], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run() -> dict[str, float]:
    imports = [_measure("import", None)["import"] for _ in range(REPEATS)]
    cold, warm = [], []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory() as cache:
            cold.append(_measure("train", cache))  # an empty cache: everything compiles
            warm.append(_measure("train", cache))  # the same programs, read back from the cache
    rows = {"cold": cold, "warm": warm}
    print(f"{PRESET}, {STEPS} steps, fresh process each; seconds (best / median of {REPEATS})")
    print(f"  import grok          {min(imports):6.2f} / {statistics.median(imports):6.2f}   goal ≤ 1.5")
    for name, runs in rows.items():
        best = min(runs, key=lambda r: r["first_train"])
        goal = "   goal ≤ 3" if name == "warm" else ""
        print(
            f"  first train, {name:4s}   {best['first_train']:6.2f} / "
            f"{statistics.median(r['first_train'] for r in runs):6.2f}{goal}"
        )
        parts = ("trace", "lower", "compile", "cache_read")
        rest = best["first_train"] - sum(best[p] for p in parts)
        print("      " + "  ".join(f"{p} {best[p]:.2f}" for p in parts) + f"  run+other {rest:.2f}")
    out = {"import_s": min(imports)}
    for name, runs in rows.items():
        best = min(runs, key=lambda r: r["first_train"])
        out |= {f"{name}_{k}_s": v for k, v in best.items() if k != "import"}
    return out


if __name__ == "__main__":
    run()
