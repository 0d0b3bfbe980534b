"""Phase-diagram sweeps: a grid of configs as a handful of compiled programs (DESIGN.md §1, §6, §8).

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
member, e.g. `model.alpha` of a quadratic MLP), an invalid value or combination, or a sweep whose
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
shared DIR, splits the batches: process i trains the batches whose global index b has b % process_count == i and
writes their directories; at the end the processes meet at a barrier and each can load the whole
sweep. In multi-process mode each process runs its batches on its own first local device
(`shard=False`): start one process per accelerator. A killed multi-host sweep resumes like a
single-host one, with any number of processes.

`load_sweep(DIR)` gives the results as labelled arrays: `.axes` (name → values, `seed` last),
`.metric(name)` `[*axes, seeds]`, `.history(name)` `[*axes, seeds, intervals]`, `.steps`,
`.phase` (DESIGN.md §6 [D]), `.grokking_delay`, `.runs` and `.config(index)`.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import math
import os
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grok import engine, store
from grok.config import DYNAMIC_FIELDS, SECTIONS, Config, config_from_mapping, field_names
from grok.errors import ConfigError
from grok.phases import classify_phase, grokking_delay, regression_grokking_delay
from grok.run import Run, flatten_state, load_run
from grok.store import RunDirError

FORMAT = "grok-sweep/1"
DEFAULT_MAX_MEMBERS = 256
SPEC_KEYS = ("preset", "seeds", "set", "axes", "max_members_per_program", "description", *SECTIONS)
PRESET_DIR = Path(__file__).parents[1] / "sweeps"  # grok/sweeps/, beside this package
CLASSIFICATION_TASKS = ("modular", "parity")
MEMORY_FRACTION = 0.9  # of the device (or RAM) a batch's estimate may use


# --------------------------------------------------------------------------- the spec
@dataclasses.dataclass(frozen=True)
class Group:
    """One static configuration: a compiled program trained over `members`, in batches."""

    index: int
    config: Config  # the base with this group's static axis values
    static: dict[str, Any]  # static axis name → value
    members: tuple[tuple[tuple[int, ...], dict[str, Any]], ...]  # (grid index incl. seed index, overrides)


@dataclasses.dataclass(frozen=True)
class Batch:
    """Members of one group trained in one call; `path` is relative to the sweep directory."""

    index: int  # global, in run order
    group: Group
    number: int  # within the group
    members: tuple[tuple[tuple[int, ...], dict[str, Any]], ...]
    size: int  # padded member count (equal for all batches of a group)

    @property
    def path(self) -> str:
        return f"groups/g{self.group.index:03d}/b{self.number:03d}"

    @property
    def overrides(self) -> list[dict[str, Any]]:
        return [dict(o) for _, o in self.members]


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: base config, ordered axes (name → values), seeds, batch size."""

    base: Config
    axes: dict[str, tuple]
    seeds: tuple[int, ...]
    max_members_per_program: int = DEFAULT_MAX_MEMBERS
    description: str = ""

    # ---------------------------------------------------------------- parsing
    @classmethod
    def parse(cls, spec: str | Path | Mapping[str, Any] | SweepSpec) -> SweepSpec:
        """A spec from a TOML path, a preset name (`grok.sweep.sweep_presets()`), a dict, or a SweepSpec."""
        if isinstance(spec, SweepSpec):
            return spec
        if isinstance(spec, Mapping):
            return cls.from_mapping(spec)
        if isinstance(spec, (str, Path)):
            path = Path(spec)
            if path.is_file():
                return cls.from_toml(path)
            if isinstance(spec, str) and (PRESET_DIR / f"{spec}.toml").is_file():
                return cls.from_toml(PRESET_DIR / f"{spec}.toml")
            raise ConfigError(
                "sweep spec", str(spec), "a TOML file or a sweep preset: " + ", ".join(sweep_presets()) or "(none)"
            )
        raise ConfigError("sweep spec", type(spec).__name__, "a TOML path, a preset name, a dict or a SweepSpec")

    @classmethod
    def from_toml(cls, path: str | Path) -> SweepSpec:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError("sweep spec", str(path), f"valid TOML ({err})") from None
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SweepSpec:
        """Validate a spec dict (the TOML structure) completely; nothing is compiled."""
        data = dict(data)
        for key in data:
            if key not in SPEC_KEYS:
                raise ConfigError(key, data[key], "a sweep spec key: " + ", ".join(SPEC_KEYS))
        if not isinstance(data.get("set", {}), Mapping):
            raise ConfigError("set", data["set"], "a table of dotted config names → values")
        description = data.pop("description", "")
        if not isinstance(description, str):
            raise ConfigError("description", description, "a string")
        max_members = data.pop("max_members_per_program", DEFAULT_MAX_MEMBERS)
        raw_axes = data.pop("axes", {})
        seeds = data.pop("seeds", None)
        base = config_from_mapping(data)  # preset, [set] and [task]/[model]/... tables
        fixed = set(data.get("set", {})) | {f"{k}.{leaf}" for k in SECTIONS if k in data for leaf in data[k]}
        axes = _parse_axes(raw_axes, fixed)
        seeds = _parse_seeds([base.seed] if seeds is None else seeds)
        spec = cls(base=base, axes=axes, seeds=seeds, max_members_per_program=max_members, description=description)
        spec.validate()
        return spec

    @classmethod
    def from_normalized(cls, data: Mapping[str, Any]) -> SweepSpec:
        """Inverse of `normalized()` (what `sweep.json` holds)."""
        if data.get("format") != FORMAT:
            raise RunDirError(f"not a grok sweep spec (format {data.get('format')!r}, expected {FORMAT!r})")
        spec = cls(
            base=Config.from_dict(data["base"]),
            axes={k: tuple(_as_field_value(k, v) for v in vals) for k, vals in data["axes"].items()},
            seeds=tuple(data["seeds"]),
            max_members_per_program=data["max_members_per_program"],
            description=data.get("description", ""),
        )
        spec.validate()
        return spec

    def normalized(self) -> dict[str, Any]:
        """A JSON-ready dict that identifies the sweep's results (stored as `sweep.json`)."""
        return _jsonable(
            {
                "format": FORMAT,
                "base": self.base.to_dict(),
                "axes": {k: list(v) for k, v in self.axes.items()},
                "seeds": list(self.seeds),
                "max_members_per_program": self.max_members_per_program,
                "description": self.description,
            }
        )

    # ---------------------------------------------------------------- validation
    def validate(self) -> None:
        """Check every member config and the axes; raises ConfigError. Compiles nothing."""
        _check_int_option("max_members_per_program", self.max_members_per_program, 1)
        if "description" in self.axes:
            raise ConfigError("axes.description", list(self.axes["description"]), "a field that changes the run")
        groups = self.groups()
        for name in self.axes:
            reasons = [_inert_reason(g.config, name) for g in groups]
            if all(reasons):
                raise ConfigError(
                    f"axes.{name}",
                    list(self.axes[name]),
                    f"a field that changes the run; {name} has no effect {reasons[0]}",
                )

    # ---------------------------------------------------------------- the grid
    @property
    def axis_names(self) -> list[str]:
        return list(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape: one entry per axis, then the seeds."""
        return tuple(len(v) for v in self.axes.values()) + (len(self.seeds),)

    @property
    def n_members(self) -> int:
        return math.prod(self.shape)

    def static_axes(self) -> list[str]:
        return [n for n in self.axes if n not in DYNAMIC_FIELDS]

    def dynamic_axes(self) -> list[str]:
        return [n for n in self.axes if n in DYNAMIC_FIELDS]

    def point(self, index: Sequence[int]) -> dict[str, Any]:
        """Dotted overrides of the grid point `index` (one index per axis, then the seed index)."""
        if len(index) != len(self.shape):
            raise IndexError(f"index {tuple(index)} needs {len(self.shape)} entries (axes, then seed)")
        out = {name: self.axes[name][i] for name, i in zip(self.axes, index, strict=False)}
        out["seed"] = self.seeds[index[-1]]
        return out

    def config(self, index: Sequence[int]) -> Config:
        """The full config of the member at grid `index` (axes, then seed index)."""
        return self.base.override(**self.point(index))

    def groups(self) -> list[Group]:
        """The static groups in run order; every member config is built (and so validated) here."""
        static = self.static_axes()
        dynamic = self.dynamic_axes()
        position = {name: i for i, name in enumerate(self.axes)}
        groups = []
        for g, s_idx in enumerate(itertools.product(*(range(len(self.axes[n])) for n in static))):
            s_values = {n: self.axes[n][i] for n, i in zip(static, s_idx, strict=True)}
            gcfg = self.base.override(**s_values)
            members = []
            for d_idx in itertools.product(*(range(len(self.axes[n])) for n in dynamic)):
                index = [0] * len(self.axes)
                for n, i in zip(static, s_idx, strict=True):
                    index[position[n]] = i
                for n, i in zip(dynamic, d_idx, strict=True):
                    index[position[n]] = i
                d_values = {n: self.axes[n][i] for n, i in zip(dynamic, d_idx, strict=True)}
                gcfg.override(**d_values)  # validates the combination (e.g. a dynamic value vs a static one)
                for s, seed in enumerate(self.seeds):
                    members.append(((*index, s), d_values | {"seed": seed}))
            groups.append(Group(index=g, config=gcfg, static=s_values, members=tuple(members)))
        return groups

    def batches(self, groups: Sequence[Group] | None = None) -> list[Batch]:
        """Groups cut into equal batches of at most `max_members_per_program` members."""
        out = []
        for group in self.groups() if groups is None else groups:
            m = len(group.members)
            n_batches = -(-m // self.max_members_per_program)
            size = -(-m // n_batches)
            for b in range(n_batches):
                members = group.members[b * size : (b + 1) * size]
                out.append(Batch(index=len(out), group=group, number=b, members=members, size=size))
        return out

    def describe(self) -> str:
        """A short plan: grid, groups, batches."""
        groups = self.groups()
        batches = self.batches(groups)
        grid = " × ".join(f"{n}[{len(v)}]" for n, v in self.axes.items()) or "(no axes)"
        lines = [
            f"grid {grid} × seeds[{len(self.seeds)}] = {self.n_members} members",
            f"{len(groups)} compiled group(s) (static axes: {', '.join(self.static_axes()) or 'none'}), "
            f"{len(batches)} batch(es) of at most {self.max_members_per_program} members",
        ]
        for g in groups:
            what = ", ".join(f"{k}={v}" for k, v in g.static.items()) or "all members"
            n_b = sum(b.group.index == g.index for b in batches)
            lines.append(
                f"  g{g.index:03d}: {what}: {len(g.members)} members, {n_b} batch(es), "
                f"{g.config.train.steps} steps, ~{estimate_member_bytes(g.config) / 2**20:.1f} MiB/member"
            )
        return "\n".join(lines)


def _parse_seeds(seeds: Any) -> tuple[int, ...]:
    if not isinstance(seeds, (list, tuple)) or not seeds:
        raise ConfigError("seeds", seeds, "a non-empty list of non-negative integers")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ConfigError("seeds", list(seeds), "a non-empty list of non-negative integers")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds", list(seeds), "distinct seeds")
    return tuple(int(s) for s in seeds)


def _check_int_option(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(name, value, f"an integer >= {minimum}")


def _is_range(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in ("linspace", "logspace")


def _flatten_axes(raw: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """`{"optim": {"lr": [...]}}` (a TOML sub-table) and `{"optim.lr": [...]}` alike → [(name, values)]."""
    out = []
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not _is_range(value) and name in SECTIONS:
            out += _flatten_axes(value, prefix=f"{name}.")
        else:
            out.append((name, value))
    return out


def _parse_axes(raw: Any, fixed: set[str]) -> dict[str, tuple]:
    if not isinstance(raw, Mapping):
        raise ConfigError("axes", raw, "a table of dotted field name → list of values")
    known = field_names()
    axes: dict[str, tuple] = {}
    for name, value in _flatten_axes(raw):
        where = f"axes.{name}"
        if name == "seed":
            raise ConfigError(where, value, "seeds go in the spec's `seeds = [...]` list, not in [axes]")
        if name not in known:
            raise ConfigError(where, value, "a config field such as optim.weight_decay (see grok.config.field_names())")
        if name in axes:
            raise ConfigError(where, value, "each field on one axis only (it is given twice)")
        if name in fixed:
            raise ConfigError(where, value, "a field not also fixed in [set] or a config table")
        values = _axis_values(where, value)
        values = tuple(_as_field_value(name, v) for v in values)
        keys = [json.dumps(_jsonable(v), sort_keys=True) for v in values]
        if len(set(keys)) != len(keys):
            raise ConfigError(where, list(values), "distinct values")
        axes[name] = values
    return axes


def _axis_values(where: str, value: Any) -> list[Any]:
    if _is_range(value):
        ((kind, args),) = value.items()
        ok = isinstance(args, (list, tuple)) and len(args) == 3
        ok = ok and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args[:2])
        ok = ok and all(math.isfinite(a) for a in args[:2]) if ok else False
        if not ok or isinstance(args[2], bool) or not isinstance(args[2], int) or args[2] < 0:
            raise ConfigError(where, dict(value), f"{{{kind} = [start, stop, n]}} with numbers start, stop and n >= 1")
        if args[2] == 0:
            raise ConfigError(where, dict(value), "a non-empty axis (n >= 1)")
        a, b, n = args
        arr = np.linspace(a, b, n) if kind == "linspace" else np.logspace(a, b, n)
        return [float(f"{x:.12g}") for x in arr]
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ConfigError(where, value, "a list of values, {linspace = [a, b, n]} or {logspace = [a, b, n]}")
    if not value:
        raise ConfigError(where, list(value), "a non-empty list of values")
    return [v.item() if isinstance(v, np.generic) else v for v in value]


def _field_type(name: str) -> str:
    section, _, leaf = name.rpartition(".")
    cls = SECTIONS[section] if section else Config
    return next(str(f.type) for f in dataclasses.fields(cls) if f.name == leaf)


def _as_field_value(name: str, value: Any) -> Any:
    """Integral floats for int fields become ints, ints for float fields floats, lists stay lists."""
    kind = _field_type(name)
    if isinstance(value, np.generic):
        value = value.item()
    if kind in ("int", "int | None") and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=store._json_default))


def _inert_reason(cfg: Config, name: str) -> str | None:
    """Why `name` has no effect on runs of `cfg` (None if it may have one)."""
    t, m, o = cfg.task.kind, cfg.model.kind, cfg.optim.kind
    if name == "description":
        return "(it is a label)"
    rules: list[tuple[bool, tuple[str, ...], str]] = [
        (t != "modular", ("task.op", "task.p"), f"for task.kind={t!r}"),
        (t == "polynomial", ("task.corrupt_fraction", "task.train_fraction"), "for a regression task"),
        (t != "polynomial", ("task.dim", "task.n_train", "task.n_test", "task.target"), f"for task.kind={t!r}"),
        (t != "polynomial" or cfg.task.target != "hermite", ("task.hermite_degree",), "unless task.target='hermite'"),
        (t != "parity", ("task.parity_k", "task.parity_noise", "task.parity_samples"), f"for task.kind={t!r}"),
        (
            m != "alpha_net",
            ("model.alpha", "model.epsilon", "model.train_readout", "model.centered"),
            f"for model.kind={m!r}",
        ),
        (m == "alpha_net", ("model.dropout", "model.batchnorm", "model.activation"), "for the α-net"),
        (m == "quadratic_mlp", ("model.activation",), "for the quadratic MLP (its activation is z²)"),
        (
            m != "transformer",
            ("model.d_model", "model.n_heads", "model.d_mlp", "model.layernorm"),
            f"for model.kind={m!r}",
        ),
        (o != "sgd", ("optim.momentum", "optim.nesterov"), f"for optim.kind={o!r}"),
        (o == "sgd", ("optim.b1", "optim.b2", "optim.eps"), "for optim.kind='sgd'"),
        (o == "adam", ("optim.weight_decay",), "for optim.kind='adam' (use adamw)"),
        (not cfg.optim.perp_grad, ("optim.perp_rescale",), "unless optim.perp_grad"),
        ("ntk" not in cfg.train.probes, ("train.ntk_every", "train.ntk_subset"), "without the ntk probe"),
        ("neurons" not in cfg.train.probes, ("train.ipr_histogram_bins",), "without the neurons probe"),
    ]
    for applies, names, reason in rules:
        if applies and name in names:
            return reason
    return None


# --------------------------------------------------------------------------- memory
def estimate_member_bytes(cfg: Config) -> int:
    """A rough upper estimate of one member's device memory while training (bytes).

    Parameters ×(1 + optimizer slots + gradients/updates/temporaries), the data set, activations
    of a training step and of an evaluation pass, the logged history, and the NTK Jacobians
    when that probe is on. Used to refuse sweeps that cannot fit before anything compiles.
    """
    import tasks

    spec = tasks.spec(cfg.task)
    item = np.dtype(cfg.train.param_dtype).itemsize
    loss_item = max(item, np.dtype(cfg.loss.dtype).itemsize)
    params = engine.param_bytes(cfg)
    slots = {"adamw": 2, "adam": 2, "sgd": 1}[cfg.optim.kind]
    total = params * (1 + slots + 4 + (1 if cfg.train.probes else 0))
    if spec.kind == "modular":
        data = spec.n_all * 5 * 4 * 2
    else:
        data = (spec.n_train + spec.n_test + spec.n_all) * (spec.input_dim * item + 8)
    total += data
    n_out = max(spec.n_classes, 1)
    m = cfg.model
    if m.kind == "transformer":
        hidden = 3 * (6 * m.d_model + m.d_mlp + 3 * m.n_heads)
    else:
        hidden = 3 * sum(m.widths)
    batch = cfg.optim.batch_size or spec.n_train
    total += batch * (hidden * item * 2 + n_out * loss_item * 3)  # a training step, forward and backward
    total += (spec.n_train + spec.n_test) * (hidden * item + n_out * loss_item * 2)  # evaluation
    widest = max(m.widths) if m.kind != "transformer" else m.d_mlp
    total += cfg.n_intervals * (32 + widest + cfg.train.ipr_histogram_bins) * 8
    if "ntk" in cfg.train.probes:
        n_probe = 2 * cfg.train.ntk_subset
        total += 3 * n_probe * n_out * params + 3 * n_probe * n_probe * 8
    return int(total)


def device_memory() -> tuple[int, str, int]:
    """(bytes available to one batch, a description, devices sharing the members).

    CPU: total RAM (forced host devices share it). Accelerators: the smallest per-device limit.
    """
    import jax

    devices = jax.local_devices()
    if devices[0].platform == "cpu":
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return int(ram), f"{ram / 2**30:.1f} GiB of RAM", 1
    limits = []
    for d in devices:
        try:
            limits.append(int((d.memory_stats() or {}).get("bytes_limit", 0)))
        except Exception:  # noqa: BLE001 - a backend without memory_stats
            limits.append(0)
    if not all(limits):
        return 0, "unknown", len(devices)
    return min(limits), f"{min(limits) / 2**30:.1f} GiB per {devices[0].platform} device", len(devices)


def check_memory(spec: SweepSpec, batches: Sequence[Batch], *, memory_bytes: int | None, shard: bool) -> None:
    """Refuse a sweep whose batches would not fit (ConfigError naming the remedy)."""
    if memory_bytes is None:
        capacity, where, n_dev = device_memory()
        if not capacity:
            return
    else:
        capacity, where, n_dev = int(memory_bytes), f"{memory_bytes / 2**30:.3g} GiB (given)", 1
    budget = MEMORY_FRACTION * capacity
    seen: set[int] = set()
    for batch in batches:
        if batch.group.index in seen:
            continue
        seen.add(batch.group.index)
        per = estimate_member_bytes(batch.group.config)
        devs = n_dev if shard and batch.size >= n_dev else 1
        on_one = -(-batch.size // devs)
        if per > budget:
            what = ", ".join(f"{k}={v}" for k, v in batch.group.static.items()) or "the base config"
            raise ConfigError(
                "sweep memory",
                f"{per / 2**30:.3g} GiB per member ({what})",
                f"a member that fits in {where} (estimated; reduce the model or the data)",
            )
        if on_one * per > budget:
            fit = max(1, int(budget // per)) * devs
            raise ConfigError(
                "max_members_per_program",
                spec.max_members_per_program,
                f"at most {fit}: {batch.size} members of {per / 2**20:.3g} MiB each (estimated) do not fit in {where}",
            )


# --------------------------------------------------------------------------- running
def sweep_presets() -> dict[str, str]:
    """Sweep preset names (files in `grok/sweeps/`) → their descriptions."""
    out = {}
    for path in sorted(PRESET_DIR.glob("*.toml")):
        with open(path, "rb") as fh:
            out[path.stem] = tomllib.load(fh).get("description", "")
    return out


def _check_out_dir(out: Path, spec: SweepSpec) -> None:
    """Write `sweep.json`, or check that the one there is this spec."""
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


def batch_complete(out: Path, batch: Batch) -> bool:
    """Whether `batch`'s directory is a finished run of exactly its members."""
    path = out / batch.path
    try:
        store.check_run_dir(path)
    except RunDirError:
        return False
    meta = store.read_json(path / "config.json")
    try:
        same = Config.from_dict(meta["config"]) == batch.group.config
        same = same and _jsonable(meta["members"]) == _jsonable(batch.overrides)
    except (ConfigError, KeyError, TypeError):
        same = False
    if not same:
        raise RunDirError(f"{str(path)!r} holds other members than this sweep expects; the directory was altered")
    return True


def _clear_partial(path: Path) -> None:
    """Remove what an interrupted write left (status.json first, then temporaries)."""
    if (path / "status.json").exists():
        (path / "status.json").unlink()
    if path.is_dir():
        for leftover in path.glob(".*.tmp"):
            leftover.unlink()


def _train_batch(batch: Batch, *, progress: Callable[[int], None] | None, shard: bool) -> Run:
    """Train one batch as one compiled group (padded to the group's batch size) → a Run of its real members."""
    configs = [batch.group.config.override(**o) for o in batch.overrides]
    n = len(configs)
    configs += [configs[-1]] * (batch.size - n)
    start = time.perf_counter()
    cb = (lambda steps: progress(steps * n)) if progress is not None else None
    _, _, history, state = engine.run_group(configs, progress=cb, shard=shard)
    wall = time.perf_counter() - start
    history = {k: (v if k == "step" else np.asarray(v)[:n]) for k, v in history.items()}
    flat = {f"params/{k}": v[:n] for k, v in flatten_state(state.params).items()}
    flat |= {f"rest/{k}": v[:n] for k, v in flatten_state(state.rest).items()}
    import jax

    status = {
        "state": "finished",
        "diverged": np.asarray(state.diverged)[:n].tolist(),
        "diverged_step": np.asarray(state.diverged_step)[:n].tolist(),
        "wall_seconds": wall,
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "n_devices": jax.device_count(),
        "process": jax.process_index(),
        "sweep": {"group": batch.group.index, "batch": batch.number, "index": [list(i) for i, _ in batch.members]},
    }
    return Run(config=batch.group.config, members=batch.overrides, history=history, state=flat, status=status)


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
    each trains its share of the batches (see the module docstring); a process returns the
    whole sweep after a barrier.
    """
    import jax

    spec = SweepSpec.parse(spec)
    out = Path(out)
    groups = spec.groups()
    batches = spec.batches(groups)
    n_proc, proc = jax.process_count(), jax.process_index()
    if n_proc > 1:
        shard = False
    mine = [b for b in batches if b.index % n_proc == proc]
    check_memory(spec, mine, memory_bytes=memory_bytes, shard=shard)
    _check_out_dir(out, spec)
    todo = [b for b in mine if not batch_complete(out, b)]
    steps_of = {b.index: b.group.config.train.steps * len(b.members) for b in mine}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = sum(steps_of.values())
        done = total - sum(steps_of[b.index] for b in todo)
        bar = tqdm(total=total, initial=done, desc="sweep", unit="step", unit_scale=True, dynamic_ncols=True)
    try:
        for batch in todo:
            path = out / batch.path
            _clear_partial(path)
            if bar is not None:
                bar.set_postfix_str(f"{batch.path} ({len(batch.members)} members)")
            run = _train_batch(batch, progress=bar.update if bar is not None else None, shard=shard)
            run.save(path)
            if on_batch is not None:
                on_batch(batch, run)
    finally:
        if bar is not None:
            bar.close()
    if n_proc > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"grok-sweep:{out.resolve()}")
    return load_sweep(out)


# --------------------------------------------------------------------------- results
class Sweep:
    """A finished sweep as labelled arrays (see `load_sweep`)."""

    def __init__(self, path: Path, spec: SweepSpec, histories: dict[int, dict[str, np.ndarray]], batches: list[Batch]):
        self.path = path
        self.spec = spec
        self._hist = histories
        self._batches = batches
        self._runs: dict[int, Run] = {}
        self._cache: dict[tuple, np.ndarray] = {}
        steps = sorted({int(s) for h in histories.values() for s in h["step"]})
        self.steps = np.asarray(steps, dtype=np.int64)

    # ---------------------------------------------------------------- labels
    @property
    def axes(self) -> dict[str, np.ndarray]:
        """Axis name → values, in grid order, `seed` last."""
        out = {}
        for name, values in self.spec.axes.items():
            try:
                arr = np.asarray(values)
                if arr.dtype == object or arr.ndim != 1:
                    raise ValueError
            except ValueError:
                arr = np.empty(len(values), dtype=object)
                arr[:] = [tuple(v) if isinstance(v, list) else v for v in values]
            out[name] = arr
        out["seed"] = np.asarray(self.spec.seeds)
        return out

    @property
    def shape(self) -> tuple[int, ...]:
        return self.spec.shape

    @property
    def missing(self) -> list[str]:
        """Batch directories not (yet) complete (empty for a finished sweep)."""
        return [b.path for b in self._batches if b.index not in self._hist]

    @property
    def metrics(self) -> list[str]:
        names = dict.fromkeys(k for h in self._hist.values() for k in h if k != "step")
        return list(names)

    def __repr__(self) -> str:
        axes = ", ".join(f"{k}[{len(v)}]" for k, v in self.axes.items())
        return f"Sweep({str(self.path)!r}, axes: {axes}, {len(self.steps)} logged steps)"

    # ---------------------------------------------------------------- arrays
    def _place(self, name: str, per_batch: Callable[[Batch, dict[str, np.ndarray]], np.ndarray], tail: int):
        """Assemble per-batch arrays [members, ...] into [*shape, ...] (NaN where absent)."""
        pieces = {}
        for b in self._batches:
            h = self._hist.get(b.index)
            if h is not None and name in h:
                pieces[b.index] = np.asarray(per_batch(b, h), dtype=np.float64)
        if not pieces:
            raise KeyError(f"metric {name!r} is not in this sweep; it has: {', '.join(self.metrics)}")
        extra = [p.shape[1 + tail :] for p in pieces.values()]
        ndim = max(len(e) for e in extra)
        extra_max = tuple(max((e[i] for e in extra if len(e) == ndim), default=0) for i in range(ndim))
        lead = tuple(len(self.steps) for _ in range(tail))
        out = np.full(self.shape + lead + extra_max, np.nan)
        for b in self._batches:
            if b.index not in pieces:
                continue
            value = pieces[b.index]
            cols = tuple(np.asarray([idx[k] for idx, _ in b.members]) for k in range(len(self.shape)))
            if tail:
                pos = np.searchsorted(self.steps, self._hist[b.index]["step"])
                full = np.full((value.shape[0],) + lead + extra_max, np.nan)
                full[(slice(None), pos) + tuple(slice(0, e) for e in value.shape[2:])] = value
            else:
                full = np.full((value.shape[0],) + extra_max, np.nan)
                full[(slice(None),) + tuple(slice(0, e) for e in value.shape[1:])] = value
            out[cols] = full
        return out

    def history(self, name: str) -> np.ndarray:
        """A metric over time: `[*axes, seeds, intervals(, extra)]` at `self.steps` (NaN where not logged)."""
        key = ("history", name)
        if key not in self._cache:
            self._cache[key] = self._place(name, lambda b, h: h[name], tail=1)
        return self._cache[key]

    def metric(self, name: str) -> np.ndarray:
        """A metric at each member's final logged interval: `[*axes, seeds(, extra)]`."""
        key = ("metric", name)
        if key not in self._cache:
            self._cache[key] = self._place(name, lambda b, h: np.asarray(h[name])[:, -1], tail=0)
        return self._cache[key]

    def field(self, name: str) -> np.ndarray:
        """A config field's value for every member, `[*axes, seeds]` (object array for non-numbers)."""
        if name == "seed":
            values = [self.spec.seeds[i[-1]] for i in np.ndindex(*self.shape)]
        elif name in self.spec.axes:
            k = list(self.spec.axes).index(name)
            values = [self.spec.axes[name][i[k]] for i in np.ndindex(*self.shape)]
        else:
            groups = {b.group.index: b.group for b in self._batches}
            values = [None] * self.spec.n_members
            for g in groups.values():
                v = g.config.get(name)
                for idx, _ in g.members:
                    values[np.ravel_multi_index(idx, self.shape)] = v
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        try:
            return arr.astype(np.float64).reshape(self.shape)
        except (TypeError, ValueError):
            return arr.reshape(self.shape)

    @property
    def present(self) -> np.ndarray:
        """Per member, `[*axes, seeds]`: is its batch complete (all True unless loaded with allow_partial)."""
        mask = np.zeros(self.shape, dtype=bool)
        for b in self._batches:
            if b.index in self._hist:
                for idx, _ in b.members:
                    mask[idx] = True
        return mask

    @property
    def classification(self) -> np.ndarray:
        """Per member: is its task a classification (phases defined)."""
        kind = self.field("task.kind")
        return np.isin(kind.astype(str), CLASSIFICATION_TASKS)

    @property
    def phase(self) -> np.ndarray:
        """Phase [D] per member, `[*axes, seeds]` of names from `grok.phases.PHASES`
        (final train accuracy against the noisy labels, final test accuracy, best test accuracy
        over the run, ξ; DESIGN.md §6). Regression members get "" (no phases defined); members
        of missing batches get "missing"."""
        train = self.metric("train_acc")
        test = self.metric("test_acc")
        with np.errstate(invalid="ignore"):
            hist = self.history("test_acc")
            max_test = np.max(np.where(np.isnan(hist), -np.inf, hist), axis=-1)
        xi = self.field("task.corrupt_fraction")
        phase = classify_phase(train, test, max_test, xi).astype(object)
        phase[~self.classification] = ""
        phase[~self.present] = "missing"
        return phase.astype(str)

    @property
    def grokking_delay(self) -> np.ndarray:
        """Steps between train and test crossing accuracy 0.9 (classification) or 0.1 × their initial
        loss (regression [K]), `[*axes, seeds]`; NaN where either never crosses (DESIGN.md §6)."""
        steps = self.steps
        with np.errstate(invalid="ignore"):
            cls = grokking_delay(steps, self.history("train_acc"), self.history("test_acc"), 0.9)
            reg = regression_grokking_delay(steps, self.history("train_loss"), self.history("test_loss"))
        return np.where(self.classification, cls, reg)

    # ---------------------------------------------------------------- members
    def config(self, index: Sequence[int]) -> Config:
        """The full config of the member at `index` (one index per axis, then the seed index)."""
        return self.spec.config(tuple(int(i) for i in index))

    def member(self, index: Sequence[int]) -> tuple[Run, int]:
        """(the batch's Run, the member's position in it) — e.g. `run.model(i)`, `run.dataset(i)`."""
        index = tuple(int(i) for i in index)
        for b in self._batches:
            for j, (idx, _) in enumerate(b.members):
                if idx == index:
                    return self._run(b), j
        raise IndexError(f"no member at {index}; grid shape {self.shape}")

    def _run(self, b: Batch) -> Run:
        if b.index not in self._runs:
            if b.index not in self._hist:
                raise RunDirError(f"batch {b.path} of {str(self.path)!r} is not complete")
            self._runs[b.index] = load_run(self.path / b.path)
        return self._runs[b.index]

    @property
    def runs(self) -> list[Run]:
        """Every complete batch as a Run (loaded from disk on first access), in run order."""
        return [self._run(b) for b in self._batches if b.index in self._hist]


def load_sweep(path: str | Path, *, allow_partial: bool = False) -> Sweep:
    """Read a sweep directory written by `sweep` as labelled arrays.

    An unfinished sweep is a RunDirError unless `allow_partial` (its missing members are NaN,
    phase "missing"). Only complete batch directories are read (never a partial file).
    """
    path = Path(path)
    meta = path / "sweep.json"
    if not meta.is_file():
        raise RunDirError(f"{str(path)!r} is not a sweep directory (no sweep.json)")
    spec = SweepSpec.from_normalized(store.read_json(meta))
    batches = spec.batches()
    histories = {}
    for b in batches:
        if batch_complete(path, b):
            histories[b.index] = store.read_npz(path / b.path / "history.npz")
    missing = len(batches) - len(histories)
    if missing and not allow_partial:
        raise RunDirError(
            f"sweep {str(path)!r} is incomplete: {missing} of {len(batches)} batches missing; "
            "run the same `grok sweep` again to finish it (or load_sweep(..., allow_partial=True))"
        )
    return Sweep(path, spec, histories, batches)


__all__ = [
    "Batch",
    "Group",
    "Sweep",
    "SweepSpec",
    "estimate_member_bytes",
    "load_sweep",
    "sweep",
    "sweep_presets",
]
