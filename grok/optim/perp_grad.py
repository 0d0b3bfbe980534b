"""⊥Grad [P] as an optax transform, registered as `perp_grad` (docs/formulas.md §4).

In a config: `optim.transforms = ["perp_grad"]` before `optim.kind = "adamw"` is ⊥AdamW;
`optim.perp_grad.rescale = false` gives the paper's equation without the rescale.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax
from jax import Array

from grok.registry import register_transform


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


register_transform("perp_grad", perp_grad, rescale=True)
