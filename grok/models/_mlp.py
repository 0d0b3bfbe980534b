"""MLP with a token-gather first layer [P] and the quadratic MLP [D]."""

from __future__ import annotations

import os
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from grok.forward import MEMBER_BATCH_AXIS
from grok.models._common import (
    DROPOUT_KEEP,
    Array,
    Dense,
    DType,
    Hyper,
    UniformBank,
    activation,
    dense_size,
    dropout,
    dropout_stream,
    hyper_dtype,
    member_kwargs,
    need_tokens,
)


class MLP(nnx.Module):
    """Fully connected net; token pairs enter through a row gather [P].

    Token inputs x: int [n, 2] pairs (a, b). The first layer is `E[a] + E[p + b]` with
    E = `first.kernel` of shape [2p, N] — the one-hot-concatenation matmul, computed as a
    gather (docs/formulas.md §2). Dense inputs x: float [n, input_dim] and an ordinary matmul.
    Each hidden layer: affine → dropout (train only, inverted, rate = `rate` Hyper) →
    activation → optional BatchNorm (running stats at evaluation). No biases unless
    `use_bias`, so the ReLU net is positively homogeneous of degree L in θ [P].

    State layout (used by `apply_neuron_mask`): `first.kernel` [in, N₀] (`first.bias`),
    `hidden[i].kernel` [Nᵢ, Nᵢ₊₁], `readout.kernel` [C, N_last] (stored transposed, see `Dense`),
    `bn[i].{scale,bias}` (Params), `bn[i].{mean,var}` (BatchStat), `rate` (Hyper), `rng` (dropout RngStream).
    `first_kernel` / `readout_kernel`, when given, replace the random initialization.
    """

    def __init__(
        self,
        *,
        n_in: int,
        n_tokens: int,
        n_classes: int,
        n_outputs: int = 1,
        widths: tuple[int, ...],
        activation: str,
        init: str,
        use_bias: bool,
        batchnorm: bool,
        init_scale: Any,
        dropout: Any,
        param_dtype: DType,
        rngs: nnx.Rngs,
        use_dropout: bool = True,
        first_kernel: Array | None = None,
        readout_kernel: Array | None = None,
    ):
        self.n_tokens = n_tokens
        self.n_classes = n_classes
        self.n_outputs = n_outputs
        self.widths = tuple(widths)
        self.activation = activation
        n0, n_out = self.widths[0], n_classes or n_outputs
        fan_in = 2 * n_tokens if n_tokens else n_in  # torch Linear on the one-hot concatenation: 2p
        pairs = list(zip(self.widths[:-1], self.widths[1:], strict=True))
        total = dense_size(fan_in, n0, use_bias=use_bias, kernel_given=first_kernel is not None)
        total += sum(dense_size(a, b, use_bias=use_bias) for a, b in pairs)
        total += dense_size(self.widths[-1], n_out, use_bias=use_bias, kernel_given=readout_kernel is not None)
        bank = UniformBank(rngs.params(), total, param_dtype)
        common = dict(use_bias=use_bias, scheme=init, width=n0, scale=init_scale, dtype=param_dtype, bank=bank)
        self.first = Dense(fan_in, n0, kernel=first_kernel, **common)
        self.hidden = nnx.List([Dense(a, b, **common) for a, b in pairs])
        self.readout = Dense(self.widths[-1], n_out, kernel=readout_kernel, transposed=True, **common)
        bank.check_done()
        self.bn = nnx.List(
            [
                nnx.BatchNorm(
                    w,
                    momentum=0.9,  # torch BatchNorm1d's momentum 0.1
                    epsilon=1e-5,
                    dtype=param_dtype,
                    param_dtype=param_dtype,
                    rngs=rngs,
                )
                for w in self.widths
            ]
            if batchnorm
            else []
        )
        self.rate = Hyper(jnp.asarray(dropout, hyper_dtype(param_dtype)))
        self.use_dropout = use_dropout
        self.rng = dropout_stream(rngs)

    def first_layer(self, x: Array) -> Array:
        """Pre-activations of the first hidden layer, [n, N₀]."""
        if self.n_tokens:
            z = pair_rows(self.first.kernel[...], x, self.n_tokens)
            if self.first.bias is not None:
                z = z + self.first.bias[...][None, :]
            return z
        return self.first(x.astype(self.first.kernel.dtype))

    def _hidden(self, z: Array, i: int, train: bool) -> Array:
        if train and self.use_dropout:
            z = dropout(z, self.rate[...], self.rng())
        h = activation(self.activation, z)
        if len(self.bn):
            h = self.bn[i](h, use_running_average=not train)
        return h

    def _first_hidden(self, x: Array, train: bool) -> Array:
        """The first hidden layer's output; for token pairs one rematerialized piece (`_token_activation`)."""
        if not self.n_tokens:
            return self._hidden(self.first_layer(x), 0, train)
        key = self.rng() if train and self.use_dropout else None
        bias = None if self.first.bias is None else self.first.bias[...]
        e = self.first.kernel[...]
        if bias is None and key is None and pair_gradient_sorted(x.shape[0], e.shape[1]):
            h = _pair_activation_sorted(e, x, self.n_tokens, self.activation)
        else:
            h = _token_activation(e, bias, x, key, self.rate[...], self.n_tokens, self.activation)
        if len(self.bn):
            h = self.bn[0](h, use_running_average=not train)
        return h

    def _fused_token_readout(self, train: bool) -> bool:
        """Whether the fused GPU kernels (`token_readout`) compute this model: asked for, and a
        one-hidden-layer token classifier without biases, BatchNorm or dropout."""
        plain = not (len(self.hidden) or len(self.bn) or self.first.bias is not None or self.readout.bias is not None)
        if not (self.n_tokens and self.n_classes and plain and not (train and self.use_dropout)):
            return False
        if not use_fused_token_kernel():
            return False
        from grok.models._token_kernel import token_readout_fusable  # Pallas loads only when asked for

        return token_readout_fusable(activation_name=self.activation, dtype=self.first.kernel.dtype)

    def __call__(self, x: Array, *, train: bool) -> Array:
        """Logits [n, C] (classification) or outputs [n] (regression, C = 0), [n, n_outputs] when
        a regression task has several outputs (the linear teacher)."""
        if self._fused_token_readout(train):
            from grok.models._token_kernel import token_readout

            e, w = self.first.kernel[...], self.readout.kernel[...]
            return token_readout(e, w, x, self.n_tokens, self.activation, not on_gpu())
        h = self._first_hidden(x, train)
        for i, layer in enumerate(self.hidden):
            h = self._hidden(layer(h), i + 1, train)
        out = self.readout(h)
        return out[:, 0] if self.n_classes == 0 and self.n_outputs == 1 else out


