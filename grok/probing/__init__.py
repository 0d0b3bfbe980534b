"""Probes inside the compiled run: the built-in families, registered like a user's, and the glue
that evaluates the chosen ones (docs/formulas.md §5 for the formulas, `probes/` for their code).

- `collapse` [P]: SC fraction, zero terms, NLM cosine, logit and per-layer weight norms.
- `ntk` [K]: NTK alignment, kernel and parameter movement, kernel-regression test MSEs.
- `neurons` [D]: Fourier IPR per neuron, its mean and histogram.
- `progress` [N]: key frequencies, restricted / excluded loss, Gini coefficients, neuron clusters.
- `spectral` [MM]: per weight matrix, norms, stable and effective rank, the HTSR power-law α.
"""

from grok.probing import collapse, neurons, ntk, progress_measures, spectral
from grok.probing.evaluate import (
    BASE_METRICS,
    init_probe_state,
    interval_probes,
    probes_at,
    slow_chunk,
    slow_probe_names,
    slow_probes,
)

__all__ = [
    "BASE_METRICS",
    "collapse",
    "init_probe_state",
    "interval_probes",
    "neurons",
    "ntk",
    "probes_at",
    "progress_measures",
    "slow_chunk",
    "slow_probe_names",
    "slow_probes",
    "spectral",
]
