"""The compiled training engine (docs/architecture.md).

A *group* of members shares every static config field; their dynamic numbers
(seed, lr, weight decay, ξ, α, …) are stacked along a member axis. One group is
trained by two compiled programs, both `jit(vmap(·))` over members:

- `init`: build the data, the model and the optimizer state, evaluate step 0;
- `chunk`: `lax.scan` over log intervals around `lax.scan` over steps, with the
  metrics and probes evaluated on device at the end of every interval.

Members are sharded over all devices (`shard_map`, one share per device). On a CPU a
device walks its share in blocks that fit the cache (`lax.map` over vmapped blocks,
`member_block`); accelerators take the whole share at once. The host loops over chunks
only to drive a progress bar. A member whose loss or parameters become non-finite is
flagged `diverged` and its state stops changing; so is one whose training loss exceeds
`train.divergence_factor` × its loss at step 0 (a blow-up); the other members are unaffected.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import tasks
from grok import losses
from grok.config import Config, field_names, split_dynamic
from grok.forward import MEMBER_BATCH_AXIS, Forward, as_metric, loss_terms, metric_dtype, tree_norm
from grok.lazy_import import nnx
from grok.member import build_data, build_member_model, graphdef_of, registration_tokens
from grok.optim import optimizer_from_config
from grok.probing import init_probe_state, interval_probes, probes_at, slow_chunk, slow_probes
from grok.registry import PROBES
from grok.schedule import Schedule, schedule
from grok.sizing import member_size
from grok.snapshots import state_leaves

Array = jax.Array

_TRACES: dict[str, int] = {"init": 0, "chunk": 0}


def trace_count() -> int:
    """How many times a training program has been traced (≈ compiled) in this process.

    >>> before = grok.trace_count(); grok.train(cfg); grok.trace_count() - before
    """
    return _TRACES["init"] + _TRACES["chunk"]


class MemberState(NamedTuple):
    """Everything one member carries from chunk to chunk (a pytree of arrays)."""

    data: tasks.Dataset
    params: Any  # nnx.State of nnx.Param
    rest: Any  # nnx.State of everything else (BatchNorm stats, RNG streams, Hyper values)
    opt_state: Any
    key: Array
    diverged: Array  # bool scalar
    diverged_step: Array  # int32 scalar, -1 while finite
    step: Array  # int32 scalar
    loss0: Array  # the training loss at step 0 (divergence is a loss beyond train.divergence_factor × it)
    path_length: Array  # scalar: Σ over steps so far of ‖θ_{t+1} − θ_t‖ (global L2), at least float32
    probe: Any  # {"params0": θ₀ or None, "refs": {probe: what its init measured at step 0}}


# --------------------------------------------------------------------------- evaluation
def _masked_mean(values: Array, mask: Array) -> Array:
    """Mean of `values` where `mask`; NaN when the mask is empty."""
    count = jnp.sum(mask)
    total = jnp.sum(jnp.where(mask, values.astype(jnp.float32), 0.0))
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)


def evaluate(cfg: Config, spec: tasks.TaskSpec, fwd: Forward, state: MemberState, dyn: Mapping[str, Array]) -> dict:
    """The logged metrics at the current parameters (evaluation mode), on device, and the probes'."""
    data, scale, alpha = state.data, dyn["loss.logit_scale"], dyn["model.alpha"]
    out_train, _ = fwd.apply(state.params, state.rest, data.x_train, False, scale)
    out_test, _ = fwd.apply(state.params, state.rest, data.x_test, False, scale)
    per_train = loss_terms(cfg, spec, out_train, data.y_train, alpha)
    per_test = loss_terms(cfg, spec, out_test, data.y_test, alpha)
    metrics = {
        "train_loss": jnp.mean(per_train.astype(metric_dtype(cfg))),
        "test_loss": jnp.mean(per_test.astype(metric_dtype(cfg))),
        "weight_norm": tree_norm(state.params),
        "path_length": state.path_length,
        "diverged": state.diverged,
    }
    if spec.n_classes:
        hit_train = losses.accuracy(out_train, data.y_train)
        hit_true = losses.accuracy(out_train, data.y_train_true)
        everyone = jnp.ones_like(data.corrupted)
        metrics |= {
            "train_acc": _masked_mean(hit_train, everyone),
            "test_acc": jnp.mean(losses.accuracy(out_test, data.y_test).astype(jnp.float32)),
            "train_acc_clean": _masked_mean(hit_train, ~data.corrupted),
            "train_acc_corrupted": _masked_mean(hit_train, data.corrupted),
            "corrupted_true_acc": _masked_mean(hit_true, data.corrupted),
        }
    else:
        nan = jnp.full((), jnp.nan, jnp.float32)
        metrics |= dict.fromkeys(
            ("train_acc", "test_acc", "train_acc_clean", "train_acc_corrupted", "corrupted_true_acc"), nan
        )
    metrics = {k: as_metric(cfg, v) for k, v in metrics.items()}
    return metrics | interval_probes(cfg, spec, fwd, state, dyn, out_train, per_train)


