"""Muon for the hidden weight matrices, AdamW for the rest, registered as the base optimizer
`muon` (docs/formulas.md §4.9).

`optim.kind = "muon"`: every 2-D parameter whose path names none of `optim.muon.exclude` (the
input and output layers: `first`, `readout` of the MLPs; `tok_embed`, `pos_embed`, `unembed` of
the transformer) is updated by `optax.contrib.muon` (optax ≥ 0.2.5: Nesterov momentum β,
Newton–Schulz orthogonalization, the shape scale √max(1, fan_out/fan_in), decoupled weight decay,
learning rate `optim.lr`). Every other parameter gets grok's AdamW (`optim.lr`, `b1`, `b2`, `eps`,
`weight_decay`). A model without hidden matrices (a one-hidden-layer MLP) is trained by AdamW alone.
"""

from __future__ import annotations

from typing import Any

import jax
import optax
from optax import contrib

from grok.optim.base import adamw
from grok.registry import register_transform

EXCLUDE = "first,readout,tok_embed,pos_embed,unembed"


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
    lr, b1, b2, eps, weight_decay, beta: float = 0.95, ns_steps: int = 5, exclude: str = EXCLUDE
) -> optax.GradientTransformation:
    """Muon (`optax.contrib.muon`, Nesterov) on the hidden matrices, AdamW on the other parameters."""
    hidden = contrib.muon(lr, beta=beta, ns_steps=ns_steps, eps=eps, weight_decay=weight_decay, nesterov=True)
    rest = adamw(lr, b1, b2, eps, weight_decay)
    return optax.partition({"muon": hidden, "adamw": rest}, lambda p: hidden_matrix_labels(p, exclude))


register_transform(
    "muon",
    muon,
    shared=("lr", "b1", "b2", "eps", "weight_decay"),
    static=("ns_steps",),
    ranges={"beta": (0.0, 1.0)},
    beta=0.95,
    ns_steps=5,
    exclude=EXCLUDE,
)
