"""Run directories on disk: written whole or not at all, checked when read, locked while written.

A run directory holds `config.json` (base config and per-member overrides),
`history.npz` (`step` and one array per metric, `[members, intervals, ...]`),
`params.npz` (final model state per member, `[members, ...]`) and `status.json`, which
records the SHA-256 of each other file. `write_run_dir` writes all four into a temporary
sibling and renames it into place, so a reader sees the old complete run or the new one, never
a mix; `check_run_dir` verifies the hashes, so a file changed or truncated afterwards is reported
as corrupt, naming it. `DirLock` keeps two processes from writing one output directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
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
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a result is shared like any file one writes
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, default=_json_default) + "\n").encode()


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, json_bytes(obj))


def atomic_write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    atomic_write_bytes(path, npz_bytes(arrays))


def read_json(path: str | Path) -> Any:
    """A JSON file's contents; an unreadable or malformed file is a RunDirError naming it."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as err:
        raise RunDirError(f"{str(path)!r} is not readable JSON ({type(err).__name__}: {err})") from None


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """An .npz file's arrays; a truncated or malformed file is a RunDirError naming it."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise RunDirError(f"{str(path)!r} is not a readable .npz file ({type(err).__name__}: {err})") from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _describe_path(path: Path) -> str:
    if path.is_file():
        return f"{str(path)!r} is a file, not a run directory"
    return f"run directory {str(path)!r} does not exist"


def check_run_dir(path: str | Path) -> Path:
    """The path of a complete run directory whose files match their recorded hashes, or a RunDirError."""
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(_describe_path(path))
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise RunDirError(f"run directory {str(path)!r} is incomplete: missing {', '.join(missing)}")
    status = read_json(path / "status.json")
    if not isinstance(status, dict) or status.get("state") != "finished":
        state = status.get("state") if isinstance(status, dict) else status
        raise RunDirError(f"run directory {str(path)!r} is incomplete: status is {state!r}")
    for name, digest in (status.get("files") or {}).items():
        if sha256((path / name).read_bytes()) != digest:
            raise RunDirError(
                f"run directory {str(path)!r} is corrupt: {name} does not match the hash status.json records"
            )
    return path


def is_run_dir(path: Path) -> bool:
    """Whether `path` holds a run (finished or not): any of its files."""
    return path.is_dir() and any((path / f).exists() for f in FILES)


def sweep_owning(path: Path) -> Path | None:
    """The sweep directory `path` lies in (a `sweep.json` in it or an ancestor), if any."""
    for parent in [path, *path.parents]:
        if (parent / "sweep.json").is_file():
            return parent
    return None


def check_out_dir(path: str | Path, *, overwrite: bool = False, what: str = "--out") -> Path:
    """Check an output run directory before any work: not empty, not a file, not inside a sweep,
    not another finished run unless `overwrite`, not a non-empty directory of something else, and
    its parent writable. Returns it as a Path; raises RunDirError."""
    if path is None or not str(path).strip():
        raise RunDirError(f"{what}: got {path!r}; allowed: a directory path to write the run to")
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{what}: {str(path)!r} is a file; allowed: a directory (new, or a run to --overwrite)")
    owner = sweep_owning(path.resolve())
    if owner is not None:
        raise RunDirError(
            f"{what}: {str(path)!r} belongs to the sweep in {str(owner)!r}; a run may not be written there"
        )
    in_progress = {path / "checkpoint", *temporary_siblings(path / "checkpoint")}  # a killed run's checkpoint
    if is_run_dir(path):
        if not overwrite:
            raise RunDirError(
                f"{what}: {str(path)!r} already holds a run; pass --overwrite (overwrite=True) to replace it"
            )
    elif path.is_dir() and any(p not in in_progress for p in path.iterdir()):  # a run in progress is fine
        raise RunDirError(f"{what}: {str(path)!r} is a non-empty directory that is not a run; choose a new directory")
    check_writable(path, what)
    return path


def check_writable(path: Path, what: str) -> None:
    """A RunDirError unless `path` (or its nearest existing ancestor) is a directory a file can be
    created in: tried for real, since permission bits do not tell (root, /proc, read-only mounts)."""
    parent = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    reason = None
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        reason = "not a writable directory"
    else:
        try:
            fd, probe = tempfile.mkstemp(dir=parent, prefix=".grok-write-check-")
            os.close(fd)
            os.unlink(probe)
        except OSError as err:
            reason = f"not a writable directory ({err.strerror or type(err).__name__})"
    if reason:
        raise RunDirError(f"{what}: cannot create {str(path)!r}: {str(parent)!r} is {reason}")


def write_run_dir(
    path: str | Path,
    config: Any,
    history: Mapping[str, np.ndarray],
    params: Mapping[str, np.ndarray],
    status: Mapping[str, Any],
    *,
    extra: Callable[[Path], None] | None = None,
) -> Path:
    """Write a run directory whole (`write_dir_whole`); `status.json` gets the SHA-256 of the other
    files. `extra(tmp_dir)` writes more (the snapshots) into the directory before it is in place."""
    files = {"config.json": json_bytes(config), "history.npz": npz_bytes(history), "params.npz": npz_bytes(params)}
    record = dict(status) | {"files": {name: sha256(data) for name, data in files.items()}}
    files["status.json"] = json_bytes(record)
    return write_dir_whole(path, files, extra=extra)


def write_dir_whole(
    path: str | Path, files: Mapping[str, bytes], *, extra: Callable[[Path], None] | None = None
) -> Path:
    """Write a directory of files whole: into a temporary sibling, then renamed into place (an old
    directory there is moved aside first and removed only after the new one is in place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.new-"))
    old = None
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if extra is not None:
            extra(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
            os.rmdir(old)
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.rename(old, path)  # put the old directory back
            old = None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def temporary_siblings(path: str | Path) -> list[Path]:
    """The `.<name>.new-*` / `.<name>.old-*` directories an interrupted `write_dir_whole(path)` left."""
    path = Path(path)
    return sorted([*path.parent.glob(f".{path.name}.new-*"), *path.parent.glob(f".{path.name}.old-*")])


def recover_dir(path: str | Path) -> None:
    """Undo what a killed `write_dir_whole(path)` left: if it died between moving the old directory
    aside and renaming the new one into place, the old one (whole) is put back; every temporary
    sibling is then removed. A new directory that never reached its name was not finished."""
    path = Path(path)
    olds = sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if not path.exists() and olds:
        os.rename(olds[-1], path)
    for leftover in temporary_siblings(path):
        shutil.rmtree(leftover, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- locks
class LockedError(RunDirError):
    """Another live process is writing the same output directory."""


@contextlib.contextmanager
def dir_lock(path: str | Path):
    """Hold `<parent>/.<name>.lock` while writing `path`: a second process gets a LockedError naming
    the holder (pid, host); a lock left by a dead process on this host is taken over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    me = {"pid": os.getpid(), "host": socket.gethostname()}
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is None and _age_s(lock) < 10:  # being written by a process that just took it
                holder = {"pid": "?", "host": "?"}
            if holder is not None and _alive(holder):
                raise LockedError(
                    f"{str(path)!r} is being written by process {holder.get('pid')} on {holder.get('host')} "
                    f"(lock {str(lock)!r}); wait for it, or remove the lock if that process is gone"
                ) from None
            with contextlib.suppress(FileNotFoundError):  # stale: its holder is dead
                os.unlink(lock)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        break
    else:
        raise LockedError(f"could not take the lock {str(lock)!r}")
    try:
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            if _lock_holder(lock) == me:
                os.unlink(lock)


def _lock_holder(lock: Path) -> dict | None:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return None


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _alive(holder: Mapping[str, Any]) -> bool:
    """Whether a lock's holder may still run (a process on another host is assumed alive)."""
    if holder.get("host") != socket.gethostname() or holder.get("pid") == "?":
        return True
    try:
        os.kill(int(holder.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True
    return True


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