# --------------------------------------------------------------------------- one member
def _init_member(cfg: Config, spec: tasks.TaskSpec, fwd: Forward, dyn: Mapping[str, Array]):
    _TRACES["init"] += 1
    state = _init_state(cfg, spec, fwd, dyn)
    metrics = evaluate(cfg, spec, fwd, state, dyn) | slow_probes(cfg, spec, fwd, state, dyn)
    return state._replace(loss0=metrics["train_loss"]), metrics


def _init_state(cfg: Config, spec: tasks.TaskSpec, fwd: Forward, dyn: Mapping[str, Array]) -> MemberState:
    key = jax.random.key(dyn["seed"])
    key, k_model = jax.random.split(key)
    data = build_data(cfg, dyn["task.data_seed"], dyn["task.corrupt_fraction"])
    model = build_member_model(cfg, spec, k_model, dyn)
    _, params, rest = nnx.split(model, nnx.Param, ...)
    opt_state = optimizer_from_config(cfg.optim, dyn).init(params)
    state = MemberState(
        data=data,
        params=params,
        rest=rest,
        opt_state=opt_state,
        key=key,
        diverged=jnp.zeros((), jnp.bool_),
        diverged_step=jnp.full((), -1, jnp.int32),
        step=jnp.zeros((), jnp.int32),
        loss0=jnp.zeros((), metric_dtype(cfg)),
        path_length=jnp.zeros((), _path_dtype(cfg)),
        probe={"params0": None, "refs": {}},
    )
    return state._replace(probe=init_probe_state(cfg, spec, fwd, state, dyn))


def _path_dtype(cfg: Config):
    """The dtype `path_length` accumulates in: the parameters', at least float32."""
    return jnp.promote_types(cfg.train.param_dtype, jnp.float32)


def _step_norm(moved) -> Array:
    """‖θ_{t+1} − θ_t‖ over every leaf of `moved` (one dtype), as one reduction over the leaves
    joined end to end: XLA:CPU runs a separate reduction per leaf otherwise, whose fixed cost is
    ~5% of a tiny member's step (`tree_norm` of the same tree sums the leaves' sums instead, so the
    two agree to rounding)."""
    leaves = jax.tree_util.tree_leaves(moved)
    return jnp.sqrt(jnp.sum(jnp.square(jnp.concatenate([leaf.ravel() for leaf in leaves]))))


def _all_finite(tree) -> Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def _step_finite(new_params, grads) -> Array:
    """The new parameters are finite and so is every g²: a gradient past √(float max) makes Adam's
    second moment inf, whose update is then 0 with finite parameters, freezing that coordinate
    unflagged. One pass per leaf over both arrays."""
    ok = jax.tree.map(lambda p, g: jnp.isfinite(p) & jnp.isfinite(g * g), new_params, grads)
    return jnp.all(jnp.stack([jnp.all(leaf) for leaf in jax.tree_util.tree_leaves(ok)]))