def on_gpu() -> bool:
    """Whether programs are being built for a GPU (where the token layer's GPU forms below apply)."""
    return jax.default_backend() == "gpu"


FUSED_TOKEN_KERNEL_ENV = "GROK_FUSED_TOKEN_KERNEL"


def use_fused_token_kernel() -> bool:
    """Whether a plain one-hidden-layer token classifier takes the fused kernels (`token_readout`):
    on a GPU, when `GROK_FUSED_TOKEN_KERNEL=1` asks for them. Experimental: not yet timed on a GPU."""
    return on_gpu() and os.environ.get(FUSED_TOKEN_KERNEL_ENV, "") == "1"


def pair_gather_stacked() -> bool:
    """Whether `pair_rows` gathers both rows of a pair at once: on a GPU yes, elsewhere no.

    On an H200 one [D] group of 289 paper-size members took 10.26 ms per step with one gather
    against 11.10 ms with two (`benchmarks/profile_step.py`, docs/architecture.md): the gradient
    is then one scatter-add of both rows (2.62 ms) instead of two (1.67 ms each). On a CPU the two
    gathers are ~2% faster. The layer's values are bit for bit the same either way (the program
    around it may be fused differently, docs/architecture.md).
    """
    return on_gpu()


def pair_rows(e: Array, x: Array, n_tokens: int) -> Array:
    """E[a] + E[p + b] for token pairs x [n, 2], [n, N₀].

    On a GPU (`pair_gather_stacked`) one gather of both rows, [n, 2, N₀], then their sum; its
    gradient is one scatter-add. The rows of a and of p + b never coincide, so each row of that
    gradient sums the same terms in the same order as two scatter-adds would.
    """
    if pair_gather_stacked():
        rows = e[jnp.stack([x[:, 0], n_tokens + x[:, 1]], axis=1)]
        return rows[:, 0] + rows[:, 1]
    return e[x[:, 0]] + e[n_tokens + x[:, 1]]


SORTED_GRADIENT_MIN_ELEMENTS = 2**27  # members × examples × width from which the sorted gradient pays on a GPU


def members_in_program() -> int:
    """How many members the engine's vmap over a group (`MEMBER_BATCH_AXIS`) batches; 1 outside it."""
    try:
        return int(jax.lax.axis_size(MEMBER_BATCH_AXIS))
    except NameError:
        return 1


