"""The parsers of `benchmarks/gpu_aot.py` (the compile itself needs JAX's CUDA plugin: `make gpu-aot`)."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.gpu_aot import largest_tensors, ptxas_report

HLO = """
  %p = f32[289,5645,2]{2,1,0} parameter(0)
  %g = f32[289,5645,1,500]{3,2,1,0} gather(%e, %p)
  %l = pred[289,5645,97]{2,1,0} compare(%x, %y), direction=EQ
  %s = f32[] constant(0)
"""

PTXAS = """ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '_token_gradient_kernel' for 'sm_90a'
ptxas info    : Function properties for _token_gradient_kernel
    200 bytes stack frame, 200 bytes spill stores, 184 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 200 bytes cumulative stack size
"""


def test_largest_tensors_ranks_arrays_by_elements():
    hidden, logits = (289 * 5645 * 500, "f32[289,5645,1,500]"), (289 * 5645 * 97, "pred[289,5645,97]")
    assert largest_tensors(HLO, top=2) == [hidden, logits]


def test_ptxas_report_reads_registers_and_spills():
    assert ptxas_report(PTXAS) == {"registers": 255, "spill_bytes": 384}
    assert ptxas_report("ptxas info    : Used 100 registers, used 1 barriers") == {"registers": 100, "spill_bytes": 0}
    with pytest.raises(ValueError, match="no register count"):
        ptxas_report("ptxas fatal : unresolved symbol")


def test_kernel_option_replaces_fields_of_the_tiling_and_refuses_bad_input(monkeypatch, capsys):
    import grok.models._token_kernel as kernel
    from benchmarks.gpu_aot import set_tiling

    monkeypatch.setattr(kernel, "TILING", kernel.TILING)
    set_tiling(["logits_examples=64", "token_warps=8", "token_row_tiles=32,64", "readout_in_token_kernel=0"])
    assert (kernel.TILING.logits_examples, kernel.TILING.token_warps) == (64, 8)
    assert kernel.TILING.token_row_tiles == (32, 64) and kernel.TILING.readout_in_token_kernel is False
    for bad in ("tile=4", "logits_warps=0", "token_units=32,64", "token_row_tiles=", "readout_in_token_kernel=2"):
        with pytest.raises(SystemExit) as exit_:
            set_tiling([bad])
        assert exit_.value.code == 2 and repr(bad) in capsys.readouterr().err


def test_modelled_reads_count_the_kernels_loads():
    """The cache model at a size small enough to count by hand: n = 64 pairs of p = 8 tokens, N = 64, C = 8."""
    from benchmarks.gpu_aot import modelled_reads
    from grok.models._token_kernel import Tiling

    tiling = Tiling(32, 32, 4, 32, 32, 4, 4, 32, (16,), 4, readout_in_token_kernel=False)
    reads = modelled_reads(64, 8, 64, 8, tiling)
    # logits: 2 programs × 2 unit steps × (E rows for 32 examples × 2 tokens + a W tile 16 × 32) × 4 B
    assert reads["logits"] == 2 * 2 * (2 * 32 + 16) * 32 * 4
    # ∂W: 2 programs × 2 example steps × 32 examples × (E rows for 2 tokens × 32 units + 16 classes of g) × 4 B
    assert reads["readout_gradient"] == 2 * 2 * 32 * (2 * 32 + 16) * 4
    # ∂E: every row holds exactly 8 of the 64 pairs (all pairs used), padded to 16 slots, 16 rows;
    # 4 programs × 2 unit steps of W tiles, and per slot one E row (64 units) and one g row (16)
    assert reads["token_gradient"] == 4 * 2 * 16 * 32 * 4 + 16 * 16 * (64 + 16) * 4
    # ∂W summed by ∂E's programs: 2 first-token programs each write an [8, 64] part, read back once
    folded = modelled_reads(64, 8, 64, 8, dataclasses.replace(tiling, readout_in_token_kernel=True))
    assert folded["readout_gradient"] == 2 * 2 * 8 * 64 * 4 and folded["token_gradient"] == reads["token_gradient"]
