"""Run directories on disk; every write is atomic (temp file + rename).

A run directory holds `config.json` (base config and per-member overrides),
`history.npz` (`step` and one array per metric, `[members, intervals, ...]`),
`params.npz` (final model state per member, `[members, ...]`) and, written last,
`status.json`. A directory without a finished `status.json` is never read as a result.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


class RunDirError(ValueError):
    """A run (or sweep) directory that is missing, incomplete or of another kind."""


FILES = ("config.json", "history.npz", "params.npz", "status.json")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def atomic_write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def read_json(path: str | Path) -> Any:
    with open(path) as fh:
        return json.load(fh)


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def check_run_dir(path: str | Path) -> Path:
    """The path of a complete run directory, or a clear RunDirError."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"run directory {str(path)!r} does not exist")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise RunDirError(f"run directory {str(path)!r} is incomplete: missing {', '.join(missing)}")
    status = read_json(path / "status.json")
    if status.get("state") != "finished":
        raise RunDirError(f"run directory {str(path)!r} is incomplete: status is {status.get('state')!r}")
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
