"""A finished (or partial) sweep read back as labelled arrays: `Sweep` and `load_sweep`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from grok import posthoc, store
from grok.config import Config
from grok.errors import ConfigError
from grok.history import MetricNotRecorded, missing_metric_message
from grok.phases import (
    DIVERGED,
    PHASE_RULES,
    classify_phase,
    classify_phase_corrupted,
    grokking_delay,
    phase_summary,
    regression_grokking_delay,
)
from grok.run import Run, load_run
from grok.store import RunDirError
from grok.sweep.disk import batch_complete
from grok.sweep.spec import Batch, SweepSpec


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
    def _place(
        self,
        name: str,
        per_batch: Callable[[Batch, dict[str, np.ndarray]], np.ndarray],
        tail: int,
        source: dict[int, dict[str, np.ndarray]] | None = None,
        steps: np.ndarray | None = None,
    ):
        """Assemble per-batch arrays [members, ...] into [*shape, ...] (NaN where absent).

        `source`: the per-batch dicts (each with its "step"), the histories unless given; `steps`:
        the time axis they are placed on (`self.steps` unless given)."""
        source = self._hist if source is None else source
        steps = self.steps if steps is None else steps
        pieces = {}
        for b in self._batches:
            h = source.get(b.index)
            if h is not None and name in h:
                pieces[b.index] = np.asarray(per_batch(b, h), dtype=np.float64)
        if not pieces:
            raise MetricNotRecorded(
                missing_metric_message(name, self.metrics, self.spec.base.train.probes).replace(
                    "this run's history", "this sweep"
                )
            )
        extra = [p.shape[1 + tail :] for p in pieces.values()]
        ndim = max(len(e) for e in extra)
        extra_max = tuple(max((e[i] for e in extra if len(e) == ndim), default=0) for i in range(ndim))
        lead = tuple(len(steps) for _ in range(tail))
        out = np.full(self.shape + lead + extra_max, np.nan)
        for b in self._batches:
            if b.index not in pieces:
                continue
            value = pieces[b.index]
            cols = tuple(np.asarray([idx[k] for idx, _ in b.members]) for k in range(len(self.shape)))
            if tail:
                pos = np.searchsorted(steps, source[b.index]["step"])
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

            def per_batch(b: Batch, h: dict[str, np.ndarray]) -> np.ndarray:
                value = np.asarray(h[name])
                if name == "step" and value.ndim == 1:  # one time axis per batch: each member's own steps
                    value = np.broadcast_to(value, (len(b.members), value.size))
                return value

            self._cache[key] = self._place(name, per_batch, tail=1)
        return self._cache[key]

    def frame(self, metrics: Sequence[str] | None = None):
        """The sweep as a tidy pandas DataFrame: one row per member and logged step, with a column
        for each axis, `seed`, `step` and each scalar metric (all, or `metrics`).

        >>> grok.load_sweep("runs/phase").frame(["test_acc"]).groupby("optim.weight_decay").test_acc.max()
        """
        from grok.frames import sweep_frame

        return sweep_frame(self, metrics)

    def metric(self, name: str) -> np.ndarray:
        """A metric at each member's final logged interval: `[*axes, seeds(, extra)]`."""
        key = ("metric", name)
        if key not in self._cache:
            self._cache[key] = self._place(name, lambda b, h: np.asarray(h[name])[:, -1], tail=0)
        return self._cache[key]

    def probe_history(self, probes: Sequence[str], *, steps: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """Registered `probes` evaluated after the fact on every member's snapshots (all the snapshot
        steps, or `steps`): `{metric: [*axes, seeds, snapshots(, extra)], "step": [snapshots]}`.

        Each complete batch is one `grok.probe_history` call (one compiled program over its members
        and snapshots); the values are placed on the grid like `history` (NaN for missing batches).
        Every batch must have kept the same snapshot steps (or at least `steps`)."""
        kept = {b.index: self._run(b).steps_with_snapshots for b in self._batches if b.index in self._hist}
        without = [b.path for b in self._batches if kept.get(b.index) == []]
        if without:
            raise ConfigError(
                "sweep",
                f"{len(without)} batch(es) without snapshots ({', '.join(without[:3])})",
                "a sweep whose runs kept snapshots (set train.snapshots to a count or a list of steps)",
            )
        if steps is None:
            distinct = {tuple(s) for s in kept.values()}
            if len(distinct) > 1:
                common = sorted(set.intersection(*(set(s) for s in distinct)))
                first, other = sorted(distinct)[:2]
                raise ConfigError(
                    "sweep",
                    f"batches with different snapshot steps ({_steps_text(first)} and {_steps_text(other)})",
                    "one set of snapshot steps for every batch"
                    + (f", or steps= a subset of the {len(common)} steps they all kept" if common else ""),
                )
            steps = next(iter(distinct), ())
        steps = np.unique(np.asarray([int(s) for s in steps], np.int64))  # sorted: the time axis
        if not len(steps):
            raise ConfigError("steps", [], "one or more snapshot steps")
        values = {}
        for b in self._batches:
            if b.index in kept:
                values[b.index] = posthoc.probe_history(self._run(b), probes, steps=steps)
        if not values:
            raise ConfigError("sweep", "no complete batch", "a sweep with at least one complete batch")
        names = dict.fromkeys(k for v in values.values() for k in v if k != "step")
        out = {n: self._place(n, lambda b, v, n=n: v[n], tail=1, source=values, steps=steps) for n in names}
        return out | {"step": steps}

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
        out = np.zeros(self.shape, dtype=bool)
        for g in {b.group.index: b.group for b in self._batches}.values():
            for idx, _ in g.members:  # a group's task is static: one answer for all its members
                out[idx] = g.config.spec.n_classes > 0
        return out

    @property
    def phase(self) -> np.ndarray:
        """Phase [D] per member, `[*axes, seeds]` of names from `grok.phases.PHASES`, by [D]'s rule
        (final train accuracy against the noisy labels, final test accuracy, best test accuracy
        over the run, ξ; docs/formulas.md §6). Regression members get "" (no phases defined); members
        of missing batches get "missing". `phases(rule="corrupted_subset")` gives the sharper rule."""
        return self.phases("doshi")

    def phases(self, rule: str = "doshi") -> np.ndarray:
        """Phase per member, `[*axes, seeds]`, by `rule`: "doshi" ([D], docs/formulas.md §6.1) or
        "corrupted_subset" (the corrupted subset's accuracies, §7.3); "diverged" for a member whose
        training diverged. `sw.phases("corrupted_subset")`."""
        if rule not in PHASE_RULES:
            raise ConfigError("rule", rule, "one of " + ", ".join(PHASE_RULES))
        key = ("phases", rule)
        if key in self._cache:
            return self._cache[key]
        test = self.metric("test_acc")
        with np.errstate(invalid="ignore"):
            hist = self.history("test_acc")
            max_test = np.max(np.where(np.isnan(hist), -np.inf, hist), axis=-1)
        if rule == "doshi":
            xi = self.field("task.corrupt_fraction")
            phase = classify_phase(self.metric("train_acc"), test, max_test, xi).astype(object)
        else:
            clean, noisy = self.metric("train_acc_clean"), self.metric("train_acc_corrupted")
            phase = classify_phase_corrupted(clean, noisy, self.metric("corrupted_true_acc"), test, max_test)
            phase = phase.astype(object)
        phase[self.metric("diverged") > 0] = DIVERGED  # frozen at its last finite parameters: not a phase
        phase[~self.classification] = ""
        phase[~self.present] = "missing"
        self._cache[key] = phase.astype(str)
        return self._cache[key]

    def phase_summary(self, rule: str = "doshi") -> dict[str, np.ndarray]:
        """Per grid cell `[*axes]` (seeds aggregated): fraction of seeds in each phase, majority phase,
        its count k of n and Wilson 95% interval (`grok.phases.phase_summary`). `sw.phase_summary()["lo"]`."""
        return phase_summary(self.phases(rule))

    @property
    def grokking_delay(self) -> np.ndarray:
        """Steps between train and test crossing accuracy 0.9 (classification) or 0.1 × their initial
        loss (regression [K]), `[*axes, seeds]`; NaN where either never crosses (docs/formulas.md §6)."""
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


def _steps_text(steps: Sequence[int]) -> str:
    shown = ", ".join(map(str, steps[:6]))
    return f"[{shown}{', …' if len(steps) > 6 else ''}]"


def load_sweep(path: str | Path, *, allow_partial: bool = False) -> Sweep:
    """Read a sweep directory written by `sweep` as labelled arrays.

    An unfinished sweep is a RunDirError unless `allow_partial` (its missing members are NaN,
    phase "missing"). Only complete batch directories are read (never a partial file).

    >>> sw = grok.load_sweep("runs/phase"); sw.phase
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
