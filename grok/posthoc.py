"""Probes after the fact: any registered probe evaluated on a run's snapshots (docs/architecture.md,
"Schedules and snapshots").

`probe_history(run, ["neurons", "my_probe"])` rebuilds every member's step-0 state from its seeds
(data, θ₀, each probe's `init` reference: all deterministic), puts each snapshot's parameters and
model state in it, and evaluates the probes, as one compiled program vmapped over members and,
inside, over snapshots. The result is shaped like `run.history`: `[members, snapshots, ...]`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from grok import engine
from grok.config import check_registered
from grok.errors import ConfigError
from grok.snapshots import path_name

Array = jax.Array


def _substitute(tree: Any, saved: Mapping[str, Array], prefix: str) -> Any:
    """`tree` with each leaf replaced by the saved array of the same name (PRNG keys are kept)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    out = []
    for path, leaf in leaves:
        name = prefix + path_name(path)
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            out.append(leaf)
        elif name in saved:
            out.append(jnp.asarray(saved[name], leaf.dtype))
        else:
            raise ConfigError(
                "probe_history",
                name,
                f"state the snapshots kept ({', '.join(sorted(saved))}); the probes need {name!r}, "
                "which these snapshots lack",
            )
    return jax.tree_util.tree_unflatten(treedef, out)


def probe_config(run, probes: Sequence[str]):
    """The run's config with `probes` chosen, evaluated wherever asked (no schedule or snapshots of its own)."""
    if isinstance(probes, str):
        probes = [probes]
    if not list(probes):
        raise ConfigError("probes", list(probes), "one or more registered probe names")
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
    """
    if not run.snapshots:
        raise ConfigError("run", "without snapshots", "a run trained with train.snapshots (a count or steps)")
    steps = run.steps_with_snapshots if steps is None else [int(s) for s in steps]
    for s in steps:
        run._snapshot(s)  # a step without a snapshot names the nearest ones
    cfg = probe_config(run, probes)
    static, dyn = engine.stack_dynamic([cfg.override(**m) for m in run.members])
    engine.ensure_precision(static)
    saved = {name: np.stack([run.snapshots[s][name] for s in steps], axis=1) for name in run.snapshots[steps[0]]}
    program = _program(static, engine.registration_tokens(static), tuple(cfg.train.probes))
    out = program({k: jnp.asarray(v) for k, v in dyn.items()}, saved, jnp.asarray(steps, jnp.int32))
    return {k: np.asarray(v) for k, v in out.items()} | {"step": np.asarray(steps, np.int64)}


@functools.lru_cache(maxsize=32)
def _program(static, tokens: tuple[int, ...], names: tuple[str, ...]):
    """jit(vmap over members(vmap over snapshots(probes at a snapshot))), the members' step-0 state
    built once each; cached like the engine's programs (`tokens`: the registrations used)."""
    del tokens
    prog = engine.member_program(static)

    def member(dyn, saved, steps):
        start = prog.init_state(dyn)

        def at(snapshot, step):
            state = start._replace(
                params=_substitute(start.params, snapshot, "params/"),
                rest=_substitute(start.rest, snapshot, "rest/"),
                step=step,
            )
            return prog.probes(state, dyn, names)

        return jax.vmap(at)(saved, steps)

    return jax.jit(jax.vmap(member, in_axes=(0, 0, None)))
