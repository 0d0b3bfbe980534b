"""Boundaries found by refinement (`grok sweep SPEC --refine ROUNDS`, `grok.refine`; docs/formulas.md §7.4).

A *line* is a numeric axis with every other axis held at one of its grid values. Each round, on
every line, two neighbouring points whose label differs — the majority phase of their seeds (by a
rule of `grok.phases.PHASE_RULES`), or, for a sweep without phases, whether the seed mean of a final
metric is ≥ a threshold — get their midpoint as a new point (the geometric mean on a logarithmic
axis). After R rounds each boundary crossing of a line lies between two points 1/2^R of a grid step
apart. The new points of a round are trained like a sweep's: grouped by their static fields into
vmapped batches (the seeds are members), each saved whole as a run directory
`DIR/refine/<label>/rRR/gGGG/bBBB`; a complete batch is skipped, so a killed refinement resumes.
The points, labels and rounds are written to `DIR/refine/<label>/points.json` at the end.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import shutil
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from grok import engine, store
from grok.errors import ConfigError
from grok.phases import DIVERGED, PHASE_RULES, classify_phase, classify_phase_corrupted, majority_phase
from grok.run import Run
from grok.store import RunDirError
from grok.sweep.results import Sweep
from grok.sweep.spec import SweepSpec, _field_type, _jsonable

REFINE_DIR = "refine"


@dataclasses.dataclass(frozen=True)
class Refinement:
    """A refined sweep: every point (grid and added) with its label and the round that added it
    (0 for the grid). `points[i]` maps each non-seed axis to a value."""

    axes: tuple[str, ...]  # the sweep's axes (seeds excluded)
    numeric: tuple[str, ...]  # the axes refined along
    log_axes: tuple[str, ...]  # those refined on a log scale
    points: tuple[dict[str, Any], ...]
    labels: tuple[str, ...]
    rounds: tuple[int, ...]
    seeds: int  # members per point
    label_name: str  # the rule, or "<metric> >= <threshold>"

    @property
    def n_runs(self) -> int:
        """Members trained in all: points × seeds."""
        return len(self.points) * self.seeds

    def boundaries(self) -> list[tuple[str, dict[str, Any], Any, Any]]:
        """Each located crossing: (axis, the other axes' values, lower value, upper value) of two
        neighbouring points on a line whose labels differ."""
        out = []
        for axis, fixed, members in _lines(self):
            for (va, la), (vb, lb) in itertools.pairwise(members):
                if la != lb and "missing" not in (la, lb):
                    out.append((axis, fixed, va, vb))
        return out

    def to_json(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Refinement:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in fields}
        return cls(**values)


def _lines(ref: Refinement):
    """(axis, {other axis: value}, [(value, label)] sorted along the axis) for every line through the
    grid: the other axes at grid values (a line holding a round-0 point); points added along another
    axis lie off those lines and pair with nothing."""
    by_line: dict[tuple, list] = {}
    on_grid: set[tuple] = set()
    for point, label, r in zip(ref.points, ref.labels, ref.rounds, strict=True):
        for axis in ref.numeric:
            key = (axis, tuple(_key(point[a]) for a in ref.axes if a != axis))
            by_line.setdefault(key, []).append((point[axis], label, point))
            if r == 0:
                on_grid.add(key)
    for key, members in by_line.items():
        if key not in on_grid:
            continue
        axis = key[0]
        members.sort(key=lambda m: m[0])
        fixed = {a: members[0][2][a] for a in ref.axes if a != axis}
        yield axis, fixed, [(v, lab) for v, lab, _ in members]


def _key(v: Any) -> Any:
    """A value as a dictionary key: numbers to 12 significant digits (as `_midpoint` writes them), so
    that 1e-16 and 1e-14 stay apart; anything else as text."""
    return float(f"{float(v):.12g}") if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def numeric_axes(spec: SweepSpec) -> tuple[list[str], list[str]]:
    """(axes refinement can bisect: fields that hold real numbers (not integer fields such as
    `train.steps` or `task.p`, where a midpoint is no value), two or more values; those among them
    that are logarithmic: positive values in a geometric progression (or two values a factor ≥ 10
    apart))."""
    numeric, log = [], []
    for name, values in spec.axes.items():
        if len(values) < 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            continue
        if name != "seed" and _field_type(name) in ("int", "int | None"):
            continue
        numeric.append(name)
        v = np.sort(np.asarray(values, dtype=np.float64))
        if np.all(v > 0):
            ratios, diffs = v[1:] / v[:-1], np.diff(v)
            geometric = np.allclose(ratios, ratios[0], rtol=1e-6) and not np.allclose(diffs, diffs[0], rtol=1e-6)
            if geometric or (len(v) == 2 and v[1] / v[0] >= 10):
                log.append(name)
    return numeric, log


def check_refine(
    spec: SweepSpec, rounds: Any, *, rule: str = "doshi", metric: str | None = None, threshold: float | None = None
) -> tuple[list[str], list[str]]:
    """Everything a refinement request can get wrong, before anything runs: ConfigError, one line."""
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ConfigError("--refine", rounds, "a number of rounds >= 1")
    numeric, log = numeric_axes(spec)
    if not numeric:
        axes = ", ".join(f"{n}[{len(v)}]" for n, v in spec.axes.items()) or "none"
        raise ConfigError(
            "--refine", rounds, f"a sweep with an axis of two or more real values, not integers (its axes: {axes})"
        )
    if (metric is None) != (threshold is None):
        raise ConfigError("--refine-metric", metric, "a metric and a threshold together")
    if metric is not None:
        _check_metric_name(spec, metric)
    if metric is None:
        if rule not in PHASE_RULES:
            raise ConfigError("--rule", rule, "one of " + ", ".join(PHASE_RULES))
        if not all(g.config.spec.n_classes > 0 for g in spec.groups()):
            raise ConfigError("--refine", rounds, "a classification sweep, or --refine-metric NAME=THRESHOLD")
    return numeric, log


def _check_metric_name(spec: SweepSpec, metric: str) -> None:
    """A `--refine-metric` name the sweep will record, checked before the grid trains: the engine's
    metrics and those its probes declare (a probe that declares none defers the check to after the
    grid, where the recorded names are known)."""
    from grok.probing import BASE_METRICS
    from grok.registry import PROBES

    names, prefixes = set(BASE_METRICS) - {"step"}, set()
    for group in spec.groups():
        for probe in group.config.train.probes:
            declared = PROBES.get(probe, "train.probes").metrics
            if not declared:
                return
            for m in declared:
                (prefixes.add(m) if m.endswith("/") else names.add(m))
    if metric in names or any(metric.startswith(p) for p in prefixes):
        return
    allowed = ", ".join(sorted(names) + sorted(f"{p}<layer>" for p in prefixes))
    raise ConfigError("--refine-metric", metric, f"a final metric of the sweep: {allowed}")


def _label_of_members(history: Mapping[str, np.ndarray], xi: np.ndarray, label: tuple) -> np.ndarray:
    """Per member of a run: its phase, or 'above'/'below' the metric threshold."""
    kind = label[0]
    if kind == "metric":
        return np.asarray(history[label[1]], dtype=np.float64)[:, -1]
    final = {k: np.asarray(v)[:, -1] for k, v in history.items() if k != "step"}
    with np.errstate(invalid="ignore"):
        hist = np.asarray(history["test_acc"])
        best = np.max(np.where(np.isnan(hist), -np.inf, hist), axis=-1)
    if label[1] == "doshi":
        phase = classify_phase(final["train_acc"], final["test_acc"], best, xi)
    else:
        c, m, v = final["train_acc_clean"], final["train_acc_corrupted"], final["corrupted_true_acc"]
        phase = classify_phase_corrupted(c, m, v, final["test_acc"], best)
    return np.where(final["diverged"] > 0, DIVERGED, phase.astype(object)).astype(str)


def _point_label(per_seed: np.ndarray, label: tuple) -> str:
    """A point's label from all of its seeds: the majority phase, or whether the seed mean of the
    metric (NaN seeds left out) is ≥ the threshold, the rule of the grid's points (`_grid_labels`)."""
    if label[0] == "metric":
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.asarray(per_seed, dtype=np.float64))
        return "above" if mean >= label[2] else "below"
    return str(majority_phase(np.asarray(per_seed)[None])[0][0])


