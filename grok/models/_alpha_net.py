"""The α-scaled two-layer network of Kumar et al. 2024 [K]."""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
from flax import nnx

from grok.models._common import Array, DType, Hyper, InitParam, UniformBank, hyper_dtype


class AlphaNet(nnx.Module):
    """f(x) = (α/N) Σᵢ aᵢ φ(wᵢ·x/√D), φ(h) = h + (ε/2)h² [K] (Kumar et al. 2024).

    wᵢ ~ N(0, I_D) (× init_scale) in `w` [N, D]; readouts aᵢ = 1, a trainable Param `a` [N]
    only when `train_readout` (otherwise a constant, not in the state). When `centered`,
    the output is f(θ) − f(θ₀) with θ₀ kept as `InitParam`s `w0` (and `a0`), so it is exactly
    0 at initialization. α and ε are `Hyper` variables. Output [n].
    """

    def __init__(
        self,
        *,
        input_dim: int,
        width: int,
        train_readout: bool,
        centered: bool,
        init_scale: Any,
        alpha: Any,
        epsilon: Any,
        param_dtype: DType,
        rngs: nnx.Rngs,
    ):
        self.input_dim = input_dim
        self.width = width
        bank = UniformBank(rngs.params(), width * input_dim, param_dtype)
        w = bank.normal((width, input_dim)).astype(param_dtype) * jnp.asarray(init_scale, param_dtype)
        self.w = nnx.Param(w)
        self.a = nnx.Param(jnp.ones((width,), param_dtype)) if train_readout else None
        self.w0 = InitParam(w) if centered else None
        self.a0 = InitParam(jnp.ones((width,), param_dtype)) if centered and train_readout else None
        hd = hyper_dtype(param_dtype)
        self.alpha = Hyper(jnp.asarray(alpha, hd))
        self.epsilon = Hyper(jnp.asarray(epsilon, hd))

    def _pre(self, x: Array, w: Array) -> Array:
        """Preactivations h = x·w/√D, [n, N]."""
        return (x.astype(w.dtype) @ w.T) * jnp.asarray(1.0 / math.sqrt(self.input_dim), w.dtype)

    def _readout(self, phi: Array, a: Array | None) -> Array:
        """(α/N) Σᵢ aᵢ φᵢ, [n] (aᵢ = 1 when `a` is None)."""
        s = jnp.sum(phi, axis=-1) if a is None else phi @ a
        return (self.alpha[...].astype(phi.dtype) / self.width) * s

    def raw(self, x: Array, w: Array, a: Array | None) -> Array:
        """Uncentered f(x; w, a), [n]."""
        h = self._pre(x, w)
        eps = self.epsilon[...].astype(h.dtype)
        return self._readout(h + (eps / 2) * jnp.square(h), a)

    def __call__(self, x: Array, *, train: bool = False) -> Array:
        """f̃(x) = f(θ) − f(θ₀) if centered, else f(θ); `train` is unused (no dropout or BatchNorm).

        The centered output is computed in difference form, φ(h) − φ(h₀) = δ(1 + (ε/2)(2h₀ + δ))
        with δ = x·(w − w₀)/√D, plus (a − a₀)φ(h₀): exactly 0 at θ = θ₀ under any compiler
        (two separately computed f's need not cancel bit for bit under jit) and free of the
        cancellation of two large terms when α is large (the lazy regime).
        """
        a = None if self.a is None else self.a[...]
        if self.w0 is None:
            return self.raw(x, self.w[...], a)
        w0 = self.w0[...]
        h0 = self._pre(x, w0)
        delta = self._pre(x, self.w[...] - w0)
        eps = self.epsilon[...].astype(h0.dtype)
        dphi = delta * (1 + (eps / 2) * (2 * h0 + delta))
        out = self._readout(dphi, a)
        if a is not None:
            a0 = self.a0[...]
            out = out + self._readout(h0 + (eps / 2) * jnp.square(h0), a - a0)
        return out


def _build_alpha_net(model_cfg: Any, spec: Any, *, rngs, init_scale, dropout, alpha, epsilon, param_dtype) -> AlphaNet:
    del dropout
    if spec.n_tokens:
        raise ValueError("model.kind='alpha_net' needs dense inputs (the polynomial task), not token pairs")
    return AlphaNet(
        input_dim=int(spec.input_dim),
        width=model_cfg.widths[0],
        train_readout=model_cfg.train_readout,
        centered=model_cfg.centered,
        init_scale=init_scale,
        alpha=alpha,
        epsilon=epsilon,
        param_dtype=param_dtype,
        rngs=rngs,
    )
