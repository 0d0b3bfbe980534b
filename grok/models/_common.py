"""Shared model pieces: variable kinds, initializers, activations, dropout with a traced rate."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

Array = jax.Array
DType = Any


class Hyper(nnx.Variable):
    """A per-member number used in the forward pass (α, ε, dropout rate); never trained.

    Lives in the non-`Param` part of the state, so it is stacked along the member axis
    and changing it never recompiles (docs/architecture.md, "Static and dynamic fields").
    """


class InitParam(nnx.Variable):
    """A frozen copy of the initial weights θ₀ (the centered α-net f(θ) − f(θ₀) [K]); never trained."""


def hyper_dtype(param_dtype: DType) -> DType:
    """Hyperparameters are kept in at least float32 (α up to 1e12 would overflow float16)."""
    return jnp.promote_types(param_dtype, jnp.float32)


class UniformBank:
    """Every random number of one model's initialization from a single draw.

    Under `jit(vmap(init))` each `jax.random` call compiles its own batched threefry, and a
    multi-dimensional shape compiles ~10× slower than a flat one (a transformer's nine 2-D
    draws: 14 s to compile; one flat draw: 2 s; loaded 2-core CPU, jax 0.10.2). So a model
    counts the scalars it needs, draws u ~ U(−1, 1) once, and `take`s consecutive slices:
    U(±b) = b·u and N(0, s²) = s·√2·erfinv(u) (how `jax.random.normal` maps its uniforms).
    Same distributions as per-tensor draws, different numbers.
    """

    def __init__(self, key: Array, total: int, param_dtype: DType):
        self.dtype = jnp.promote_types(param_dtype, jnp.float32)
        lo = np.nextafter(np.array(-1.0, self.dtype), np.array(0.0, self.dtype))
        self.u = jax.random.uniform(key, (total,), self.dtype, lo, 1.0) if total else jnp.zeros((0,), self.dtype)
        self.total, self.offset = total, 0

    def take(self, shape: tuple[int, ...]) -> Array:
        """The next prod(shape) uniforms in (−1, 1), reshaped."""
        n = math.prod(shape)
        if self.offset + n > self.total:
            raise ValueError(f"UniformBank: {self.offset} + {n} exceeds the {self.total} scalars drawn")
        out = self.u[self.offset : self.offset + n].reshape(shape)
        self.offset += n
        return out

    def normal(self, shape: tuple[int, ...]) -> Array:
        """Standard normal samples."""
        return jnp.asarray(math.sqrt(2.0), self.dtype) * jax.scipy.special.erfinv(self.take(shape))

    def check_done(self) -> None:
        """Every scalar drawn was used (guards the counting in the model constructors)."""
        if self.offset != self.total:
            raise ValueError(f"UniformBank: drew {self.total} scalars but used {self.offset}")


def init_weight(
    bank: UniformBank, shape: tuple[int, ...], *, scheme: str, fan_in: int, width: int, scale: Any, dtype: DType
) -> Array:
    """One weight tensor, then × `scale` (may be traced).

    torch:  U(±1/√fan_in) (torch.nn.Linear's default) [P].
    normal: N(0, 1/fan_in).
    doshi:  N(0, std = 0.5/(2N)^{1/3}) with N the first hidden width [D].
    """
    if scheme == "torch":
        w = bank.take(shape) * (1.0 / math.sqrt(fan_in))
    elif scheme == "normal":
        w = bank.normal(shape) * (1.0 / math.sqrt(fan_in))
    elif scheme == "doshi":
        w = bank.normal(shape) * doshi_std(width)
    else:
        raise ValueError(f"unknown init scheme {scheme!r}; allowed: torch, normal, doshi")
    return w.astype(dtype) * jnp.asarray(scale, dtype)


def init_bias(bank: UniformBank, n: int, *, scheme: str, fan_in: int, scale: Any, dtype: DType) -> Array:
    """A bias vector: U(±1/√fan_in) for the torch scheme (torch's default), zeros otherwise."""
    u = bank.take((n,))  # always consumed, so the count does not depend on the scheme
    if scheme == "torch":
        return (u * (1.0 / math.sqrt(fan_in))).astype(dtype) * jnp.asarray(scale, dtype)
    return jnp.zeros((n,), dtype)


def dense_size(fan_in: int, fan_out: int, *, use_bias: bool, kernel_given: bool = False) -> int:
    """How many bank scalars a `Dense` takes."""
    return (0 if kernel_given else fan_in * fan_out) + (fan_out if use_bias else 0)


def doshi_std(width: int) -> float:
    """Initial std 0.5/(2N)^{1/3} of the quadratic MLP [D] (Doshi et al. 2024)."""
    return 0.5 / (2.0 * width) ** (1.0 / 3.0)


def activation(name: str, z: Array) -> Array:
    """relu, quadratic (z², [D]), gelu (exact erf form, torch's default), tanh, linear (identity: a
    bias-free MLP is then a deep linear network, whose learning coefficient is known, formulas §8)."""
    if name == "relu":
        return jax.nn.relu(z)
    if name == "quadratic":
        return jnp.square(z)
    if name == "gelu":
        return jax.nn.gelu(z, approximate=False)
    if name == "tanh":
        return jnp.tanh(z)
    if name == "linear":
        return z
    raise ValueError(f"unknown activation {name!r}; allowed: relu, quadratic, gelu, tanh, linear")


DROPOUT_KEEP = "dropout_keep"  # the name a rematerialized layer saves dropout's mask under


def dropout(x: Array, rate: Array, key: Array) -> Array:
    """Inverted dropout with a (possibly traced) rate: zero with prob. `rate`, scale kept by 1/(1−rate).

    rate = 0 is the exact identity (u ∈ [0, 1) is always ≥ 0, and x/1 = x).
    """
    rate = jnp.asarray(rate, jnp.float32)
    # a flat draw: multi-dimensional jax.random shapes compile ~10× slower under vmap
    keep = jax.random.uniform(key, (x.size,), jnp.float32).reshape(x.shape) >= rate
    keep = checkpoint_name(keep, DROPOUT_KEEP)  # saved, not redrawn, where the layer is rematerialized
    scale = (1.0 / (1.0 - rate)).astype(x.dtype)
    return jnp.where(keep, x * scale, jnp.zeros_like(x))


def dropout_stream(rngs: nnx.Rngs) -> nnx.RngStream:
    """A private RNG stream for dropout, seeded from the `dropout` stream (or `params` if absent)."""
    key = rngs.dropout() if "dropout" in rngs else rngs.params()
    return nnx.RngStream(key, tag="dropout")


def readout_row_multiple() -> int:
    """Rows a transposed readout's kernel is padded to a multiple of inside its matmul: 8 on a GPU, 1 elsewhere.

    Modular tasks have a prime number of classes (97, 113), so the readout's matrix products have an
    odd dimension, and cuBLAS then picks slower tensor-core kernels: on an H200 a [D] group of 289
    paper-size members took 14.1 ms per step, 11.1 ms with the readout padded to 104 rows
    (`benchmarks/profile_step.py`, docs/architecture.md). On a CPU nothing is padded, so the numbers
    stay bit for bit those of the unpadded product.
    """
    return 8 if jax.default_backend() == "gpu" else 1


def readout_matmul(x: Array, kernel_t: Array) -> Array:
    """x Wᵀ for a readout stored as Wᵀ [C, fan_in]: [..., fan_in] → [..., C].

    With `readout_row_multiple()` > 1, Wᵀ gets zero rows up to that multiple and the extra outputs
    are sliced off. Each kept output is the same sum; in the backward pass x's gradient gains terms
    that are exactly zero, and the padding rows' gradient is dropped by the pad's transpose.
    """
    rows = kernel_t.shape[0]
    extra = -rows % readout_row_multiple()
    if extra == 0:
        return x @ kernel_t.T
    return (x @ jnp.pad(kernel_t, ((0, extra), (0, 0))).T)[..., :rows]


class Dense(nnx.Module):
    """y = x W (+ b), W: [fan_in, fan_out]; no bias unless asked; a given `kernel` skips the random init.

    `transposed` stores Wᵀ, [fan_out, fan_in] (torch's Linear layout), and computes x Wᵀ with the
    same initial numbers. Classifier readouts use it: their gradient (a sum over examples) is then
    written with the wide fan_in as its minor axis, not the few classes — on a CPU the readout
    gradient of a [D] member (N=64, C=23) runs ~2× faster batched over members, ~1.4× alone.
    """

    def __init__(
        self,
        fan_in: int,
        fan_out: int,
        *,
        use_bias: bool,
        scheme: str,
        width: int,
        scale: Any,
        dtype: DType,
        bank: UniformBank,
        kernel: Array | None = None,
        transposed: bool = False,
    ):
        self.transposed = transposed
        shape = (fan_out, fan_in) if transposed else (fan_in, fan_out)
        if kernel is None:
            kernel = init_weight(
                bank, (fan_in, fan_out), scheme=scheme, fan_in=fan_in, width=width, scale=scale, dtype=dtype
            )
            kernel = kernel.T if transposed else kernel
        elif kernel.shape != shape:
            raise ValueError(f"kernel shape {kernel.shape} != {shape}")
        self.kernel = nnx.Param(jnp.asarray(kernel, dtype))
        self.bias = (
            nnx.Param(init_bias(bank, fan_out, scheme=scheme, fan_in=fan_in, scale=scale, dtype=dtype))
            if use_bias
            else None
        )

    def __call__(self, x: Array) -> Array:
        y = readout_matmul(x, self.kernel[...]) if self.transposed else x @ self.kernel[...]
        if self.bias is not None:
            y = y + self.bias[...][None, :]
        return y


def member_kwargs(model_cfg: Any, *, rngs: nnx.Rngs, init_scale: Any, dropout: Any, param_dtype: DType) -> dict:
    """What a built-in module takes from its member: the dynamic numbers (possibly traced), the
    parameter dtype, the RNG streams, and whether dropout is applied at all (static: rate > 0)."""
    return {
        "init_scale": init_scale,
        "dropout": dropout,
        "param_dtype": param_dtype,
        "rngs": rngs,
        "use_dropout": model_cfg.dropout > 0,
    }


def need_tokens(kind: str, spec: Any) -> None:
    """A model that embeds tokens needs token-pair inputs (the modular task)."""
    if not spec.n_tokens:
        raise ValueError(f"model.kind={kind!r} needs token-pair inputs (the modular task)")
