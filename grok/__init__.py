"""grok-lab: a JAX lab for grokking and training dynamics.

The public surface (DESIGN.md §8)::

    import grok
    cfg = grok.preset("prieto-perpgrad").override(**{"optim.lr": 5e-3})
    run = grok.train(cfg, seeds=(0, 1, 2))
    run.history["test_acc"]            # [members, intervals]
    run.save("runs/x"); run = grok.load_run("runs/x")

On CPU, `import grok` gives JAX one device per core (`grok.cpu_devices`) when JAX has not
computed anything yet; `GROK_CPU_DEVICES=1` keeps a single device.
"""

from grok.cpu_devices import use_cpu_cores

use_cpu_cores()

from grok.config import (  # noqa: E402
    Config,
    LossConfig,
    ModelConfig,
    OptimConfig,
    TaskConfig,
    TrainConfig,
    field_names,
)
from grok.engine import trace_count  # noqa: E402
from grok.errors import ConfigError  # noqa: E402
from grok.presets import preset, presets  # noqa: E402
from grok.prune import prune  # noqa: E402
from grok.run import Run, load_run, train, train_members  # noqa: E402
from grok.sweep import SweepSpec, load_sweep, sweep  # noqa: E402

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
