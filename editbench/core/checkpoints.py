"""Checkpoint safety and identity, for every track: only complete safetensors files are loaded, and a
checkpoint is named in results by a hash of its files.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from pathlib import Path

from .errors import UserError

UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be loaded safely; the message says which file and why."""


def check_safetensors(folder: str | Path, weights_name: str, config_name: str = "config.json") -> Path:
    """The weights file of a checkpoint folder, refusing anything that is not a complete safetensors
    file (pickles, truncated or corrupt files) and folders without a config."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {str(folder)!r} does not exist")
    if not (folder / config_name).is_file():
        raise CheckpointError(f"{str(folder)!r} has no {config_name}; expected a folder written by save_pretrained")
    weights = folder / weights_name
    if not weights.is_file():
        others = [p.name for p in folder.iterdir() if p.suffix in UNSAFE_SUFFIXES]
        hint = f" (found {others}: pickled weights are refused, convert them to safetensors)" if others else ""
        raise CheckpointError(f"{str(folder)!r} has no {weights_name}{hint}")
    size = weights.stat().st_size
    with open(weights, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{str(weights)!r} is not a safetensors file (only {size} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n <= 0 or n > min(size - 8, 100_000_000):
            raise CheckpointError(f"{str(weights)!r} is not a safetensors file (bad header; a pickle or another format?)")
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CheckpointError(f"{str(weights)!r} is not a safetensors file (unreadable header)") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise CheckpointError(f"{str(weights)!r} is truncated or corrupt: header describes {8 + n + end} bytes, file has {size}")
    return weights


def folder_hash(folder: str | Path, names: Sequence[str]) -> str:
    """sha256 (first 16 hex digits) of the named files of a checkpoint folder, for provenance."""
    h = hashlib.sha256()
    for name in names:
        h.update((Path(folder) / name).read_bytes())
    return h.hexdigest()[:16]
