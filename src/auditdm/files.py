"""Files written whole or not at all: a reader, a resume or a user sees the old file, the new
one, or none, never half of one (a kill, a full disk)."""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from auditdm.errors import UserError


def check_output(path: Path, folder: bool = False) -> None:
    """One clear line before anything is written: ``path`` is a file (or, with ``folder``, a
    folder) to write, in a folder that exists."""
    if not path.parent.is_dir():
        raise UserError(f"{path}: the folder {path.parent} does not exist")
    if path.is_dir() and not folder:
        raise UserError(f"{path} is a folder: name a file to write")
    if path.exists() and folder and not path.is_dir():
        raise UserError(f"{path} is a file: name a folder to write")


@contextmanager
def replacing(path: Path, folder: bool = False) -> Iterator[Path]:
    """A path beside ``path`` to write (a file, or with ``folder`` a folder); on success it
    replaces ``path``, on failure it is removed. Only a folder replaces a folder: the caller
    vouches that the one it replaces is its own."""
    check_output(path, folder)
    _remove_stale(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        yield partial
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(partial, path)
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)


def _remove_stale(path: Path) -> None:
    """Remove what a killed writer of ``path`` left beside it (its process is gone)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.partial"):
        pid = stale.name.removeprefix(f".{path.name}.").removesuffix(".partial")
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def cache_dir() -> Path:
    """Where results worth keeping between runs go: ``$AUDITDM_CACHE``, else the user's cache."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("AUDITDM_CACHE") or Path(base) / "auditdm")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with replacing(path) as partial:
        partial.write_text(text)
