"""What `benchmarks/gpu.sh` runs: the devices, [D]'s phase diagram and [P]'s StableMax run at paper size,
the matmul peaks, the rate of each run against them, a profile of the largest group's step, that
step with the fused token kernels against the landed layer (`benchmarks/fused_ab.py`), and, where
those kernels were faster, the diagram again with them (`GROK_FUSED_TOKEN_KERNEL=1`).

    benchmarks/gpu.sh                 # on an NVIDIA GPU: make setup, then .venv/bin/pip install -e ".[cuda]"
    benchmarks/gpu.sh --tiny          # the same steps at tiny sizes on any machine (what CI runs)

The two runs are the commands a user types (`grok sweep doshi-phase`, `grok phase`, `grok reproduce
prieto-stablemax`), each in its own process and timed from outside, compilation and writing included.
Their model FLOPs are XLA's cost analysis of one plain-JAX step of each group (`bench_limits`), times
members × steps; the rate they imply is compared with the matmul peaks timed here (float32 with
TF32 allowed, float32 in full precision, and float64, StableMax's dtype). Writes `summary.json`.
"""

from __future__ import annotations

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave the GPU's memory to the runs' processes

import argparse  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.bench_limits import plain_program, step_flops  # noqa: E402
from benchmarks.timing import best_seconds  # noqa: E402

# the tiny sizes: a 3 × 3 × 1 diagram at p = 11, N = 16 (one compiled group); StableMax at p = 11, 16-16, 60 steps
TINY_DIAGRAM = """\
description = "gpu.sh --tiny: the doshi-phase diagram's axes at a tiny size"
preset = "doshi-coexistence"
seeds = [0]

[set]
"task.p" = 11
"model.widths" = [16]
"train.steps" = 20
"train.log_every" = 10

[axes]
"optim.weight_decay" = {linspace = [0.0, 20.0, 3]}
"task.corrupt_fraction" = {linspace = [0.0, 0.8, 3]}
"task.train_fraction" = [0.5]
"""
TINY_STABLEMAX_STEPS = 60
# the profiled step: the diagram's largest group (289 members at 60% training), or 9 tiny members
PAPER_PROFILE = ("[D] paper", "--members", "289", "--set", "task.train_fraction=0.6", "--steps", "20", "--top", "12")
TINY_PROFILE = ("[D] tiny", "--members", "9", "--set", "task.p=11", "--steps", "5", "--top", "5")
TINY_STABLEMAX_SETS = ("task.p=11", "model.widths=[16,16]")
PRECISIONS = {"tf32": (jnp.float32, "tensorfloat32"), "fp32": (jnp.float32, "highest"), "fp64": (jnp.float64, None)}


def matmul_tflops(n: int, dtype, precision: str | None, repeats: int = 10) -> float:
    """TFLOP/s of an n×n matmul of `dtype` at matmul `precision` (fastest of `repeats`)."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    f = jax.jit(lambda a, b: jnp.matmul(a, b, precision=precision))
    return 2 * n**3 / best_seconds(f, a, b, repeats=repeats) / 1e12


def grok_command(*args: str, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(wall seconds, exit status, output) of `grok ARGS` in a fresh process (`env` added to this one's)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "grok.cli", *args], capture_output=True, text=True, env=os.environ | (env or {})
    )
    return time.perf_counter() - start, proc.returncode, proc.stdout + proc.stderr


def fused_diagram_wanted(summary: dict[str, float], tiny: bool) -> bool:
    """Whether to train the diagram again with the fused token kernels: at the tiny sizes always (so
    that CI runs the step; a CPU never takes the fused path, so there it trains the same program), on a
    GPU when `fused_ab` found their step faster than the landed layer's. Not gated on how far its
    parameters moved: with TF32 products and AdamW (lr 0.01) a correct kernel can move a few
    near-zero-gradient parameters far in 20 steps; the diagram's cells say whether the training differs."""
    if tiny:
        return True
    fused = summary.get("fused_step_ms")
    return fused is not None and fused < summary["landed_step_ms"]


