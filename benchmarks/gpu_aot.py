"""Compile for an H200 on a machine without a GPU: [D]'s largest group's step, plain and fused.

`make gpu-aot` (or `python -m benchmarks.gpu_aot` in an environment with the `cuda` extra) builds
the engine's step of the `bench_limits` setting "[D] paper" for `--members` members at 60%
training, as XLA would for one H200 (`benchmarks/h200_target.txtpb`, JAX's deviceless
compilation), once with the plain token layer and once with the fused token kernels
(`grok/models/_token_kernel.py`), and prints:

- whether each program compiled for the GPU (sm_90a), and in how long;
- the largest intermediate of each program (the plain step writes the [members, n, N] hidden
  tensor; the fused step must not: exit 1 if it does);
- per Triton kernel of the fused step: registers per thread, bytes spilled (`ptxas -v` on the
  PTX XLA wrote) and its Hopper tensor-core instructions (`wgmma.mma_async`).

What it cannot say is the speed: that needs the GPU (`benchmarks/gpu.sh`). What it catches
before a GPU is lent: kernels that Triton or XLA refuse for the GPU, register spills, and a
hidden tensor that slipped back into the fused program.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = Path(__file__).with_name("h200_target.txtpb")
HIDDEN_SETTING = "[D] paper"
TRAIN_FRACTION = 0.6
_TENSOR = re.compile(r"= (f32|f64|bf16|s32|u32|pred)\[([0-9,]+)\]")
_ENTRY = re.compile(r"\.entry\s+(\w+)")


def largest_tensors(hlo_text: str, top: int = 3) -> list[tuple[int, str]]:
    """The `top` largest arrays a compiled program's text defines: (elements, 'dtype[dims]')."""
    sizes = {}
    for match in _TENSOR.finditer(hlo_text):
        dims = [int(d) for d in match.group(2).split(",")]
        sizes[f"{match.group(1)}[{match.group(2)}]"] = math.prod(dims)
    return sorted(((n, name) for name, n in sizes.items()), reverse=True)[:top]


def ptxas_report(ptxas_output: str) -> dict[str, int]:
    """Registers per thread and bytes spilled (stores + loads) from `ptxas -v`'s report of one kernel."""
    registers = re.search(r"Used (\d+) registers", ptxas_output)
    stores = re.search(r"(\d+) bytes spill stores", ptxas_output)
    loads = re.search(r"(\d+) bytes spill loads", ptxas_output)
    if registers is None:
        raise ValueError(f"no register count in ptxas's output: {ptxas_output[:300]!r}")
    return {
        "registers": int(registers.group(1)),
        "spill_bytes": int(stores.group(1) if stores else 0) + int(loads.group(1) if loads else 0),
    }


def _bad_input(message: str) -> None:
    print(message, file=sys.stderr)
    raise SystemExit(2)


FLAG = "readout_in_token_kernel"  # the one yes/no field of Tiling


