"""Running a sweep: the output directory's checks, resume, batch training, `on_batch`, and each
process's share of the batches under `jax.distributed` (see the `grok.sweep` package docstring).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax

from grok import engine, store
from grok.config import inert_options_allowed
from grok.errors import ConfigError
from grok.run import Run
from grok.store import RunDirError
from grok.sweep.disk import batch_complete
from grok.sweep.results import Sweep, load_sweep
from grok.sweep.spec import Batch, SweepSpec, check_memory


def _check_out_dir(out: Path, spec: SweepSpec) -> None:
    """Write `sweep.json`, or check that the one there is this spec."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out: {str(out)!r} is a file; allowed: a directory for the sweep (new, or one to resume)")
    if store.sweep_owning(out.resolve().parent) is not None or store.is_run_dir(out):
        raise RunDirError(f"--out: {str(out)!r} is a run or lies inside another sweep; choose a directory of its own")
    store.check_writable(out, "--out")
    meta = out / "sweep.json"
    if not meta.is_file():
        # another process of a multi-host sweep may be writing sweep.json right now: its temporary
        # doesn't count, and what it writes after sweep.json is fine (hence the second look)
        others = out.exists() and any(not (f.name.startswith(".") and f.name.endswith(".tmp")) for f in out.iterdir())
        if not meta.is_file():
            if others:
                raise RunDirError(f"{str(out)!r} exists, is not empty and holds no sweep.json: not a sweep directory")
            store.atomic_write_json(meta, spec.normalized())
            return
    old = store.read_json(meta)
    try:  # compare as specs, so a config field added since (with its default) is no difference
        old = SweepSpec.from_normalized(old).normalized()
    except (ConfigError, RunDirError, KeyError, TypeError):
        pass
    diff = _spec_diff(old, spec.normalized())
    if diff:
        raise RunDirError(
            f"{str(out)!r} holds a different sweep (differs in {', '.join(diff)}); "
            "resume it with its original spec or choose another output directory"
        )


def _spec_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    diff = []
    for key in ("format", "axes", "seeds", "max_members_per_program"):
        if old.get(key) != new.get(key):
            if key == "axes" and isinstance(old.get(key), Mapping):
                names = list(dict.fromkeys([*old[key], *new[key]]))
                diff += [f"axes.{n}" for n in names if old[key].get(n) != new[key].get(n)] or ["axes order"]
            else:
                diff.append(key)
    ob, nb = old.get("base", {}), new.get("base", {})
    for section in dict.fromkeys([*ob, *nb]):
        o, n = ob.get(section), nb.get(section)
        if o != n:
            if isinstance(o, Mapping) and isinstance(n, Mapping):
                diff += [f"{section}.{k}" for k in dict.fromkeys([*o, *n]) if o.get(k) != n.get(k)]
            elif section != "description":
                diff.append(section)
    return diff


def _clear_partial(path: Path) -> None:
    """Remove what an interrupted write left: temporary siblings of the batch directory (a batch
    directory itself is renamed into place whole) and any incomplete directory of an older version."""
    for leftover in store.temporary_siblings(path):
        shutil.rmtree(leftover, ignore_errors=True)
    if path.is_dir() and not (path / "status.json").is_file():
        shutil.rmtree(path)


def _batch_configs(batch: Batch) -> list:
    """The configs of a batch's members, padded with its last member to the group's batch size."""
    with inert_options_allowed():  # an axis may set an option its group's transforms do not read
        configs = [batch.group.config.override(**o) for o in batch.overrides]
    return configs + [configs[-1]] * (batch.size - len(configs))


