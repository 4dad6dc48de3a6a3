"""Atomic file writing: a file is either the old one or the complete new one, never half.

Every file eqlgn writes goes through here: the bytes go to a temporary file in
the same directory, are flushed to disk, and the temporary file is renamed over
the target (``os.replace`` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fileobj)`` on a temporary file, then move it onto ``path``.

    Args:
        path: the final file name; its parent directory is created if missing.
        write: a function that writes the whole content to a binary file object.

    Returns:
        The final path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (UTF-8)."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


LOCK_FILE = ".eqlgn.lock"
_held: dict[Path, int] = {}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lock_owner(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip() or "-1")
    except (OSError, ValueError):
        return None


@contextmanager
def run_lock(directory: str | os.PathLike) -> Iterator[Path]:
    """Hold ``directory/.eqlgn.lock`` (the owner's pid) while a run writes into ``directory``.

    A second process that tries to write into the same directory gets an
    :class:`~eqlgn.errors.EqlgnError` naming the owner's pid; a lock left by a process that
    no longer exists (``kill -9``) is taken over. Re-entrant within one process, so
    :func:`eqlgn.run` and the :func:`eqlgn.fit` it calls share one lock.
    """
    from .errors import EqlgnError

    directory = Path(directory).resolve()
    if directory in _held:
        _held[directory] += 1
        try:
            yield directory
        finally:
            _held[directory] -= 1
        return
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / LOCK_FILE
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _lock_owner(lock)
            if owner is not None and owner > 0 and owner != os.getpid() and _process_alive(owner):
                raise EqlgnError(f"{str(directory)!r} is in use by another eqlgn process (pid {owner}); wait for "
                                 "it to finish or choose another output directory") from None
            lock.unlink(missing_ok=True)  # stale: its owner is gone
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(str(os.getpid()))
        break
    else:
        raise EqlgnError(f"could not take the lock {str(lock)!r}; remove it if no eqlgn process is running")
    _held[directory] = 1
    try:
        yield directory
    finally:
        del _held[directory]
        lock.unlink(missing_ok=True)
