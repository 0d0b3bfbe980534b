"""grok-lab: a JAX lab for grokking and training dynamics.

The public surface (DESIGN.md §8)::

    import grok
    cfg = grok.preset("prieto-perpgrad").override(**{"optim.lr": 5e-3})
    run = grok.train(cfg, seeds=(0, 1, 2))
    run.history["test_acc"]            # [members, intervals]
    run.save("runs/x"); run = grok.load_run("runs/x")
"""

from grok.config import (
    Config,
    LossConfig,
    ModelConfig,
    OptimConfig,
    TaskConfig,
    TrainConfig,
    field_names,
)
from grok.engine import trace_count
from grok.errors import ConfigError
from grok.presets import preset, presets
from grok.prune import prune
from grok.run import Run, load_run, train, train_members
from grok.sweep import SweepSpec, load_sweep, sweep

__all__ = [
    "Config",
    "ConfigError",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "Run",
    "SweepSpec",
    "TaskConfig",
    "TrainConfig",
    "field_names",
    "load_run",
    "load_sweep",
    "preset",
    "presets",
    "prune",
    "sweep",
    "trace_count",
    "train",
    "train_members",
]