def _grid_labels(sw: Sweep, label: tuple) -> np.ndarray:
    if label[0] == "metric":
        _, metric, threshold = label
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(sw.metric(metric), axis=-1)
        out = np.where(mean >= threshold, "above", "below").astype(object)
        out[~sw.present.all(axis=-1)] = "missing"
        return out.astype(str)
    return majority_phase(sw.phases(label[1]))[0]


def _midpoint(a: float, b: float, log: bool) -> float:
    m = math.sqrt(a * b) if log else (a + b) / 2
    return float(f"{m:.12g}")


def _complete(path: Path, config, overrides: list[dict]) -> bool:
    try:
        store.check_run_dir(path)
    except RunDirError:
        return False
    meta = store.read_json(path / "config.json")
    if meta.get("config") != _jsonable(config.to_dict()) or _jsonable(meta.get("members")) != _jsonable(overrides):
        raise RunDirError(f"{str(path)!r} holds other members than this refinement expects; the directory was altered")
    return True


def _run_round(
    spec: SweepSpec,
    out: Path,
    points: list[dict[str, Any]],
    label: tuple,
    *,
    shard: bool,
    progress: bool,
) -> list[str]:
    """Train `points` × seeds as vmapped batches grouped by static fields; their labels."""
    static = spec.static_axes()
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(points):
        groups.setdefault(tuple(_key(p[a]) for a in static), []).append(i)
    per_point: dict[int, list] = {}  # every seed's label (or metric) of a point, across batches
    for g, idx in enumerate(groups.values()):
        gcfg = spec.base.override(**{a: points[idx[0]][a] for a in static})
        members = [(i, {a: points[i][a] for a in spec.dynamic_axes()} | {"seed": s}) for i in idx for s in spec.seeds]
        per_batch = max(1, spec.max_members_per_program)
        for b in range(0, len(members), per_batch):
            chunk = members[b : b + per_batch]
            overrides = [o for _, o in chunk]
            path = out / f"g{g:03d}" / f"b{b // per_batch:03d}"
            if not _complete(path, gcfg, overrides):
                for leftover in store.temporary_siblings(path):
                    shutil.rmtree(leftover, ignore_errors=True)
                configs = [gcfg.override(**o) for o in overrides]
                size = 1 << (len(configs) - 1).bit_length()  # a power of two: rounds share compiled programs
                configs += [configs[-1]] * (min(size, per_batch) - len(configs))
                start = time.perf_counter()
                result = engine.run_group(configs, progress=None, shard=shard)
                wall = time.perf_counter() - start
                run = Run.from_group(gcfg, overrides, result, wall_seconds=wall, status={"refine": str(path)})
                run.write_to(path)
                if progress:
                    print(f"refine: {path.relative_to(out.parents[1])}: {len(overrides)} members", flush=True)
            history = store.read_npz(path / "history.npz")
            xi = np.asarray([gcfg.override(**o).task.corrupt_fraction for o in overrides])
            member_labels = _label_of_members(history, xi, label)
            for j, (i, _) in enumerate(chunk):
                per_point.setdefault(i, []).append(member_labels[j])
    return [_point_label(np.asarray(per_point[i]), label) for i in range(len(points))]


