"""Optimizers as chains of registered optax transforms (docs/formulas.md §4).

Built-ins, registered with `grok.register_transform` like a user's: the base optimizers `adamw`,
`adam`, `sgd` (`grok.optim.base`) and `muon` (`grok.optim.muon`); ⊥Grad `perp_grad`
(`grok.optim.perp_grad`); Grokfast `grokfast_ema`, `grokfast_ma` (`grok.optim.grokfast`); the
fixed weight norm `fixed_norm` (`grok.optim.fixed_norm`, chained after the base).
"""

from grok.optim import base
from grok.optim.chain import build_chain, hyperparams, make_optimizer, optimizer_from_config
from grok.optim.fixed_norm import fixed_norm
from grok.optim.grokfast import grokfast_ema, grokfast_ma
from grok.optim.muon import muon
from grok.optim.perp_grad import perp_grad

__all__ = [
    "base",
    "build_chain",
    "fixed_norm",
    "grokfast_ema",
    "grokfast_ma",
    "hyperparams",
    "make_optimizer",
    "muon",
    "optimizer_from_config",
    "perp_grad",
]
