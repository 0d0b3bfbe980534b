"""The sweep directory's batches on disk, shared by the runner (resume) and the results (load)."""

from __future__ import annotations

from pathlib import Path

from grok import store
from grok.config import Config
from grok.errors import ConfigError
from grok.store import RunDirError
from grok.sweep.spec import Batch, _jsonable


def batch_complete(out: Path, batch: Batch) -> bool:
    """Whether `batch`'s directory is a finished run of exactly its members."""
    path = out / batch.path
    try:
        store.check_run_dir(path)
    except RunDirError:
        return False
    meta = store.read_json(path / "config.json")
    try:
        same = Config.from_dict(meta["config"]) == batch.group.config
        same = same and _jsonable(meta["members"]) == _jsonable(batch.overrides)
    except (ConfigError, KeyError, TypeError):
        same = False
    if not same:
        raise RunDirError(f"{str(path)!r} holds other members than this sweep expects; the directory was altered")
    return True