def refine(
    spec: str | Path | Mapping[str, Any] | SweepSpec,
    out: str | Path,
    rounds: int,
    *,
    rule: str = "doshi",
    metric: str | None = None,
    threshold: float | None = None,
    progress: bool = True,
    shard: bool = True,
) -> Refinement:
    """Run (or resume) the sweep `spec` into `out`, then `rounds` rounds of bisection between
    neighbouring points whose label differs (module docstring). Returns the `Refinement`.

    >>> ref = grok.refine("doshi-phase-small", "runs/phase", rounds=2)
    >>> len(ref.boundaries())
    """
    from grok.sweep.runner import sweep

    spec = SweepSpec.parse(spec)
    numeric, log = check_refine(spec, rounds, rule=rule, metric=metric, threshold=threshold)
    label = ("metric", metric, float(threshold)) if metric is not None else ("phase", rule)
    name = rule if metric is None else f"{metric}>={threshold:g}"
    sw = sweep(spec, out, progress=progress, shard=shard)
    if metric is not None and metric not in sw.metrics:
        raise ConfigError("--refine-metric", metric, "a final metric of the sweep: " + ", ".join(sw.metrics))
    axes = tuple(n for n in spec.axes)
    grid = _grid_labels(sw, label)
    points = [{a: spec.axes[a][i] for a, i in zip(axes, idx, strict=True)} for idx in np.ndindex(*spec.shape[:-1])]
    labels = [str(grid[idx]) for idx in np.ndindex(*spec.shape[:-1])]
    made = [0] * len(points)
    base = Path(out) / REFINE_DIR / name.replace("/", "_")
    with store.dir_lock(Path(out)):
        for r in range(1, rounds + 1):
            ref = Refinement(axes, tuple(numeric), tuple(log), tuple(points), tuple(labels), tuple(made), 0, name)
            seen = {tuple(_key(p[a]) for a in axes) for p in points}
            new = []
            for axis, fixed, va, vb in ref.boundaries():
                p = fixed | {axis: _midpoint(float(va), float(vb), axis in log)}
                key = tuple(_key(p[a]) for a in axes)
                if key not in seen and p[axis] not in (va, vb):
                    seen.add(key)
                    new.append(p)
            if not new:
                break
            new_labels = _run_round(spec, base / f"r{r:02d}", new, label, shard=shard, progress=progress)
            points += new
            labels += new_labels
            made += [r] * len(new)
        ref = Refinement(
            axes, tuple(numeric), tuple(log), tuple(points), tuple(labels), tuple(made), len(spec.seeds), name
        )
        store.atomic_write_json(base / "points.json", ref.to_json())
    return ref


def load_refinement(path: str | Path, label: str = "doshi") -> Refinement | None:
    """The refinement saved in sweep directory `path` for `label` (a rule), or None."""
    f = Path(path) / REFINE_DIR / label / "points.json"
    return Refinement.from_json(store.read_json(f)) if f.is_file() else None
