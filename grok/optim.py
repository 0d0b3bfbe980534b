"""Optimizers: ⊥Grad [P] and AdamW / Adam / SGD with injected hyperparameters (DESIGN.md §4).

Numeric hyperparameters (lr, b1, b2, eps, weight_decay, momentum) live in the optimizer
state as arrays (`optax.inject_hyperparams`), so they may be traced scalars — one per
vmapped member — and changing them never recompiles. They are stored in
`state.hyperparams` under the names `lr b1 b2 eps weight_decay momentum` (the config names
without the "optim." prefix); all six are stored whatever the kind, the unused ones are
ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import optax
from jax import Array

from grok.config import OptimConfig

OPTIM_KINDS = ("adamw", "adam", "sgd")
HYPERPARAMS = ("lr", "b1", "b2", "eps", "weight_decay", "momentum")

Scalar = float | Array


def _perp_leaf(g: Array, w: Array, rescale: bool) -> Array:
    """g⊥ = g − (w·g)/(w·w) w for one tensor, optionally rescaled to ‖g‖ [P].

    Guards (no NaN, via the double-`where` form): w = 0 → g unchanged; with `rescale`, a g⊥
    within rounding noise of 0 (‖g⊥‖ ≤ 4·eps·√size·‖g‖, e.g. g ∥ w, or any one-element
    tensor) → 0, instead of blowing rounding noise up to ‖g‖ as the released code would.
    Computed in at least float32, returned in g's dtype.
    """
    dt = jnp.promote_types(jnp.result_type(g, w), jnp.float32)
    gf, wf = g.astype(dt), w.astype(dt)
    ww = jnp.sum(wf * wf)
    wg = jnp.sum(wf * gf)
    w_zero = ww == 0
    coef = jnp.where(w_zero, jnp.zeros_like(wg), wg / jnp.where(w_zero, jnp.ones_like(ww), ww))
    g_perp = gf - coef * wf
    if rescale:
        g_norm = jnp.sqrt(jnp.sum(gf * gf))
        perp_norm = jnp.sqrt(jnp.sum(g_perp * g_perp))
        noise = 4.0 * float(jnp.finfo(dt).eps) * math.sqrt(max(g.size, 1)) * g_norm
        perp_zero = perp_norm <= noise
        safe_norm = jnp.where(perp_zero, jnp.ones_like(perp_norm), perp_norm)
        scale = jnp.where(perp_zero, jnp.zeros_like(g_norm), g_norm / safe_norm)
        g_perp = g_perp * scale
    return g_perp.astype(g.dtype)


def perp_grad(rescale: bool = True) -> optax.GradientTransformation:
    """⊥Grad [P]: per parameter tensor, g⊥ = g − (w·g)/(w·w) w, rescaled to ‖g‖ if `rescale`.

    The released code rescales (‖g⊥‖ → ‖g‖); the paper's equation does not. Chain it
    *before* the optimizer: `optax.chain(perp_grad(), optax.adamw(...))` is ⊥AdamW, with SGD
    it is ⊥SGD. Each leaf is projected on its own (w·g and w·w are sums over that tensor).
    Zero-norm guards: a tensor with w = 0 passes g through unchanged; with `rescale`, a
    gradient parallel to w (g⊥ = 0 up to rounding) becomes 0. Needs `params` in `update`.
    """

    def init_fn(params: optax.Params) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(
        updates: optax.Updates, state: optax.EmptyState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, optax.EmptyState]:
        if params is None:
            raise ValueError("perp_grad needs the parameters: call update(grads, state, params)")
        new = jax.tree.map(lambda g, w: _perp_leaf(g, w, rescale), updates, params)
        return new, state

    return optax.GradientTransformation(init_fn, update_fn)


def _inner(
    kind: str,
    nesterov: bool,
    perp: bool,
    perp_rescale: bool,
    lr: Scalar,
    b1: Scalar,
    b2: Scalar,
    eps: Scalar,
    weight_decay: Scalar,
    momentum: Scalar,
) -> optax.GradientTransformation:
    """The un-injected chain; numeric arguments may be arrays (no branching on them)."""
    if kind == "adamw":
        opt = optax.adamw(lr, b1=b1, b2=b2, eps=eps, eps_root=0.0, weight_decay=weight_decay)
    elif kind == "adam":
        opt = optax.adam(lr, b1=b1, b2=b2, eps=eps, eps_root=0.0)
    elif kind == "sgd":
        opt = optax.chain(
            optax.add_decayed_weights(weight_decay),
            optax.sgd(lr, momentum=momentum, nesterov=nesterov),
        )
    else:
        raise ValueError(f"optimizer kind {kind!r}: allowed: {', '.join(OPTIM_KINDS)}")
    return optax.chain(perp_grad(perp_rescale), opt) if perp else opt


_injected = optax.inject_hyperparams(_inner, static_args=("kind", "nesterov", "perp", "perp_rescale"))


def make_optimizer(
    kind: str,
    *,
    lr: Scalar,
    b1: Scalar = 0.9,
    b2: Scalar = 0.999,
    eps: Scalar = 1e-8,
    weight_decay: Scalar = 0.0,
    momentum: Scalar = 0.0,
    nesterov: bool = False,
    perp: bool = False,
    perp_rescale: bool = True,
) -> optax.GradientTransformation:
    """AdamW / Adam / SGD (optionally ⊥Grad-chained) with hyperparameters in the state.

    - "adamw": p ← p − lr·(m̂/(√v̂ + eps) + wd·p) = p(1 − lr·wd) − lr·m̂/(√v̂ + eps), i.e.
      torch's decoupled AdamW (p ← p(1 − lr·wd), then the Adam step) is exactly
      `optax.adamw(weight_decay=wd)`. eps is added outside the square root, as in torch,
      and really reaches Adam (the [P] runs use 1e-25; optax's default 1e-8 changes the
      dynamics).
    - "adam": plain Adam; `weight_decay` is ignored (a nonzero Python number raises; a
      traced value cannot be checked and is silently ignored).
    - "sgd": torch SGD: g ← g + wd·p (L2 form, scaled by lr with the step), buf ← μ·buf + g,
      step = g + μ·buf if nesterov else buf, p ← p − lr·step. b1, b2, eps are ignored.
    - `perp=True` chains `perp_grad(perp_rescale)` before the optimizer (⊥AdamW, ⊥SGD) [P].

    Numeric arguments may be traced scalars (one per vmapped member). Hyperparameters given
    as Python floats are cast to the parameters' dtype in `init`; arrays keep their dtype.
    """
    if kind not in OPTIM_KINDS:
        raise ValueError(f"optimizer kind {kind!r}: allowed: {', '.join(OPTIM_KINDS)}")
    if kind == "adam" and isinstance(weight_decay, (int, float)) and weight_decay != 0:
        raise ValueError(f"optimizer 'adam' has no weight decay (got weight_decay={weight_decay}); use 'adamw'")
    nums = dict(lr=lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay, momentum=momentum)
    nums = {k: float(v) if isinstance(v, (int, float)) else v for k, v in nums.items()}
    return _injected(kind=kind, nesterov=nesterov, perp=perp, perp_rescale=perp_rescale, **nums)


def optimizer_from_config(optim_cfg: OptimConfig, values: Mapping[str, Scalar]) -> optax.GradientTransformation:
    """`make_optimizer` with kind/nesterov/⊥Grad flags from an `OptimConfig` and the numbers
    from `values` keyed "optim.lr", "optim.b1", … (missing keys fall back to the config)."""
    nums = {name: values.get(f"optim.{name}", getattr(optim_cfg, name)) for name in HYPERPARAMS}
    return make_optimizer(
        optim_cfg.kind,
        nesterov=optim_cfg.nesterov,
        perp=optim_cfg.perp_grad,
        perp_rescale=optim_cfg.perp_rescale,
        **nums,
    )