def _train_step(cfg: Config, spec: tasks.TaskSpec, fwd: Forward, tx, state: MemberState, dyn) -> MemberState:
    data = state.data
    key = state.key
    if cfg.optim.batch_size is None:  # full batch: no randomness to draw (dropout has its own stream)
        x, y = data.x_train, data.y_train
    else:
        key, k_batch = jax.random.split(key)
        idx = jax.random.choice(k_batch, data.x_train.shape[0], (cfg.optim.batch_size,), replace=False)
        x, y = data.x_train[idx], data.y_train[idx]

    def loss_fn(params):
        out, new_rest = fwd.apply(params, state.rest, x, True, dyn["loss.logit_scale"])
        per = loss_terms(cfg, spec, out, y, dyn["model.alpha"])
        return jnp.mean(per), new_rest

    (loss, new_rest), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, state.params)
    updates, new_opt = tx.update(grads, state.opt_state, state.params)
    new_params = jax.tree.map(lambda p, u: (p + u).astype(p.dtype), state.params, updates)
    finite = jnp.isfinite(loss) & _step_finite(new_params, grads)
    blown_up = loss.astype(state.loss0.dtype) > cfg.train.divergence_factor * state.loss0
    bad = state.diverged | ~finite | blown_up

    def keep(new, old):
        return jax.tree.map(lambda n, o: jnp.where(bad, o, n), new, old)

    kept = keep(new_params, state.params)
    dt = _path_dtype(cfg)
    moved = jax.tree.map(lambda n, o: n.astype(dt) - o.astype(dt), kept, state.params)
    return state._replace(
        params=kept,
        rest=keep(new_rest, state.rest),
        opt_state=keep(new_opt, state.opt_state),
        key=key,
        diverged=bad,
        diverged_step=jnp.where(~state.diverged & bad, state.step, state.diverged_step),
        step=state.step + 1,
        path_length=state.path_length + _step_norm(moved),
    )


def _run_chunk(
    cfg: Config, spec: tasks.TaskSpec, fwd: Forward, n_slots: int, state: MemberState, dyn, plan: Mapping[str, Array]
):
    """A chunk of intervals: `plan["length"][k]` steps then an evaluation, for each interval k.

    `plan` is the chunk's row of the schedule, the same for every member (not batched), so each
    interval's loop keeps one trip count under `vmap`. With snapshots (`n_slots` > 0), the state
    at an interval's end is written to slot `plan["slot"][k]` of a buffer (slot `n_slots` is a
    spare for intervals without a snapshot).
    """
    _TRACES["chunk"] += 1
    tx = optimizer_from_config(cfg.optim, dyn)

    def one_step(_, s):
        return _train_step(cfg, spec, fwd, tx, s, dyn)

    def one_interval(carry, row):
        s, buffer = carry
        s = jax.lax.fori_loop(0, row["length"], one_step, s)
        if n_slots:
            leaves = state_leaves(s.params, s.rest)
            buffer = {k: jax.lax.dynamic_update_index_in_dim(buffer[k], leaves[k], row["slot"], 0) for k in buffer}
        return (s, buffer), evaluate(cfg, spec, fwd, s, dyn)

    buffer = {}
    if n_slots:
        buffer = {
            k: jnp.zeros((n_slots + 1, *v.shape), v.dtype) for k, v in state_leaves(state.params, state.rest).items()
        }
    (state, buffer), metrics = jax.lax.scan(one_interval, (state, buffer), plan)
    snaps = {k: v[:n_slots] for k, v in buffer.items()}
    return state, metrics, slow_probes(cfg, spec, fwd, state, dyn), snaps


