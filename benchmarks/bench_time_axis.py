"""The time axis (docs/architecture.md, "Schedules and snapshots"): what a log schedule, parameter
snapshots and post-hoc probes cost, as ratios of times measured in this one process.

Every program runs once before it is timed (compile excluded), and the timed calls are
interleaved over a few rounds, each keeping its best (the machine is shared: load from other
processes only ever makes a call slower).

(a) `train.schedule = "log"` against `"linear"` with the same steps and the same number of
    evaluation points (101), end to end through `grok.train`, at a [P]-like size (MLP 200-200,
    add mod 53). The log schedule's intervals run from 1 step to hundreds, each interval one
    trip count of the same compiled loop: the two compiled chunk programs are compared
    instruction by instruction, and when they are identical (same steps, same number of
    intervals and chunks, the same trajectory) a ratio away from 1 is the machine's noise. Wall
    and CPU time of this process are both reported. Target: ratio ≤ 1.05.
(b) 50 snapshots against none, end to end, at the [P] size (`prieto-stablemax`: p=113, MLP
    200-200, 40% train, float64 loss) with fewer steps (the snapshot cost is per snapshot, so
    a shorter run is the harder case). Target: ratio ≤ 1.10.
(c) The `neurons` probe after the fact over 50 snapshots × 16 members of the [P] size: one
    `grok.probe_history` call (one compiled program over members and snapshots) against a
    Python loop calling it once per snapshot (the same program at one snapshot, its step-0
    state and the members' configs rebuilt each call). The snapshots are the members' initial parameters, each scaled
    by its own factor: what the probe costs does not depend on the values.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

import grok
from grok import engine
from grok.snapshots import Snapshots

SCHEDULE_TRIALS = 5  # interleaved rounds (a ratio near 1: more rounds, so both reach their best)
SNAPSHOT_TRIALS = 3  # the [P]-size runs take half a minute each on a 2-core machine
POSTHOC_TRIALS = 5

SCHEDULE_CFG = grok.preset("prieto-softmax-collapse").override(
    **{"task.p": 53, "train.steps": 1000, "train.log_every": 10}
)
P_SIZE = grok.preset("prieto-stablemax").override(**{"train.steps": 400, "train.log_every": 8})
SNAPSHOTS = 50
POSTHOC_MEMBERS = 16


def _quiet(fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` with its prints (the snapshot size line of `grok.train`) swallowed."""

    def call():
        with contextlib.redirect_stdout(io.StringIO()):
            return fn()

    return call


def _best_times(calls: dict[str, Callable[[], object]], trials: int, cpu: dict | None = None) -> dict[str, float]:
    """Best wall seconds of each zero-argument callable over interleaved rounds (after one warm-up
    call); `cpu`, if given, receives the best CPU seconds of this process (all its threads), which
    other processes' load disturbs less than the wall time."""
    for fn in calls.values():
        fn()  # compile
    best = dict.fromkeys(calls, float("inf"))
    best_cpu = dict.fromkeys(calls, float("inf"))
    for _ in range(trials):
        for name, fn in calls.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
            best_cpu[name] = min(best_cpu[name], time.process_time() - start_cpu)
    if cpu is not None:
        cpu.update(best_cpu)
    return best


def _chunk_program(cfg: grok.Config) -> list[str]:
    """The compiled chunk program's instructions for a one-member group, without source locations."""
    static, dyn_np = engine.stack_dynamic([cfg])
    sched = engine.group_schedule(static)
    tokens = engine.registration_tokens(static)
    init, chunk = engine._programs(static, tokens, sched.slots_per_chunk, None, engine.member_block(static, 1))
    dyn = {k: jnp.asarray(v) for k, v in dyn_np.items()}
    plan = {"length": sched.lengths[0], "slot": sched.slots[0]}
    text = chunk.lower(init(dyn)[0], dyn, plan).compile().as_text()
    text = re.sub(r", metadata=\{[^}]*\}|, stack_frame_id=\d+", "", text)
    return [line for line in text.splitlines() if " = " in line]