def pair_gradient_sorted(n_examples: int, width: int) -> bool:
    """Whether a bias-free token layer without dropout takes `_pair_activation_sorted`.

    On a GPU, when the program's hidden tensor (members × examples × width) has at least
    `SORTED_GRADIENT_MIN_ELEMENTS` elements. On an H200 one [D] step of 289 paper-size members
    took 8.57 ms this way against 10.23 ms with one unsorted scatter-add (docs/architecture.md);
    but its two sorts run every step, and a lone small run, bound by kernel launches, got slower
    ([P]'s 80 000-step StableMax run 39.0 s against 26.5 s). A CPU sums a scatter in order anyway.
    """
    return on_gpu() and members_in_program() * n_examples * width >= SORTED_GRADIENT_MIN_ELEMENTS


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _pair_activation_sorted(e: Array, x: Array, n_tokens: int, name: str) -> Array:
    """φ(E[a] + E[p + b]) for token pairs x [n, 2], its gradient summed by two sorted scatter-adds.

    The forward pass is `_token_activation`'s without bias or dropout. The backward pass sorts
    the examples by a (stably), gathers g and the rows of E in that order and scatter-adds
    φ'(z)·g into E's rows with `indices_are_sorted`; then the same by b. XLA's GPU scatter then
    sums each run of equal rows in registers before one atomic add, and computes φ'(z)·g inside
    the scatter instead of writing the [n, N₀] gradient out. Each row of E's gradient sums the
    same terms in the same order as the plain layer's scatter-adds (a stable sort keeps the
    examples' order within a row), so the values are bit for bit those of the plain layer.
    """
    return activation(name, pair_rows(e, x, n_tokens))


def _pair_activation_sorted_fwd(e: Array, x: Array, n_tokens: int, name: str) -> tuple[Array, tuple[Array, Array]]:
    return _pair_activation_sorted(e, x, n_tokens, name), (e, x)


def _pair_activation_sorted_bwd(n_tokens: int, name: str, res: tuple[Array, Array], g: Array) -> tuple[Array, None]:
    e, x = res
    a, b = x[:, 0], n_tokens + x[:, 1]

    def row_gradient(order: Array, a_first: bool) -> Array:
        ea, eb = e[a[order]], e[b[order]]
        z = ea + eb if a_first else eb + ea  # equal sums; two forms, so XLA keeps one computation per scatter
        return jax.vjp(partial(activation, name), z)[1](g[order])[0]

    by_a, by_b = jnp.argsort(a, stable=True), jnp.argsort(b, stable=True)
    grad = jnp.zeros_like(e).at[a[by_a]].add(row_gradient(by_a, True), indices_are_sorted=True)
    grad = grad.at[b[by_b]].add(row_gradient(by_b, False), indices_are_sorted=True)
    return grad, None


_pair_activation_sorted.defvjp(_pair_activation_sorted_fwd, _pair_activation_sorted_bwd)


@partial(jax.checkpoint, static_argnums=(5, 6), policy=jax.checkpoint_policies.save_only_these_names(DROPOUT_KEEP))
def _token_activation(
    e: Array, bias: Array | None, x: Array, key: Array | None, rate: Array, n_tokens: int, name: str
) -> Array:
    """φ(dropout(E[a] + E[p + b] (+ bias))) for token pairs x [n, 2], as `jax.checkpoint`.

    The same operations as `MLP.first_layer` then `_hidden`, in the same order, so the values are
    bit for bit the same. Rematerialized, the backward pass gathers the rows of E again (E is small
    and stays in cache) inside the fusion that needs them, instead of XLA writing out both [n, N₀]
    gathers in the forward pass and reading them back; only dropout's keep mask is saved, so its
    random bits are not drawn twice. On a CPU this makes a [D] paper-size step ~25% faster
    (docs/architecture.md, "The token-gather first layer is rematerialized").
    """
    z = pair_rows(e, x, n_tokens)
    if bias is not None:
        z = z + bias[None, :]
    if key is not None:
        z = dropout(z, rate, key)
    return activation(name, z)


class QuadraticMLP(MLP):
    """f = W φ(U e_a + V e_b), φ(z) = z², width N, no biases [D] (Doshi et al. 2024).

    U, V, W ~ N(0, std = 0.5/(2N)^{1/3}) (× init_scale); `first.kernel` = [Uᵀ; Vᵀ] of shape
    [2p, N], `readout.kernel` = W of shape [p, N]. Dropout before the square; optional
    BatchNorm after it. `weights` = (U [N, p], V [N, p], W [C, N]) replaces the random init.
    """

    def __init__(
        self,
        *,
        p: int,
        width: int,
        n_classes: int | None = None,
        batchnorm: bool = False,
        init_scale: Any = 1.0,
        dropout: Any = 0.0,
        param_dtype: DType = jnp.float32,
        rngs: nnx.Rngs,
        use_dropout: bool = True,
        weights: tuple[Array, Array, Array] | None = None,
    ):
        u, v, w = weights if weights is not None else (None, None, None)
        super().__init__(
            n_in=2,
            n_tokens=p,
            n_classes=p if n_classes is None else n_classes,
            widths=(width,),
            activation="quadratic",
            init="doshi",
            use_bias=False,
            batchnorm=batchnorm,
            init_scale=init_scale,
            dropout=dropout,
            param_dtype=param_dtype,
            rngs=rngs,
            use_dropout=use_dropout,
            first_kernel=None if u is None else jnp.concatenate([u.T, v.T], axis=0),
            readout_kernel=w,
        )

    @property
    def U(self) -> Array:
        """[N, p]: neuron k's weights on token a."""
        return self.first.kernel[...][: self.n_tokens].T

    @property
    def V(self) -> Array:
        """[N, p]: neuron k's weights on token b."""
        return self.first.kernel[...][self.n_tokens :].T

    @property
    def W(self) -> Array:
        """[C, N]: readout."""
        return self.readout.kernel[...]