def precompile_setting() -> bool | None:
    """`$GROK_PRECOMPILE` checked: True / False when forced on / off, None when unset (the backend
    decides). Touches no JAX backend, so the CLI can check it before `jax.distributed` starts."""
    forced = os.environ.get("GROK_PRECOMPILE", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if forced:
        raise ConfigError("GROK_PRECOMPILE", forced, "1 (compile the next group ahead), 0 (don't), or unset")
    return None


def precompile_ahead() -> bool:
    """Whether a sweep compiles its next group while the current one trains: on an accelerator by
    default; `$GROK_PRECOMPILE=1` / `0` forces it on / off."""
    forced = precompile_setting()
    return jax.default_backend() != "cpu" if forced is None else forced


class _Precompiler:
    """Compiles the first batch of the next group in a background thread while a group trains.

    Compilation (and on a GPU the autotuning of its matrix products) then overlaps training, and
    `engine.run_group` finds the programs compiled. A failure here is dropped: the batch's own run
    meets the same error, where it is reported properly.
    """

    def __init__(self, todo: list[Batch], shard: bool):
        self.shard = shard
        self.firsts: dict[int, Batch] = {}
        for b in todo:
            self.firsts.setdefault(b.group.index, b)
        self.order = list(self.firsts)
        self.thread: threading.Thread | None = None
        self.compiling: int | None = None

    def start(self, batch: Batch) -> None:
        """Before `batch` trains: wait for its group's compile if one is under way (rather than
        compile it twice), then start compiling the next group's programs."""
        if self.thread is not None and self.compiling == batch.group.index:
            self.thread.join()
        if self.thread is not None and self.thread.is_alive():
            return
        i = self.order.index(batch.group.index) + 1
        if i < len(self.order) and self.order[i] in self.firsts:
            nxt = self.firsts.pop(self.order[i])
            self.compiling = nxt.group.index
            self.thread = threading.Thread(target=self._compile, args=(nxt,), daemon=True, name="grok-precompile")
            self.thread.start()

    def _compile(self, batch: Batch) -> None:
        with contextlib.suppress(Exception):
            engine.precompile_group(_batch_configs(batch), shard=self.shard)


def _train_batch(batch: Batch, *, progress: Callable[[int], None] | None, shard: bool) -> Run:
    """Train one batch as one compiled group (padded to the group's batch size) → a Run of its real members."""
    configs = _batch_configs(batch)
    n = len(batch.members)
    start = time.perf_counter()
    cb = (lambda steps: progress(steps * n)) if progress is not None else None
    group = engine.run_group(configs, progress=cb, shard=shard)
    sweep_status = {
        "process": jax.process_index(),
        "sweep": {"group": batch.group.index, "batch": batch.number, "index": [list(i) for i, _ in batch.members]},
    }
    wall = time.perf_counter() - start
    return Run.from_group(batch.group.config, batch.overrides, group, wall_seconds=wall, status=sweep_status)


def _run_batches(
    spec: SweepSpec, out: Path, mine: list[Batch], *, progress: bool, shard: bool, on_batch, ahead: bool = False
) -> None:
    """Train and write every batch of `mine` that is not complete in `out`."""
    _check_out_dir(out, spec)
    todo = [b for b in mine if not batch_complete(out, b)]
    steps_of = {b.index: b.group.config.train.steps * len(b.members) for b in mine}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = sum(steps_of.values())
        done = total - sum(steps_of[b.index] for b in todo)
        bar = tqdm(total=total, initial=done, desc="sweep", unit="step", unit_scale=True, dynamic_ncols=True)
    ahead = _Precompiler(todo, shard) if ahead else None
    try:
        for batch in todo:
            if ahead is not None:
                ahead.start(batch)
            path = out / batch.path
            _clear_partial(path)
            if bar is not None:
                bar.set_postfix_str(f"{batch.path} ({len(batch.members)} members)")
            run = _train_batch(batch, progress=bar.update if bar is not None else None, shard=shard)
            run.write_to(path)
            if on_batch is not None:
                on_batch(batch, run)
    finally:
        if bar is not None:
            bar.close()


def sweep(
    spec: str | Path | Mapping[str, Any] | SweepSpec,
    out: str | Path,
    *,
    progress: bool = True,
    shard: bool = True,
    memory_bytes: int | None = None,
    on_batch: Callable[[Batch, Run], None] | None = None,
) -> Sweep:
    """Run (or resume) a sweep into `out`; returns `load_sweep(out)`.

    `spec`: a TOML path, a sweep preset name, a dict of the TOML structure, or a SweepSpec.
    Everything is validated (configs, axes, memory against `memory_bytes` or the devices)
    before anything compiles. Complete batches in `out` are skipped untouched. `on_batch(batch,
    run)` is called after each batch is saved. Under `jax.distributed` with several processes,
    each trains its share of the batches (see the `grok.sweep` package docstring); a process returns the
    whole sweep once every batch is on disk (the shared directory is the barrier).

    >>> sw = grok.sweep("doshi-phase-small", out="runs/phase")
    """
    if out is None or not str(out).strip():
        raise ConfigError("--out", out, "a directory for the sweep's results")
    spec = SweepSpec.parse(spec)
    ahead = precompile_ahead()
    out = Path(out)
    groups = spec.groups()
    batches = spec.batches(groups)
    n_proc, proc = jax.process_count(), jax.process_index()
    if n_proc > 1:
        shard = False
    mine = [b for b in batches if b.index % n_proc == proc]
    for group in groups:  # before any abstract shapes: float64 needs x64 switched on first
        engine.ensure_precision(group.config)
    check_memory(spec, mine, memory_bytes=memory_bytes, shard=shard)
    # one process per directory, unless the processes of one jax.distributed job share it on purpose
    with store.dir_lock(out) if n_proc == 1 else contextlib.nullcontext():
        _run_batches(spec, out, mine, progress=progress, shard=shard, on_batch=on_batch, ahead=ahead)
    if n_proc > 1:
        _wait_for_batches(out, batches, progress=progress)
    return load_sweep(out)


def _wait_for_batches(out: Path, batches: list[Batch], *, progress: bool, poll_seconds: float = 1.0) -> None:
    """Wait until every batch is complete on disk, the other processes' included.

    The shared directory is the barrier; no collective runs. A device barrier (Gloo on CPU) would
    fail when one process finishes its share more than its timeout (30 s) before another, and a
    sweep needs no communication between its processes. If a peer dies, `jax.distributed` ends this
    process too once the peer's heartbeats stop (the processes share fate; `--heartbeat-timeout`),
    its own batches already saved.
    """
    missing = [b for b in batches if not batch_complete(out, b)]
    if missing and progress:
        print(
            f"process {jax.process_index()}: its batches are saved; waiting for {len(missing)} batch(es) "
            f"of the other processes in {str(out)!r}",
            file=sys.stderr,
            flush=True,
        )
    while missing:
        time.sleep(poll_seconds)
        missing = [b for b in missing if not batch_complete(out, b)]
