"""Glue between the engine and the pure probe functions in `probes/` (DESIGN.md §5).

Probe families are chosen in `train.probes`. `collapse` and `neurons` run at every
log interval; `ntk` too, unless `train.ntk_every` gives it a coarser interval, in
which case it runs once per compiled chunk (`slow_probes`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from probes import collapse, neurons, ntk

Array = jax.Array


class ProbeContext(NamedTuple):
    """Reference quantities fixed at initialisation (None where no probe needs them)."""

    params0: Any = None  # θ₀ for the parameter distance
    x_probe: Array | None = None  # NTK probe inputs: ntk_subset train examples, then as many test examples
    y_probe: Array | None = None  # their targets (noisy train labels / test labels)
    k0: Array | None = None  # empirical NTK at init on x_probe


def ntk_is_slow(cfg) -> bool:
    """Whether the NTK runs at its own, coarser interval."""
    every = cfg.train.ntk_every
    return "ntk" in cfg.train.probes and every is not None and every != cfg.train.log_every


def _targets(spec, y: Array, dtype) -> Array:
    """Y for kernel alignment: one-hot for classification, the values for regression."""
    if spec.n_classes:
        return jax.nn.one_hot(y, spec.n_classes, dtype=dtype)
    return y.astype(dtype)


def _apply_fn(fwd, rest, scale):
    def apply(params, x):
        out, _ = fwd.apply(params, rest, x, False, scale)
        return out

    return apply


def probe_context(cfg, spec, fwd, data, params, rest, dyn) -> ProbeContext:
    """Everything the probes compare against later, measured at step 0."""
    if "ntk" not in cfg.train.probes:
        return ProbeContext()
    n = cfg.train.ntk_subset
    n_test = min(n, data.x_test.shape[0])
    x_probe = jnp.concatenate([data.x_train[:n], data.x_test[:n_test]])
    y_probe = jnp.concatenate([data.y_train[:n], data.y_test[:n_test]])
    k0 = ntk.empirical_ntk(_apply_fn(fwd, rest, dyn["loss.logit_scale"]), params, x_probe)
    return ProbeContext(params0=params, x_probe=x_probe, y_probe=y_probe, k0=k0)


def _ntk_metrics(cfg, spec, fwd, state, dyn) -> dict[str, Array]:
    ctx: ProbeContext = state.probe
    n = cfg.train.ntk_subset
    k = ntk.empirical_ntk(_apply_fn(fwd, state.rest, dyn["loss.logit_scale"]), state.params, ctx.x_probe)
    k_train = k[:n, :n]
    dtype = k.dtype
    y = _targets(spec, ctx.y_probe, dtype)
    metrics = {
        "ntk_alignment": ntk.centered_alignment(k_train, y[:n]),
        "kernel_distance": ntk.kernel_distance(ctx.k0[:n, :n], k_train),
        "param_distance": ntk.param_distance(state.params, ctx.params0),
        "kernel_test_mse": ntk.kernel_regression_test_mse(k_train, k[n:, :n], y[:n], y[n:]),
    }
    if cfg.model.kind == "alpha_net":
        model = nnx.merge(fwd.graphdef, state.params, state.rest)
        w_bar, m = ntk.alpha_net_stats(model.w.value if hasattr(model.w, "value") else model.w)
        metrics["theory_test_loss"] = ntk.alpha_net_test_loss(
            w_bar, m, state.data.beta, dyn["model.alpha"], dyn["model.epsilon"]
        )
    return metrics


def _collapse_metrics(cfg, spec, fwd, state, dyn, out_train, per_train) -> dict[str, Array]:
    data = state.data
    from grok.engine import loss_terms  # local: engine imports this module

    def mean_loss(params):
        out, _ = fwd.apply(params, state.rest, data.x_train, False, dyn["loss.logit_scale"])
        return jnp.mean(loss_terms(cfg, spec, out, data.y_train, dyn["model.alpha"]))

    grads = jax.grad(mean_loss)(state.params)
    metrics = {
        "zero_terms": collapse.zero_terms(per_train),
        "nlm_cosine": collapse.nlm_cosine(grads, state.params),
    }
    if spec.n_classes:
        metrics["sc_fraction"] = collapse.sc_fraction(out_train, cfg.loss.dtype)
        metrics["logit_norm"] = collapse.logit_norm(out_train)
    for name, value in collapse.weight_norms(state.params).items():
        if name != "total":
            metrics[f"weight_norm/{name}"] = value
    return metrics


def _neuron_metrics(cfg, fwd, state) -> dict[str, Array]:
    from grok.models import neuron_weights

    model = nnx.merge(fwd.graphdef, state.params, state.rest)
    u, v, w = neuron_weights(model)
    summary = neurons.ipr_summary(u, v, w, cfg.train.ipr_histogram_bins)
    return {"ipr": summary["ipr"], "ipr_mean": summary["ipr_mean"], "ipr_hist": summary["ipr_hist"]}


def interval_probes(cfg, spec, fwd, state, dyn, out_train, per_train) -> dict[str, Array]:
    """Probes measured at every log interval."""
    chosen = cfg.train.probes
    metrics: dict[str, Array] = {}
    if "collapse" in chosen:
        metrics |= _collapse_metrics(cfg, spec, fwd, state, dyn, out_train, per_train)
    if "neurons" in chosen:
        metrics |= _neuron_metrics(cfg, fwd, state)
    if "ntk" in chosen and not ntk_is_slow(cfg):
        metrics |= _ntk_metrics(cfg, spec, fwd, state, dyn)
    return metrics


def slow_probes(cfg, spec, fwd, state, dyn) -> dict[str, Array]:
    """Probes with their own interval, measured at the end of each chunk."""
    if ntk_is_slow(cfg):
        from grok.engine import _as_metric

        return {k: _as_metric(cfg, v) for k, v in _ntk_metrics(cfg, spec, fwd, state, dyn).items()}
    return {}
