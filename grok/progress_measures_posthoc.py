"""[N]'s progress measures after the fact, with the final model's key frequencies (docs/formulas.md §5.5).

The `progress` probe finds the key frequencies in the current embedding at every log interval; [N]
use those of the final trained model for the whole run. `progress_with_final_keys(run)` takes each
member's final key frequencies (`grok.probing.progress_measures.final_key_masks`) and evaluates every measure
on the run's snapshots with them, as one compiled program vmapped over members and snapshots (the
way `grok.probe_history` evaluates probes).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from grok import engine
from grok.errors import ConfigError
from grok.forward import as_metric, tree_norm
from grok.lazy_import import nnx
from grok.posthoc import _substitute, probe_config
from grok.probing.progress_measures import final_key_masks, progress_measures
from probes import progress_measures as measures


def progress_with_final_keys(run, *, steps: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """[N]'s measures on a run's snapshots (all, or at `steps`) with each member's FINAL key frequencies.

    [N] compute the restricted and excluded loss over all of training with the key frequencies of the
    final model; the in-run probe uses the current embedding's. One compiled program, vmapped over
    members and, inside, over snapshots. Returns `{metric: [members, snapshots, ...], "step"}` with the
    probe's metrics; `key_freq` is the final mask at every snapshot and `current_key_freq` the
    snapshot's own. At the last step the values equal the probe's in the run.

    >>> final = grok.progress_with_final_keys(run)  # final["restricted_loss"]
    """
    if not run.snapshots:
        raise ConfigError("run", "without snapshots", "a run trained with train.snapshots (a count or steps)")
    steps = run.steps_with_snapshots if steps is None else [int(s) for s in steps]
    for s in steps:
        run._snapshot(s)  # a step without a snapshot names the nearest ones
    cfg = probe_config(run, ["progress"])  # checks what the probe needs
    static, dyn = engine.stack_dynamic([cfg.override(**m) for m in run.members])
    engine.ensure_precision(static)
    saved = {name: np.stack([run.snapshots[s][name] for s in steps], axis=1) for name in run.snapshots[steps[0]]}
    program = _final_keys_program(static, engine.registration_tokens(static))
    out = program(
        {k: jnp.asarray(v) for k, v in dyn.items()},
        saved,
        jnp.asarray(final_key_masks(run)),
    )
    return {k: np.asarray(v) for k, v in out.items()} | {"step": np.asarray(steps, np.int64)}


@functools.lru_cache(maxsize=8)
def _final_keys_program(static, tokens: tuple[int, ...]):
    """jit(vmap over members(vmap over snapshots(progress_measures with the member's mask)))."""
    del tokens
    prog = engine.member_program(static)
    p, op = static.task.p, static.task.op

    def member(dyn, saved, mask):
        start = prog.init_state(dyn)

        def at(snapshot):
            params = _substitute(start.params, snapshot, "params/")
            rest = _substitute(start.rest, snapshot, "rest/")
            model = nnx.merge(prog.fwd.graphdef, params, rest)
            scale = dyn["loss.logit_scale"]
            out = progress_measures(model, start.data, p, op, key_mask=mask, logit_scale=scale)
            current = measures.frequency_power(model.tok_embed[...][:p])
            out["current_key_freq"] = measures.key_frequency_mask(current)
            out["sum_sq_weights"] = jnp.square(tree_norm(params))
            return {k: as_metric(static, v) for k, v in out.items()}

        return jax.vmap(at)(saved)

    return jax.jit(jax.vmap(member))
