"""Glue between the engine and the pure probe functions in `probes/` (DESIGN.md §5).

Probe families are chosen in `train.probes`; everything runs on device inside the
compiled, member-vmapped training program:

- `collapse` [P], every log interval: `sc_fraction` (softmax / StableMax losses), `zero_terms`,
  `nlm_cosine`, `logit_norm` (classification), `weight_norm/<layer>` (one per parameter leaf).
- `neurons` [D], every log interval: `ipr` [N] per neuron, `ipr_mean`, `ipr_hist`
  [`train.ipr_histogram_bins`] (counts over [0, 1]). Needs the modular task and an MLP.
- `ntk` [K]: `ntk_alignment`, `kernel_distance`, `param_distance`, `kernel_test_mse` (kernel
  regression with K₀), `kernel_test_mse_t` (with the current K_t) and, for the α-net on the
  quadratic target, `theory_test_loss`. Every log interval, unless `train.ntk_every` gives it
  a coarser interval: then it runs once per compiled chunk (`slow_probes`) and is NaN at the
  other intervals.

The NTK probe set is fixed at initialisation: the first `train.ntk_subset` training
examples and as many test examples (fewer if the test set is smaller).
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
    x_probe: Array | None = None  # NTK probe inputs: ntk_subset train examples, then up to as many test examples
    y_probe: Array | None = None  # their targets (noisy train labels / test labels)
    k0: Array | None = None  # empirical NTK at init on x_probe
    kernel_test_mse0: Array | None = None  # test MSE of kernel regression with K₀ (a constant of the run)


def ntk_is_slow(cfg) -> bool:
    """Whether the NTK runs at its own, coarser interval."""
    every = cfg.train.ntk_every
    return "ntk" in cfg.train.probes and every is not None and every != cfg.train.log_every


def has_theory_loss(cfg) -> bool:
    """The α-net's exact test loss applies: fixed unit readouts, the quadratic single-index target [K]."""
    return (
        cfg.model.kind == "alpha_net"
        and not cfg.model.train_readout
        and cfg.task.kind == "polynomial"
        and cfg.task.target == "quadratic"
    )


def _targets(spec, y: Array, dtype) -> Array:
    """Y for kernel alignment / regression: one-hot for classification, the values for regression."""
    if spec.n_classes:
        return jax.nn.one_hot(y, spec.n_classes, dtype=dtype)
    return y.astype(dtype)


def _apply_fn(fwd, rest, scale):
    def apply(params, x):
        out, _ = fwd.apply(params, rest, x, False, scale)
        return out

    return apply


def _mse_scale(cfg, dyn, dtype) -> Array:
    """Kernel-regression and theory MSEs are reported on the scale of `test_loss` (÷α² for the α-net [K])."""
    if cfg.model.kind == "alpha_net":
        return 1.0 / jnp.square(dyn["model.alpha"]).astype(dtype)
    return jnp.ones((), dtype)


def _kernel_mse(cfg, spec, k: Array, y_probe: Array, n: int, dyn) -> Array:
    y = _targets(spec, y_probe, k.dtype)
    mse = ntk.kernel_regression_test_mse(k[:n, :n], k[n:, :n], y[:n], y[n:])
    return mse * _mse_scale(cfg, dyn, mse.dtype)


def probe_context(cfg, spec, fwd, data, params, rest, dyn) -> ProbeContext:
    """Everything the probes compare against later, measured at step 0."""
    if "ntk" not in cfg.train.probes:
        return ProbeContext()
    n = cfg.train.ntk_subset
    n_test = min(n, data.x_test.shape[0])
    x_probe = jnp.concatenate([data.x_train[:n], data.x_test[:n_test]])
    y_probe = jnp.concatenate([data.y_train[:n], data.y_test[:n_test]])
    k0 = ntk.empirical_ntk(_apply_fn(fwd, rest, dyn["loss.logit_scale"]), params, x_probe)
    return ProbeContext(
        params0=params,
        x_probe=x_probe,
        y_probe=y_probe,
        k0=k0,
        kernel_test_mse0=_kernel_mse(cfg, spec, k0, y_probe, n, dyn),
    )


