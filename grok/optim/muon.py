"""Muon for the hidden weight matrices, AdamW for the rest, registered as the base optimizer
`muon` (docs/formulas.md §4.9).

`optim.kind = "muon"`: every 2-D parameter whose path names none of `optim.muon.exclude` (the
input and output layers: `first`, `readout` of the MLPs; `w` of the α-net; `tok_embed`,
`pos_embed`, `unembed` of the transformer) is updated by `optax.contrib.muon` (optax ≥ 0.2.5: Nesterov momentum β,
Newton–Schulz orthogonalization, decoupled weight decay, learning rate `optim.lr`) with one of two
update scales: by default optax's √max(1, fan_out/fan_in); with `optim.muon.rms = r > 0` the
"consistent RMS" scale r·√max(fan_in, fan_out) of Liu et al. 2025 (*Muon is Scalable for LLM
Training*; r = 0.2 there), which gives the orthogonalized update the RMS of a typical AdamW update,
so that Muon can share AdamW's learning rate and weight decay. Without it an orthogonalized
128×128 update has entries of size ~lr/√128, an order of magnitude below AdamW's ~lr, while the
decoupled weight decay shrinks the matrix at AdamW's rate. Every other parameter gets grok's
AdamW (`optim.lr`, `b1`, `b2`, `eps`, `weight_decay`). A model without hidden matrices (a
one-hidden-layer MLP) is trained by AdamW alone.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import optax
from optax import contrib

from grok.errors import ConfigError
from grok.optim.base import adamw
from grok.registry import register_transform

EXCLUDE = "first,readout,tok_embed,pos_embed,unembed,w"  # `w`: the α-net's input layer


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def hidden_matrix_labels(params: Any, exclude: str = EXCLUDE) -> Any:
    """ "muon" for each 2-D leaf whose path names none of `exclude` (comma-separated), else "adamw"."""
    names = {n.strip() for n in exclude.split(",") if n.strip()}

    def label(path: tuple, leaf: Any) -> str:
        hidden = leaf.ndim == 2 and not names & {_key_name(k) for k in path}
        return "muon" if hidden else "adamw"

    return jax.tree_util.tree_map_with_path(label, params)


def muon(
    lr, b1, b2, eps, weight_decay, beta: float = 0.95, ns_steps: int = 5, exclude: str = EXCLUDE, rms: float = 0.0
) -> optax.GradientTransformation:
    """Muon (`optax.contrib.muon`, Nesterov) on the hidden matrices, AdamW on the other parameters.
    `rms > 0`: the consistent-RMS update scale rms·√max(fan_in, fan_out) instead of optax's default."""
    scale = {"consistent_rms": rms} if rms > 0 else {}
    hidden = contrib.muon(lr, beta=beta, ns_steps=ns_steps, eps=eps, weight_decay=weight_decay, nesterov=True, **scale)
    rest = adamw(lr, b1, b2, eps, weight_decay)
    return optax.partition({"muon": hidden, "adamw": rest}, lambda p: hidden_matrix_labels(p, exclude))


def _check(values: dict) -> None:
    rms = values["rms"]
    if not rms >= 0:
        raise ConfigError("optim.muon.rms", rms, "a number >= 0 (0: optax's width scale; 0.2: consistent RMS)")
    if rms > 0 and "consistent_rms" not in inspect.signature(contrib.muon).parameters:
        allowed = f"0 with optax {optax.__version__}, whose contrib.muon has no consistent_rms"
        raise ConfigError("optim.muon.rms", rms, allowed)


register_transform(
    "muon",
    muon,
    shared=("lr", "b1", "b2", "eps", "weight_decay"),
    static=("ns_steps", "rms"),
    ranges={"beta": (0.0, 1.0)},
    check=_check,
    beta=0.95,
    ns_steps=5,
    exclude=EXCLUDE,
    rms=0.0,
)
