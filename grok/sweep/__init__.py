"""Phase-diagram sweeps: a grid of configs as a handful of compiled programs.

See docs/architecture.md "Sweeps" and docs/formulas.md §6 (phases).

A *sweep spec* (a TOML file, a Python dict, or the name of a preset in `grok/sweeps/`)::

    preset = "doshi-coexistence"          # the base config (or full [task]/[model]/... tables)
    seeds = [0, 1, 2]                     # default: [base seed]
    max_members_per_program = 256         # optional: members per compiled batch (default 256)
    description = "..."                   # optional, free text
    [set]                                 # fixed overrides, dotted config names
    "task.p" = 23
    [axes]                                # the grid, in this order (seeds are always the last axis)
    "optim.weight_decay" = [0.0, 5.0, 15.0]
    "task.corrupt_fraction" = {linspace = [0.0, 0.6, 4]}   # numpy.linspace(a, b, n)
    "optim.lr" = {logspace = [-3, -2, 3]}                  # 10**linspace(a, b, n): base-10 EXPONENTS

linspace/logspace values are rounded to 12 significant digits (0.15, not 0.15000000000000002);
integral floats given to an integer field (`task.p`) become ints. Every member config is built and
validated before anything compiles: an unknown field, an empty axis, a repeated axis or value, a
field that cannot vary (`seed` — use `seeds` —, `description`, or a field that has no effect on any
member, e.g. `model.alpha` of a quadratic MLP, `train.log_points` on a linear schedule or
`train.log_every` on a log one), an invalid value or combination, or a sweep whose
estimated memory does not fit the devices each raise `grok.ConfigError` naming it.

**Groups and batches.** Axes over *static* fields (not in `grok.config.DYNAMIC_FIELDS`: `task.p`,
widths, `train.steps`, …) split the grid into groups, one compiled program each; dynamic axes and
the seeds are members of that program (`engine.run_group`, members sharded over `jax.devices()`).
A group larger than `max_members_per_program` is cut into equal batches (the last one padded by
repeating its final member, so a group still compiles once); a killed sweep loses at most the
batch in flight.

**Store.** `DIR/sweep.json` holds the normalized spec; `DIR/groups/gGGG/bBBB/` is one batch, a run
directory written by `Run.save` (atomic files, `status.json` last). Running the same sweep again
skips every complete batch (`grok.store.check_run_dir`) without touching it and recomputes the
others (leftover temporary files are removed first); a different spec in the same DIR is a
`RunDirError` naming what differs. An incomplete batch is never read as a result.

**Multi-host.** Under `jax.distributed.initialize()` (one process per host or per accelerator)
the same `grok sweep SPEC --out DIR --distributed` command (cluster auto-detection; or
`--coordinator HOST:PORT --num-processes N --process-id I`), started on every process with a
shared DIR, splits the batches: process i trains the batches whose global index b has
b % process_count == i and writes their directories; at the end each process waits until every
batch is on disk (no collective) and can load the whole sweep. If a process dies, JAX ends the
others after `--heartbeat-timeout` seconds; their finished batches are kept. In multi-process
mode each process runs its batches on its own first local device (`shard=False`): start one
process per accelerator. A killed multi-host sweep resumes like a single-host one, with any
number of processes.

`load_sweep(DIR)` gives the results as labelled arrays: `.axes` (name → values, `seed` last),
`.metric(name)` `[*axes, seeds]`, `.history(name)` `[*axes, seeds, intervals]`, `.steps`,
`.phase` (docs/formulas.md §6 [D]), `.grokking_delay`, `.runs` and `.config(index)`.
`.probe_history(probes)` evaluates registered probes after the fact on the members' snapshots
(`train.snapshots`; `grok.probe_history` per batch, one compiled program each) and places them
like `.history`: `{metric: [*axes, seeds, snapshots(, extra)], "step": [snapshots]}`. The batches
must have kept the same snapshot steps (or pass `steps=` that every batch kept).

Modules: `spec` (SweepSpec, axes, groups and batches, validation; the memory estimate and check are
`grok.sizing`'s), `runner` (`sweep`), `results` (`Sweep`, `load_sweep`) and `disk` (which batch
directories are complete, for the runner and the results).

Also: `refine` (`grok sweep SPEC --refine ROUNDS`: bisection between neighbouring points whose
phase differs, docs/formulas.md §7.4) and `report` (the per-cell phase table of `grok phase`).
"""

from grok.sizing import device_memory, member_size
from grok.sweep.results import Sweep, load_sweep
from grok.sweep.runner import sweep
from grok.sweep.spec import Batch, Group, SweepSpec, check_memory, sweep_presets

__all__ = [
    "Batch",
    "Group",
    "Sweep",
    "SweepSpec",
    "check_memory",
    "device_memory",
    "member_size",
    "load_sweep",
    "sweep",
    "sweep_presets",
]
