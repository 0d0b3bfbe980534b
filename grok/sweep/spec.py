"""Sweep specs: parsing (TOML, dict, preset), axes and their grid (linspace/logspace), groups and
batches, and validation, including which fields have no effect for which config (`_inert_reason`).

See the `grok.sweep` package docstring for the spec format.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grok import registry, store
from grok.config import SECTIONS, Config, field_names, inert_options_allowed, is_dynamic
from grok.errors import ConfigError
from grok.presets import config_from_mapping
from grok.sizing import MEMORY_FRACTION, device_memory, member_size
from grok.store import RunDirError

FORMAT = "grok-sweep/1"
DEFAULT_MAX_MEMBERS = 256
SPEC_KEYS = ("preset", "seeds", "set", "axes", "max_members_per_program", "description", *SECTIONS)
PRESET_DIR = Path(__file__).parents[1] / "sweeps"  # grok/sweeps/, beside this package


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
    """A validated sweep: base config, ordered axes (name → values), seeds, batch size.

    >>> spec = grok.SweepSpec.parse("doshi-phase-small"); spec.shape
    """

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
                "sweep spec",
                str(spec),
                "a TOML file or a sweep preset: " + (", ".join(sweep_presets()) or "(none)"),
                choices=sweep_presets(),
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
        with inert_options_allowed():  # [set] covers every member; validate() refuses an inert axis
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
        with inert_options_allowed():
            base = Config.from_dict(data["base"])
        spec = cls(
            base=base,
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
        return [n for n in self.axes if not is_dynamic(n)]

    def dynamic_axes(self) -> list[str]:
        return [n for n in self.axes if is_dynamic(n)]

    def point(self, index: Sequence[int]) -> dict[str, Any]:
        """Dotted overrides of the grid point `index` (one index per axis, then the seed index)."""
        if len(index) != len(self.shape):
            raise IndexError(f"index {tuple(index)} needs {len(self.shape)} entries (axes, then seed)")
        out = {name: self.axes[name][i] for name, i in zip(self.axes, index, strict=False)}
        out["seed"] = self.seeds[index[-1]]
        return out

    def config(self, index: Sequence[int]) -> Config:
        """The full config of the member at grid `index` (axes, then seed index)."""
        with inert_options_allowed():
            return self.base.override(**self.point(index))

    def groups(self) -> list[Group]:
        """The static groups in run order; every member config is built (and so validated) here."""
        with inert_options_allowed():
            return self._groups()

    def _groups(self) -> list[Group]:
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
                f"{g.config.train.steps} steps, ~{member_size(g.config).device / 2**20:.1f} MiB/member"
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
        with np.errstate(over="ignore"):
            arr = np.linspace(a, b, n) if kind == "linspace" else np.logspace(a, b, n)
        if not np.all(np.isfinite(arr)):
            raise ConfigError(where, dict(value), f"{{{kind} = [start, stop, n]}} whose values are finite floats")
        return [float(f"{x:.12g}") for x in arr]
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ConfigError(where, value, "a list of values, {linspace = [a, b, n]} or {logspace = [a, b, n]}")
    if not value:
        raise ConfigError(where, list(value), "a non-empty list of values")
    return [v.item() if isinstance(v, np.generic) else v for v in value]


def _field_type(name: str) -> str:
    parts = name.split(".")
    if len(parts) == 3:  # a registered kind's option: the type of its default
        default = registry.SECTION_REGISTRIES[parts[0]].get(parts[1]).options[parts[2]]
        return type(default).__name__
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


def _used_fields(entry, section_cfg) -> tuple[str, ...]:
    """The section fields a registered task or model reads (`fields` may depend on the config)."""
    return entry.fields(section_cfg) if callable(entry.fields) else entry.fields


def _inert_reason(cfg: Config, name: str) -> str | None:
    """Why `name` has no effect on runs of `cfg` (None if it may have one), from the registrations:
    a task or model reads the `fields` it registered, a transform its `shared` fields and its own
    options, a probe owns its `fields`; a registered kind's options matter only while it is chosen."""
    if name == "description":
        return "(it is a label)"
    if name == "train.checkpoint_every":
        return "on a sweep (it sets how often `grok train --out` checkpoints; a sweep resumes per batch)"
    parts = name.split(".")
    if len(parts) == 3:
        section, owner, _ = parts
        active = cfg.optim.chain if section == "optim" else (getattr(cfg, section).kind,)
        return None if owner in active else f"unless {owner!r} is chosen ({section}.kind / optim.transforms)"
    section, _, leaf = name.rpartition(".")
    if section in ("task", "model") and leaf not in ("kind", "data_seed", "options"):
        kind = getattr(cfg, section).kind
        entry = registry.SECTION_REGISTRIES[section].get(kind, f"{section}.kind")
        if leaf not in _used_fields(entry, getattr(cfg, section)):
            return f"for {section}.kind={kind!r}"
    if section == "optim" and leaf not in ("kind", "transforms", "batch_size", "options"):
        if not any(leaf in registry.TRANSFORMS.get(t).shared for t in cfg.optim.chain):
            return f"for optim.kind={cfg.optim.kind!r} with optim.transforms={list(cfg.optim.transforms)}"
    if name == "train.log_points" and cfg.train.schedule == "linear":
        return "on a linear schedule (train.schedule='linear' evaluates every train.log_every steps)"
    if name == "train.log_every" and cfg.train.schedule == "log":
        return "on a log schedule (train.schedule='log' evaluates at about train.log_points steps)"
    if section == "train":
        owners = [p for p in registry.PROBES.names() if name in registry.PROBES.get(p).fields]
        if owners and not set(owners) & set(cfg.train.probes):
            return f"without the {' or '.join(owners)} probe"
    return None


def sweep_presets() -> dict[str, str]:
    """Sweep preset names (files in `grok/sweeps/`) → their descriptions."""
    out = {}
    for path in sorted(PRESET_DIR.glob("*.toml")):
        with open(path, "rb") as fh:
            out[path.stem] = tomllib.load(fh).get("description", "")
    return out


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
        per = member_size(batch.group.config).device
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
