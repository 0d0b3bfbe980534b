"""The base optimizers AdamW, Adam and SGD, registered as transforms (docs/formulas.md §4).

Their hyperparameters are the shared `optim.*` fields (`optim.lr`, `optim.b1`, …), dynamic
per member. Any registered transform can be the base (`optim.kind`); these three are the usual.
"""

from __future__ import annotations

import optax

from grok.registry import register_transform


def adamw(lr, b1, b2, eps, weight_decay) -> optax.GradientTransformation:
    """Torch's decoupled AdamW: p ← p(1 − lr·wd) − lr·m̂/(√v̂ + eps), which is `optax.adamw(weight_decay=wd)`.

    eps is added outside the square root, as in torch, and really reaches Adam (the [P] runs
    use 1e-25; optax's default 1e-8 changes the dynamics).
    """
    return optax.adamw(lr, b1=b1, b2=b2, eps=eps, eps_root=0.0, weight_decay=weight_decay)


def adam(lr, b1, b2, eps) -> optax.GradientTransformation:
    """Plain Adam (no weight decay: use adamw)."""
    return optax.adam(lr, b1=b1, b2=b2, eps=eps, eps_root=0.0)


def sgd(lr, momentum, nesterov, weight_decay) -> optax.GradientTransformation:
    """Torch SGD: g ← g + wd·p (L2, scaled by lr with the step), buf ← μ·buf + g,
    step = g + μ·buf if nesterov else buf, p ← p − lr·step."""
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.sgd(lr, momentum=momentum, nesterov=nesterov))


register_transform("adamw", adamw, shared=("lr", "b1", "b2", "eps", "weight_decay"))
register_transform("adam", adam, shared=("lr", "b1", "b2", "eps"))
register_transform("sgd", sgd, shared=("lr", "momentum", "nesterov", "weight_decay"))
