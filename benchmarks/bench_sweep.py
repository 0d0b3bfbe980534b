"""A 64-member [D]-style sweep as one vmapped group vs the same 64 runs one after another.

Both sides use the same engine and are compiled before timing: the sweep runs through
`grok.sweep.sweep` (one group, writing its batch directory), the baseline calls
`grok.train_members` once per member (one member each; its program compiled once). Measured in
one process on whatever devices JAX sees (run it without forced host devices to compare on the
plain CPU). Reports the speed-up ratio and member-steps per second of each.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import grok
from grok.sweep import SweepSpec, sweep

SPEC = {
    "preset": "doshi-coexistence",
    "seeds": [0, 1],
    "set": {"task.p": 23, "model.widths": [64], "train.steps": 300, "train.log_every": 30},
    "axes": {
        "optim.weight_decay": [0.0, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0],
        "task.corrupt_fraction": [0.0, 0.2, 0.4, 0.6],
    },
}


def run() -> dict[str, float]:
    spec = SweepSpec.parse(SPEC)
    (group,) = spec.groups()
    members = [over for _, over in group.members]
    assert len(members) == 64
    steps = group.config.train.steps
    with tempfile.TemporaryDirectory() as tmp:
        sweep(spec, Path(tmp) / "warm", progress=False)  # compiles the 64-member program
        start = time.perf_counter()
        sweep(spec, Path(tmp) / "timed", progress=False)
        t_sweep = time.perf_counter() - start

    grok.train_members(group.config, members[:1], progress=False)  # compiles the one-member program
    start = time.perf_counter()
    for over in members:
        grok.train_members(group.config, [over], progress=False)
    t_seq = time.perf_counter() - start

    n = len(members) * steps
    out = {
        "members": float(len(members)),
        "steps": float(steps),
        "sweep_seconds": t_sweep,
        "sequential_seconds": t_seq,
        "speedup": t_seq / t_sweep,
        "sweep_member_steps_per_s": n / t_sweep,
        "sequential_member_steps_per_s": n / t_seq,
    }
    import jax

    where = f"{len(jax.devices())} {jax.default_backend()} device(s)"
    print(f"64-member [D]-style sweep (p=23, N=64, {steps} steps) on {where}")
    print(f"{'':28}{'seconds':>10}{'member-steps/s':>18}")
    print(f"{'vmapped sweep (1 group)':28}{t_sweep:>10.2f}{out['sweep_member_steps_per_s']:>18.0f}")
    print(f"{'64 runs one after another':28}{t_seq:>10.2f}{out['sequential_member_steps_per_s']:>18.0f}")
    print(f"speed-up: {out['speedup']:.1f}x")
    return out


if __name__ == "__main__":
    run()