class MemberProgram(NamedTuple):
    """One member's training pieces for a static config, pure and unbatched: compose them with
    `jax.jit`/`jax.vmap` as you like (benchmarks and tools do; `run_group` is the usual way).

    `dyn` is a member's dynamic numbers by dotted name (`stack_dynamic` gives them stacked).
    """

    config: Config
    spec: tasks.TaskSpec
    fwd: Forward

    def init(self, dyn: Mapping[str, Array]) -> tuple[MemberState, dict]:
        """Data, model, optimizer state and probe references; metrics at step 0."""
        return _init_member(self.config, self.spec, self.fwd, dyn)

    def init_state(self, dyn: Mapping[str, Array]) -> MemberState:
        """`init` without the metrics: the state at step 0 (probe references included).

        Its step-0 loss is left 0, which the divergence check of `step` compares against: train
        from `init`'s state, not this one (which is for probes at given parameters)."""
        return _init_state(self.config, self.spec, self.fwd, dyn)

    def probes(self, state: MemberState, dyn: Mapping[str, Array], names: Sequence[str]) -> dict:
        """The named probes (registered, any interval) at the current state."""
        return probes_at(self.config, self.spec, self.fwd, state, dyn, names)

    def step(self, state: MemberState, dyn: Mapping[str, Array]) -> MemberState:
        """One optimizer step (a diverged member stays frozen)."""
        return _train_step(self.config, self.spec, self.fwd, optimizer_from_config(self.config.optim, dyn), state, dyn)

    def evaluate(self, state: MemberState, dyn: Mapping[str, Array]) -> dict:
        """The metrics and every-interval probes at the current state."""
        return evaluate(self.config, self.spec, self.fwd, state, dyn)

    def train_interval(self, state: MemberState, dyn: Mapping[str, Array]) -> MemberState:
        """`train.log_every` optimizer steps as one `lax.scan`."""
        tx = optimizer_from_config(self.config.optim, dyn)

        def one(s, _):
            return _train_step(self.config, self.spec, self.fwd, tx, s, dyn), None

        return jax.lax.scan(one, state, None, length=self.config.train.log_every)[0]


def member_program(static_cfg: Config) -> MemberProgram:
    """The `MemberProgram` of a static config (as `stack_dynamic` returns it)."""
    return MemberProgram(static_cfg, static_cfg.spec, Forward(graphdef_of(static_cfg)))


# --------------------------------------------------------------------------- a group
def group_schedule(cfg: Config) -> Schedule:
    """The evaluation steps, intervals per compiled chunk and snapshot steps of a static config."""
    return schedule(cfg.train, slow_chunk(cfg))


