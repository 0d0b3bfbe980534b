"""Live curves in a notebook (`grok.train(..., live=True)`), run headless in a fresh kernel; the text
progress bar with the latest accuracies."""

from pathlib import Path

import numpy as np
import pytest
from test_notebooks import kernel_env

from grok.training_display import latest_figures

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
ROOT = Path(__file__).resolve().parent.parent  # the kernel imports this checkout's grok

CELL = """
import grok
cfg = grok.preset("prieto-perpgrad").override(**{"task.p": 23, "task.train_fraction": 0.5, "model.widths": [16],
    "train.steps": 40, "train.schedule": "log", "train.log_points": 12})
run = grok.train(cfg, seeds=(0, 1), live=True)
print("trained", run.history["step"][-1])
"""


@pytest.mark.slow
def test_live_curves_are_redrawn_in_a_headless_notebook(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    ).execute(env=kernel_env() | {"PYTHONPATH": str(ROOT)})
    outputs = nb.cells[0].outputs
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 1  # one display, redrawn in place after each chunk (not one figure per chunk)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "trained 40" in text and "IProgress" not in text and "TqdmWarning" not in text
    assert "test " in text  # the bar showed the latest accuracies


def test_the_bar_shows_accuracies_or_losses():
    acc = {"train_acc": np.array([[0.1, 0.9], [0.2, 1.0]]), "test_acc": np.array([[0.0, 0.5], [0.0, 0.7]])}
    assert latest_figures(acc) == "train 0.950 test 0.600"
    nan = np.full((2, 2), np.nan)
    loss = {"train_acc": nan, "test_acc": nan, "train_loss": np.ones((2, 2)), "test_loss": np.full((2, 2), 2.0)}
    assert latest_figures(loss) == "train 1 test 2 (loss)"