def _ntk_metrics(cfg, spec, fwd, state, dyn) -> dict[str, Array]:
    ctx: ProbeContext = state.probe
    n = cfg.train.ntk_subset
    k = ntk.empirical_ntk(_apply_fn(fwd, state.rest, dyn["loss.logit_scale"]), state.params, ctx.x_probe)
    k_train = k[:n, :n]
    y = _targets(spec, ctx.y_probe, k.dtype)
    metrics = {
        "ntk_alignment": ntk.centered_alignment(k_train, y[:n]),
        "kernel_distance": ntk.kernel_distance(ctx.k0[:n, :n], k_train),
        "param_distance": ntk.param_distance(state.params, ctx.params0),
        "kernel_test_mse": ctx.kernel_test_mse0,
        "kernel_test_mse_t": _kernel_mse(cfg, spec, k, ctx.y_probe, n, dyn),
    }
    if has_theory_loss(cfg):
        metrics["theory_test_loss"] = _theory_test_loss(cfg, fwd, state, dyn)
    return metrics


def _theory_test_loss(cfg, fwd, state, dyn) -> Array:
    """Exact population test loss of the α-net from its sufficient statistics [K, DESIGN §5].

    The centered net f̃ = f(θ) − f(θ₀) is linear in (w̄, M), so its loss is the formula at
    (w̄ − w̄₀, M − M₀); divided by α² like the training loss.
    """
    model = nnx.merge(fwd.graphdef, state.params, state.rest)
    w_bar, m = ntk.alpha_net_stats(model.w[...])
    if model.w0 is not None:
        w_bar0, m0 = ntk.alpha_net_stats(model.w0[...])
        w_bar, m = w_bar - w_bar0, m - m0
    alpha, eps = dyn["model.alpha"].astype(m.dtype), dyn["model.epsilon"].astype(m.dtype)
    loss = ntk.alpha_net_test_loss(w_bar, m, state.data.beta.astype(m.dtype), alpha, eps)
    return loss * _mse_scale(cfg, dyn, loss.dtype)


def _stablemax_sc_fraction(logits_NxC: Array, dtype) -> Array:
    """Collapse of the StableMax denominator [P]: share of rows with Σ_j s(x_j)/max_j s(x_j) == 1.

    The analogue of softmax's `sum_exp == 1`, computed as `grok.losses.log_stablemax` does
    (terms divided by the largest): when it holds, every other class is absorbed in the
    loss dtype and the example's gradient is exactly 0. s(x) = 1/(1 − x) decays only
    polynomially, so this needs ratios beyond 1/eps of the dtype.
    """
    from grok.losses import _s

    z = logits_NxC.astype(dtype)
    s = _s(z)
    r = s / jnp.max(s, axis=-1, keepdims=True)
    return jnp.mean((jnp.sum(r, axis=-1) == jnp.asarray(1, dtype)).astype(jnp.float32))


def _collapse_metrics(cfg, spec, fwd, state, dyn, out_train, per_train) -> dict[str, Array]:
    from grok.engine import loss_terms  # local: engine imports this module

    data = state.data

    def mean_loss(params):
        out, _ = fwd.apply(params, state.rest, data.x_train, False, dyn["loss.logit_scale"])
        return jnp.mean(loss_terms(cfg, spec, out, data.y_train, dyn["model.alpha"]))

    grads = jax.grad(mean_loss)(state.params)
    metrics = {
        "zero_terms": collapse.zero_terms(per_train),
        "nlm_cosine": collapse.nlm_cosine(grads, state.params),
    }
    if cfg.loss.kind == "softmax_ce":
        metrics["sc_fraction"] = collapse.sc_fraction(out_train, cfg.loss.dtype)
    elif cfg.loss.kind == "stablemax_ce":
        metrics["sc_fraction"] = _stablemax_sc_fraction(out_train, jnp.dtype(cfg.loss.dtype))
    if spec.n_classes:
        metrics["logit_norm"] = collapse.logit_norm(out_train)
    for name, value in collapse.weight_norms(state.params).items():
        if name != "total":  # the total is the engine's `weight_norm`
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
