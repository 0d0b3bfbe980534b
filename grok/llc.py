"""The local learning coefficient λ̂ of every member at every snapshot (docs/formulas.md §8).

SGLD with localization around the snapshot's parameters w* (Lau et al. 2023; devinterp's sampler):

    w ← w − (ε/2)(nβ ∇L_B(w) + γ (w − w*)) + N(0, ε),    λ̂ = nβ (mean_t L_B(w_t) − L(w*))

where L_B is the run's own training loss on a minibatch of B examples (evaluation mode), L(w*)
the full-batch training loss at w*, and the mean runs over the draws after burn-in. Every
member × snapshot × step size × chain is one chain of one compiled program: each member's step-0
state is rebuilt from its seeds and the snapshot put in (the path of `grok.probe_history`,
`grok.posthoc.over_snapshots`), and the chains advance in chunks of draws so a progress bar can
follow. The chains' noise and minibatches are drawn from keys folded from (`seed`, the member's
seed, the snapshot step, the chain, the draw), so an estimate does not depend on which other
members, snapshots or step sizes were sampled with it; the step-size grid shares them (common
random numbers).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32
from jax.sharding import PartitionSpec as P

from grok import engine, posthoc, store
from grok.errors import ConfigError, GrokWarning
from grok.forward import loss_terms

Array = jax.Array

# step_size="auto": ε from this log grid (half decades), the largest that passes `_usable`
AUTO_GRID = tuple(float(x) for x in np.logspace(-6, -2, 9))
ACCEPT_MIN = 0.95  # MALA acceptance a usable step size keeps (see docs/formulas.md §8.2)
TREND_TOL = 0.25  # a chain trends when its two post-burn-in halves' λ̂ differ by more than this × max(|λ̂|, 1)
CHUNKS = 10  # the draws run in this many compiled calls (for the progress bar)
# CPU: the chains advanced at a time keep their state within this (§8.1; 2 MiB is one core's L2 on
# the dev EPYC; at 81 k parameters a chain, one at a time ran 1.1–1.3× faster than 2–8)
CHAIN_CACHE_BYTES = 2 << 20
FILE, SETTINGS_FILE = "llc.npz", "llc.json"


# --------------------------------------------------------------------------- settings
@dataclasses.dataclass(frozen=True)
class LLCSettings:
    """The sampler's options, checked on construction (`ConfigError` naming the option).

    `step_size`: ε, a number or "auto"; `nbeta`: nβ, None = B / log B (devinterp 1.x's default);
    `burnin`: None = draws // 4; `batch_size`: None = the full training set."""

    chains: int = 8
    draws: int = 400
    burnin: int | None = None
    step_size: float | str = "auto"
    nbeta: float | None = None
    localization: float = 1.0
    batch_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("chains", "draws"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(name, value, "a whole number ≥ 1")
        if self.burnin is not None and (not _is_int(self.burnin) or not 0 <= self.burnin < self.draws):
            raise ConfigError("burnin", self.burnin, f"a whole number from 0 to draws − 1 = {self.draws - 1}")
        if self.draws - self.n_burnin < 2:
            raise ConfigError("draws", self.draws, f"at least burnin + 2 = {self.n_burnin + 2} (two draws to average)")
        if self.step_size != "auto":
            _check_positive("step_size", self.step_size, '"auto" or a finite number > 0')
        if self.nbeta is not None:
            _check_positive("nbeta", self.nbeta, "None (batch size / log batch size) or a finite number > 0")
        if not _is_real(self.localization) or not (math.isfinite(self.localization) and self.localization >= 0):
            raise ConfigError("localization", self.localization, "a finite number ≥ 0")
        if self.batch_size is not None and (not _is_int(self.batch_size) or self.batch_size < 2):
            raise ConfigError("batch_size", self.batch_size, "None (full batch) or a whole number ≥ 2")
        if not _is_int(self.seed) or self.seed < 0:
            raise ConfigError("seed", self.seed, "a whole number ≥ 0")

    @property
    def n_burnin(self) -> int:
        return self.draws // 4 if self.burnin is None else self.burnin

    def batch(self, n_train: int) -> int:
        """B: the minibatch size on a training set of `n_train` examples."""
        if self.batch_size is not None and self.batch_size > n_train:
            raise ConfigError("batch_size", self.batch_size, f"at most the {n_train} training examples")
        return n_train if self.batch_size is None else self.batch_size

    def nbeta_for(self, n_train: int) -> float:
        """nβ: as given, or B / log B (β* = 1/log n with n the batch size: devinterp 1.x's default,
        its `default_nbeta` in 2.x), which needs B ≥ 2."""
        b = self.batch(n_train)
        if self.nbeta is not None:
            return float(self.nbeta)
        if b < 2:
            raise ConfigError("nbeta", None, f"a number > 0: the default B / log B needs B ≥ 2 examples, there are {b}")
        return b / math.log(b)


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _check_positive(name: str, value: Any, allowed: str) -> None:
    if not _is_real(value) or not (math.isfinite(value) and value > 0):
        raise ConfigError(name, value, allowed)


# --------------------------------------------------------------------------- the sampler
class ChainState(NamedTuple):
    """One chain between chunks: its position and the previous draw's (position, potential,
    gradient of the potential) for the MALA acceptance of the next transition."""

    w: Any
    prev_w: Any
    prev_u: Array
    prev_grad: Any


def _tree_sq(tree) -> Array:
    return sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree_util.tree_leaves(tree))


def mala_log_ratio(prev_w, prev_grad, prev_u, w, grad, u, eps) -> Array:
    """log of the Metropolis–Hastings ratio of the Langevin move prev_w → w for the potential U
    (U = nβ L_B + γ/2 ‖w − w*‖², its gradients `prev_grad`, `grad`), as devinterp's MALA diagnostic:
    log q(prev_w | w) − log q(w | prev_w) + U(prev_w) − U(w), with q(b | a) = N(b; a − (ε/2)∇U(a), ε)."""
    back = jax.tree.map(lambda a, b, g: a - b + 0.5 * eps * g, prev_w, w, grad)
    fwd = jax.tree.map(lambda a, b, g: b - a + 0.5 * eps * g, prev_w, w, prev_grad)
    return (_tree_sq(fwd) - _tree_sq(back)) / (2 * eps) + prev_u - u


def sgld_draws(loss_at, w_star, chain: ChainState, key, t0, eps, nbeta, gamma, n_draws: int, batches=None):
    """`n_draws` SGLD steps of one chain from draw `t0`: (new chain state, losses L_B(w_t) [n_draws],
    MALA acceptance of the move into w_t [n_draws], NaN at t = 0).

    `loss_at(w, idx)` is the loss on the training rows `idx` (None: the full batch). `batches` =
    (n, B) draws minibatches as a data loader with shuffling does: each epoch of n // B draws
    walks one permutation of the n rows (epoch e's from `shuffle_key(key)` folded with e), so no
    row repeats within an epoch and the permutation is drawn once per epoch, not per draw.
    Draw t's noise comes from `fold_in(key, t)`."""
    shuffle = None if batches is None else EpochShuffle(shuffle_key(key), *batches)

    def potential(w, idx):
        loss, g = jax.value_and_grad(loss_at)(w, idx)
        d = jax.tree.map(lambda a, b: a - b, w, w_star)
        u = nbeta * loss + 0.5 * gamma * _tree_sq(d)
        grad = jax.tree.map(lambda gi, di: nbeta * gi + gamma * di, g, d)
        return loss, u, grad

    def one(carry, t):
        c, order = carry
        idx = None
        if shuffle is not None:
            order, idx = shuffle.batch(order, t)
        loss, u, grad = potential(c.w, idx)
        log_ratio = mala_log_ratio(c.prev_w, c.prev_grad, c.prev_u, c.w, grad, u, eps)
        accept = jnp.where(t > 0, jnp.minimum(1.0, jnp.exp(jnp.minimum(log_ratio, 0.0))), jnp.nan)
        noise = standard_normal_like(jax.random.split(jax.random.fold_in(key, t))[1], c.w)
        w = jax.tree.map(lambda x, g, z: (x - 0.5 * eps * g + jnp.sqrt(eps) * z).astype(x.dtype), c.w, grad, noise)
        out = (loss.astype(jnp.float32), accept.astype(jnp.float32))
        return (ChainState(w, c.w, u, grad), order), out

    order0 = jnp.zeros((0,), jnp.int32) if shuffle is None else shuffle.order(t0)
    (chain, _), traces = jax.lax.scan(one, (chain, order0), t0 + jnp.arange(n_draws))
    return chain, traces


def standard_normal_like(key, tree):
    """N(0, 1) noise shaped like `tree`.

    Float32 (and narrower) leaves take one flat draw from JAX's classic Threefry-2x32 layout: the
    counters 0 … n−1 hashed in pairs, n words for n/2 hashes, then `jax.random.normal`'s own map
    from bits to (−1, 1) and √2·erf⁻¹; exactly `jax.random.normal(key, (n,))` with
    `jax_threefry_partitionable` off, at about 1.6× its speed on a CPU with the default (on),
    which spends one hash per word. Other key implementations and float64 leaves: one
    `jax.random.normal` per leaf."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    data = jax.random.key_data(key)
    if data.shape != (2,) or any(jnp.dtype(x.dtype).itemsize > 4 for x in leaves):
        keys = jax.random.split(key, len(leaves))
        return treedef.unflatten([jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves, strict=True)])
    sizes = [math.prod(x.shape) for x in leaves]
    bits = threefry_2x32(data, jax.lax.iota(jnp.uint32, sum(sizes)))
    unit = jax.lax.bitcast_convert_type((bits >> 9) | jnp.uint32(0x3F800000), jnp.float32) - 1.0  # [0, 1)
    low = np.nextafter(np.float32(-1.0), np.float32(0.0))
    z = np.float32(math.sqrt(2.0)) * jax.lax.erf_inv(jnp.maximum(low, unit * (1.0 - low) + low))
    parts = jnp.split(z, np.cumsum(sizes)[:-1])
    return treedef.unflatten([z.reshape(x.shape).astype(x.dtype) for z, x in zip(parts, leaves, strict=True)])


SHUFFLE_STREAM = 0xFFFFFFFF  # folded into a chain's key for its minibatch stream; draw t's noise folds in t


def shuffle_key(key) -> Array:
    """The key a chain's minibatch permutations come from: `fold_in(key, 2³² − 1)`, apart from every
    noise key `split(fold_in(key, t))[1]` of a draw t < 2³² − 1. (Under JAX's partitionable Threefry
    `split(k)[i]` is `fold_in(k, i)`, so a key split from `key` itself would be draw i's.)"""
    return jax.random.fold_in(key, SHUFFLE_STREAM)


class EpochShuffle(NamedTuple):
    """Minibatches of `size` rows out of `n`, one permutation per epoch of n // size draws."""

    key: Array
    n: int
    size: int

    @property
    def per_epoch(self) -> int:
        return self.n // self.size

    def order(self, t) -> Array:
        """The permutation of the epoch that draw `t` falls in."""
        return jax.random.permutation(jax.random.fold_in(self.key, t // self.per_epoch), self.n)

    def batch(self, order, t) -> tuple[Array, Array]:
        """(the epoch's permutation, draw t's rows): a new permutation only where an epoch starts
        (`t` is the same for every chain, so under vmap this stays a branch, not a select)."""
        position = t % self.per_epoch
        order = jax.lax.cond(position == 0, self.order, lambda _: order, t)
        return order, jax.lax.dynamic_slice_in_dim(order, position * self.size, self.size)


def _member_loss(prog, state, dyn):
    """(per-example training losses at params over rows idx, n_train): the run's own loss, evaluation mode."""
    cfg, spec, fwd = prog.config, prog.spec, prog.fwd
    x, y = state.data.x_train, state.data.y_train

    def loss_on(params, idx=None):
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        out, _ = fwd.apply(params, state.rest, xb, False, dyn["loss.logit_scale"])
        return jnp.mean(loss_terms(cfg, spec, out, yb, dyn["model.alpha"]).astype(jnp.float32))

    return loss_on, x.shape[0]


def _chain_key(seed: int, dyn, step, chain) -> Array:
    key = jax.random.fold_in(jax.random.key(seed), dyn["seed"])
    return jax.random.fold_in(jax.random.fold_in(key, step), chain)


@functools.lru_cache(maxsize=16)
def _programs(
    static,
    tokens: tuple[int, ...],
    chains: int,
    batch: int | None,
    n_draws: int,
    seed: int,
    sharding,
    blocks: tuple[int | None, int | None] = (None, None),
):
    """(start, advance): jitted programs over members × snapshots × step sizes × chains; `blocks` =
    (snapshots, chains) a device takes at a time (`chain_blocks`; None = all at once).

    start(dyn, saved, steps, like [members, snapshots, K]) → (chain states, L(w*) [members, snapshots]);
    advance(dyn, saved, steps, (states, eps, nbeta), t0, γ) → ((states, eps, nbeta), (losses, acceptance)),
    eps and nbeta [members, snapshots, K], losses and acceptance [members, snapshots, K, chains, n_draws]."""
    del tokens
    snapshot_block, chain_block = blocks

    def start(prog, state, dyn, like):
        loss_on, _ = _member_loss(prog, state, dyn)
        w = state.params
        one = ChainState(w, w, jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, w))
        grid = jax.tree.map(lambda a: jnp.broadcast_to(a, (like.shape[0], chains, *a.shape)), one)
        return grid, loss_on(w)

    def advance(prog, state, dyn, per, t0, gamma):
        chain_states, eps, nbeta = per
        loss_on, n_train = _member_loss(prog, state, dyn)
        w_star = state.params

        batches = None if batch is None else (n_train, batch)

        def chain(c, index, eps_k, nbeta_k):
            key = _chain_key(seed, dyn, state.step, index)
            return sgld_draws(loss_on, w_star, c, key, t0, eps_k, nbeta_k, gamma, n_draws, batches)

        n_eps = eps.shape[0]
        flat = jax.tree.map(lambda a: a.reshape(n_eps * chains, *a.shape[2:]), chain_states)
        index = jnp.tile(jnp.arange(chains), n_eps)
        per = (flat, index, jnp.repeat(eps, chains), jnp.repeat(nbeta, chains))
        out, traces = posthoc.map_in_blocks(lambda a: chain(*a), per, chain_block)
        out, traces = jax.tree.map(lambda a: a.reshape(n_eps, chains, *a.shape[1:]), (out, traces))
        return (out, eps, nbeta), traces

    start_fn = posthoc.over_snapshots(static, start, members_in_blocks=True)
    advance_fn = posthoc.over_snapshots(static, advance, members_in_blocks=True, snapshot_block=snapshot_block)
    if sharding is not None:  # each device its own members, as in training: no program spans devices
        split = functools.partial(jax.shard_map, mesh=sharding.mesh, out_specs=P("members"), check_vma=False)
        mine = P("members")
        start_fn = split(start_fn, in_specs=(mine, mine, P(), mine))
        advance_fn = split(advance_fn, in_specs=(mine, mine, P(), mine, P(), P()))
    return jax.jit(start_fn), jax.jit(advance_fn, donate_argnums=(3,))


# --------------------------------------------------------------------------- driving it
class _Inputs(NamedTuple):
    static: Any
    dyn: dict
    saved: dict
    steps: list[int]
    n_train: int


def _inputs(run, steps: Sequence[int] | None) -> _Inputs:
    """The static config, members' dynamic numbers and parameters [members, snapshots, ...] at
    the asked snapshot steps (all; or the final parameters of a run without snapshots)."""
    cfg = posthoc.rebuild_config(run)
    if run.snapshots:
        steps = posthoc.snapshot_steps(run, steps)
        try:
            snaps = [run.snapshots[s] for s in steps]
        except (OSError, ValueError, KeyError) as err:
            why = f"{type(err).__name__}: {err}"
            raise store.RunDirError(f"a snapshot file of this run cannot be read ({why})") from None
        saved = {k: np.stack([snap[k] for snap in snaps], axis=1) for k in snaps[0]}
    else:
        final = int(np.asarray(run.history["step"])[-1])
        if steps is not None and [int(s) for s in steps] != [final]:
            allowed = f"None or [{final}]: this run kept no snapshots, only its final parameters"
            raise ConfigError("steps", list(steps), allowed)
        steps, saved = [final], {k: np.asarray(v)[:, None] for k, v in run.state.items()}
    static, dyn = engine.stack_dynamic([cfg.override(**m) for m in run.members])
    engine.ensure_precision(static)
    return _Inputs(static, dyn, saved, list(steps), int(static.spec.n_train))


def chain_blocks(param_bytes: int, n_snapshots: int, n_chains: int) -> tuple[int | None, int | None]:
    """(snapshots, chains) a device advances at a time; None = all at once (vmapped).

    Accelerators take everything at once. A CPU takes as many chains as keep their state (position,
    previous position and gradient, w*: 4 copies of `param_bytes`) within `CHAIN_CACHE_BYTES`, at
    least one: its draws then stream through the cache instead of memory (§8.1). `n_chains` counts
    the chains of one snapshot (step sizes × chains)."""
    if jax.default_backend() != "cpu":
        return None, None
    fit = max(1, CHAIN_CACHE_BYTES // max(1, 4 * param_bytes))
    if fit < n_chains:
        return 1, fit
    snapshots = fit // n_chains
    return (None if snapshots >= n_snapshots else snapshots), None


def _chunking(draws: int) -> tuple[int, int]:
    """(chunks, draws per chunk): the divisor of `draws` nearest to `CHUNKS` compiled calls."""
    n = min(range(1, draws + 1), key=lambda d: (draws % d != 0, abs(d - CHUNKS)))
    return n, draws // n


def _sample(inp: _Inputs, settings: LLCSettings, eps: np.ndarray, nbeta: np.ndarray, progress: bool):
    """(losses, acceptance [members, snapshots, K, chains, draws], L(w*) [members, snapshots]): every
    ε of `eps` [K] (with `nbeta` [K]) sampled in one program."""
    from grok.training_display import ProgressBar

    n_chunks, per_chunk = _chunking(settings.draws)
    batch = None if settings.batch_size is None or settings.batch_size >= inp.n_train else settings.batch_size
    n_members = len(inp.dyn["seed"])
    sharding, padded = engine.member_sharding(n_members)  # padded by repeating the last member
    params = [v for k, v in inp.saved.items() if k.startswith("params/")]
    param_bytes = sum(math.prod(v.shape[2:]) * v.dtype.itemsize for v in params)
    blocks = chain_blocks(param_bytes, len(inp.steps), len(eps) * settings.chains)
    tokens = engine.registration_tokens(inp.static)
    start, advance = _programs(inp.static, tokens, settings.chains, batch, per_chunk, settings.seed, sharding, blocks)
    dtype = jnp.float32

    def members(a):
        a = np.concatenate([a, np.repeat(a[-1:], padded - n_members, axis=0)])
        return jnp.asarray(a) if sharding is None else jax.device_put(a, sharding)

    dyn = {k: members(v) for k, v in inp.dyn.items()}
    saved = {k: members(v) for k, v in inp.saved.items()}
    at = jnp.asarray(inp.steps, jnp.int32)
    gamma = jnp.asarray(settings.localization, dtype)
    grid = (padded, len(inp.steps), len(eps))
    eps_a, nbeta_a = (members(np.broadcast_to(np.asarray(v, np.float32), grid)) for v in (eps, nbeta))
    bar = ProgressBar(settings.draws, "llc") if progress else None
    states, init_loss = start(dyn, saved, at, eps_a)
    carry, losses, accept = (states, eps_a, nbeta_a), [], []
    try:
        for c in range(n_chunks):
            carry, (loss, acc) = advance(dyn, saved, at, carry, jnp.asarray(c * per_chunk, jnp.int32), gamma)
            losses.append(np.asarray(loss)[:n_members])
            accept.append(np.asarray(acc)[:n_members])
            if bar is not None:
                bar.update(per_chunk)
    finally:
        if bar is not None:
            bar.close()
    losses, accept = np.concatenate(losses, axis=-1), np.concatenate(accept, axis=-1)
    return losses, accept, np.asarray(init_loss, np.float64)[:n_members]


class _Chains(NamedTuple):
    """Per-chain reductions [..., chains] of losses [..., chains, draws]."""

    llc: np.ndarray
    acceptance: np.ndarray
    nonfinite: np.ndarray
    trending: np.ndarray

    @property
    def flagged(self) -> np.ndarray:
        return self.nonfinite | self.trending


def chain_estimates(losses: np.ndarray, accept: np.ndarray, init_loss: np.ndarray, nbeta, burnin: int) -> _Chains:
    """λ̂ of each chain, nβ (mean of its post-burn-in losses − L(w*)), its MALA acceptance and its flags:
    non-finite (any loss not finite) and trending (its post-burn-in halves' λ̂ differ by more than
    `TREND_TOL` × max(|λ̂|, 1)). `init_loss` and `nbeta` broadcast against [..., chains]."""
    post = losses[..., burnin:].astype(np.float64)
    half = post.shape[-1] // 2
    ref, nb = np.asarray(init_loss)[..., None], np.asarray(nbeta)
    with np.errstate(all="ignore"):
        llc = nb * (post.mean(-1) - ref)
        first, second = nb * (post[..., :half].mean(-1) - ref), nb * (post[..., half:].mean(-1) - ref)
        nonfinite = ~np.isfinite(losses).all(-1)
        trending = ~nonfinite & (np.abs(second - first) > TREND_TOL * np.maximum(np.abs(llc), 1.0))
    acc = _nanmean(accept[..., max(burnin, 1) :])
    return _Chains(llc, acc, nonfinite, trending)


def _pick(a: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`a` [members, snapshots, K, ...] at grid entry `index` [members, snapshots], keeping a K axis of 1."""
    return np.take_along_axis(a, index.reshape(*index.shape, 1, *[1] * (a.ndim - 3)), axis=2)


def _nanmean(a: np.ndarray) -> np.ndarray:
    """Mean over the last axis, NaN entries left out (NaN where all are)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, -1)


def _summary(values: np.ndarray, flagged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std over the unflagged chains (last axis); NaN where every chain is flagged."""
    kept = np.where(flagged, np.nan, values)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(kept, -1), np.nanstd(kept, -1)


def usable(chains: _Chains) -> np.ndarray:
    """Whether a step size passed (per [..., K]): at least half of its chains unflagged, and their
    mean MALA acceptance at least `ACCEPT_MIN`."""
    ok = ~chains.flagged
    with np.errstate(all="ignore"):
        acc = np.where(ok, chains.acceptance, np.nan)
        mean_acc = np.nansum(acc, -1) / np.maximum(ok.sum(-1), 1)
    return (ok.mean(-1) >= 0.5) & (mean_acc >= ACCEPT_MIN)


def choose_step(eps: np.ndarray, chains: _Chains) -> tuple[np.ndarray, np.ndarray]:
    """(index into the grid [...], passed [...]): the largest ε that is `usable`; where none is,
    the smallest ε (and passed False)."""
    good = usable(chains)
    order = np.argsort(eps)
    ranked = good[..., order]
    last = ranked.shape[-1] - 1 - np.argmax(ranked[..., ::-1], axis=-1)
    index = np.where(ranked.any(-1), order[last], order[0])
    return index, ranked.any(-1)


# --------------------------------------------------------------------------- results
@dataclasses.dataclass(frozen=True)
class LLCResult:
    """λ̂ of every member at every step (docs/formulas.md §8); arrays are `[members, steps, ...]`.

    >>> res = grok.llc(run); res.mean[0], res.flagged.sum(); grok.LLCResult.load("runs/x")

    `mean`/`std`: over the unflagged chains; `per_chain` [.., chains]; `traces` the minibatch losses
    L_B(w_t) [.., chains, draws]; `init_loss` L(w*); `step_size` the ε used (chosen per member and
    step when "auto"); `acceptance` the MALA acceptance per chain; `nonfinite`/`trending` the
    flagged chains (excluded from mean and std); `step_size_ok` whether the auto rule found a
    usable ε (always True for a given ε); `grid`/`grid_mean`/`grid_acceptance` the auto grid's ε [K]
    and each one's λ̂ and mean MALA acceptance [.., K] (empty K for a given ε)."""

    steps: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    per_chain: np.ndarray
    traces: np.ndarray
    init_loss: np.ndarray
    step_size: np.ndarray
    nbeta: float
    acceptance: np.ndarray
    nonfinite: np.ndarray
    trending: np.ndarray
    step_size_ok: np.ndarray
    grid: np.ndarray
    grid_mean: np.ndarray
    grid_acceptance: np.ndarray
    settings: dict

    @property
    def flagged(self) -> np.ndarray:
        """[members, steps, chains]: chains excluded from the estimate (non-finite or trending)."""
        return self.nonfinite | self.trending

    def save(self, path: str | Path) -> Path:
        """Write the arrays and the settings, each atomically: into a directory `path` (a run's:
        `llc.npz`, `llc.json`), or to `path` ending in .npz and the .json beside it. Returns the .npz."""
        npz, settings = result_files(path)
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "settings"}
        store.atomic_write_npz(npz, arrays)
        store.atomic_write_json(settings, self.settings)
        return npz

    @classmethod
    def load(cls, path: str | Path) -> LLCResult:
        """Read what `save` wrote (the same `path`)."""
        npz, settings_file = result_files(path)
        arrays = store.read_npz(npz)
        names = [f.name for f in dataclasses.fields(cls) if f.name != "settings"]
        missing = [n for n in names if n not in arrays]
        if missing or not settings_file.is_file():
            lacks = ", ".join(missing) if missing else settings_file.name
            raise store.RunDirError(f"{str(npz)!r} is not a complete LLC result: it lacks {lacks}")
        values = {n: arrays[n] for n in names} | {"settings": store.read_json(settings_file)}
        values["nbeta"] = float(values["nbeta"])
        return cls(**values)


def result_files(path: str | Path) -> tuple[Path, Path]:
    """(.npz, .json) of an LLC result saved at `path`: a directory's `llc.npz`/`llc.json`, or the file and its .json."""
    path = Path(path)
    if path.suffix == ".npz":
        return path, path.with_suffix(".json")
    return path / FILE, path / SETTINGS_FILE


def load_llc(run_dir: str | Path) -> LLCResult | None:
    """The LLC result saved beside a run (`RUN/llc.npz`, `RUN/llc.json`), or None when there is none."""
    run_dir = Path(run_dir)
    if not (run_dir / FILE).exists():
        return None
    return LLCResult.load(run_dir)


def llc(
    run,
    *,
    chains: int = 8,
    draws: int = 400,
    burnin: int | None = None,
    step_size: float | str = "auto",
    nbeta: float | None = None,
    localization: float = 1.0,
    batch_size: int | None = None,
    seed: int = 0,
    steps: Sequence[int] | None = None,
    progress: bool = False,
    out: str | Path | None = None,
) -> LLCResult:
    """The local learning coefficient λ̂ of every member at every snapshot step (or `steps`; the
    final parameters of a run without snapshots), from the run's own training loss and data, as
    one compiled program over members × snapshots × (step sizes) × chains.

    >>> res = grok.llc(run, chains=8, draws=400)   # res.mean, res.std: [members, steps]

    `step_size="auto"` samples every ε of `AUTO_GRID` in the same program and keeps, per member
    and step, the largest whose chains pass (`usable`). `out`: also save `llc.npz`/`llc.json`
    there (a run directory: reloaded with the run as `run.llc`). Defaults and their reasons:
    docs/formulas.md §8."""
    settings = LLCSettings(chains, draws, burnin, step_size, nbeta, localization, batch_size, seed)
    inp = _inputs(run, steps)
    nb = settings.nbeta_for(inp.n_train)
    grid = np.asarray(AUTO_GRID if settings.step_size == "auto" else [settings.step_size], np.float64)
    auto = settings.step_size == "auto"
    losses, accept, init_loss = _sample(inp, settings, grid, np.full(grid.shape, nb), progress)
    every = chain_estimates(losses, accept, init_loss[..., None], nb, settings.n_burnin)
    index, ok = choose_step(grid, every) if auto else (np.zeros(init_loss.shape, int), np.ones(init_loss.shape, bool))
    per = _Chains(*(_pick(a, index) for a in every))
    losses = _pick(losses, index)
    mean, std = _summary(per.llc[:, :, 0], per.flagged[:, :, 0])
    result = LLCResult(
        steps=np.asarray(inp.steps, np.int64),
        mean=mean,
        std=std,
        per_chain=per.llc[:, :, 0],
        traces=losses[:, :, 0],
        init_loss=init_loss,
        step_size=grid[index],
        nbeta=nb,
        acceptance=per.acceptance[:, :, 0],
        nonfinite=per.nonfinite[:, :, 0],
        trending=per.trending[:, :, 0],
        step_size_ok=ok,
        grid=grid if auto else np.zeros(0),
        grid_mean=_summary(every.llc, every.flagged)[0] if auto else np.zeros((*mean.shape, 0)),
        grid_acceptance=_nanmean(every.acceptance) if auto else np.zeros((*mean.shape, 0)),
        settings=dataclasses.asdict(settings) | {"nbeta": nb, "burnin": settings.n_burnin},
    )
    _warn_if_unreliable(result, auto)
    if out is not None:
        result.save(out)
    return result


def _warn_if_unreliable(result: LLCResult, auto: bool) -> None:
    """A `GrokWarning` where λ̂ is NaN (every chain flagged) or, with a given ε and full batches, where
    the chains' mean MALA acceptance is below `ACCEPT_MIN` (the auto rule would not have used that ε;
    with minibatches the acceptance runs lower by construction, docs/formulas.md §8.1)."""
    flagged = result.nonfinite | result.trending
    every = flagged.all(-1)
    if every.any():
        warnings.warn(
            f"λ̂ is NaN at {int(every.sum())} of {every.size} (member, step) pairs: every chain diverged or "
            "trended there (`nonfinite`, `trending`); a smaller step_size, or step_size='auto', may help",
            GrokWarning,
            stacklevel=3,
        )
    if not auto and result.settings.get("batch_size") is None:
        acc = _nanmean(np.where(flagged, np.nan, result.acceptance))
        low = ~every & (acc < ACCEPT_MIN)
        if low.any():
            warnings.warn(
                f"mean MALA acceptance below {ACCEPT_MIN} at {int(low.sum())} of {low.size} (member, step) pairs "
                f"with step_size={float(result.step_size.flat[0]):g}: the chains may not sample the posterior; "
                "step_size='auto' picks the largest ε that passes",
                GrokWarning,
                stacklevel=3,
            )


# --------------------------------------------------------------------------- calibration
@dataclasses.dataclass(frozen=True)
class LLCCalibration:
    """λ̂ against the step size ε and nβ (devinterp's ε–β analysis), `[members, steps, nbetas, step_sizes]`.

    `mean`/`std` over the unflagged chains, `acceptance` their mean MALA acceptance, `flagged`
    the fraction of chains flagged, `usable` whether the auto rule accepts that ε, `chosen` the ε
    it picks for each nβ `[members, steps, nbetas]` (NaN where none passes)."""

    steps: np.ndarray
    step_sizes: np.ndarray
    nbetas: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    acceptance: np.ndarray
    flagged: np.ndarray
    usable: np.ndarray
    chosen: np.ndarray
    settings: dict

    def plot(self, member: int = 0, step_index: int = -1, ax=None):
        """λ̂ and the MALA acceptance against ε, one line per nβ (`grok.plots.llc.plot_calibration`)."""
        from grok.plots.llc import plot_calibration

        return plot_calibration(self, member=member, step_index=step_index, ax=ax)


def llc_calibrate(
    run,
    *,
    step_sizes: Sequence[float] = AUTO_GRID,
    nbetas: Sequence[float] | None = None,
    chains: int = 8,
    draws: int = 400,
    burnin: int | None = None,
    localization: float = 1.0,
    batch_size: int | None = None,
    seed: int = 0,
    steps: Sequence[int] | None = None,
    progress: bool = False,
) -> LLCCalibration:
    """λ̂ for every ε in `step_sizes` × nβ in `nbetas` (default: the default nβ alone), all in one program,
    so a user sees where the estimate is stable and why `step_size="auto"` picks what it picks.

    >>> cal = grok.llc_calibrate(run, nbetas=[10, 100]); cal.plot()
    """
    step_sizes = [float(e) if _is_real(e) else e for e in step_sizes]
    if not step_sizes:
        raise ConfigError("step_sizes", step_sizes, "one or more numbers > 0")
    for e in step_sizes:
        _check_positive("step_sizes", e, "numbers > 0, finite")
    for b in nbetas or ():
        _check_positive("nbetas", b, "numbers > 0, finite")
    settings = LLCSettings(chains, draws, burnin, step_sizes[0], None, localization, batch_size, seed)
    inp = _inputs(run, steps)
    settings.batch(inp.n_train)  # batch_size ≤ n_train, whether or not nβ is given
    nb = np.asarray(list(nbetas) if nbetas else [settings.nbeta_for(inp.n_train)], np.float64)
    eps = np.asarray(step_sizes, np.float64)
    n_b, n_e = len(nb), len(eps)
    losses, accept, init_loss = _sample(inp, settings, np.tile(eps, n_b), np.repeat(nb, n_e), progress)
    shape = (*init_loss.shape, n_b, n_e, chains)
    nb_b = np.repeat(nb, n_e).reshape(n_b, n_e, 1)
    per = chain_estimates(
        losses.reshape(*shape, -1),
        accept.reshape(*shape, -1),
        init_loss[..., None, None],
        nb_b,
        settings.n_burnin,
    )
    mean, std = _summary(per.llc, per.flagged)
    good = usable(per)
    index, ok = choose_step(eps, per)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        acc = np.nanmean(np.where(per.flagged, np.nan, per.acceptance), -1)
    return LLCCalibration(
        steps=np.asarray(inp.steps, np.int64),
        step_sizes=eps,
        nbetas=nb,
        mean=mean,
        std=std,
        acceptance=acc,
        flagged=per.flagged.mean(-1),
        usable=good,
        chosen=np.where(ok, eps[index], np.nan),
        settings=dataclasses.asdict(settings)
        | {"step_size": None, "burnin": settings.n_burnin, "accept_min": ACCEPT_MIN},
    )
