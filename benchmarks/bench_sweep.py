"""A 64-member sweep as one compiled group vs the same 64 runs one after another, in the CPU
default mode and in `GROK_MEMBER_BLOCK=auto`, and what AdamW's `lax.optimization_barrier` costs.

Everything runs in one process on the same engine, compiled before timing: the sweep runs through
`grok.sweep.sweep` (one group, writing its batch directory), the baseline calls
`grok.train_members` once per member (one member each; its program compiled once). The process
has what `import grok` gives it: one CPU device per core, the sweep's members sharded over them.
Within a device the members run one at a time by default (`grok.engine.member_block`: each
member's numbers are its own) or, with `GROK_MEMBER_BLOCK=auto` (set here between programs; the
compiled programs are cached per block), in cache-sized vmapped blocks (faster, not bit-identical
across groupings). The barrier's cost: the default-mode sweep again with `optim.kind` set to
an AdamW registered here without the barrier (`grok/optim/base.py` has it), same formula.
Each size's sweeps and its one-by-one runs are timed in alternation, `ROUNDS` times each, the
best kept (the VM is shared: single timings vary by tens of percent).

Three member sizes, because the ratio depends on how much of a lone step is fixed
per-operation cost (amortized by the sweep) and how much is matrix arithmetic (not):
the [D] quadratic MLP at p=23, N=64 (the issue's [D]-style setting), the same at the
CPU phase-diagram preset's size (p=31, N=128), and the [K] α-net of `kumar-phase-small`.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from pathlib import Path

import jax
import optax

import grok
from grok import engine
from grok.optim.base import scale_by_adam
from grok.registry import register_transform
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


ROUNDS = 3
MODES = ("default", "auto", "no barrier")  # the sweep's three programs, timed in alternation


@register_transform("adamw_unbarriered", shared=("lr", "b1", "b2", "eps", "weight_decay"), replace=True)
def _adamw_unbarriered(lr, b1, b2, eps, weight_decay) -> optax.GradientTransformation:
    return optax.chain(
        scale_by_adam(b1, b2, eps, barrier=False), optax.add_decayed_weights(weight_decay), optax.scale(-lr)
    )


@contextlib.contextmanager
def _member_block(value: str | None):
    """`$GROK_MEMBER_BLOCK` for the programs built inside (read when a group's program is built)."""
    old = os.environ.pop("GROK_MEMBER_BLOCK", None)
    if value is not None:
        os.environ["GROK_MEMBER_BLOCK"] = value
    try:
        yield
    finally:
        os.environ.pop("GROK_MEMBER_BLOCK", None)
        if old is not None:
            os.environ["GROK_MEMBER_BLOCK"] = old


def _mode(raw: dict, mode: str) -> tuple[SweepSpec, str | None]:
    """The spec and `$GROK_MEMBER_BLOCK` of one mode."""
    if mode == "no barrier":
        raw = raw | {"set": raw["set"] | {"optim.kind": "adamw_unbarriered"}}
    return SweepSpec.parse(raw), ("auto" if mode == "auto" else None)


def compare(raw: dict) -> dict[str, float]:
    """Seconds for the 64-member sweep in each mode and for its members trained one after another."""
    (group,) = SweepSpec.parse(raw).groups()
    adamw = group.config.optim.kind == "adamw"  # the barrier is AdamW's (the [K] size trains with SGD)
    specs = {mode: _mode(raw, mode) for mode in MODES if adamw or mode != "no barrier"}
    members = [over for _, over in group.members]
    assert len(members) == 64, len(members)
    n_local = 64 // max(1, len(jax.devices()))
    best = dict.fromkeys([*specs, "one by one"], float("inf")) | ({} if adamw else {"no barrier": float("nan")})
    blocks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, (spec, block) in specs.items():
            with _member_block(block):
                sweep(spec, Path(tmp) / f"warm {mode}", progress=False)  # compiles this mode's program
                blocks[mode] = engine.member_block(spec.groups()[0].config, n_local) or n_local
        grok.train_members(group.config, members[:1], progress=False)  # compiles the one-member program
        for r in range(ROUNDS):
            for mode, (spec, block) in specs.items():
                with _member_block(block):
                    start = time.perf_counter()
                    sweep(spec, Path(tmp) / f"{mode} {r}", progress=False)
                    best[mode] = min(best[mode], time.perf_counter() - start)
            start = time.perf_counter()
            for over in members:
                grok.train_members(group.config, [over], progress=False)
            best["one by one"] = min(best["one by one"], time.perf_counter() - start)
    t_seq = best["one by one"]
    n = len(members) * group.config.train.steps
    return {
        "sweep_seconds": best["default"],
        "sweep_auto_seconds": best["auto"],
        "sweep_no_barrier_seconds": best["no barrier"],
        "sequential_seconds": t_seq,
        "speedup": t_seq / best["default"],
        "speedup_auto": t_seq / best["auto"],
        "barrier_cost": best["default"] / best["no barrier"],
        "sweep_us_per_member_step": 1e6 * best["default"] / n,
        "sweep_auto_us_per_member_step": 1e6 * best["auto"] / n,
        "sequential_us_per_member_step": 1e6 * t_seq / n,
        "member_block": float(blocks["default"]),
        "member_block_auto": float(blocks["auto"]),
    }


def run() -> dict[str, float]:
    where = f"{len(jax.devices())} {jax.default_backend()} device(s)"
    print(f"64 members as one sweep vs one after another, on {where} (same process, compiled before timing)")
    print(
        f"{'member size':24}{'blocks':>8}{'sweep s':>9}{'auto s':>8}{'one-by-one s':>14}"
        f"{'speed-up':>10}{'auto':>7}{'barrier':>9}"
    )
    out: dict[str, float] = {"devices": float(len(jax.devices()))}
    for name, raw in SIZES.items():
        r = compare(raw)
        blocks = f"{r['member_block']:.0f}/{r['member_block_auto']:.0f}"
        barrier = "—" if math.isnan(r["barrier_cost"]) else f"{r['barrier_cost']:.2f}x"
        print(
            f"{name:24}{blocks:>8}{r['sweep_seconds']:>9.2f}{r['sweep_auto_seconds']:>8.2f}"
            f"{r['sequential_seconds']:>14.2f}{r['speedup']:>9.1f}x{r['speedup_auto']:>6.1f}x"
            f"{barrier:>9}",
            flush=True,
        )
        out |= {f"{name} {k}": v for k, v in r.items()}
    print("blocks: members per block within a device, default / GROK_MEMBER_BLOCK=auto; barrier: default-mode")
    print("sweep time with AdamW's lax.optimization_barrier over the time without it")
    print(f"figure: {plot(out)}")
    return out


def plot(out: dict[str, float], path: Path = FIGURE) -> Path:
    """Bars of µs per member-step: one by one, as one sweep (default), as one sweep (auto blocks);
    the speed-ups above the sweeps' bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from grok.plots.base import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    top = max(out[f"{name} sequential_us_per_member_step"] for name in SIZES)
    ax.set_ylim(0, 1.15 * top)
    bars = [
        ("sequential", "one by one", "tab:gray"),
        ("sweep", "64 as one sweep (default)", "tab:blue"),
        ("sweep_auto", "64 as one sweep (GROK_MEMBER_BLOCK=auto)", "tab:orange"),
    ]
    for i, name in enumerate(SIZES):
        seq = out[f"{name} sequential_us_per_member_step"]
        for j, (key, label, color) in enumerate(bars):
            value = out[f"{name} {key}_us_per_member_step"]
            x = i + 0.27 * (j - 1)
            ax.bar(x, value, 0.27, color=color, label=label if i == 0 else None)
            if key != "sequential":
                ax.text(x, value + 0.02 * top, f"{seq / value:.1f}×", ha="center", fontsize=8)
    ax.set_xticks(range(len(SIZES)), list(SIZES), fontsize=8)
    ax.set_ylabel("µs per member-step")
    ax.set_title(f"64 members on {out['devices']:.0f} {jax.default_backend()} device(s), same engine", fontsize=9)
    ax.legend(frameon=False, loc="upper left", fontsize=8)
    return save_figure(fig, path)


if __name__ == "__main__":
    run()
