"""The `collapse` probe [P], registered like a user's (docs/formulas.md §5).

Every log interval, on the training set: `sc_fraction` (softmax / StableMax losses),
`zero_terms`, `nlm_cosine` (cos(−∇L, θ)), `logit_norm` (classification) and
`weight_norm/<layer>` (one per parameter leaf; the total is the engine's `weight_norm`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from grok.losses import stablemax_terms
from grok.registry import ProbeInputs, register_probe
from probes import collapse

Array = jax.Array


def stablemax_sc_fraction(logits_NxC: Array, dtype) -> Array:
    """Collapse of the StableMax denominator [P]: share of rows with Σ_j s(x_j)/max_j s(x_j) == 1.

    The analogue of softmax's `sum_exp == 1`, computed as `grok.losses.log_stablemax` does
    (terms divided by the largest): when it holds, every other class is absorbed in the
    loss dtype, the loss is exactly 0 and so is the gradient through the correct class (the others
    keep gradients of order s(x_j)/Σs). s(x) = 1/(1 − x) decays only
    polynomially, so this needs ratios beyond 1/eps of the dtype.
    """
    z = logits_NxC.astype(dtype)
    s = stablemax_terms(z)
    r = s / jnp.max(s, axis=-1, keepdims=True)
    return jnp.mean((jnp.sum(r, axis=-1) == jnp.asarray(1, dtype)).astype(jnp.float32))


def collapse_probe(x: ProbeInputs) -> dict[str, Array]:
    """SC fraction, zero loss terms, NLM cosine, logit norm and per-layer weight norms [P]."""
    cfg = x.config
    grads = jax.grad(x.train_loss)(x.params)
    metrics = {
        "zero_terms": collapse.zero_terms(x.loss_train),
        "nlm_cosine": collapse.nlm_cosine(grads, x.params),
    }
    if cfg.loss.kind == "softmax_ce":
        metrics["sc_fraction"] = collapse.sc_fraction(x.outputs_train, cfg.loss.dtype)
    elif cfg.loss.kind == "stablemax_ce":
        metrics["sc_fraction"] = stablemax_sc_fraction(x.outputs_train, jnp.dtype(cfg.loss.dtype))
    if x.spec.n_classes:
        metrics["logit_norm"] = collapse.logit_norm(x.outputs_train)
    for name, value in collapse.weight_norms(x.params).items():
        if name != "total":  # the total is the engine's `weight_norm`
            metrics[f"weight_norm/{name}"] = value
    return metrics


register_probe(
    "collapse",
    collapse_probe,
    metrics=("sc_fraction", "zero_terms", "nlm_cosine", "logit_norm", "weight_norm/"),
)