def neuron_weights(model: nnx.Module) -> tuple[Array, Array, Array | None]:
    """(U [N, p], V [N, p], W_out [C, N] or None) of the first hidden layer, for IPR [D].

    U row k / V row k: neuron k's first-layer weights on token a / token b. W_out column k:
    its readout weights — None when the next layer is not the readout (deeper MLPs).
    """
    if not isinstance(model, MLP) or not model.n_tokens:
        raise ValueError("neuron_weights needs a token-input MLP or quadratic MLP (modular task)")
    p = model.n_tokens
    e = model.first.kernel[...]
    w_out = model.readout.kernel[...] if len(model.widths) == 1 and model.n_classes > 0 else None
    return e[:p].T, e[p:].T, w_out


def _key_names(path: tuple) -> tuple:
    names = []
    for entry in path:
        if isinstance(entry, jax.tree_util.DictKey):
            names.append(str(entry.key))
        elif isinstance(entry, jax.tree_util.SequenceKey):
            names.append(str(entry.idx))
        elif isinstance(entry, jax.tree_util.GetAttrKey) and entry.name != "value":
            names.append(entry.name)
    return tuple(names)


def apply_neuron_mask(params_state: Any, mask: Array, model_cfg: Any) -> Any:
    """Zero the incoming and outgoing weights of first-hidden-layer neurons where `mask` == 0 [D].

    Pure (returns a new tree; jit/vmap friendly). `params_state`: the `nnx.State` of Params
    (`nnx.split(model, nnx.Param, ...)[1]`) or its pure dict; `mask`: [N] of 0/1 (or bool).
    Zeroed: columns of `first.kernel` (U, V rows), `first.bias`, the first BatchNorm's scale
    and bias, and the neuron's weights in the next layer (rows of `hidden[0].kernel`, columns of
    `readout.kernel` [C, N]). Defined for the token-input `MLP` and `QuadraticMLP` structures
    (pruning is a classification experiment, docs/formulas.md §6), whichever model kind
    registered them; a tree without a `first` layer has no such neuron view (ValueError).
    """
    del model_cfg  # the structure is read from the parameters themselves
    if "first" not in params_state:
        raise ValueError("apply_neuron_mask: needs the parameters of an MLP (a 'first' token-gather layer)")
    keep = jnp.asarray(mask) != 0
    deeper = "hidden" in params_state
    cols = {("first", "kernel")} | (set() if deeper else {("readout", "kernel")})  # readout: [C, N₀]
    vecs = {("first", "bias"), ("bn", "0", "scale"), ("bn", "0", "bias")}
    rows = {("hidden", "0", "kernel")} if deeper else set()

    def one(path: tuple, leaf: Array) -> Array:
        names = _key_names(path)
        if names in cols:
            m = keep[None, :]
        elif names in rows:
            m = keep[:, None]
        elif names in vecs:
            m = keep
        else:
            return leaf
        return jnp.where(m, leaf, jnp.zeros_like(leaf))

    return jax.tree_util.tree_map_with_path(one, params_state)


def _build_mlp(model_cfg: Any, spec: Any, *, alpha, epsilon, **member) -> MLP:
    del alpha, epsilon
    return MLP(
        n_in=int(spec.input_dim),
        n_tokens=int(spec.n_tokens),
        n_classes=int(spec.n_classes),
        n_outputs=int(getattr(spec, "n_outputs", 1)),  # a spec from before several outputs has one
        widths=tuple(model_cfg.widths),
        activation=model_cfg.activation,
        init=model_cfg.init,
        use_bias=model_cfg.use_bias,
        batchnorm=model_cfg.batchnorm,
        **member_kwargs(model_cfg, **member),
    )


def _build_quadratic(model_cfg: Any, spec: Any, *, alpha, epsilon, **member) -> QuadraticMLP:
    del alpha, epsilon
    need_tokens("quadratic_mlp", spec)
    return QuadraticMLP(
        p=int(spec.n_tokens),
        width=model_cfg.widths[0],
        n_classes=int(spec.n_classes),
        batchnorm=model_cfg.batchnorm,
        **member_kwargs(model_cfg, **member),
    )
