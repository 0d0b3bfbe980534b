"""Modules imported on first use, so that `import grok` stays close to `import jax` alone.

`from grok.lazy_import import nnx` gives a stand-in for `flax.nnx` (about a third of a second to
import) that imports it the first time an attribute is read: the config, presets, registries and
loading a run's history never need it; building a model does.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """A module object that imports the real one (and becomes a view of it) on first attribute access."""

    def __init__(self, name: str):
        super().__init__(name)
        self._target: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        if self._target is None:
            self._target = importlib.import_module(self.__name__)
        return getattr(self._target, attr)


nnx = LazyModule("flax.nnx")