def majority_phases(sweep_dir: Path) -> np.ndarray:
    """Each cell's majority phase of a finished sweep (rule `doshi`)."""
    import grok

    return np.asarray(grok.load_sweep(sweep_dir).phase_summary("doshi")["majority"])


def sweep_tflop(spec) -> float:
    """Model TFLOPs of a whole sweep: per group, XLA's FLOPs of one plain step × members × steps."""
    from grok.sweep import SweepSpec

    total = 0.0
    for group in SweepSpec.parse(spec).groups():
        cfg = group.config
        total += step_flops(plain_program(cfg, 1)) * len(group.members) * cfg.train.steps
    return total / 1e12


def group_seconds(sweep_dir: Path) -> list[float]:
    """Wall seconds of each batch of a finished sweep (its `status.json`), in the sweep's order."""
    return [
        float(json.loads(path.read_text())["wall_seconds"]) for path in sorted(sweep_dir.glob("groups/*/*/status.json"))
    ]


def batches_line(walls: list[float]) -> str:
    """The line that lists a sweep's batches and the wall seconds of each."""
    return f"  {len(walls)} batch(es) of members, s each (compile included): " + ", ".join(f"{w:.1f}" for w in walls)


def fail(what: str, rc: int, output: str) -> None:
    print(output[-4000:])
    raise SystemExit(f"{what} failed with exit status {rc}")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (any machine; what CI runs)")
    parser.add_argument("--out", help="where the runs go (default: a temporary directory)")
    args = parser.parse_args(argv)
    tiny = args.tiny or os.environ.get("GROK_GPU_TINY") == "1"
    out = Path(args.out or tempfile.mkdtemp(prefix="grok-gpu-"))
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, float] = {}
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices: {jax.devices()}", flush=True)
    spec = out / "tiny-diagram.toml" if tiny else "doshi-phase"
    if tiny:
        spec.write_text(TINY_DIAGRAM)
    tflop = sweep_tflop(spec)  # float32, before x64 is switched on for the float64 peak and StableMax
    jax.config.update("jax_enable_x64", True)  # every array below has an explicit dtype
    n = 256 if tiny else 8192
    peaks = {name: matmul_tflops(n, dtype, prec) for name, (dtype, prec) in PRECISIONS.items()}
    print("matmul peak, " + ", ".join(f"{k} {v:.3g} TFLOP/s" for k, v in peaks.items()) + f" ({n}² operands)")
    summary |= {f"peak_{k}_tflops": v for k, v in peaks.items()}

    diagram = out / "phase"
    seconds, rc, text = grok_command("sweep", str(spec), "--out", str(diagram), "--quiet")
    if rc:
        fail("grok sweep", rc, text)
    _, rc, table = grok_command("phase", str(diagram), "--out", str(out / "phase.png"))
    if rc:
        fail("grok phase", rc, table)
    rate = tflop / seconds
    print(f"\n[D] phase diagram ({spec}): {seconds:.1f} s wall (compile and writing included), {tflop:.3g} TFLOP")
    (out / "phase.txt").write_text(table)
    lines = table.strip().splitlines()
    print("\n".join(lines if tiny else [*lines[:3], f"... ({len(lines)} lines in {out / 'phase.txt'})", *lines[-3:]]))
    walls = group_seconds(diagram)
    print(batches_line(walls))
    print(f"  {rate:.3g} TFLOP/s: " + ", ".join(f"{rate / v:.3g} of {k}" for k, v in peaks.items() if k != "fp64"))
    summary |= {"diagram_seconds": seconds, "diagram_tflop": tflop, "diagram_tflops": rate}
    summary |= {f"diagram_batch{i}_seconds": w for i, w in enumerate(walls)}

    # where the largest group's step goes: its kernels, cuBLAS's included, in a fresh process
    profile_args = TINY_PROFILE if tiny else PAPER_PROFILE
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile_step", *profile_args], capture_output=True, text=True
    )
    if proc.returncode:
        fail("benchmarks.profile_step", proc.returncode, proc.stdout + proc.stderr)
    print(f"\n[D] the largest group's step, profiled (python -m benchmarks.profile_step {shlex.join(profile_args)}):")
    print("\n".join("  " + line for line in proc.stdout.strip().splitlines()))
    summary["largest_group_step_ms"] = float(proc.stdout.split(" ms per step untraced")[0].rsplit(" ", 1)[-1])

    # the same step with the fused token kernels (off by default until timed), in a fresh process
    ab_args = ["--json", str(out / "fused_ab.json"), *(["--tiny", "--calls", "2"] if tiny else [])]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.fused_ab", *ab_args], capture_output=True, text=True)
    if proc.returncode:
        fail("benchmarks.fused_ab", proc.returncode, proc.stdout + proc.stderr)
    print(f"\n[D] the largest group's step, fused token kernels against the landed layer ({shlex.join(ab_args)}):")
    print("\n".join("  " + line for line in proc.stdout.strip().splitlines()))
    summary |= json.loads((out / "fused_ab.json").read_text())

    if fused_diagram_wanted(summary, tiny):  # the diagram again, with the fused kernels, in a fresh process
        fused_dir = out / "phase-fused"
        env = {"GROK_FUSED_TOKEN_KERNEL": "1"}
        seconds, rc, text = grok_command("sweep", str(spec), "--out", str(fused_dir), "--quiet", env=env)
        if rc:
            fail("GROK_FUSED_TOKEN_KERNEL=1 grok sweep", rc, text)
        landed_phases = majority_phases(diagram)
        differing = int(np.sum(majority_phases(fused_dir) != landed_phases))
        walls = group_seconds(fused_dir)
        print(
            f"\n[D] phase diagram with the fused token kernels (GROK_FUSED_TOKEN_KERNEL=1): {seconds:.1f} s wall, "
            f"{tflop / seconds:.3g} TFLOP/s counted as XLA's step; {differing} cell(s) of "
            f"{landed_phases.size} in another phase than the landed layer's"
        )
        print(batches_line(walls))
        summary |= {"fused_diagram_seconds": seconds, "fused_diagram_cells_differing": differing}
        summary |= {f"fused_diagram_batch{i}_seconds": w for i, w in enumerate(walls)}
    else:
        print("\n[D] phase diagram with the fused token kernels: not run (their step was not faster)")

    run = out / "stablemax"
    sets = TINY_STABLEMAX_SETS if tiny else ()
    steps = TINY_STABLEMAX_STEPS if tiny else None
    extra = ["--steps", str(steps), *(a for kv in sets for a in ("--set", kv))] if tiny else []
    seconds, rc, text = grok_command("reproduce", "prieto-stablemax", "--out", str(run), "--quiet", *extra)
    if rc not in (0, 1):  # 1: the run finished without showing the claim (expected when shortened)
        fail("grok reproduce prieto-stablemax", rc, text)
    from grok.cli.args import parse_sets
    from grok.reproduce import build_config

    cfg = build_config("prieto-stablemax", steps, parse_sets(list(sets)) if sets else {})
    jax_flop = step_flops(plain_program(cfg, 1)) * cfg.train.steps / 1e12
    rate = jax_flop / seconds
    print(f"\n[P] StableMax, {cfg.train.steps} steps: {seconds:.1f} s wall, {jax_flop:.3g} TFLOP (float64)")
    print("\n".join("  " + line for line in text.strip().splitlines()[-3:]))
    print(f"  {rate:.3g} TFLOP/s: {rate / peaks['fp64']:.3g} of fp64, {rate / peaks['fp32']:.3g} of fp32")
    summary |= {"stablemax_seconds": seconds, "stablemax_tflop": jax_flop, "stablemax_shown": float(rc == 0)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nruns and summary.json in {out}")
    return summary


if __name__ == "__main__":
    main()
