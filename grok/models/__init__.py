"""Networks of docs/formulas.md §3 (Flax NNX): MLP [P], quadratic MLP and its analytic solution [D],
α-scaled two-layer net [K], one-layer transformer.

The engine splits a built model once into `(graphdef, params, rest)` with
`nnx.split(model, nnx.Param, ...)`: `params` are trained; `rest` holds `Hyper` values,
`InitParam` copies, BatchNorm `BatchStat`s and the dropout RNG stream, and is threaded
through the forward pass (dropout advances the stream, BatchNorm updates its statistics).

Each model module registers its kinds with `grok.register_model`, as a user's notebook would.
"""

from grok.models._alpha_net import AlphaNet
from grok.models._api import analytic_solution, build_model, param_count
from grok.models._common import Hyper, InitParam, doshi_std
from grok.models._mlp import MLP, QuadraticMLP, apply_neuron_mask, neuron_weights
from grok.models._transformer import Transformer

__all__ = [
    "MLP",
    "AlphaNet",
    "Hyper",
    "InitParam",
    "QuadraticMLP",
    "Transformer",
    "analytic_solution",
    "apply_neuron_mask",
    "build_model",
    "doshi_std",
    "neuron_weights",
    "param_count",
]
