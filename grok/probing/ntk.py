"""The `ntk` probe [K], registered like a user's (docs/formulas.md §5).

`ntk_alignment`, `kernel_distance`, `param_distance`, `kernel_test_mse` (kernel regression
with K₀), `kernel_test_mse_t` (with the current K_t) and, for the α-net on the quadratic
target, `theory_test_loss`. Every log interval, unless `train.ntk_every` gives it a coarser
interval (then once per compiled chunk, NaN at the other intervals).

The probe set is fixed at initialisation: the first `train.ntk_subset` training examples
and as many test examples (fewer if the test set is smaller).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from grok.errors import ConfigError
from grok.registry import MODELS, ProbeInputs, register_probe
from probes import ntk
from tasks.polynomial import QUADRATIC_SCALE

Array = jax.Array


def has_theory_loss(cfg) -> bool:
    """The α-net's exact test loss applies: fixed unit readouts, a c·z² single-index target [K]."""
    return (
        cfg.model.kind == "alpha_net"
        and not cfg.model.train_readout
        and cfg.task.kind == "polynomial"
        and cfg.task.target in QUADRATIC_SCALE
    )


def _targets(spec, y: Array, dtype) -> Array:
    """Y for kernel alignment / regression: one-hot for classification, the values for regression."""
    if spec.n_classes:
        return jax.nn.one_hot(y, spec.n_classes, dtype=dtype)
    return y.astype(dtype)


def _mse_scale(cfg, dyn, dtype) -> Array:
    """Kernel-regression and theory MSEs are reported on the scale of `test_loss` (÷α² for the α-net [K])."""
    if MODELS.get(cfg.model.kind).loss_over_alpha2:
        return 1.0 / jnp.square(dyn["model.alpha"]).astype(dtype)
    return jnp.ones((), dtype)


def _kernel_mse(x: ProbeInputs, k: Array, y_probe: Array) -> Array:
    n = x.config.train.ntk_subset
    y = _targets(x.spec, y_probe, k.dtype)
    mse = ntk.kernel_regression_test_mse(k[:n, :n], k[n:, :n], y[:n], y[n:])
    return mse * _mse_scale(x.config, x.dyn, mse.dtype)


def ntk_reference(x: ProbeInputs) -> dict[str, Array]:
    """At step 0: the probe inputs and targets, K₀ on them, and the kernel-regression test MSE with K₀."""
    n = x.config.train.ntk_subset
    data = x.data
    n_test = min(n, data.x_test.shape[0])
    x_probe = jnp.concatenate([data.x_train[:n], data.x_test[:n_test]])
    y_probe = jnp.concatenate([data.y_train[:n], data.y_test[:n_test]])
    k0 = ntk.empirical_ntk(x.apply, x.params, x_probe)
    return {"x_probe": x_probe, "y_probe": y_probe, "k0": k0, "kernel_test_mse0": _kernel_mse(x, k0, y_probe)}


def ntk_probe(x: ProbeInputs) -> dict[str, Array]:
    """Alignment, kernel and parameter movement, and kernel-regression test MSEs [K]."""
    ref = x.ref
    n = x.config.train.ntk_subset
    k = ntk.empirical_ntk(x.apply, x.params, ref["x_probe"])
    k_train = k[:n, :n]
    y = _targets(x.spec, ref["y_probe"], k.dtype)
    metrics = {
        "ntk_alignment": ntk.centered_alignment(k_train, y[:n]),
        "kernel_distance": ntk.kernel_distance(ref["k0"][:n, :n], k_train),
        "param_distance": ntk.param_distance(x.params, x.params0),
        "kernel_test_mse": ref["kernel_test_mse0"],
        "kernel_test_mse_t": _kernel_mse(x, k, ref["y_probe"]),
    }
    if has_theory_loss(x.config):
        metrics["theory_test_loss"] = theory_test_loss(x)
    return metrics


def theory_test_loss(x: ProbeInputs) -> Array:
    """Exact population test loss of the α-net from its sufficient statistics [K, docs/formulas.md §5].

    The centered net f̃ = f(θ) − f(θ₀) is linear in (w̄, M), so its loss is the formula at
    (w̄ − w̄₀, M − M₀); divided by α² like the training loss.
    """
    model = x.model()
    w_bar, m = ntk.alpha_net_stats(model.w[...])
    if model.w0 is not None:
        w_bar0, m0 = ntk.alpha_net_stats(model.w0[...])
        w_bar, m = w_bar - w_bar0, m - m0
    alpha, eps = x.dyn["model.alpha"].astype(m.dtype), x.dyn["model.epsilon"].astype(m.dtype)
    scale = QUADRATIC_SCALE[x.config.task.target]
    loss = ntk.alpha_net_test_loss(w_bar, m, x.data.beta.astype(m.dtype), alpha, eps, scale)
    return loss * _mse_scale(x.config, x.dyn, loss.dtype)


def _requires(cfg) -> str | None:
    if cfg.train.ntk_subset > cfg.n_train:
        raise ConfigError("train.ntk_subset", cfg.train.ntk_subset, f"at most the {cfg.n_train} training examples")
    return None


def _memory(cfg, param_bytes: int) -> int:
    """Per-example Jacobians over every output on the probe set, and the kernels."""
    n_probe = 2 * cfg.train.ntk_subset
    n_out = max(cfg.spec.n_classes, 1)
    return 3 * n_probe * n_out * param_bytes + 3 * n_probe * n_probe * 8


register_probe(
    "ntk",
    ntk_probe,
    init=ntk_reference,
    every="train.ntk_every",
    requires=_requires,
    fields=("train.ntk_every", "train.ntk_subset"),
    initial_params=True,
    memory=_memory,
    lapack=True,
    metrics=(
        "ntk_alignment",
        "kernel_distance",
        "param_distance",
        "kernel_test_mse",
        "kernel_test_mse_t",
        "theory_test_loss",
    ),
)