def member_block(static_cfg: Config, n_local: int) -> int | None:
    """Members per vmapped block inside a device's program; None = all of them at once.

    CPU default: blocks of one member (`lax.map` walks them, each unbatched), so that a member's numbers do not
    depend on its company: XLA:CPU computes the weight gradient (a matmul contracting the training
    examples) with another kernel when several members are batched, which changes its rounding.
    `$GROK_MEMBER_BLOCK=auto` takes blocks whose working set fits the core's cache instead
    (faster for small members, not reproducible across groupings), a number forces that block,
    0 = all members at once. Accelerators take all members at once.
    """
    if n_local <= 1:  # a lone member runs unbatched on a CPU: a vmap of one costs ~35% at small sizes
        return 1 if n_local == 1 and jax.default_backend() == "cpu" else None
    forced = os.environ.get("GROK_MEMBER_BLOCK")
    if forced is not None and forced.strip() != "auto":
        if not forced.strip().isdigit():
            raise ValueError(
                f"GROK_MEMBER_BLOCK={forced!r}: expected 'auto' or a whole number of members (0 = no blocks)"
            )
        block = int(forced)
    elif jax.default_backend() != "cpu":
        return None
    elif forced is None:
        block = 1
    else:
        block = max(1, _CPU_BLOCK_BYTES // max(1, member_size(static_cfg).working_set))
    return None if block <= 0 or block >= n_local else block


# GROK_MEMBER_BLOCK=auto. Measured on a 2-core EPYC (512 KiB L2 per core, `benchmarks/bench_sweep.py`):
# the best blocks were 4–8 members of 350 kB (estimated), 1 of 1.1 MB and 8–16 of 150 kB.
_CPU_BLOCK_BYTES = 2 << 20


@functools.lru_cache(maxsize=64)
def _programs(
    static_cfg: Config, tokens: tuple[int, ...], n_slots: int, sharding: NamedSharding | None, block: int | None
):
    """The compiled init and chunk programs of one static group (cached by the static config).

    `chunk(state, dyn, plan)` takes the chunk's row of the schedule (`plan`, not batched: one
    compiled program serves every chunk of a run, whatever its intervals' lengths).

    `chunk` trains each device's members `block` at a time (`lax.map` over vmapped blocks)
    or all at once (`block` None); with a sharding, every device runs that on its own members.
    `tokens` (`registration_tokens`) key the cache on the registrations the config uses.
    """
    del tokens
    spec = static_cfg.spec
    fwd = Forward(graphdef_of(static_cfg))
    init_local = jax.vmap(functools.partial(_init_member, static_cfg, spec, fwd))
    one = functools.partial(_run_chunk, static_cfg, spec, fwd, n_slots)
    if block is None:
        local = jax.vmap(one, in_axes=(0, 0, None), axis_name=MEMBER_BATCH_AXIS)
    else:

        def local(state, dyn, plan):
            # blocks of one member walk the unbatched step (lax.map's batch_size would vmap each one)
            return jax.lax.map(lambda sd: one(*sd, plan), (state, dyn), batch_size=None if block == 1 else block)

    if sharding is None:
        return jax.jit(init_local), jax.jit(local, donate_argnums=(0,))
    # every device works on its own members only: no program spans devices (no collectives)
    split = functools.partial(jax.shard_map, mesh=sharding.mesh, out_specs=P("members"))
    init = split(init_local, in_specs=P("members"), check_vma=False)
    chunk = split(local, in_specs=(P("members"), P("members"), P()), check_vma=False)
    return jax.jit(init, out_shardings=sharding), jax.jit(chunk, donate_argnums=(0,), out_shardings=sharding)


def stack_dynamic(configs: Sequence[Config]) -> tuple[Config, dict[str, np.ndarray]]:
    """Check the configs form one group; return (static config, dynamic values [members])."""
    if not configs:
        raise ValueError("a group needs at least one member config")
    static, first = split_dynamic(configs[0])
    values = {name: [v] for name, v in first.items()}
    for i, cfg in enumerate(configs[1:], start=1):
        other, dyn = split_dynamic(cfg)
        if other != static:
            diff = [name for name in field_names() if static.get(name) != other.get(name)]
            raise ValueError(f"member {i} differs from member 0 in static fields {diff}; train them as separate groups")
        for name, v in dyn.items():
            values[name].append(v)
    dtype = np.dtype(static.train.param_dtype)  # optimizer state must keep the parameters' dtype
    stacked = {
        name: np.asarray(v, np.int32 if name in ("seed", "task.data_seed") else dtype) for name, v in values.items()
    }
    return static, stacked


def member_sharding(n_members: int) -> tuple[NamedSharding | None, int]:
    """(sharding of the member axis over all devices, padded member count).

    With at least as many members as devices, the member axis is padded (repeating
    the last member) to a multiple of the device count and sharded; with fewer, the
    group runs unsharded on one device.
    """
    devices = jax.devices()
    if len(devices) == 1 or n_members < len(devices):
        return None, n_members
    padded = -(-n_members // len(devices)) * len(devices)
    return NamedSharding(Mesh(np.asarray(devices), ("members",)), P("members")), padded


def shardable(static_cfg: Config) -> bool:
    """Whether a group may be sharded over several devices.

    Not on CPU with a probe registered with `lapack=True` (the NTK's kernel regression calls
    `jnp.linalg.solve`): a batched LAPACK kernel waits for work it queued on XLA's intra-op thread
    pool, and two devices doing that at once on a two-thread pool deadlock (seen with jaxlib 0.10.2
    on 2 cores, with `solve`, `svd` and `eigh`).
    """
    if jax.default_backend() != "cpu":
        return True
    return not any(PROBES.get(name, "train.probes").lapack for name in static_cfg.train.probes)


def ensure_precision(cfg: Config) -> None:
    """float64 needs `jax_enable_x64`; it is global, so it is switched on before any array exists."""
    if cfg.uses_float64 and not jax.config.read("jax_enable_x64"):
        jax.config.update("jax_enable_x64", True)


class GroupResult(NamedTuple):
    """What `run_group` returns: the static config, the dynamic values [members], the history,
    the final member states and the snapshots (step → `{name: [members, ...]}`)."""

    static: Config
    dyn: dict[str, np.ndarray]
    history: dict[str, np.ndarray]
    state: MemberState
    snapshots: dict[int, dict[str, np.ndarray]]


class Resume(NamedTuple):
    """Where a checkpointed group stands: chunks done, the member states (host arrays, padded
    member rows), the history and the snapshots so far (host arrays, real members only)."""

    chunks_done: int
    state: MemberState
    history: dict[str, np.ndarray]
    snapshots: dict[int, dict[str, np.ndarray]]


class Checkpointer(Protocol):
    """What `run_group` asks of a checkpoint store (`grok.checkpoint.RunCheckpoint` is one)."""

    def restore(self, abstract: MemberState, layout: Mapping[str, Any]) -> Resume | None: ...

    def after_chunk(
        self, done: int, total: int, steps_done: int, snapshot: Callable[[], Resume], layout: Mapping[str, Any]
    ) -> None: ...


def _group_programs(static: Config, dyn_np: dict[str, np.ndarray], n_members: int, shard: bool):
    """(sharding, padded member count, schedule, init, chunk, dynamic values on the device) of a group."""
    sharding, padded = member_sharding(n_members) if shard and shardable(static) else (None, n_members)
    sched = group_schedule(static)
    n_local = padded // (len(sharding.mesh.devices.flat) if sharding is not None else 1)
    block = member_block(static, n_local)
    init, chunk = _programs(static, registration_tokens(static), sched.slots_per_chunk, sharding, block)
    dyn = {k: jnp.asarray(np.concatenate([v, np.repeat(v[-1:], padded - n_members)])) for k, v in dyn_np.items()}
    if sharding is not None:
        dyn = jax.device_put(dyn, sharding)
    return sharding, padded, sched, init, chunk, dyn


def precompile_group(configs: Sequence[Config], *, shard: bool = True) -> bool:
    """Compile a group's init and chunk programs ahead of `run_group(configs, shard=shard)`, which then
    finds them compiled. Safe to call from another thread while a group trains: a sweep compiles its
    next group this way on an accelerator (`grok.sweep`). False, and nothing done, when the group
    needs float64 and the process has not switched it on (that switch must precede every array)."""
    static, dyn_np = stack_dynamic(configs)
    if static.uses_float64 and not jax.config.read("jax_enable_x64"):
        return False
    sharding, _, sched, init, chunk, dyn = _group_programs(static, dyn_np, len(configs), shard)
    state = jax.eval_shape(init, dyn)[0]
    if sharding is not None:
        state = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), state)
    init.lower(dyn).compile()
    chunk.lower(state, dyn, {"length": sched.lengths[0], "slot": sched.slots[0]}).compile()
    return True


