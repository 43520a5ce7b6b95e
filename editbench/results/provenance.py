"""What produced a result: package and library versions, git commit and dirty flag, checkpoint hashes
and whatever the track adds (the reader's accuracy)."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "diffusers", "transformers", "peft", "numpy", "safetensors")


def git() -> dict[str, Any]:
    """The checkout's commit and whether tracked files differ from it. A copy of the tree without its ``.git`` (a
    cluster node or a GPU machine sent the files alone) names its commit in ``EDITBENCH_COMMIT``, recorded as
    such (``dirty`` then unknown)."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    if os.environ.get("EDITBENCH_COMMIT"):
        return {"commit": os.environ["EDITBENCH_COMMIT"], "dirty": None, "source": "EDITBENCH_COMMIT"}
    return {"commit": None, "dirty": None}


def versions() -> dict[str, str | None]:
    out = {}
    for pkg in LIBRARIES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def provenance(track: Any, checkpoints: dict[str, str | None]) -> dict[str, Any]:
    """Provenance of results computed on ``track`` with ``checkpoints`` (None: the shipped ones)."""
    from editbench import __version__

    return {"editbench": __version__, "git": git(), "python": platform.python_version(), "versions": versions(),
            "track": track.name, "checkpoints": track.checkpoint_hashes(checkpoints), **track.provenance(checkpoints)}
