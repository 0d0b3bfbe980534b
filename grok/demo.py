"""`grok demo`: softmax CE vs StableMax vs ⊥AdamW on modular addition [P, Fig 1].

Without weight decay, softmax cross-entropy in float32 memorizes the training set
and stalls (Softmax Collapse); StableMax (float64) and ⊥AdamW generalize. Writes
the runs, one figure (train/test accuracy vs step, log x) and prints a table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grok.config import Config
from grok.presets import preset
from grok.run import Run, train

DEMO_P = 53
DEMO_STEPS = 2000


def demo_configs(steps: int = DEMO_STEPS, p: int = DEMO_P) -> dict[str, Config]:
    """The three contenders, identical but for loss and optimizer."""
    common = {"task.p": p, "train.steps": steps, "train.log_every": max(1, steps // 100), "train.probes": ["collapse"]}
    return {
        "softmax CE (float32), AdamW": preset("prieto-softmax-collapse").override(**common),
        "StableMax CE (float64), AdamW": preset("prieto-stablemax").override(**common),
        "softmax CE (float32), ⊥AdamW": preset("prieto-perpgrad").override(**common),
    }


def first_step_reaching(run: Run, metric: str, threshold: float) -> float:
    """First logged step where member 0's metric reaches `threshold` (NaN if never)."""
    hits = np.nonzero(run.history[metric][0] >= threshold)[0]
    return float(run.history["step"][hits[0]]) if hits.size else float("nan")


def summary_table(runs: dict[str, Run]) -> str:
    """Final accuracies, steps to 95% test accuracy, final SC fraction."""
    header = f"{'setting':<32} {'train acc':>9} {'test acc':>9} {'step@95% test':>14} {'SC':>6}"
    rows = [header, "-" * len(header)]
    for name, run in runs.items():
        reach = first_step_reaching(run, "test_acc", 0.95)
        sc = run.final("sc_fraction")[0] if "sc_fraction" in run.history else float("nan")
        reach_text = "never" if np.isnan(reach) else f"{reach:.0f}"
        rows.append(
            f"{name:<32} {run.final('train_acc')[0]:>9.3f} {run.final('test_acc')[0]:>9.3f} {reach_text:>14} {sc:>6.2f}"
        )
    return "\n".join(rows)


def run_demo(out: str | Path = "runs/demo", quick: bool = False) -> dict[str, Run]:
    """Train the three settings, save them under `out`, write `out/demo.png`, print the table."""
    from grok.plots import plot_accuracy_comparison

    out = Path(out)
    steps = 200 if quick else DEMO_STEPS
    runs: dict[str, Run] = {}
    for i, (name, cfg) in enumerate(demo_configs(steps).items()):
        print(f"[{i + 1}/3] {name}")
        runs[name] = train(cfg, seeds=(0,))
        runs[name].save(out / f"run{i}")
    figure = plot_accuracy_comparison(runs, out / "demo.png", title=f"add mod {DEMO_P}, no weight decay [P, Fig 1]")
    print()
    print(summary_table(runs))
    print(f"\nfigure: {figure}")
    return runs