def _train(cfg: grok.Config, seeds=(0,)) -> Callable[[], object]:
    return _quiet(lambda: grok.train(cfg, seeds=seeds, progress=False).history["train_loss"])


def schedule_ratio(out: dict[str, float]) -> None:
    linear = SCHEDULE_CFG
    points = linear.n_intervals
    log = linear.override(**{"train.schedule": "log", "train.log_points": points})
    same = _chunk_program(linear) == _chunk_program(log)
    cpu: dict[str, float] = {}
    t = _best_times({"linear": _train(linear), "log": _train(log)}, SCHEDULE_TRIALS, cpu)
    ratio, cpu_ratio = t["log"] / t["linear"], cpu["log"] / cpu["linear"]
    out["log_vs_linear_ratio"] = ratio
    out["log_vs_linear_cpu_ratio"] = cpu_ratio
    out["log_linear_same_chunk_program"] = float(same)
    print(
        f"(a) {linear.train.steps} steps, [P]-like p={linear.task.p}: linear ({points} points) {t['linear']:.2f} s, "
        f"log ({log.n_intervals} points) {t['log']:.2f} s; log / linear = {ratio:.3f} wall, {cpu_ratio:.3f} CPU time "
        f"(target <= 1.05); compiled chunk programs identical: {same}"
    )


def snapshot_ratio(out: dict[str, float]) -> None:
    snaps = P_SIZE.override(**{"train.snapshots": SNAPSHOTS})
    cpu: dict[str, float] = {}
    t = _best_times({"none": _train(P_SIZE), "snapshots": _train(snaps)}, SNAPSHOT_TRIALS, cpu)
    ratio, cpu_ratio = t["snapshots"] / t["none"], cpu["snapshots"] / cpu["none"]
    out["snapshots_vs_none_ratio"] = ratio
    out["snapshots_vs_none_cpu_ratio"] = cpu_ratio
    print(
        f"(b) [P] size, {P_SIZE.train.steps} steps, {P_SIZE.n_intervals} points: no snapshots {t['none']:.2f} s, "
        f"{SNAPSHOTS} snapshots {t['snapshots']:.2f} s; ratio = {ratio:.3f} wall, {cpu_ratio:.3f} CPU time "
        "(target <= 1.10)"
    )


def _posthoc_run() -> grok.Run:
    """A [P]-size run of 16 members with 50 snapshots (its initial state, scaled per snapshot)."""
    cfg = P_SIZE.override(**{"train.steps": 1, "train.log_every": 1, "train.snapshots": [0]})
    with contextlib.redirect_stdout(io.StringIO()):
        run = grok.train(cfg, seeds=range(POSTHOC_MEMBERS), progress=False)
    first = run.snapshots[0]
    snaps = {
        step: {k: v * np.asarray(1 + 0.01 * step, v.dtype) if k.startswith("params/") else v for k, v in first.items()}
        for step in range(SNAPSHOTS)
    }
    return grok.Run(**{**run.__dict__, "snapshots": Snapshots(snaps)})


def posthoc_ratio(out: dict[str, float]) -> None:
    run = _posthoc_run()
    steps = run.steps_with_snapshots
    calls = {
        "one program": lambda: grok.probe_history(run, ["neurons"]),
        "loop": lambda: [grok.probe_history(run, ["neurons"], steps=[s]) for s in steps],
    }
    t = _best_times(calls, POSTHOC_TRIALS)
    ratio = t["loop"] / t["one program"]
    out["posthoc_one_program_s"] = t["one program"]
    out["posthoc_loop_s"] = t["loop"]
    out["posthoc_loop_vs_one_program_ratio"] = ratio
    print(
        f"(c) `neurons` after the fact, {len(steps)} snapshots x {run.n_members} members ([P] size): "
        f"one program {t['one program']:.3f} s, loop over snapshots {t['loop']:.3f} s; loop / one = {ratio:.1f}"
    )


def run() -> dict[str, float]:
    out: dict[str, float] = {}
    schedule_ratio(out)
    snapshot_ratio(out)
    posthoc_ratio(out)
    return out


if __name__ == "__main__":
    run()
