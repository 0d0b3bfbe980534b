"""Where a training step's time goes: a `jax.profiler` trace of the engine's step, per XLA operation.

`python -m benchmarks.profile_step "[D] paper"` traces a few calls of the engine's step
(`bench_limits.engine_program`, one member, `jit(scan)`) for the `bench_limits` setting whose label
starts with the argument ([P], [D] paper, [N], [D] tiny), and prints the operations of the compiled
program that took the most time, in ms per step, with the JAX operation each one comes from (the
`op_name` XLA keeps in its metadata) and its output shape.

Read it with care: XLA:CPU runs independent operations at once, and some matrix products (the Eigen
`dot`s) run on its thread pool while the trace shows only their launch, so per-operation times overlap
and need not add up to the step. They show which operations are large, not an exact split.
`--hlo FILE` also writes the compiled program's text, to read a fusion's body.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import tempfile
from pathlib import Path

import jax

import grok
from benchmarks import bench_limits
from grok import engine

_OP = re.compile(r"%(?P<name>[\w.\-]+) = (?P<shape>\S+) (?P<kind>[\w\-]+)\(")


def hlo_ops(hlo_text: str) -> dict[str, tuple[str, str]]:
    """Instruction name → (output shape, JAX op_name or the HLO opcode) for a compiled program's text."""
    out = {}
    for line in hlo_text.splitlines():
        m = _OP.search(line)
        if m:
            op = re.search(r'op_name="([^"]*)"', line)
            out[m["name"]] = (m["shape"], op.group(1).split("/")[-1] if op else m["kind"])
    return out


def op_times(trace_events: list[dict], calls: int) -> list[tuple[str, float, float]]:
    """(event name, ms per call, count per call) of the trace's complete events, largest first."""
    total: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    for e in trace_events:
        if e.get("ph") == "X" and "dur" in e:
            total[e["name"]] += e["dur"]
            count[e["name"]] += 1
    return [(name, us / 1e3 / calls, count[name] / calls) for name, us in total.most_common()]


def profile(fn, args, calls: int = 3) -> list[dict]:
    """The complete events of a perfetto trace of `calls` waited-on calls of `fn(*args)` (compiled first)."""
    jax.block_until_ready(fn(*args))
    with tempfile.TemporaryDirectory() as d:
        jax.profiler.start_trace(d, create_perfetto_trace=True)
        try:
            for _ in range(calls):
                jax.block_until_ready(fn(*args))
        finally:
            jax.profiler.stop_trace()
        (path,) = Path(d).rglob("*.trace.json.gz")
        with gzip.open(path) as f:
            return json.load(f)["traceEvents"]


def setting_program(prefix: str, steps: int | None = None):
    """The engine's one-member `jit(scan)` step program of the `bench_limits` setting whose label
    starts with `prefix`, its inputs and its number of steps."""
    matches = [s for s in bench_limits.SETTINGS if s[0].startswith(prefix)]
    if len(matches) != 1:
        labels = ", ".join(repr(s[0]) for s in bench_limits.SETTINGS)
        raise SystemExit(f"setting: got {prefix!r}; allowed: the start of one of {labels}")
    _, name, overrides, lone_steps, _ = matches[0]
    steps = steps or lone_steps
    cfg = grok.preset(name).override(**overrides)
    cfg = cfg.override(**{"train.steps": steps, "train.log_every": steps, "train.probes": []})
    engine.ensure_precision(cfg)
    fn, args = bench_limits.engine_program(cfg, steps, 1)
    return fn, args, steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", help="the start of a bench_limits label: [P], [D] paper, [N], [D] tiny")
    parser.add_argument("--top", type=int, default=15, help="operations to print")
    parser.add_argument("--hlo", type=Path, help="write the compiled program's text here")
    ns = parser.parse_args(argv)
    fn, args, steps = setting_program(ns.setting)
    text = fn.lower(*args).compile().as_text()
    if ns.hlo:
        ns.hlo.write_text(text)
    ops = hlo_ops(text)
    calls = 3
    rows = op_times(profile(fn, args, calls), calls * steps)
    print(f"{ns.setting}: ms per step (calls per step) of the largest operations, {calls} × {steps} steps traced")
    shown = 0
    for name, ms, n in rows:
        if name not in ops:  # runtime events (the executor, Python) rather than operations
            continue
        shape, op = ops[name]
        print(f"{ms:9.3f} ms  ×{n:4.1f}  {name:<32} {shape:<24} {op}")
        shown += 1
        if shown == ns.top:
            break


if __name__ == "__main__":
    main()