def run_group(
    configs: Sequence[Config],
    *,
    progress: Callable[[int], None] | None = None,
    on_chunk: Callable[[dict[str, np.ndarray]], None] | None = None,
    shard: bool = True,
    checkpoint: Checkpointer | None = None,
) -> GroupResult:
    """Train one group. `progress(steps)` after each chunk; `on_chunk(history so far)` too (host data only).

    With a `checkpoint`, the group resumes from the state it restores (the same compiled chunks
    run from there, so the result is bit-identical to an uninterrupted run) and offers it a host
    copy of the state after every chunk.
    """
    static, dyn_np = stack_dynamic(configs)
    ensure_precision(static)
    n_members = len(configs)
    sharding, padded, sched, init, chunk, dyn = _group_programs(static, dyn_np, n_members, shard)
    n_chunk, n_slots = sched.n_chunk, sched.slots_per_chunk
    lengths, slots, ends = sched.lengths, sched.slots, sched.steps[1:].reshape(sched.n_chunks, n_chunk)
    layout = {"n_chunk": n_chunk, "n_chunks": sched.n_chunks, "padded": padded, "n_members": n_members}
    resume = checkpoint.restore(jax.eval_shape(init, dyn)[0], layout) if checkpoint is not None else None
    if resume is None:
        state, first = init(dyn)
        done, parts, snapshots = 0, [{name: _host_rows(v, n_members)[:, None] for name, v in first.items()}], {}
        if 0 in sched.snapshots:
            snapshots[0] = {k: _host_rows(v, n_members) for k, v in state_leaves(state.params, state.rest).items()}
    else:
        state = _to_device(resume.state, sharding)
        done, parts, snapshots = resume.chunks_done, [resume.history], dict(resume.snapshots)
        if progress is not None:
            progress(int(lengths[:done].sum()))
    for c in range(done, sched.n_chunks):
        state, metrics, slow, snaps = chunk(state, dyn, {"length": lengths[c], "slot": slots[c]})
        # Everything after a chunk happens on the host: dropping the padding members on device would
        # be a cross-device program, and XLA:CPU's in-process collectives can deadlock with few cores.
        host = {name: _host_rows(v, n_members) for name, v in metrics.items()}
        parts.append(_place_slow(host, {name: _host_rows(v, n_members) for name, v in slow.items()}, n_chunk))
        if snaps:  # copied out now: the device keeps one chunk's snapshots at a time
            rows = {k: _host_rows(v, n_members) for k, v in snaps.items()}
            for j, step in enumerate(ends[c][slots[c] < n_slots]):
                snapshots[int(step)] = {k: v[:, j] for k, v in rows.items()}
        if progress is not None:
            jax.block_until_ready(state.step)
            progress(int(lengths[c].sum()))
        if on_chunk is not None:
            upto = 1 + (c + 1) * n_chunk
            on_chunk({"step": sched.steps[:upto]} | {k: np.concatenate([p[k] for p in parts], axis=1) for k in host})
        if checkpoint is not None:
            save = functools.partial(_snapshot, c + 1, state, parts, snapshots)
            checkpoint.after_chunk(c + 1, sched.n_chunks, int(sched.steps[(c + 1) * n_chunk]), save, layout)
    history = _joined(parts)
    history["step"] = sched.steps.copy()
    state = jax.tree.map(lambda a: _host_rows(a, n_members), state)
    return GroupResult(static, dyn_np, history, state, snapshots)


