"""benchmarks/gpu.sh on its CPU path (`--tiny`), so that the GPU script cannot rot: every step runs
(devices, matmul peaks, the [D] diagram through `grok sweep` and `grok phase`, the profile and the
fused kernels' A/B of its largest group's step, [P] StableMax through `grok reproduce`), and the
FLOPs it divides by are XLA's count of the steps it ran."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_png

from benchmarks.gpu_suite import TINY_STABLEMAX_STEPS
from grok.sweep import SweepSpec

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_script_runs_every_step_at_tiny_sizes(tmp_path):
    env = os.environ | {"PY": sys.executable}
    proc = subprocess.run(
        [str(ROOT / "benchmarks" / "gpu.sh"), "--tiny", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    assert "devices: [" in text and "matmul peak, tf32" in text
    assert "1 batch(es) of members, s each (compile included): " in text
    assert "[D] the largest group's step, profiled" in text and "[D] tiny: 9 members, " in text
    assert f"[P] StableMax, {TINY_STABLEMAX_STEPS} steps" in text and "gpu.sh:" in text

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert all(summary[f"peak_{k}_tflops"] > 0 for k in ("tf32", "fp32", "fp64"))
    # the diagram: 3 × 3 members in one group, trained, written and drawn
    spec = SweepSpec.parse(tmp_path / "tiny-diagram.toml")
    assert spec.n_members == 9 and len(spec.groups()) == 1
    assert_png(tmp_path / "phase.png")
    assert (tmp_path / "stablemax" / "figure.png").exists()
    # XLA's count, taken in a fresh process like the script's: in this one an earlier test may have
    # switched on float64 (a process-wide flag), which changes the compiled program's index arithmetic
    count = subprocess.run(
        [sys.executable, "-c", EXPECTED_FLOPS, str(tmp_path / "tiny-diagram.toml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )
    assert count.returncode == 0, count.stderr[-3000:]
    expected, one_step = (float(x) for x in count.stdout.split())
    assert summary["diagram_tflop"] == pytest.approx(expected / 1e12, rel=1e-6)
    # a [D] step at p = 11, N = 16 is at least its three matrix products, forward and backward
    g = spec.groups()[0].config
    assert one_step >= 3 * 2 * g.n_train * g.model.widths[0] * g.task.p
    assert summary["diagram_seconds"] > 0 and summary["stablemax_seconds"] > 0
    assert 0 < summary["diagram_batch0_seconds"] < summary["diagram_seconds"]
    assert summary["largest_group_step_ms"] > 0
    # the fused token kernels' A/B (interpreted on a CPU): timed, and the same training within float rounding
    assert "fused token kernels against the landed layer" in text
    assert summary["landed_step_ms"] > 0 and summary["fused_step_ms"] > 0
    assert summary["fused_relative_difference"] < 1e-4
    # the diagram again with GROK_FUSED_TOKEN_KERNEL=1: on a CPU the same program, so the same phases
    assert "[D] phase diagram with the fused token kernels (GROK_FUSED_TOKEN_KERNEL=1): " in text
    assert summary["fused_diagram_seconds"] > 0 and summary["fused_diagram_cells_differing"] == 0
    assert (tmp_path / "phase-fused" / "sweep.json").exists()


@pytest.mark.parametrize(
    ("summary", "tiny", "wanted"),
    [
        ({"landed_step_ms": 8.0}, True, True),  # tiny: always, so that CI runs the step
        ({"landed_step_ms": 8.0, "fused_step_ms": 5.0, "fused_relative_difference": 3e-4}, False, True),
        ({"landed_step_ms": 8.0, "fused_step_ms": 5.0, "fused_relative_difference": 0.2}, False, True),
        ({"landed_step_ms": 8.0, "fused_step_ms": 9.0, "fused_relative_difference": 3e-4}, False, False),  # slower
        ({"landed_step_ms": 8.0}, False, False),  # the default tiling failed: no figure
    ],
)
def test_the_fused_diagram_runs_only_where_the_kernels_were_faster(summary, tiny, wanted):
    from benchmarks.gpu_suite import fused_diagram_wanted

    assert fused_diagram_wanted(summary, tiny) is wanted


EXPECTED_FLOPS = """
import sys
from benchmarks.bench_limits import plain_program, step_flops
from grok.sweep import SweepSpec
groups = SweepSpec.parse(sys.argv[1]).groups()
total = sum(step_flops(plain_program(g.config, 1)) * len(g.members) * g.config.train.steps for g in groups)
print(total, step_flops(plain_program(groups[0].config, 1)))
"""
