"""grok-lab: a JAX lab for grokking and training dynamics.

The public surface (docs/architecture.md)::

    import grok
    cfg = grok.preset("prieto-perpgrad").override(**{"optim.lr": 5e-3})
    run = grok.train(cfg, seeds=(0, 1, 2))
    run.history["test_acc"]            # [members, intervals]
    run.save("runs/x"); run = grok.load_run("runs/x")

Everything that varies is registered: `grok.register_probe`, `grok.register_transform`,
`grok.register_task`, `grok.register_model` (the built-ins use the same calls).

On CPU, `import grok` gives JAX one device per core (`grok.cpu_devices`) when JAX has not
computed anything yet; `GROK_CPU_DEVICES=1` keeps a single device. `GROK_CPU_MATMUL=eigen` has
XLA:CPU multiply matrices with Eigen instead of YNNPACK (`grok.cpu_matmul`).
"""

from grok.cpu_devices import use_cpu_cores
from grok.cpu_matmul import use_chosen_matmul

use_cpu_cores()
use_chosen_matmul()

from grok import compile_cache  # noqa: E402

compile_cache.enable()  # compiled programs are read back by later processes ($GROK_CACHE_DIR=off: not)

# The built-ins register themselves on import, exactly as a user's module would.
from grok import models, optim, probing, task_kinds  # noqa: E402, F401, I001
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
from grok.error_display import install_notebook_errors, show_full_tracebacks, show_short_errors  # noqa: E402
from grok.errors import ConfigError, GrokWarning  # noqa: E402
from grok.export import export_tensorboard, export_wandb  # noqa: E402
from grok.history import MetricNotRecorded  # noqa: E402
from grok.llc import LLCResult, llc, llc_calibrate  # noqa: E402
from grok.llc_theory import reduced_rank_lambda  # noqa: E402
from grok.posthoc import probe_history  # noqa: E402
from grok.progress_measures_posthoc import progress_with_final_keys  # noqa: E402
from grok.presets import preset, presets  # noqa: E402
from grok.prune import prune  # noqa: E402
from grok.registry import (  # noqa: E402
    ProbeInputs,
    RegistryError,
    register_model,
    register_probe,
    register_task,
    register_transform,
)
from grok.run import Run, load_run, train, train_members  # noqa: E402
from grok.sweep import SweepSpec, load_sweep, sweep  # noqa: E402
from grok.sweep.refine import refine  # noqa: E402


install_notebook_errors()  # in IPython/Jupyter: a grok error shows its one line and your frame


def registered() -> dict[str, tuple[str, ...]]:
    """The names in each registry: probes, transforms, tasks, models.

    >>> grok.registered()["probes"]
    ('collapse', 'neurons', 'ntk', 'progress')
    """
    from grok import registry

    return {
        "probes": registry.PROBES.names(),
        "transforms": registry.TRANSFORMS.names(),
        "tasks": registry.TASKS.names(),
        "models": registry.MODELS.names(),
    }


__all__ = [
    "Config",
    "ConfigError",
    "GrokWarning",
    "MetricNotRecorded",
    "LLCResult",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "ProbeInputs",
    "RegistryError",
    "Run",
    "SweepSpec",
    "TaskConfig",
    "TrainConfig",
    "export_tensorboard",
    "export_wandb",
    "field_names",
    "llc",
    "llc_calibrate",
    "load_run",
    "load_sweep",
    "preset",
    "presets",
    "probe_history",
    "progress_with_final_keys",
    "prune",
    "register_model",
    "register_probe",
    "register_task",
    "register_transform",
    "reduced_rank_lambda",
    "refine",
    "registered",
    "show_full_tracebacks",
    "show_short_errors",
    "sweep",
    "trace_count",
    "train",
    "train_members",
]
