"""Probes after the fact: any registered probe evaluated on a run's snapshots (docs/architecture.md,
"Schedules and snapshots").

`probe_history(run, ["neurons", "my_probe"])` rebuilds every member's step-0 state from its seeds
(data, θ₀, each probe's `init` reference: all deterministic), puts each snapshot's parameters and
model state in it, and evaluates the probes, as one compiled program vmapped over members and,
inside, over snapshots. The result is shaped like `run.history`: `[members, snapshots, ...]`.
Snapshots that lack some state are refused only when a probe reads it: the error names each
such probe and the leaves it needs (found from its traced program, before anything compiles).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from grok import engine, registry
from grok.config import check_registered
from grok.errors import ConfigError, GrokWarning
from grok.snapshots import path_name, state_leaves

Array = jax.Array


def _substitute(tree: Any, saved: Mapping[str, Array], prefix: str) -> Any:
    """`tree` with each leaf replaced by the saved array of the same name. PRNG keys are kept, and
    so is a leaf the snapshots lack: `_check_missing` has made sure none of the probes reads it."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    out = []
    for path, leaf in leaves:
        name = prefix + path_name(path)
        if name in saved and not jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            out.append(jnp.asarray(saved[name], leaf.dtype))
        else:
            out.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, out)


def _check_missing(static, dyn: Mapping[str, np.ndarray], names: Sequence[str], kept: set[str]) -> None:
    """A ConfigError naming each probe that reads state the snapshots lack, and what it reads.

    The step-0 state is built abstractly (nothing runs); a leaf no probe reads is left at its
    step-0 value, which changes no result."""
    shapes = tuple((k, v.shape[1:], np.dtype(v.dtype).str) for k, v in sorted(dyn.items()))
    needs = _missing_reads(static, engine.registration_tokens(static), tuple(names), frozenset(kept), shapes)
    if needs:
        what = "; ".join(f"probe {name!r} needs {', '.join(map(repr, leaves))}" for name, leaves in needs)
        raise ConfigError(
            "probe_history",
            sorted({leaf for _, leaves in needs for leaf in leaves}),
            f"snapshots holding what each probe reads: {what}, which these snapshots lack "
            f"(they keep {', '.join(sorted(kept))})",
        )


@functools.lru_cache(maxsize=32)
def _missing_reads(static, tokens: tuple[int, ...], names: tuple[str, ...], kept: frozenset[str], shapes: tuple):
    """((probe, [leaves it reads that are not in `kept`]), ...) for the probes that read any;
    cached like the programs (`tokens`: the registrations used; `shapes`: one member's dyn)."""
    del tokens
    prog = engine.member_program(static)
    dyn = {k: jax.ShapeDtypeStruct(shape, np.dtype(dtype)) for k, shape, dtype in shapes}
    start = jax.eval_shape(prog.init_state, dyn)
    missing = set(state_leaves(start.params, start.rest)) - kept
    if not missing:
        return ()
    needs = ((name, sorted(set(_reads(prog, start, dyn, name)) & missing)) for name in names)
    return tuple((name, leaves) for name, leaves in needs if leaves)


def _reads(prog, start, member_dyn: Mapping[str, jax.ShapeDtypeStruct], name: str) -> list[str]:
    """The state leaves (`params/...`, `rest/...`) that probe `name`'s outputs depend on, found by
    removing dead code from its traced program (every leaf when that is not possible)."""
    closed = jax.make_jaxpr(lambda state, d: prog.probes(state, d, (name,)))(start, member_dyn)
    read = _read_arguments(closed, (start, member_dyn))[0]
    # the state is a NamedTuple, so a leaf's path starts with its field: `params/...`, `rest/...`
    paths = jax.tree_util.tree_flatten_with_path(read)[0]
    return [path_name(p) for p, used in paths if used and path_name(p).startswith(("params/", "rest/"))]