def set_tiling(assignments: list[str], option: str = "--kernel") -> None:
    """Replace fields of the fused kernels' `TILING` from NAME=VALUE (token_row_tiles: 64,128);
    bad input exits 2 with one line naming `option`."""
    import dataclasses

    import grok.models._token_kernel as kernel

    fields = [f.name for f in dataclasses.fields(kernel.Tiling)]
    changes = {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        numbers = [v.strip() for v in value.split(",")]
        is_flag = name == FLAG
        values = range(2) if is_flag else range(1, 1025)
        if name not in fields or not all(v.isdigit() and int(v) in values for v in numbers):
            allowed = f"NAME=VALUE, NAME one of {', '.join(fields)}; VALUE 1–1024, or 0 or 1 for {FLAG}"
            _bad_input(f"{option}: got {assignment!r}; allowed: {allowed}")
        if name != "token_row_tiles" and len(numbers) > 1:
            _bad_input(f"{option}: got {assignment!r}; allowed: one whole number for {name}")
        if name == "token_row_tiles":
            changes[name] = tuple(map(int, numbers))
        else:
            changes[name] = bool(int(numbers[0])) if is_flag else int(numbers[0])
    kernel.TILING = dataclasses.replace(kernel.TILING, **changes)


def modelled_reads(n: int, p: int, width: int, n_classes: int, tiling) -> dict[str, float]:
    """Bytes each fused kernel reads per member and step under a simple cache model, loop by loop.

    The model: every gathered row segment of E and every tile of W or g a program loads comes
    from L2 (with `readout_in_token_kernel`, ∂W's parts are written and read back instead),
    except the g rows of the embedding-gradient kernel's current row chunk, which it
    re-reads once per unit tile and which stay in L1 (a few tens of kilobytes). Index loads and
    stores are left out (both are small). A GPU run is the check on the model.
    """
    from grok.models._token_kernel import _class_tile, _expected_padded_examples, row_tile_for

    f32, classes = 4, _class_tile(n_classes)
    cdiv = lambda a, b: -(-a // b)  # noqa: E731
    t = tiling
    steps = cdiv(width, t.logits_units)
    logits = cdiv(n, t.logits_examples) * steps * (2 * t.logits_examples + classes) * t.logits_units * f32
    steps = cdiv(n, t.readout_examples)
    readout = cdiv(width, t.readout_units) * steps * t.readout_examples * (2 * t.readout_units + classes) * f32
    if t.readout_in_token_kernel:  # no kernel of its own: its parts written by ∂E's programs, then summed
        readout = 2 * cdiv(p, t.token_rows) * n_classes * width * f32
    tile = row_tile_for(n, p, t.token_row_tiles)
    slots = 2 * p * _expected_padded_examples(n, p, tile)  # example slots over all rows, padding included
    w_tiles = cdiv(2 * p, t.token_rows) * cdiv(width, t.token_units) * classes * t.token_units * f32
    token = w_tiles + slots * (cdiv(width, t.token_units) * t.token_units + classes) * f32
    return {"logits": logits, "readout_gradient": readout, "token_gradient": token}


def _ptxas() -> str:
    """The ptxas of NVIDIA's CUDA wheels (CUDA 12's `nvidia.cuda_nvcc` or CUDA 13's `nvidia.cu13`)."""
    import importlib

    for package in ("nvidia.cuda_nvcc", "nvidia.cu13"):
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        for root in module.__path__:
            if (Path(root) / "bin" / "ptxas").exists():
                return str(Path(root) / "bin" / "ptxas")
    raise FileNotFoundError("no ptxas in NVIDIA's CUDA wheels (the `cuda` extra installs it)")


def cuda_plugin() -> str | None:
    """The JAX CUDA plugin installed here (`xla_cuda12` or `xla_cuda13`), or None."""
    import importlib.util

    for name in ("xla_cuda12", "xla_cuda13"):
        if importlib.util.find_spec(f"jax_plugins.{name}") is not None:
            return name
    return None


def kernel_reports(dump_dir: Path) -> dict[str, dict[str, int]]:
    """Per Triton kernel (`_..._kernel` entries) in XLA's PTX dump: ptxas's registers and spills
    for sm_90a and its count of tensor-core instructions."""
    reports = {}
    for ptx in sorted(dump_dir.glob("*.ptx")):
        text = ptx.read_text()
        names = [n for n in _ENTRY.findall(text) if n.endswith("_kernel")]
        if not names:
            continue
        done = subprocess.run(
            [_ptxas(), "-arch=sm_90a", "-v", str(ptx), "-o", os.devnull], capture_output=True, text=True, check=True
        )
        report = ptxas_report(done.stderr + done.stdout)
        report["wgmma"] = len(re.findall(r"wgmma\.mma_async", text))
        reports[names[0]] = report
    return reports


def _h200_mesh():
    from jax.experimental import topologies

    topology = topologies.get_topology_desc(platform="cuda", target_config=TARGET.read_text(), topology="1x1x1")
    return topologies.make_mesh(topology, (1,), ("members",))


def compile_step(fused: bool, members: int) -> tuple[str, float]:
    """[D]'s step for `members` members built as for a GPU and compiled for the H200:
    (the compiled program's text, seconds to lower and compile)."""
    import jax

    import grok.models._mlp as mlp
    from benchmarks.profile_step import setting_program

    os.environ[mlp.FUSED_TOKEN_KERNEL_ENV] = "1" if fused else "0"
    jax.clear_caches()
    overrides = {"task.train_fraction": TRAIN_FRACTION}
    fn, args, _ = setting_program(HIDDEN_SETTING, steps=2, members=members, overrides=overrides)  # inputs on the CPU
    gpu_forms, mlp.on_gpu = mlp.on_gpu, lambda: True  # the model's GPU forms, traced on this CPU
    try:
        mesh = _h200_mesh()
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        specs = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), args)
        start = time.perf_counter()
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):  # Pallas (jax ≥ 0.11) reads the GPU's kind here
            text = fn.lower(*specs).compile().as_text()
        return text, time.perf_counter() - start
    finally:
        mlp.on_gpu = gpu_forms


