"""grok-lab probes: pure, jit/vmap-able measurements evaluated on device (docs/formulas.md §5).

- ``collapse`` [P]: Softmax Collapse fraction, zero loss terms, NLM cosine, logit and weight norms.
- ``ntk`` [K]: empirical NTK, centered kernel-target alignment, kernel / parameter distance,
  kernel ridge regression test MSE, α-net sufficient statistics and exact test loss.
- ``neurons`` [D]: Fourier IPR per neuron, dominant and key frequencies, IPR histogram.
"""

from probes.collapse import logit_norm, nlm_cosine, sc_fraction, weight_norms, zero_terms
from probes.neurons import dominant_frequency, ipr, ipr_histogram, ipr_summary, key_frequencies, neuron_ipr
from probes.ntk import (
    alpha_net_stats,
    alpha_net_test_loss,
    centered_alignment,
    empirical_ntk,
    kernel_distance,
    kernel_regression_test_mse,
    param_distance,
)

__all__ = [
    "sc_fraction",
    "zero_terms",
    "nlm_cosine",
    "logit_norm",
    "weight_norms",
    "empirical_ntk",
    "centered_alignment",
    "kernel_distance",
    "param_distance",
    "kernel_regression_test_mse",
    "alpha_net_stats",
    "alpha_net_test_loss",
    "ipr",
    "neuron_ipr",
    "dominant_frequency",
    "key_frequencies",
    "ipr_histogram",
    "ipr_summary",
]
