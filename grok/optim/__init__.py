"""Optimizers as chains of registered optax transforms (docs/formulas.md §4).

Built-ins: the base optimizers `adamw`, `adam`, `sgd` (`grok.optim.base`) and ⊥Grad
`perp_grad` (`grok.optim.perp_grad`), registered with `grok.register_transform` like a user's.
"""

from grok.optim import base
from grok.optim.chain import build_chain, hyperparams, make_optimizer, optimizer_from_config
from grok.optim.perp_grad import perp_grad

__all__ = ["base", "build_chain", "hyperparams", "make_optimizer", "optimizer_from_config", "perp_grad"]
