"""A run's history: `{metric: array}` whose missing keys say why they are missing.

`run.history["ipr_mean"]` on a run that did not enable the `neurons` probe raises
`MetricNotRecorded` (a `KeyError`) naming the probe that records it and the two ways to get it:
train with the probe, or compute it on the run's snapshots with `grok.probe_history`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from grok import registry
from grok.suggest import closest


class MetricNotRecorded(KeyError):
    """A metric a run's history does not have; the message says which probe records it.

    >>> grok.train(grok.preset("prieto-perpgrad-small")).history["ipr_mean"]  # without the neurons probe
    MetricNotRecorded: 'ipr_mean' is not in this run's history: the probe 'neurons' records it, ...
    """

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class History(dict):
    """`{metric: np.ndarray}` ([members, intervals, ...]; "step" is [intervals]) with helpful misses."""

    def __init__(self, values=(), *, probes: Iterable[str] = ()):
        super().__init__(values)
        self.probes = tuple(probes)

    def __missing__(self, key: str) -> np.ndarray:
        raise MetricNotRecorded(missing_metric_message(key, list(self), self.probes))


def recording_probe(metric: str) -> str | None:
    """The registered probe that declares `metric` among its `metrics` (None if none does)."""
    for name in registry.PROBES.names():
        for declared in registry.PROBES.get(name).metrics:
            if metric == declared or (declared.endswith("/") and metric.startswith(declared)):
                return name
    return None


def missing_metric_message(metric: object, present: list[str], probes: Iterable[str]) -> str:
    """Why `metric` is not among `present`, and what to do about it (one line)."""
    probes = list(probes)
    owner = recording_probe(metric) if isinstance(metric, str) else None
    if owner is not None and owner not in probes:
        return (
            f"{metric!r} is not in this run's history: the probe {owner!r} records it, and this run had "
            f"train.probes={probes}; train with {owner!r} in train.probes, or compute it on the run's "
            f"snapshots: grok.probe_history(run, [{owner!r}])"
        )
    near = closest(metric, present)
    hint = f" (did you mean {near!r}?)" if near else ""
    return f"{metric!r} is not in this run's history{hint}; it has: {', '.join(sorted(present))}"
