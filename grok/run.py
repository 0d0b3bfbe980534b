"""`grok.train` and the `Run` it returns (docs/architecture.md)."""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import tasks
from grok import engine, sizing, store
from grok.checkpoint import CHECKPOINT_DIR, RunCheckpoint
from grok.config import MAX_SEED, Config, check_registered, lenient, split_dynamic
from grok.errors import ConfigError
from grok.history import History
from grok.lazy_import import nnx
from grok.member import registration_fingerprints
from grok.phases import progress_phase_record
from grok.snapshots import Snapshots, named_leaves, path_name
from grok.training_display import TrainingDisplay


def flatten_state(state: Any) -> dict[str, np.ndarray]:
    """An nnx.State (or any pytree) as `{"layer/kernel": array}`; PRNG keys are left out."""
    return {name: np.asarray(leaf) for name, leaf in named_leaves(state).items()}


def state_arrays(params: Any, rest: Any) -> dict[str, np.ndarray]:
    """A member state's arrays as a run stores them: `params/<leaf>` and `rest/<leaf>`."""
    return {f"params/{k}": v for k, v in flatten_state(params).items()} | {
        f"rest/{k}": v for k, v in flatten_state(rest).items()
    }


def unflatten_into(state: Any, flat: Mapping[str, np.ndarray], *, require_all: bool = False) -> Any:
    """`state` with every leaf named in `flat` replaced by that array (same shape and dtype)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    out = []
    for path, leaf in leaves:
        name = path_name(path)
        if require_all and name not in flat:
            raise ValueError(f"saved state has no {name!r}; it has {sorted(flat)}")
        if name in flat:
            value = np.asarray(flat[name])
            if value.shape != leaf.shape:
                raise ValueError(f"saved {name!r} has shape {value.shape}, the model expects {leaf.shape}")
            out.append(jnp.asarray(value, dtype=leaf.dtype))
        else:
            out.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, out)


def _with_prefix(flat: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in flat.items() if k.startswith(prefix)}


@dataclasses.dataclass
class Run:
    """A trained group of members: config, per-member overrides, history, final state, status,
    and the snapshots (`train.snapshots`) by step; `llc`: the `grok.llc` result saved beside it, if any.

    >>> run = grok.train(grok.preset("prieto-perpgrad-small"), seeds=(0, 1))
    >>> run.history["test_acc"], run.frame(), run.model(0)
    """

    config: Config
    members: list[dict[str, Any]]
    history: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    status: dict[str, Any]
    snapshots: Snapshots = dataclasses.field(default_factory=Snapshots)
    llc: Any = None

    def __post_init__(self) -> None:
        # a missing metric names the probe that records it (`grok.history.MetricNotRecorded`)
        self.history = History(self.history, probes=self.config.train.probes)

    @property
    def n_members(self) -> int:
        return len(self.members)

    @property
    def seeds(self) -> list[int]:
        return [self.member_config(i).seed for i in range(self.n_members)]

    @property
    def diverged(self) -> np.ndarray:
        """Per member: did its loss or parameters become non-finite."""
        return np.asarray(self.status.get("diverged", [False] * self.n_members), bool)

    def select(self, members: Sequence[int]) -> Run:
        """A Run of some of this run's members (history, final state, status and snapshots)."""
        idx = [self._check_member(i) for i in members]
        status = dict(self.status)
        for key in ("diverged", "diverged_step"):
            if isinstance(status.get(key), list) and len(status[key]) == self.n_members:
                status[key] = [status[key][i] for i in idx]
        if isinstance(status.get(PHASES_KEY), dict):
            status[PHASES_KEY] = {k: [v[i] for i in idx] for k, v in status[PHASES_KEY].items()}
        return Run(
            config=self.config,
            members=[dict(self.members[i]) for i in idx],
            history={k: (v if k == "step" else np.asarray(v)[idx]) for k, v in self.history.items()},
            state={k: np.asarray(v)[idx] for k, v in self.state.items()},
            status=status,
            snapshots=Snapshots(
                {s: {k: v[idx] for k, v in self.snapshots[s].items()} for s in self.steps_with_snapshots}
            ),
        )

    def member_config(self, i: int) -> Config:
        """The full config of member `i` (kinds not registered in this process are kept as names)."""
        with lenient():
            return self.config.override(**self.members[i])

    def frame(self, metrics: Sequence[str] | None = None):
        """The history as a tidy pandas DataFrame: one row per member and logged step, with the
        columns `member`, `step`, each scalar metric (all, or `metrics`) and each member's dynamic
        config values (`seed`, `optim.lr`, …). Needs pandas.

        >>> run.frame().groupby("step").test_acc.mean()
        """
        from grok.frames import run_frame

        return run_frame(self, metrics)

    def final(self, metric: str) -> np.ndarray:
        """A metric at the last logged interval, one value per member."""
        return self.history[metric][:, -1]

    def dataset(self, i: int = 0) -> tasks.Dataset:
        """Member `i`'s data, rebuilt from its seeds (identical to what it was trained on)."""
        cfg = check_registered(self.member_config(i))
        engine.ensure_precision(cfg)
        _, dyn = split_dynamic(cfg)
        return engine.build_data(cfg, dyn["task.data_seed"], dyn["task.corrupt_fraction"])

    @property
    def steps_with_snapshots(self) -> list[int]:
        """The steps at which every member's parameters were kept (`train.snapshots`)."""
        return list(self.snapshots.steps)

    def _snapshot(self, step: int) -> dict[str, np.ndarray]:
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise ConfigError("step", step, "an integer step")
        if not self.snapshots:
            raise ConfigError("step", step, "a step with a snapshot, but this run kept none (set train.snapshots)")
        if int(step) not in self.snapshots:
            near = ", ".join(map(str, self.snapshots.nearest(int(step))))
            raise ConfigError(
                "step", step, f"a step with a snapshot; the nearest are {near} (run.steps_with_snapshots lists all)"
            )
        return self.snapshots[int(step)]

    def _check_member(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < self.n_members:
            raise ConfigError("member", i, f"an index in [0, {self.n_members})")
        return int(i)

    def params_at(self, step: int, member: int = 0) -> dict[str, np.ndarray]:
        """Member `member`'s parameters at a snapshot step, `{"layer/kernel": array}`."""
        i = self._check_member(member)
        return {k.removeprefix("params/"): v[i] for k, v in self._snapshot(step).items() if k.startswith("params/")}

    def model(self, i: int = 0, *, step: int | None = None) -> nnx.Module:
        """Member `i`'s network with its final trained state, or its state at snapshot `step`."""
        i = self._check_member(i)
        saved = self.state if step is None else self._snapshot(step)
        cfg = check_registered(self.member_config(i))
        engine.ensure_precision(cfg)
        _, dyn = split_dynamic(cfg)
        model = engine.build_member_model(cfg, cfg.spec, jax.random.key(dyn["seed"]), dyn)
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        saved = {name: arr[i] for name, arr in saved.items()}
        try:
            params = unflatten_into(params, _with_prefix(saved, "params/"), require_all=True)
            rest = unflatten_into(rest, _with_prefix(saved, "rest/"))
        except ValueError as err:
            raise store.RunDirError(f"the run's saved parameters do not fit its model: {err}") from None
        return nnx.merge(graphdef, params, rest)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the run directory whole (a temporary sibling renamed into place), snapshots included.

        An existing run at `path` is replaced only with `overwrite=True`; a path inside a sweep's
        directory, a file, or a non-empty directory of something else is refused (RunDirError).
        """
        path = store.check_out_dir(path, overwrite=overwrite, what="path")
        with store.dir_lock(path):
            store.recover_dir(path)  # a save killed between its two renames: the old run is put back
            store.check_out_dir(path, overwrite=overwrite, what="path")
            return self.write_to(path)

    def write_to(self, path: str | Path) -> Path:
        """Write the run directory whole at `path`, without the checks of `save` (the sweep's batches)."""
        meta = {"config": self.config.to_dict(), "members": self.members}
        return store.write_run_dir(path, meta, self.history, self.state, self.status, extra=self.snapshots.save)

    @classmethod
    def from_group(
        cls,
        config: Config,
        members: Sequence[Mapping[str, Any]],
        group: engine.GroupResult,
        *,
        wall_seconds: float,
        status: Mapping[str, Any] | None = None,
    ) -> Run:
        """The Run of a trained group (`engine.run_group`'s history, final member states, snapshots).

        Only the first `len(members)` rows are kept (a sweep pads its batches); `status` adds to
        the standard record (state, divergence, wall time, versions).
        """
        n = len(members)
        history, state = group.history, group.state
        snapshots = Snapshots({step: {k: v[:n] for k, v in snap.items()} for step, snap in group.snapshots.items()})
        history = {k: (v if k == "step" else np.asarray(v)[:n]) for k, v in history.items()}
        flat = {k: v[:n] for k, v in state_arrays(state.params, state.rest).items()}
        record = {
            "state": "finished",
            "diverged": np.asarray(state.diverged)[:n].tolist(),
            "diverged_step": np.asarray(state.diverged_step)[:n].tolist(),
            "wall_seconds": wall_seconds,
            "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "jax_version": jax.__version__,
            "backend": jax.default_backend(),
            "n_devices": jax.device_count(),
            "registrations": registration_fingerprints(config),
        }
        if "progress" in config.train.probes:  # [N]'s phase starts, per member (docs/formulas.md §6.5)
            record[PHASES_KEY] = progress_phase_record(history)
        record |= dict(status or {})
        return cls(
            config=config,
            members=[dict(m) for m in members],
            history=history,
            state=flat,
            status=record,
            snapshots=snapshots,
        )

    def summary(self) -> str:
        """One line per member: final train/test accuracy (or loss) and divergence."""
        lines = []
        for i in range(self.n_members):
            over = ", ".join(f"{k}={v}" for k, v in self.members[i].items())
            h = {k: v[i, -1] for k, v in self.history.items() if k != "step" and v.ndim == 2}
            if np.isfinite(h.get("test_acc", np.nan)):
                figures = f"train_acc={h['train_acc']:.3f} test_acc={h['test_acc']:.3f}"
            else:
                figures = f"train_loss={h['train_loss']:.4g} test_loss={h['test_loss']:.4g}"
            flag = "  DIVERGED" if self.diverged[i] else ""
            lines.append(f"[{over}] {figures}{flag}")
        return "\n".join(lines)


def load_run(path: str | Path) -> Run:
    """Read a run directory written by `Run.save` (an incomplete one is an error).

    >>> run = grok.load_run("runs/x")
    """
    from grok.llc import load_llc  # the LLC module builds on this one

    path = store.check_run_dir(path)
    meta = store.read_json(path / "config.json")
    try:
        config, members = Config.from_dict(meta["config"], strict=False), list(meta["members"])
    except (KeyError, TypeError, ConfigError) as err:
        raise store.RunDirError(
            f"{str(path / 'config.json')!r} is not a run config ({type(err).__name__}: {err})"
        ) from None
    history = store.read_npz(path / "history.npz")
    for name in LOGGED:
        shape = getattr(history.get(name), "shape", None)
        if shape is None or len(shape) < 2 or shape[0] != len(members):
            raise store.RunDirError(
                f"{str(path / 'history.npz')!r} is not this run's history: {name!r} has shape {shape}, "
                f"expected [{len(members)} members, intervals]"
            )
    return Run(
        config=config,
        members=members,
        history=history,
        state=store.read_npz(path / "params.npz"),
        status=store.read_json(path / "status.json"),
        snapshots=Snapshots.load(path),
        llc=load_llc(path),
    )


# `status.json` key of the phase starts of a run with the `progress` probe.
PHASES_KEY = "progress_phases"

# Metrics every saved run has, [members, intervals]: a history without them is not a run's.
LOGGED = ("train_loss", "test_loss", "test_acc")


def train_members(
    base: Config,
    overrides: Sequence[Mapping[str, Any]],
    *,
    progress: bool = True,
    shard: bool = True,
    description: str | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    live: bool | Sequence[str] = False,
) -> Run:
    """Train `base` once per override dict (dynamic fields only) as one compiled group.

    Memory (and, with `out`, the disk space the snapshots need) is checked before anything
    compiles. With `out`, the run is written there when it finishes, and checkpointed while it
    trains (`train.checkpoint_every` steps, or every ~5 minutes): calling again with the same
    config after a kill resumes from the last checkpoint and gives a bit-identical run. `out` is
    checked before anything is trained (see `Run.save`); `overwrite` replaces a finished run or
    another run's checkpoint there. `live`: redraw accuracy and loss after each chunk in a
    notebook (True, or the metric names to draw; `grok.training_display`).

    >>> run = grok.train_members(cfg, [{"optim.weight_decay": wd} for wd in (0.0, 0.5, 1.0)])
    """
    configs = [base.override(**o) for o in overrides]
    engine.ensure_precision(base)  # before any abstract shapes: float64 needs x64 switched on first
    sizing.check_run(base, len(configs), out=out, n_devices=jax.device_count() if shard else 1)
    if base.train.snapshots:
        print(sizing.member_size(base).plan(len(configs)))
    show = {"progress": progress, "description": description, "live": live}
    if out is None:
        return _train_group(base, overrides, configs, shard=shard, **show)
    out = store.check_out_dir(out, overwrite=overwrite)
    with store.dir_lock(out):
        store.recover_dir(out)  # a run killed while saving itself or a checkpoint: put the whole one back
        store.recover_dir(out / CHECKPOINT_DIR)
        ckpt = RunCheckpoint(
            out / CHECKPOINT_DIR,
            {"config": base.to_dict(), "members": [dict(o) for o in overrides]},
            every_steps=base.train.checkpoint_every,
            discard_other=overwrite,
        )
        run = _train_group(base, overrides, configs, shard=shard, ckpt=ckpt, **show)
        run.write_to(out)  # replaces the directory, checkpoint included
    return run


def _train_group(base, overrides, configs, *, progress, shard, description, live, ckpt=None) -> Run:
    """Train one group with a progress bar, live curves and a checkpoint store as asked."""
    display = TrainingDisplay(base.train.steps, description or _describe(base), progress=progress, live=live)
    start = time.perf_counter()
    try:
        group = engine.run_group(
            configs,
            progress=display.update if display.bar is not None else None,
            on_chunk=display.on_chunk if display.active else None,
            shard=shard,
            checkpoint=ckpt,
        )
    finally:
        display.close()
    return Run.from_group(base, overrides, group, wall_seconds=time.perf_counter() - start)


def train(
    cfg: Config,
    seeds: Iterable[int] | None = None,
    *,
    progress: bool = True,
    shard: bool = True,
    out: str | Path | None = None,
    overwrite: bool = False,
    live: bool | Sequence[str] = False,
) -> Run:
    """Train `cfg` once per seed, all seeds as members of one compiled program.

    `run.history[name]` is `[members, intervals]` (`step` is `[intervals]`, the steps of the
    schedule), step 0 included. `out`: write the run there, checkpointing while it trains (see
    `train_members`); `live`: draw the curves as it trains.

    >>> run = grok.train(grok.preset("prieto-perpgrad-small"), seeds=(0, 1, 2))
    """
    if not isinstance(cfg, Config):
        raise TypeError(f"grok.train needs a grok.Config, got {type(cfg).__name__}")
    seeds = [cfg.seed] if seeds is None else check_seeds(seeds)
    members = [{"seed": s} for s in seeds]
    return train_members(cfg, members, progress=progress, shard=shard, out=out, overwrite=overwrite, live=live)


def check_seeds(seeds: Any, field: str = "seeds") -> list[int]:
    """Distinct integers in [0, 2³¹ − 1], at least one; anything else is a ConfigError."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ConfigError(field, seeds, "a list of distinct integers in [0, 2**31 - 1]")
    values = list(seeds)
    if not values:
        raise ConfigError(field, values, "one or more distinct integers in [0, 2**31 - 1]")
    one = field if field.startswith("--") else "seed"  # a bad element is named by itself
    for s in values:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s <= MAX_SEED:
            raise ConfigError(one, s, "an integer in [0, 2**31 - 1]")
    if len(set(int(s) for s in values)) != len(values):
        raise ConfigError(field, values, "distinct integers (a seed given twice trains the same run twice)")
    return [int(s) for s in values]


def _describe(cfg: Config) -> str:
    t = cfg.task
    what = f"{t.op} mod {t.p}" if t.kind == "modular" else t.kind
    return f"{what} · {cfg.model.kind} · {cfg.loss.kind}"
