"""Short errors in notebooks: a grok error raised in a Jupyter kernel shows its one-line message and
the user's own line, not the library's frames; a plain script keeps Python's full traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_notebooks import kernel_env

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
ROOT = Path(__file__).resolve().parent.parent

CELLS = [
    "import grok",
    'cfg = grok.preset("prieto-perpgrad-small")\ncfg = cfg.override(**{"optim.lrr": 0.1})  # the user\'s line',
    "grok.show_full_tracebacks()",
    'cfg.override(**{"optim.lrr": 0.1})',
]


def _error_text(output) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(output["traceback"]))  # without terminal colours


@pytest.mark.slow
def test_a_grok_error_in_a_notebook_shows_one_line_and_the_users_frame(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=kernel_env() | {"PYTHONPATH": str(ROOT)})
    [short] = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    text = _error_text(short)
    assert short["ename"] == "ConfigError"
    lines = text.splitlines()
    assert lines[0] == (
        "ConfigError: optim.lrr: got 0.1 (did you mean 'optim.lr'?); allowed: a config field "
        "(grok.field_names() lists them)"
    )
    assert "line 2" in lines[1] and "# the user's line" in lines[1]
    assert len(lines) <= 3 and "config.py" not in text and "site-packages" not in text
    # asked for, the full traceback is back: the library's frames are shown
    [full] = [o for o in nb.cells[3].outputs if o.output_type == "error"]
    assert "config.py" in _error_text(full) and len(full["traceback"]) > 3


def test_a_plain_script_keeps_the_full_traceback_unless_asked():
    code = 'import grok\ngrok.Config().override(**{"optim.lrr": 0.1})\n'
    full = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert full.returncode == 1 and "Traceback" in full.stderr and "config.py" in full.stderr
    code = "import grok\ngrok.show_short_errors()\n" + code.split("\n", 1)[1]
    short = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    lines = short.stderr.strip().splitlines()
    assert short.returncode == 1 and "Traceback" not in short.stderr
    assert lines[0].startswith("ConfigError: optim.lrr: got 0.1 (did you mean 'optim.lr'?)")
    assert "line 3" in lines[1]
