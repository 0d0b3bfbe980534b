"""The parsers of `benchmarks/gpu_aot.py` (the compile itself needs JAX's CUDA plugin: `make gpu-aot`)."""

from __future__ import annotations

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


def test_kernel_knobs_set_the_tiling_constants_and_refuse_bad_input(monkeypatch, capsys):
    import grok.models._token_kernel as kernel
    from benchmarks.gpu_aot import set_kernel_knobs

    for name in ("EXAMPLE_TILE", "NUM_WARPS", "ROW_TILES"):
        monkeypatch.setattr(kernel, name, getattr(kernel, name))
    set_kernel_knobs(["EXAMPLE_TILE=128", "NUM_WARPS=8", "ROW_TILES=32,64"])
    assert (kernel.EXAMPLE_TILE, kernel.NUM_WARPS, kernel.ROW_TILES) == (128, 8, (32, 64))
    for bad in ("TILE=4", "NUM_WARPS=0", "UNIT_TILE=32,64", "ROW_TILES="):
        with pytest.raises(SystemExit) as exit_:
            set_kernel_knobs([bad])
        assert exit_.value.code == 2 and repr(bad) in capsys.readouterr().err
