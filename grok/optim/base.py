"""The base optimizers AdamW, Adam and SGD, registered as transforms (docs/formulas.md §4).

Their hyperparameters are the shared `optim.*` fields (`optim.lr`, `optim.b1`, …), dynamic
per member. Any registered transform can be the base (`optim.kind`); these three are the usual.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from grok.registry import register_transform


def scale_by_adam(b1, b2, eps, *, barrier: bool = True) -> optax.GradientTransformation:
    """Adam's direction m̂/(√v̂ + eps) with m̂ = m/(1 − b1ᵗ), v̂ = v/(1 − b2ᵗ): `optax.scale_by_adam`'s
    formula, with the bias-corrected moments behind `lax.optimization_barrier`.

    The barrier keeps XLA's algebraic simplifier from rewriting (m·c)/(√v̂ + eps) into other, equal
    forms, which it does differently in a single-device and in a sharded program; without it a
    member's run drifts by ulps with the company it is trained in (docs/architecture.md).
    `barrier=False` leaves it out (only `benchmarks/bench_sweep.py` does, to measure its cost).
    """

    def init_fn(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=jax.tree.map(jnp.zeros_like, params))

    def update_fn(updates, state, params=None):
        del params
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = optax.safe_increment(state.count)
        corrected = (optax.tree.bias_correction(mu, b1, count), optax.tree.bias_correction(nu, b2, count))
        mu_hat, nu_hat = jax.lax.optimization_barrier(corrected) if barrier else corrected
        out = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat)
        return out, optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def adamw(lr, b1, b2, eps, weight_decay) -> optax.GradientTransformation:
    """Torch's decoupled AdamW: p ← p(1 − lr·wd) − lr·m̂/(√v̂ + eps), which is `optax.adamw(weight_decay=wd)`.

    eps is added outside the square root, as in torch, and really reaches Adam (the [P] runs
    use 1e-25; optax's default 1e-8 changes the dynamics).
    """
    return optax.chain(scale_by_adam(b1, b2, eps), optax.add_decayed_weights(weight_decay), optax.scale(-lr))


def adam(lr, b1, b2, eps, weight_decay) -> optax.GradientTransformation:
    """Torch's Adam: the weight decay is an L2 term added to the gradient before the moments
    (g ← g + wd·p, the coupled form the Grokfast code uses); wd = 0 is plain Adam."""
    return optax.chain(optax.add_decayed_weights(weight_decay), scale_by_adam(b1, b2, eps), optax.scale(-lr))


def sgd(lr, momentum, nesterov, weight_decay) -> optax.GradientTransformation:
    """Torch SGD: g ← g + wd·p (L2, scaled by lr with the step), buf ← μ·buf + g,
    step = g + μ·buf if nesterov else buf, p ← p − lr·step."""
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(lr, momentum=momentum, nesterov=nesterov))


register_transform("adamw", adamw, shared=("lr", "b1", "b2", "eps", "weight_decay"))
register_transform("adam", adam, shared=("lr", "b1", "b2", "eps", "weight_decay"))
register_transform("sgd", sgd, shared=("lr", "momentum", "nesterov", "weight_decay"))
