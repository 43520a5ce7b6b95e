"""The one atomic writer: every file and folder editbench writes appears whole or not at all.

Writers go to a temporary sibling (``.NAME.PID.tmp``) and ``os.replace`` it over the target, so a
process killed mid-write leaves the previous version (or nothing) and a stray ``*.tmp`` that
:func:`clean_stale` removes. ``fsync`` makes result files survive a crash of the machine too.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", fsync: bool = False, opener: Callable[..., IO] = open
                ) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; it replaces ``path`` when the block ends
    without an exception, and is removed when it raises. ``opener`` may be e.g. ``gzip.open``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        with opener(tmp, mode) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str, fsync: bool = False) -> Path:
    with atomic_open(path, "w", fsync=fsync) as f:
        f.write(text)
    return Path(path)


def write_json(path: str | Path, obj: Any, indent: int | None = 1, fsync: bool = False) -> Path:
    with atomic_open(path, "w", fsync=fsync) as f:
        json.dump(obj, f, indent=indent, sort_keys=True, default=str)
    return Path(path)


def write_with(path: str | Path, save: Callable[[Path], Any]) -> Path:
    """``save(tmp)`` writes a file (e.g. ``image.save``, ``save_file``); it is renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_dir(path: str | Path, fill: Callable[[Path], Any], keep_old: bool = False) -> Path:
    """``fill(tmp)`` writes a whole folder, which then replaces ``path``. With ``keep_old`` the
    previous folder stays as ``NAME.old`` until the new one is in place (checkpoints)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp(path)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        fill(tmp)
        old = path.with_name(path.name + ".old")
        if path.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old.exists() and not keep_old:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def cache_dir() -> Path:
    """Where editbench caches what it can recompute (key moments, written task folders):
    ``$EDITBENCH_CACHE``, else ``~/.cache/editbench``."""
    return Path(os.environ.get("EDITBENCH_CACHE", Path.home() / ".cache" / "editbench"))


def clean_stale(folder: str | Path) -> int:
    """Remove temporary files and folders left under ``folder`` by writers that were killed."""
    folder = Path(folder)
    if not folder.exists():
        return 0
    stale = [p for p in folder.rglob(".*.tmp")]
    for p in stale:
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    return len(stale)
