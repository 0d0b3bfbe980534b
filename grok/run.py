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
from flax import nnx

import tasks
from grok import engine, memory, store
from grok.config import Config, check_registered, lenient, split_dynamic
from grok.errors import ConfigError
from grok.snapshots import Snapshots, named_leaves, path_name


def flatten_state(state: Any) -> dict[str, np.ndarray]:
    """An nnx.State (or any pytree) as `{"layer/kernel": array}`; PRNG keys are left out."""
    return {name: np.asarray(leaf) for name, leaf in named_leaves(state).items()}


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
    and the snapshots (`train.snapshots`) by step."""

    config: Config
    members: list[dict[str, Any]]
    history: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    status: dict[str, Any]
    snapshots: Snapshots = dataclasses.field(default_factory=Snapshots)

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

    def member_config(self, i: int) -> Config:
        """The full config of member `i` (kinds not registered in this process are kept as names)."""
        with lenient():
            return self.config.override(**self.members[i])

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
        params = unflatten_into(params, _with_prefix(saved, "params/"), require_all=True)
        rest = unflatten_into(rest, _with_prefix(saved, "rest/"))
        return nnx.merge(graphdef, params, rest)

    def save(self, path: str | Path) -> Path:
        """Write the run directory atomically (status.json last)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        store.atomic_write_json(path / "config.json", {"config": self.config.to_dict(), "members": self.members})
        store.atomic_write_npz(path / "history.npz", self.history)
        store.atomic_write_npz(path / "params.npz", self.state)
        self.snapshots.save(path)
        store.atomic_write_json(path / "status.json", self.status)
        return path

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
        flat = {f"params/{k}": v[:n] for k, v in flatten_state(state.params).items()}
        flat |= {f"rest/{k}": v[:n] for k, v in flatten_state(state.rest).items()}
        record = {
            "state": "finished",
            "diverged": np.asarray(state.diverged)[:n].tolist(),
            "diverged_step": np.asarray(state.diverged_step)[:n].tolist(),
            "wall_seconds": wall_seconds,
            "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "jax_version": jax.__version__,
            "backend": jax.default_backend(),
            "n_devices": jax.device_count(),
        } | dict(status or {})
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
    """Read a run directory written by `Run.save` (an incomplete one is an error)."""
    path = store.check_run_dir(path)
    meta = store.read_json(path / "config.json")
    return Run(
        config=Config.from_dict(meta["config"], strict=False),
        members=meta["members"],
        history=store.read_npz(path / "history.npz"),
        state=store.read_npz(path / "params.npz"),
        status=store.read_json(path / "status.json"),
        snapshots=Snapshots.load(path),
    )


def train_members(
    base: Config,
    overrides: Sequence[Mapping[str, Any]],
    *,
    progress: bool = True,
    shard: bool = True,
    description: str | None = None,
    out: str | Path | None = None,
    live: bool | Sequence[str] = False,
) -> Run:
    """Train `base` once per override dict (dynamic fields only) as one compiled group.

    Memory (and, with `out`, the disk space the snapshots need) is checked before anything
    compiles; with `out` the run is saved there. `live`: redraw accuracy and loss after each
    chunk in a notebook (True, or the metric names to draw; `grok.plots.live`).
    """
    configs = [base.override(**o) for o in overrides]
    memory.check_run(base, len(configs), out=out)
    if base.train.snapshots:
        print(memory.snapshot_plan(base, len(configs)))
    bar = None
    if progress:
        from grok.progress import progress_bar

        bar = progress_bar(base.train.steps, description or _describe(base))
    drawing = None
    if live:
        from grok.plots.live import LivePlot

        drawing = LivePlot(metrics=None if live is True else list(live), title=description or _describe(base))

    def on_chunk(history: dict[str, np.ndarray]) -> None:
        if bar is not None:
            bar.show_metrics(history)
        if drawing is not None:
            drawing(history)

    start = time.perf_counter()
    try:
        group = engine.run_group(
            configs,
            progress=bar.update if bar else None,
            on_chunk=on_chunk if (bar is not None or drawing is not None) else None,
            shard=shard,
        )
    finally:
        if bar is not None:
            bar.close()
    run = Run.from_group(base, overrides, group, wall_seconds=time.perf_counter() - start)
    if out is not None:
        run.save(out)
    return run


def train(
    cfg: Config,
    seeds: Iterable[int] | None = None,
    *,
    progress: bool = True,
    shard: bool = True,
    out: str | Path | None = None,
    live: bool | Sequence[str] = False,
) -> Run:
    """Train `cfg` once per seed, all seeds as members of one compiled program.

    `run.history[name]` is `[members, intervals]` (`step` is `[intervals]`, the steps of the
    schedule), step 0 included. `out`: save the run there; `live`: draw the curves as it trains.
    """
    if not isinstance(cfg, Config):
        raise TypeError(f"grok.train needs a grok.Config, got {type(cfg).__name__}")
    seeds = [cfg.seed] if seeds is None else list(seeds)
    if not seeds:
        raise ValueError("seeds: got an empty list; allowed: one or more non-negative integers")
    return train_members(cfg, [{"seed": int(s)} for s in seeds], progress=progress, shard=shard, out=out, live=live)


def _describe(cfg: Config) -> str:
    t = cfg.task
    what = f"{t.op} mod {t.p}" if t.kind == "modular" else t.kind
    return f"{what} · {cfg.model.kind} · {cfg.loss.kind}"
