"""JAX's persistent compilation cache, on by default: a program compiled once is read from disk by
every later process (the first `grok.train` of a fresh kernel then skips XLA's compile).

The cache lives in `$GROK_CACHE_DIR` (default `~/.cache/grok-lab/jax`); `GROK_CACHE_DIR=off` (or
`grok.compile_cache.disable()`) turns it off. A cache directory the user set for JAX itself
(`jax_compilation_cache_dir`) is kept. JAX's own threshold stays: programs that compile in under a
second are not written (caching every one, tried, made concurrent test processes read entries
another was still writing and abort).
"""

from __future__ import annotations

import os

import jax

OFF = ("off", "0", "false", "none", "")
_DEFAULT = os.path.join(os.path.expanduser("~"), ".cache", "grok-lab", "jax")


def cache_dir() -> str | None:
    """The directory grok asks JAX to cache compiled programs in (None: turned off)."""
    value = os.environ.get("GROK_CACHE_DIR")
    if value is None:
        return _DEFAULT
    return None if value.strip().lower() in OFF else os.path.expanduser(value)


def enable() -> str | None:
    """Switch the persistent cache on (unless turned off, or JAX already has a directory); returns it."""
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    path = cache_dir()
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    return path


def disable() -> None:
    """Switch the persistent cache off for this process.

    >>> grok.compile_cache.disable()
    """
    jax.config.update("jax_compilation_cache_dir", None)
