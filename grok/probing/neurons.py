"""The `neurons` probe [D], registered like a user's (docs/formulas.md §5).

Every log interval: `ipr` per neuron of the first hidden layer, `ipr_mean`, `ipr_hist`
[`train.ipr_histogram_bins`] (counts over [0, 1]). Needs token-pair inputs (the modular task)
and a model registered with a neuron view (`neurons=`): the MLP and the quadratic MLP.
"""

from __future__ import annotations

import jax

from grok.registry import MODELS, ProbeInputs, register_probe
from probes import neurons

Array = jax.Array


def neurons_probe(x: ProbeInputs) -> dict[str, Array]:
    """Fourier IPR of every first-layer neuron, its mean and histogram [D]."""
    u, v, w = MODELS.get(x.config.model.kind).neurons(x.model())
    summary = neurons.ipr_summary(u, v, w, x.config.train.ipr_histogram_bins)
    return {"ipr": summary["ipr"], "ipr_mean": summary["ipr_mean"], "ipr_hist": summary["ipr_hist"]}


def _requires(cfg) -> str | None:
    model = MODELS.get(cfg.model.kind)
    if cfg.task.kind != "modular" or model.neurons is None:
        with_neurons = [n for n in MODELS.names() if MODELS.get(n).neurons is not None]
        return (
            f"only with token-pair inputs (task.kind='modular') and a model with neurons ({', '.join(with_neurons)}) "
            f"(got task.kind={cfg.task.kind!r}, model.kind={cfg.model.kind!r})"
        )
    return None


register_probe(
    "neurons",
    neurons_probe,
    requires=_requires,
    fields=("train.ipr_histogram_bins",),
    metrics=("ipr", "ipr_mean", "ipr_hist"),
)
