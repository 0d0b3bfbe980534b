"""`grok demo`: softmax CE vs StableMax vs ⊥AdamW on modular addition [P, Fig 1].

The `prieto-*-small` presets: add mod 31 with 90% of the pairs for training, MLP 128-128,
no weight decay. Softmax cross-entropy in float32 memorizes the training set and stalls (Softmax
Collapse); ⊥AdamW generalizes within a few dozen steps; StableMax (float64) never
collapses and groks after 7 000–10 000 steps (the paper's size: `grok reproduce prieto-stablemax`).
`run_demo` writes the runs and one figure (accuracy and SC fraction vs step, log x);
`summary_table` is the table `grok demo` prints (grok/cli/demo.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from grok.config import Config
from grok.presets import preset
from grok.run import Run, train

DEMO_PRESETS = {
    "softmax CE (float32), AdamW": "prieto-softmax-collapse-small",
    "StableMax CE (float64), AdamW": "prieto-stablemax-small",
    "softmax CE (float32), ⊥AdamW": "prieto-perpgrad-small",
}
QUICK_STEPS = 200
DEMO_FIGURE = "demo.png"  # written by `run_demo` into its `out` directory


def demo_configs(quick: bool = False) -> dict[str, Config]:
    """The three contenders, identical but for loss, optimizer and run length (`quick`: 200 steps each)."""
    configs = {}
    for name, preset_name in DEMO_PRESETS.items():
        cfg = preset(preset_name).override(**{"train.probes": ["collapse"]})
        if quick:
            cfg = cfg.override(**{"train.steps": QUICK_STEPS, "train.log_every": 10})
        configs[name] = cfg
    return configs


def first_step_reaching(run: Run, metric: str, threshold: float) -> float:
    """First logged step where member 0's metric reaches `threshold` (NaN if never)."""
    hits = np.nonzero(run.history[metric][0] >= threshold)[0]
    return float(run.history["step"][hits[0]]) if hits.size else float("nan")


def summary_table(runs: dict[str, Run]) -> str:
    """Final accuracies, steps to 90% test accuracy, final SC fraction."""
    header = f"{'setting':<32} {'train acc':>9} {'test acc':>9} {'step@90% test':>14} {'SC':>6}"
    rows = [header, "-" * len(header)]
    for name, run in runs.items():
        reach = first_step_reaching(run, "test_acc", 0.9)
        sc = run.final("sc_fraction")[0] if "sc_fraction" in run.history else float("nan")
        reach_text = "never" if np.isnan(reach) else f"{reach:.0f}"
        rows.append(
            f"{name:<32} {run.final('train_acc')[0]:>9.3f} {run.final('test_acc')[0]:>9.3f} {reach_text:>14} {sc:>6.2f}"
        )
    return "\n".join(rows)


def run_demo(
    out: str | Path = "runs/demo", quick: bool = False, *, before: Callable[[int, str], None] | None = None
) -> dict[str, Run]:
    """Train the three settings, save setting i under `out/run{i}`, write `out/demo.png`; returns the runs.

    `before(i, name)` is called before setting i trains (`grok demo` prints a header there).
    """
    from grok.plots.demo import demo_figure

    out = Path(out)
    runs: dict[str, Run] = {}
    for i, (name, cfg) in enumerate(demo_configs(quick).items()):
        if before is not None:
            before(i, name)
        runs[name] = train(cfg, seeds=(0,))
        runs[name].save(out / f"run{i}", overwrite=True)  # the demo's own directory: refreshed each time
    demo_figure(runs, out / DEMO_FIGURE)
    return runs
