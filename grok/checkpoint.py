"""Checkpoints of a run in progress, so that a killed `grok train --out DIR` resumes where it was.

`DIR/checkpoint/` holds the whole group state after some compiled chunk (every member's
parameters, optimizer state, keys, data, probe references) and the history so far, written whole
like a run directory. Running the same command again restores it and trains the remaining chunks
with the same compiled programs: the finished run is bit-identical to an uninterrupted one. A
checkpoint of another config in DIR is an error naming the difference (or discarded with
`--overwrite`). The finished run replaces the directory, checkpoint included.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from grok import store
from grok.engine import MemberState, Resume
from grok.errors import ConfigError

CHECKPOINT_DIR = "checkpoint"
DEFAULT_EVERY_SECONDS = 300.0  # without train.checkpoint_every: at the first chunk end after 5 minutes


def differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names where two nested dicts (configs as `Config.to_dict`, say) differ."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out: list[str] = []
        for key in dict.fromkeys([*old, *new]):
            out += differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [prefix.rstrip(".")]


class RunCheckpoint:
    """The checkpoint of one run directory (see the module docstring); an `engine.Checkpointer`."""

    def __init__(
        self,
        path: str | Path,
        identity: Mapping[str, Any],
        *,
        every_steps: int | None,
        discard_other: bool = False,
        every_seconds: float = DEFAULT_EVERY_SECONDS,
    ):
        self.path = Path(path)
        self.identity = json.loads(json.dumps(identity, default=store._json_default))
        self.every_steps, self.every_seconds, self.discard_other = every_steps, every_seconds, discard_other
        self._last_step, self._last_time = 0, time.monotonic()

    # ---------------------------------------------------------------- restore
    def restore(self, abstract: MemberState, layout: Mapping[str, Any]) -> Resume | None:
        """The saved state in `abstract`'s structure, or None when there is no checkpoint."""
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            return None
        meta = store.read_json(meta_path)
        diff = differences(meta.get("identity"), self.identity)
        if diff or meta.get("layout") != json.loads(json.dumps(dict(layout))):
            if self.discard_other:
                self.clear()
                return None
            what = ", ".join(diff) if diff else f"its chunk layout {meta.get('layout')}"
            raise ConfigError(
                "--out",
                str(self.path.parent),
                f"a directory without another run's checkpoint: it holds one that differs in {what} "
                "(run the original command to resume it, or pass --overwrite to discard it)",
            )
        for name, digest in meta.get("files", {}).items():
            if store.sha256((self.path / name).read_bytes()) != digest:
                raise store.RunDirError(f"checkpoint {str(self.path)!r} is corrupt: {name} does not match its hash")
        saved = store.read_npz(self.path / "state.npz")
        leaves, treedef = jax.tree_util.tree_flatten(abstract)
        restored = []
        for i, leaf in enumerate(leaves):
            value = saved[f"leaf_{i:05d}"]
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                value = jax.random.wrap_key_data(value)
            elif value.shape != leaf.shape or value.dtype != leaf.dtype:
                raise store.RunDirError(f"checkpoint {str(self.path)!r} does not fit this run (leaf {i})")
            restored.append(value)
        history = store.read_npz(self.path / "history.npz")
        snapshots: dict[int, dict[str, np.ndarray]] = {}
        for key, value in store.read_npz(self.path / "snapshots.npz").items():
            step, _, name = key.partition("|")
            snapshots.setdefault(int(step), {})[name] = value
        self._last_step = int(meta["steps_done"])
        state = jax.tree_util.tree_unflatten(treedef, restored)
        return Resume(int(meta["chunks_done"]), state, history, snapshots)

    # ---------------------------------------------------------------- save
    def after_chunk(
        self, done: int, total: int, steps_done: int, snapshot: Callable[[], Resume], layout: Mapping[str, Any]
    ) -> None:
        """Save when due: every `every_steps` steps, else every `every_seconds` of wall time (never after
        the last chunk: the finished run is written then)."""
        if done >= total:
            return
        if self.every_steps is not None:
            due = steps_done - self._last_step >= self.every_steps
        else:
            due = time.monotonic() - self._last_time >= self.every_seconds
        if due:
            self.save(snapshot(), layout, steps_done)

    def save(self, resume: Resume, layout: Mapping[str, Any], steps_done: int) -> None:
        leaves = jax.tree_util.tree_leaves(resume.state)
        arrays = {}
        for i, leaf in enumerate(leaves):
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                leaf = jax.random.key_data(leaf)
            arrays[f"leaf_{i:05d}"] = np.asarray(leaf)
        snaps = {f"{step}|{name}": arr for step, snap in resume.snapshots.items() for name, arr in snap.items()}
        files = {
            "state.npz": store.npz_bytes(arrays),
            "history.npz": store.npz_bytes(resume.history),
            "snapshots.npz": store.npz_bytes(snaps),
        }
        meta = {
            "identity": self.identity,
            "layout": dict(layout),
            "chunks_done": resume.chunks_done,
            "steps_done": steps_done,
            "files": {name: store.sha256(data) for name, data in files.items()},
        }
        files["meta.json"] = store.json_bytes(meta)
        store.write_dir_whole(self.path, files)
        self._last_step, self._last_time = steps_done, time.monotonic()

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
