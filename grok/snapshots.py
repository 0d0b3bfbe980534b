"""Parameter snapshots of a run: the members' state at chosen steps (docs/architecture.md,
"Schedules and snapshots").

A snapshot is the flat dict `{"params/<path>": [members, ...], "rest/<path>": ...}` a run's final
`state` also is (PRNG keys left out: probes run in evaluation mode). The engine keeps a chunk's
snapshots in a buffer on device and copies them to the host after each chunk; a run directory
stores one `snapshots/step_<step>.npz` per step, so reading one snapshot reads one file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from grok import store

DIR = "snapshots"


def path_name(path) -> str:
    """A pytree path as `layer/kernel` (nnx's `value` wrappers left out)."""
    parts = []
    for entry in path:
        name = getattr(entry, "key", getattr(entry, "name", getattr(entry, "idx", None)))
        if name == "value":
            continue
        parts.append(str(name))
    return "/".join(parts)


def named_leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    """`{prefix + "layer/kernel": leaf}` for every leaf that is not a PRNG key (arrays or tracers)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            continue
        out[prefix + path_name(path)] = leaf
    return out


def state_leaves(params: Any, rest: Any) -> dict[str, Any]:
    """What a snapshot keeps of a member: its parameters and the rest of its model state."""
    return named_leaves(params, "params/") | named_leaves(rest, "rest/")


def file_name(step: int) -> str:
    return f"step_{int(step):09d}.npz"


class Snapshots(Mapping[int, dict[str, np.ndarray]]):
    """Snapshots by step, held in memory (after training) or read one file at a time from a run
    directory (after `grok.load_run`)."""

    def __init__(self, arrays: Mapping[int, Mapping[str, np.ndarray]] | None = None, directory: Path | None = None):
        self._arrays = {int(s): dict(a) for s, a in (arrays or {}).items()}
        self._dir = directory
        if directory is not None:
            found = sorted(int(p.stem.removeprefix("step_")) for p in directory.glob("step_*.npz"))
            self._steps = tuple(found)
        else:
            self._steps = tuple(sorted(self._arrays))

    @classmethod
    def load(cls, run_dir: str | Path) -> Snapshots:
        """The snapshots of a run directory (none if it kept none); nothing is read yet."""
        path = Path(run_dir) / DIR
        return cls(directory=path) if path.is_dir() else cls()

    @property
    def steps(self) -> tuple[int, ...]:
        return self._steps

    def __getitem__(self, step: int) -> dict[str, np.ndarray]:
        step = int(step)
        if step not in self._steps:
            raise KeyError(step)
        if step not in self._arrays:
            return store.read_npz(self._dir / file_name(step))
        return self._arrays[step]

    def __contains__(self, step: object) -> bool:
        return isinstance(step, (int, np.integer)) and int(step) in self._steps

    def __iter__(self):
        return iter(self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    def save(self, run_dir: str | Path) -> None:
        """One file per step under `run_dir/snapshots/` (atomic writes)."""
        for step in self._steps:
            store.atomic_write_npz(Path(run_dir) / DIR / file_name(step), self[step])

    def nearest(self, step: int, k: int = 2) -> list[int]:
        """The `k` snapshot steps closest to `step`."""
        return sorted(sorted(self._steps, key=lambda s: (abs(s - step), s))[:k])
