"""A 64-member sweep as one compiled group vs the same 64 runs one after another.

Both sides use the same engine, in one process, compiled before timing: the sweep runs
through `grok.sweep.sweep` (one group, writing its batch directory), the baseline calls
`grok.train_members` once per member (one member each; its program compiled once). The
process has what `import grok` gives it: one CPU device per core, so the sweep's members
are sharded over the cores and run in cache-sized blocks (`grok.engine.member_block`),
while one member at a time runs on one device. `GROK_CPU_DEVICES=1` / `GROK_MEMBER_BLOCK=0`
switch those off to see each one's share.

Three member sizes, because the ratio depends on how much of a lone step is fixed
per-operation cost (amortized by the sweep) and how much is matrix arithmetic (not):
the [D] quadratic MLP at p=23, N=64 (the issue's [D]-style setting), the same at the
CPU phase-diagram preset's size (p=31, N=128), and the [K] α-net of `kumar-phase-small`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import jax

import grok
from grok import engine
from grok.sweep import SweepSpec, sweep

FIGURE = Path(__file__).with_name("bench_sweep.png")  # not committed; docs/img/bench_sweep_cpu.png is a copy
_DOSHI_AXES = {
    "optim.weight_decay": [0.0, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0],
    "task.corrupt_fraction": [0.0, 0.2, 0.4, 0.6],
}
SIZES = {
    "[D] p=23, N=64": {
        "preset": "doshi-coexistence",
        "seeds": [0, 1],
        "set": {"task.p": 23, "model.widths": [64], "train.steps": 300, "train.log_every": 30},
        "axes": _DOSHI_AXES,
    },
    "[D] p=31, N=128": {
        "preset": "doshi-coexistence",
        "seeds": [0, 1],
        "set": {"task.p": 31, "model.widths": [128], "train.steps": 150, "train.log_every": 15},
        "axes": _DOSHI_AXES,
    },
    "[K] D=20, N=100, P=100": {
        "preset": "kumar-fig3a",
        "seeds": [0, 1],
        "set": {
            "task.dim": 20,
            "task.n_train": 100,
            "task.n_test": 500,
            "model.widths": [100],
            "optim.lr": 50.0,
            "train.steps": 600,
            "train.schedule": "linear",
            "train.log_every": 40,
        },
        "axes": {"model.alpha": [0.0625, 0.25, 1.0, 4.0], "model.epsilon": [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0]},
    },
}


def compare(raw: dict) -> dict[str, float]:
    """Seconds for the 64-member sweep and for its members trained one after another."""
    spec = SweepSpec.parse(raw)
    (group,) = spec.groups()
    members = [over for _, over in group.members]
    assert len(members) == 64, len(members)
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
    n_local = 64 // max(1, len(jax.devices()))
    block = engine.member_block(group.config, n_local)
    n = len(members) * group.config.train.steps
    return {
        "sweep_seconds": t_sweep,
        "sequential_seconds": t_seq,
        "speedup": t_seq / t_sweep,
        "sweep_us_per_member_step": 1e6 * t_sweep / n,
        "sequential_us_per_member_step": 1e6 * t_seq / n,
        "member_block": float(block or n_local),
    }


def run() -> dict[str, float]:
    where = f"{len(jax.devices())} {jax.default_backend()} device(s)"
    print(f"64 members as one sweep vs one after another, on {where} (same process, compiled before timing)")
    print(f"{'member size':24}{'block':>6}{'sweep s':>9}{'one-by-one s':>14}{'µs/member-step':>17}{'speed-up':>10}")
    out: dict[str, float] = {"devices": float(len(jax.devices()))}
    for name, raw in SIZES.items():
        r = compare(raw)
        per = f"{r['sweep_us_per_member_step']:.0f} vs {r['sequential_us_per_member_step']:.0f}"
        print(
            f"{name:24}{r['member_block']:>6.0f}{r['sweep_seconds']:>9.2f}{r['sequential_seconds']:>14.2f}"
            f"{per:>17}{r['speedup']:>9.1f}x",
            flush=True,
        )
        out |= {f"{name} {k}": v for k, v in r.items()}
    print(f"figure: {plot(out)}")
    return out


def plot(out: dict[str, float], path: Path = FIGURE) -> Path:
    """Bars of µs per member-step, one by one vs as one sweep, the speed-up above each pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from grok.plots.base import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    top = max(out[f"{name} sequential_us_per_member_step"] for name in SIZES)
    ax.set_ylim(0, 1.15 * top)
    for i, name in enumerate(SIZES):
        seq, swp = out[f"{name} sequential_us_per_member_step"], out[f"{name} sweep_us_per_member_step"]
        ax.bar(i - 0.2, seq, 0.4, color="tab:gray", label="one by one" if i == 0 else None)
        ax.bar(i + 0.2, swp, 0.4, color="tab:blue", label="64 as one sweep" if i == 0 else None)
        ax.text(i, seq + 0.02 * top, f"{seq / swp:.1f}×", ha="center")
    ax.set_xticks(range(len(SIZES)), list(SIZES), fontsize=8)
    ax.set_ylabel("µs per member-step")
    ax.set_title(f"64 members on {out['devices']:.0f} {jax.default_backend()} device(s), same engine", fontsize=9)
    ax.legend(frameon=False, loc="upper left")
    return save_figure(fig, path)


if __name__ == "__main__":
    run()
