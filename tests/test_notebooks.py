"""The notebooks run headless, top to bottom, at their small size (docs/architecture.md; issue: notebooks as tests).

Each notebook is executed by nbclient in a fresh `python3` kernel with a temporary directory as its
working directory. The kernelspec's command is `python -m ipykernel_launcher`, which jupyter_client
runs with `sys.executable`: the kernel is the interpreter running the tests, with the venv's jax and
grok (checked below). A cell error fails the test; the notebooks end with `assert` cells that check
their paper's effect. The kernel gets JAX's set-up on a user's machine: the 4 host devices of
conftest.py are removed from XLA_FLAGS, so `import grok` gives it one CPU device per core. The
notebooks must be committed without outputs.

One test per notebook, so `pytest -n 2` spreads them. `SAVE_FIGURES` is injected after the tagged
parameters cell, the way papermill does, and the key figure each notebook writes is checked.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT_S = 600  # one cell; the whole notebook must stay well under 3 minutes on two CPU cores
FIGURES = {
    "01_softmax_collapse.ipynb": "01_softmax_collapse.png",
    "02_memorizing_neurons.ipynb": "02_memorizing_neurons.png",
    "03_lazy_to_rich.ipynb": "03_lazy_to_rich.png",
    "04_phase_diagram.ipynb": "04_phase_diagram.png",
    "05_your_own_probe.ipynb": "05_your_own_probe.png",
    "07_interventions.ipynb": "07_interventions.png",
    "08_llc.ipynb": "08_llc.png",
    "06_progress_measures.ipynb": "06_progress_measures.png",
    "09_spectral_lens.ipynb": "09_spectral_lens.png",
    "10_seeds_and_refinement.ipynb": "10_seeds_and_refinement.png",
}


def kernel_env() -> dict[str, str]:
    """The test process's environment without the forced host devices, and the inline matplotlib backend."""
    env = dict(os.environ)
    flags = re.sub(r"--xla_force_host_platform_device_count=\d+", "", env.get("XLA_FLAGS", "")).strip()
    if flags:
        env["XLA_FLAGS"] = flags
    else:
        env.pop("XLA_FLAGS", None)
    env.pop("MPLBACKEND", None)  # the kernel's inline backend turns figures into display outputs
    env.setdefault("JAX_PLATFORMS", "cpu")  # as conftest.py: CPU unless the caller chose a platform
    return env


def inject_parameters(nb, values: dict[str, object]) -> None:
    """Add a cell after the one tagged "parameters" that overrides some of its names (papermill's convention)."""
    (index,) = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    source = "\n".join(f"{k} = {v!r}" for k, v in values.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    cell["id"] = "injected-parameters"
    nb.cells.insert(index + 1, cell)


def test_every_notebook_is_collected():
    assert NAMES == sorted(FIGURES), NAMES


def test_the_kernel_is_this_interpreter(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys, grok; print(sys.executable)")])
    nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=kernel_env())
    (out,) = nb.cells[0].outputs
    assert Path(out.text.strip()) == Path(sys.executable)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_clean(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip the outputs before committing"
    # opens by saying what it shows, and which paper; one parameter cell with the size switch
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert re.search(r"\[[PDKGOMN]\]", nb.cells[0].source)
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "PAPER_SIZE = False" in tagged[0].source and "SAVE_FIGURES = None" in tagged[0].source
    # the last code cell checks the effect
    assert "assert " in code[-1].source


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_and_shows_its_effect(name, tmp_path):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    figures = tmp_path / "figures"
    inject_parameters(nb, {"SAVE_FIGURES": str(figures)})
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    start = time.perf_counter()
    client.execute(env=kernel_env())  # raises CellExecutionError (with the cell and traceback) on any error
    wall = time.perf_counter() - start
    print(f"{name}: {wall:.0f} s")

    code = [c for c in nb.cells if c.cell_type == "code"]
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # figures are drawn inline
    assert any("image/png" in o.get("data", {}) for o in outputs)
    # the check cell ran to its end
    assert any("passed" in o.get("text", "") for o in code[-1].outputs if o.output_type == "stream")
    # the key figure for the docs was written, and is small
    png = figures / FIGURES[name]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 < len(data) < 120_000, len(data)