def _joined(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """History parts (one per chunk) joined along the interval axis."""
    return {name: np.concatenate([p[name] for p in parts], axis=1) for name in parts[0]}


def _snapshot(done: int, state: MemberState, parts: list, snapshots: dict) -> Resume:
    """A host copy of the whole group state (every padded member row) after `done` chunks."""
    return Resume(done, jax.tree.map(lambda a: _host_rows(a, a.shape[0]), state), _joined(parts), dict(snapshots))


def _to_device(state: MemberState, sharding: NamedSharding | None) -> MemberState:
    if sharding is None:
        return jax.tree.map(jnp.asarray, state)
    return jax.device_put(state, sharding)


def _host_rows(a: Array, n: int):
    """The first `n` member rows of a (possibly sharded) array, copied to the host; PRNG keys stay keys."""
    if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(np.asarray(jax.random.key_data(a))[:n], impl=jax.random.key_impl(a))
    return np.asarray(a)[:n]


def _place_slow(metrics: dict, slow: dict, n_chunk: int) -> dict:
    """Slow probes are measured once per chunk: NaN at the other intervals, the value at the last."""
    out = dict(metrics)
    for name, value in slow.items():
        filler = np.full((value.shape[0], n_chunk) + value.shape[1:], np.nan, value.dtype)
        filler[:, -1] = value
        out[name] = filler
    return out
