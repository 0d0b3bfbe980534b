"""Where a training step's time goes: a `jax.profiler` trace of the engine's step, per XLA operation.

`python -m benchmarks.profile_step "[D] paper"` traces a few calls of the engine's step
(`bench_limits.engine_program`, one member as `jit(scan)`, or `--members N` vmapped) for the
`bench_limits` setting whose label starts with the argument ([P], [D] paper, [N], [D] tiny; `--set
KEY=VALUE` changes a field), and prints the step's untraced time and the operations of the compiled
program that took the most time, in ms per step, with the JAX operation each one comes from (the
`op_name` XLA keeps in its metadata) and its output shape. On a GPU the library kernels (cuBLAS),
which the program does not name, are listed too, with the device's busy time per step.

    python -m benchmarks.profile_step "[D] paper" --members 289 --set task.train_fraction=0.6 --steps 20

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
from benchmarks.timing import best_seconds
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


def device_pids(trace_events: list[dict]) -> set:
    """The trace's processes that are an accelerator's streams (`/device:GPU:0` and the like), not the host."""
    return {
        e.get("pid")
        for e in trace_events
        if e.get("ph") == "M" and e.get("name") == "process_name" and "/device:" in str(e.get("args", {}).get("name"))
    }


def op_times(trace_events: list[dict], calls: int, pids: set | None = None) -> list[tuple[str, float, float]]:
    """(event name, ms per call, count per call) of the trace's complete events, largest first;
    only those of the processes `pids` when given."""
    total: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    for e in trace_events:
        if e.get("ph") == "X" and "dur" in e and (pids is None or e.get("pid") in pids):
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


def setting_program(prefix: str, steps: int | None = None, members: int = 1, overrides: dict | None = None):
    """The engine's step program of the `bench_limits` setting whose label starts with `prefix`
    (`jit(scan)` for one member, `jit(vmap(scan))` over `members` seeds), with `overrides` applied
    on top of the setting's, its inputs and its number of steps."""
    matches = [s for s in bench_limits.SETTINGS if s[0].startswith(prefix)]
    if len(matches) != 1:
        labels = ", ".join(repr(s[0]) for s in bench_limits.SETTINGS)
        raise SystemExit(f"setting: got {prefix!r}; allowed: the start of one of {labels}")
    _, name, setting_overrides, lone_steps, _ = matches[0]
    steps = steps or lone_steps
    cfg = grok.preset(name).override(**(setting_overrides | (overrides or {})))
    cfg = cfg.override(**{"train.steps": steps, "train.log_every": steps, "train.probes": []})
    engine.ensure_precision(cfg)
    fn, args = bench_limits.engine_program(cfg, steps, members)
    return fn, args, steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setting", help="the start of a bench_limits label: [P], [D] paper, [N], [D] tiny")
    parser.add_argument("--top", type=int, default=15, help="operations to print (0: time the step, no trace)")
    parser.add_argument("--hlo", type=Path, help="write the compiled program's text here")
    parser.add_argument("--members", type=int, default=1, help="members vmapped in one program (default 1)")
    parser.add_argument("--steps", type=int, help="steps per traced call (default: the setting's lone steps)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    ns = parser.parse_args(argv)
    if ns.members < 1 or (ns.steps is not None and ns.steps < 1):
        raise SystemExit(f"--members and --steps: got {ns.members} and {ns.steps}; allowed: whole numbers ≥ 1")
    from grok.cli.args import parse_sets

    fn, args, steps = setting_program(ns.setting, ns.steps, ns.members, parse_sets(ns.set))
    text = fn.lower(*args).compile().as_text()
    if ns.hlo:
        ns.hlo.write_text(text)
    ops = hlo_ops(text)
    calls = 3
    step_ms = best_seconds(fn, *args, repeats=calls) * 1e3 / steps
    where = f"{ns.members} members, " if ns.members > 1 else ""
    print(f"{ns.setting}: {where}{step_ms:.3f} ms per step untraced (fastest of {calls} calls of {steps} steps)")
    if ns.top == 0:
        return
    events = profile(fn, args, calls)
    pids = device_pids(events)
    rows = op_times(events, calls * steps)
    on_device = {name: ms for name, ms, _ in op_times(events, calls * steps, pids)} if pids else {}
    if on_device:  # an accelerator: its kernels, library ones (cuBLAS) included, and how busy it was
        print(f"  kernels on the device: {sum(on_device.values()):.3f} ms per step")
    print(f"ms per step (calls per step) of the largest operations, {calls} × {steps} steps traced")
    shown = 0
    for name, ms, n in rows:
        if name not in ops and name not in on_device:  # runtime events (the executor, Python)
            continue
        shape, op = ops.get(name, ("", "library kernel"))
        print(f"{ms:9.3f} ms  ×{n:4.1f}  {name[:60]:<32} {shape:<24} {op}")
        shown += 1
        if shown == ns.top:
            break


if __name__ == "__main__":
    main()
