"""The `progress` probe [N], registered like a user's (docs/formulas.md §5).

Every log interval, for a one-layer transformer on (a ± b) mod p, over the full p² grid:
`fourier_embed` [K+1] (norm of the token embedding per frequency), `key_freq` (bool [K+1]) and
`n_key_freqs`, `restricted_loss`, `excluded_loss`, `gini_embed`, `gini_logit`, `sum_sq_weights`,
`neuron_freq_frac` / `neuron_freq` (per MLP neuron) and `neuron_freq_frac_mean`. The key
frequencies are those of the current embedding (formulas §5 states the rule); with none, the
restricted and excluded losses are NaN. `progress_measures` computes the same numbers for a saved
model with a given set of key frequencies; `progress_with_final_keys(run)` computes them on a run's
snapshots with each member's final key frequencies, as [N] do (`grok/progress_measures_posthoc.py`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from grok.errors import ConfigError
from grok.forward import tree_norm
from grok.registry import ProbeInputs, register_probe
from probes import progress_measures as measures

Array = jax.Array

SIGNS = {"add": 1, "sub": -1}  # the ops whose answer is a function of a ± b


def progress_measures(
    model: Any, data: Any, p: int, op: str, *, key_mask: Array | None = None, logit_scale: Any = 1.0
) -> dict[str, Array]:
    """[N]'s measures of one transformer `model` (NNX, with `forward` and `neuron_logit_map`) on its task data.

    `key_mask` (bool [K+1]) fixes the key frequencies; None finds them in the current embedding.
    """
    sign = SIGNS[op]
    embed = model.tok_embed[...][:p]
    power = measures.frequency_power(embed)
    mask = measures.key_frequency_mask(power) if key_mask is None else jnp.asarray(key_mask, bool)
    acts, logits = model.forward(data.x_all, train=False)
    scale = jnp.asarray(logit_scale, logits.dtype)
    logits = logits * scale
    w_l = model.neuron_logit_map() * scale
    train_index = data.x_train[:, 0] * p + data.x_train[:, 1]
    F = jnp.asarray(measures.fourier_basis(p), embed.dtype)
    frac, freq = measures.neuron_frequency_fraction(acts.reshape(p, p, -1))
    return {
        "fourier_embed": jnp.sqrt(power),
        "key_freq": mask,
        "n_key_freqs": jnp.sum(mask).astype(jnp.int32),
        "restricted_loss": measures.restricted_loss(acts, w_l, logits, data.y_all, mask, sign),
        "excluded_loss": measures.excluded_loss(logits, train_index, data.y_train, mask, sign),
        "gini_embed": measures.gini(jnp.linalg.norm(F @ embed, axis=-1)),
        "gini_logit": measures.gini(jnp.linalg.norm(F @ w_l.T, axis=-1)),
        "neuron_freq_frac": frac,
        "neuron_freq": freq,
        "neuron_freq_frac_mean": jnp.mean(frac),
    }


def progress_probe(x: ProbeInputs) -> dict[str, Array]:
    """Key frequencies, restricted / excluded loss, Gini coefficients, weight norm, neuron clusters [N]."""
    cfg = x.config
    out = progress_measures(x.model(), x.data, cfg.task.p, cfg.task.op, logit_scale=x.dyn["loss.logit_scale"])
    out["sum_sq_weights"] = jnp.square(tree_norm(x.params))
    return out


def final_key_masks(run) -> np.ndarray:
    """Each member's key frequencies in its final trained embedding → bool [members, K+1]."""
    p = run.config.task.p
    embed = np.asarray(run.state["params/tok_embed"])[:, :p]
    power = jax.vmap(measures.frequency_power)(jnp.asarray(embed))
    return np.asarray(jax.vmap(measures.key_frequency_mask)(power))


def _requires(cfg) -> str | None:
    """A ConfigError naming what `progress` needs: (a ± b) mod odd p, a transformer without LayerNorm."""
    need = "probe 'progress' needs"
    if cfg.task.kind != "modular":
        raise ConfigError("task.kind", cfg.task.kind, f"'modular' ({need} (a ± b) mod p)")
    if cfg.task.op not in SIGNS:
        raise ConfigError("task.op", cfg.task.op, f"one of {', '.join(SIGNS)} ({need} an answer that depends on a ± b)")
    if cfg.task.p % 2 == 0:
        raise ConfigError("task.p", cfg.task.p, f"an odd prime ({need} the real Fourier basis of odd p)")
    if cfg.model.kind != "transformer":
        raise ConfigError(
            "model.kind", cfg.model.kind, f"'transformer' ({need} a token embedding and MLP neurons read out linearly)"
        )
    if cfg.model.layernorm:
        raise ConfigError("model.layernorm", True, f"false ({need} logits linear in the MLP neurons)")
    return None


def _memory(cfg, param_bytes: int) -> int:
    """Activations and logits on the full grid, and the 2D Fourier coefficients of the neurons."""
    p2 = cfg.task.p**2
    return 4 * p2 * (3 * cfg.model.d_mlp + 6 * cfg.model.d_model + 2 * cfg.spec.n_classes)


register_probe(
    "progress",
    progress_probe,
    requires=_requires,
    memory=_memory,
    metrics=(
        "fourier_embed",
        "key_freq",
        "n_key_freqs",
        "restricted_loss",
        "excluded_loss",
        "gini_embed",
        "gini_logit",
        "sum_sq_weights",
        "neuron_freq_frac",
        "neuron_freq",
        "neuron_freq_frac_mean",
    ),
)
