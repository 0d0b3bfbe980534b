"""[D]'s largest group's step with the fused token kernels against the landed path, in one process.

    python -m benchmarks.fused_ab                       # on a GPU: 289 members at 60% training
    python -m benchmarks.fused_ab --variant token_rows=8 --variant "logits_examples=64 logits_warps=4"
    python -m benchmarks.fused_ab --tiny                # 9 tiny members, kernels interpreted (any machine)

Builds the engine's step program (`benchmarks/profile_step.py`'s "[D] paper" setting) twice or
more: the landed token layer (`GROK_FUSED_TOKEN_KERNEL` unset: the sorted scatters on a GPU),
then the fused kernels with the default `Tiling` and with each `--variant` (fields of `Tiling`,
NAME=VALUE separated by spaces; token_row_tiles=64,128). For each it prints ms per step (the
fastest of a few calls of `--steps` steps) and the largest difference of the parameters after
those steps from the landed path's, relative to their largest magnitude: TF32 products summed
in another order move the last bits, a wrong kernel moves far more. `benchmarks/gpu.sh` runs it with the default tiling.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

PAPER = ("[D] paper", 289, {"task.train_fraction": 0.6})
TINY = ("[D] tiny", 9, {"task.p": 11, "task.train_fraction": 0.6})


def _program(setting: tuple, steps: int, fused: bool):
    import jax

    import grok.models._mlp as mlp
    from benchmarks.profile_step import setting_program

    os.environ[mlp.FUSED_TOKEN_KERNEL_ENV] = "1" if fused else "0"
    jax.clear_caches()
    prefix, members, overrides = setting
    fn, args, _ = setting_program(prefix, steps=steps, members=members, overrides=overrides)
    return fn, args


def _run(fn, args, calls: int) -> tuple[float, list]:
    """(fastest seconds of `calls` calls after a first one, the first call's parameters on the host)."""
    import jax
    import numpy as np

    params = [np.asarray(leaf) for leaf in jax.tree.leaves(fn(*args).params)]
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best, params


def relative_difference(got: list, want: list) -> float:
    """max |got − want| / max |want| over all leaves (0 for identical parameters)."""
    import numpy as np

    scale = max(float(np.max(np.abs(w))) for w in want) or 1.0
    return max(float(np.max(np.abs(g - w))) for g, w in zip(got, want, strict=True)) / scale


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="9 tiny members, kernels in interpret mode (any machine)")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed call (default 20)")
    parser.add_argument("--calls", type=int, default=5, help="timed calls; the fastest counts (default 5)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE ...", help="a Tiling to try")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    ns = parser.parse_args(argv)
    if ns.steps < 1 or ns.calls < 1:
        print(f"--steps and --calls: got {ns.steps} and {ns.calls}; allowed: whole numbers ≥ 1", file=sys.stderr)
        raise SystemExit(2)
    import grok.models._mlp as mlp
    import grok.models._token_kernel as kernel
    from benchmarks.gpu_aot import set_tiling

    default = kernel.TILING
    variants = [[]] + [v.split() for v in ns.variant]
    for variant in variants:  # refuse a bad variant before anything compiles
        set_tiling(variant, "--variant")
        kernel.TILING = default
    if ns.tiny:  # a CPU never takes the fused path by itself: ask for it (Pallas interprets the kernels)
        mlp.use_fused_token_kernel = lambda: os.environ.get(mlp.FUSED_TOKEN_KERNEL_ENV) == "1"
    setting = TINY if ns.tiny else PAPER
    prefix, members, overrides = setting
    print(f"{prefix}, {members} members, {overrides}: {ns.steps} steps a call, fastest of {ns.calls} calls")
    landed, want = _run(*_program(setting, ns.steps, fused=False), ns.calls)
    ms = 1e3 * landed / ns.steps
    print(f"  landed token layer: {ms:.3f} ms per step", flush=True)
    summary = {"landed_step_ms": ms}
    for i, variant in enumerate(variants):
        set_tiling(variant, "--variant")
        label = " ".join(variant) or "default tiling"
        try:
            seconds, got = _run(*_program(setting, ns.steps, fused=True), ns.calls)
        except Exception as error:  # a tiling Triton refuses: say which, try the next
            print(f"  fused kernels ({label}): FAILED, {type(error).__name__}: {str(error)[:500]}", flush=True)
            continue
        finally:
            kernel.TILING = default
        ms, diff = 1e3 * seconds / ns.steps, relative_difference(got, want)
        print(
            f"  fused kernels ({label}): {ms:.3f} ms per step, {summary['landed_step_ms'] / ms:.2f}× the landed "
            f"layer's speed; parameters after {ns.steps} steps differ by {diff:.2e} of their largest",
            flush=True,
        )
        key = "fused" if i == 0 else f"fused_variant{i}"
        summary |= {f"{key}_step_ms": ms, f"{key}_relative_difference": diff}
    if ns.json:
        ns.json.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