def main(dump_dir: Path, argv: list[str] | None = None) -> int:
    """Compile both steps; XLA writes its PTX to `dump_dir` (`--xla_dump_to`, set before JAX starts)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=289, help="members in the group (default 289, [D]'s largest)")
    parser.add_argument(
        "--kernel",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a field of the fused kernels' Tiling for this compile (grok/models/_token_kernel.py)",
    )
    ns = parser.parse_args(argv)
    if ns.members < 1:
        _bad_input(f"--members: got {ns.members}; allowed: a whole number ≥ 1")
    set_tiling(ns.kernel)
    if cuda_plugin() is None:
        print("gpu_aot: needs JAX's CUDA plugin (the `cuda` extra; `make gpu-aot` installs it in .venv-cuda)")
        return 2
    import jax

    import grok.models._token_kernel as kernel

    p, width = 97, 500
    n = int(TRAIN_FRACTION * p * p)
    hidden = ns.members * n * width
    tile = kernel.row_tile_for(n, p, kernel.TILING.token_row_tiles)
    print(f"[D] step, {ns.members} members × {n} examples × {width} units, for an H200 (no GPU needed)")
    print(f"jax {jax.__version__}; hidden tensor {hidden:,} elements; embedding-gradient row tile {tile}")
    print(f"  {kernel.TILING}")
    per_step = {name: b * ns.members / 1e9 for name, b in modelled_reads(n, p, width, p, kernel.TILING).items()}
    parts = ", ".join(f"{name} {gb:.1f}" for name, gb in per_step.items())
    print(f"  modelled L2 reads per step: {sum(per_step.values()):.1f} GB ({parts})")
    failed = False
    for fused in (False, True):
        text, seconds = compile_step(fused, ns.members)
        elements, largest = largest_tensors(text, top=1)[0]
        label = "fused" if fused else "plain"
        print(f"  {label}: compiled for sm_90a in {seconds:.1f} s; largest array {largest} ({elements:,})")
        if fused and elements >= hidden:
            print(f"  FAIL: the fused step holds an array as large as the hidden tensor: {largest}")
            failed = True
    reports = kernel_reports(dump_dir)  # only the fused step has Triton kernels
    if not reports:
        print("    (this XLA wrote no PTX to its dump, so no register report: jax 0.10 writes it)")
    for name, r in reports.items():
        spilled = f"{r['spill_bytes']} bytes spilled"
        print(f"    {name}: {r['registers']} registers, {spilled}, {r['wgmma']} wgmma instructions")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")  # no driver here: compile only
    os.environ["GROK_CACHE_DIR"] = "off"  # executables for a GPU that this machine cannot load
    with tempfile.TemporaryDirectory() as dump:
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={dump}".strip()
        sys.exit(main(Path(dump)))