def probe_config(run, probes: Sequence[str]):
    """The run's config with `probes` chosen, evaluated wherever asked (no schedule or snapshots of its own)."""
    if isinstance(probes, str):
        probes = [probes]
    if not list(probes):
        raise ConfigError("probes", list(probes), "one or more registered probe names")
    return rebuild_config(run, probes)


def rebuild_config(run, probes: Sequence[str] = ()):
    """The run's config for rebuilding its members' step-0 state after the fact, with `probes`
    (maybe none) chosen and no schedule or snapshots of its own."""
    cfg = check_registered(run.config)
    return cfg.override(
        **{
            "train.probes": list(probes),
            "train.schedule": "linear",
            "train.log_every": 1,
            "train.snapshots": 0,
            "train.ntk_every": None,
        }
    )


def probe_history(run, probes: Sequence[str], *, steps: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Evaluate registered `probes` on the run's snapshots (all, or at `steps`), every member.

    Returns `{metric: [members, snapshots, ...], "step": [snapshots]}`; a value equals what the
    same probe computed during training at that step.

    >>> values = grok.probe_history(run, ["neurons"])  # values["ipr_mean"]: [members, snapshots]
    """
    if not run.snapshots:
        raise ConfigError("run", "without snapshots", "a run trained with train.snapshots (a count or steps)")
    steps = snapshot_steps(run, steps)
    cfg = probe_config(run, probes)
    warn_changed_probes(run, cfg.train.probes)
    static, dyn = engine.stack_dynamic([cfg.override(**m) for m in run.members])
    engine.ensure_precision(static)
    snaps = [run.snapshots[s] for s in steps]  # one file read per step for a loaded run
    _check_missing(static, dyn, tuple(cfg.train.probes), set(snaps[0]))
    program = _program(static, engine.registration_tokens(static), tuple(cfg.train.probes))
    dyn = {k: jnp.asarray(v) for k, v in dyn.items()}
    at = jnp.asarray(steps, jnp.int32)
    # traced once (the call below reuses the trace): only the leaves the probes read are stacked;
    # the others are passed as a broadcast view of the first snapshot (jit drops unused arguments)
    shapes = {k: jax.ShapeDtypeStruct((v.shape[0], len(steps), *v.shape[1:]), v.dtype) for k, v in snaps[0].items()}
    read = _read_arguments(program.trace(dyn, shapes, at).jaxpr, (dyn, shapes, at))[1]
    saved = {
        k: np.stack([snap[k] for snap in snaps], axis=1) if read[k] else np.broadcast_to(v[:, None], shapes[k].shape)
        for k, v in snaps[0].items()
    }
    del snaps
    out = program(dyn, saved, at)
    return {k: np.asarray(v) for k, v in out.items()} | {"step": np.asarray(steps, np.int64)}


def _used_inputs(closed) -> list[bool]:
    """Which inputs of a traced program its outputs depend on (dead code removed); all of them when
    JAX's internal helper for that is not available."""
    try:
        from jax._src.interpreters.partial_eval import dce_jaxpr

        return list(dce_jaxpr(closed.jaxpr, [True] * len(closed.jaxpr.outvars))[1])
    except (ImportError, AttributeError, TypeError, ValueError):
        return [True] * len(closed.jaxpr.invars)


def _read_arguments(closed, args: tuple) -> tuple:
    """`args` with each leaf replaced by whether the traced program's outputs depend on it."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    used = _used_inputs(closed)
    if len(used) != len(leaves):  # not one input per leaf: count every one as read
        used = [True] * len(leaves)
    return jax.tree_util.tree_unflatten(treedef, used)


@functools.lru_cache(maxsize=32)
def _program(static, tokens: tuple[int, ...], names: tuple[str, ...]):
    """jit(vmap over members(vmap over snapshots(probes at a snapshot))), the members' step-0 state
    built once each; cached like the engine's programs (`tokens`: the registrations used)."""
    del tokens
    return jax.jit(over_snapshots(static, lambda prog, state, dyn, _: prog.probes(state, dyn, names)))


def snapshot_steps(run, steps: Sequence[int] | None) -> list[int]:
    """The snapshot steps asked for (all when None), each checked: a step without a snapshot is a
    `ConfigError` naming the nearest ones."""
    steps = run.steps_with_snapshots if steps is None else [int(s) for s in steps]
    for s in steps:
        run._snapshot(s)  # a step without a snapshot names the nearest ones
    if not steps:
        raise ConfigError("steps", [], "one or more snapshot steps")
    return steps


def state_at(start, snapshot: Mapping[str, Array], step: Array):
    """A member's step-0 state (`MemberProgram.init_state`) with a snapshot's parameters and
    model state put in (`snapshot`: `params/...`, `rest/...` arrays of one member)."""
    return start._replace(
        params=_substitute(start.params, snapshot, "params/"),
        rest=_substitute(start.rest, snapshot, "rest/"),
        step=step,
    )


def map_in_blocks(fn, xs, block: int | None):
    """`fn` over the leading axis of the pytree `xs`: vmapped all at once (`block` None or ≥ the
    axis), one at a time (`lax.map`, `block` 1), or vmapped `block` at a time (`lax.map`'s batches)."""
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    if block is None or block >= n:
        return jax.vmap(fn)(xs)
    return jax.lax.map(fn, xs, batch_size=None if block == 1 else block)


def over_snapshots(static, at_snapshot, *, members_in_blocks: bool = False, snapshot_block: int | None = None):
    """`fn(dyn, saved, steps, per_snapshot=(), *args)`: `at_snapshot(prog, state, dyn, per, *args)`
    evaluated on every member (leading axis of `dyn`, `saved`) at every snapshot (second axis of
    `saved`, `steps`), each member's step-0 state rebuilt once from its seeds (`prog`: the static
    config's `MemberProgram`). `per_snapshot` is a pytree batched like `saved` ([members,
    snapshots, ...]; `per` is one entry); `args` are shared by all. Not jitted: compose as needed.

    `members_in_blocks`: walk the members one at a time (`lax.map`) instead of vmapping them, so a
    member's numbers do not depend on its company (the engine's CPU member blocks, for the same reason).
    `snapshot_block`: take each member's snapshots that many at a time (`map_in_blocks`; None = all
    at once), so that on a CPU their working set stays in cache across a long inner loop (the
    LLC's draws).
    """
    prog = engine.member_program(static)

    def member(dyn, saved, steps, per_snapshot, *args):
        start = prog.init_state(dyn)

        def at(snapshot, step, per):
            return at_snapshot(prog, state_at(start, snapshot, step), dyn, per, *args)

        return map_in_blocks(lambda one: at(*one), (saved, steps, per_snapshot), snapshot_block)

    def fn(dyn, saved, steps, per_snapshot=(), *args):
        if members_in_blocks:
            return jax.lax.map(lambda one: member(*one[:2], steps, one[2], *args), (dyn, saved, per_snapshot))
        in_axes = (0, 0, None, 0) + (None,) * len(args)
        return jax.vmap(member, in_axes=in_axes)(dyn, saved, steps, per_snapshot, *args)

    return fn


def warn_changed_probes(run, names: Sequence[str]) -> None:
    """Warn (once per run and probe) when a probe is now registered with another formula than the
    one the run was trained with (`status.json` records each registration's fingerprint): the
    values computed now can differ from those in `run.history`."""
    trained = (run.status.get("registrations") or {}).get("probes", {})
    for name in names:
        now = registry.PROBES.item(name)
        if name in trained and trained[name] != now.fingerprint:
            warnings.warn(
                f"probe {name!r} is registered (by {now.owner}) with another formula than the one this run "
                f"was trained with (fingerprint {now.fingerprint} vs {trained[name]}): computing the current "
                f"registration, whose values may differ from run.history",
                GrokWarning,
                stacklevel=3,
            )
