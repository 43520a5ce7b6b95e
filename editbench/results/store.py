"""The result store: one JSON file per cell (written atomically, with a PNG of its before/after
outputs), read back from folders or from compact exports (``.jsonl.gz``), and merged from several
sources for one leaderboard."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from editbench.core import io

from .schema import ResultsError, upgrade


def write_result(path: str | Path, record: dict[str, Any]) -> Path:
    return io.write_json(path, record, fsync=True)


def write_strip(path: str | Path, before: torch.Tensor, after: torch.Tensor) -> Path:
    """The cell's before/after picture: unedited images on top, edited below (PNG)."""
    from PIL import Image

    grid = torch.cat([torch.cat(list(before), 2), torch.cat(list(after), 2)], 1)  # (3, 2H, kW)
    pixels = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return io.write_with(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))


def load_results(out: str | Path) -> list[dict[str, Any]]:
    """Every cell result file under a folder, as written (each with ``_path``, the file it came from)."""
    recs = []
    for p in sorted(Path(out).rglob("*.json")):
        if p.name.startswith("."):
            continue
        rec = json.loads(p.read_text())
        rec["_path"] = str(p)
        recs.append(rec)
    return recs


def read_records(results: str | Path) -> list[dict[str, Any]]:
    """Cell records in the current schema from a results folder (one JSON per cell) or an export
    (``.jsonl`` / ``.jsonl.gz``); each carries ``_path``."""
    results = Path(results)
    try:
        if results.is_file() and results.name.endswith((".jsonl", ".jsonl.gz")):
            opener = gzip.open if results.suffix == ".gz" else open
            with opener(results, "rt") as f:
                recs = [json.loads(line) for line in f if line.strip()]
            for i, rec in enumerate(recs):
                rec["_path"] = f"{results}#{i}"
        elif results.is_dir():
            recs = load_results(results)
        else:
            raise ResultsError(f"results {str(results)!r}: no such folder or .jsonl(.gz) export")
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as e:
        raise ResultsError(f"results {str(results)!r} could not be read: {e}") from None
    return [upgrade(r, r.get("_path", str(results)) if isinstance(r, dict) else str(results)) for r in recs]


def read_sources(sources: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Records of several result folders and exports together, each tagged with its ``_source``."""
    if not sources:
        raise ResultsError("no results given")
    out = []
    for src in sources:
        recs = read_records(src)
        if not recs:
            raise ResultsError(f"no cell results under {str(src)!r}")
        for rec in recs:
            rec["_source"] = str(src)
        out.extend(recs)
    return out


def export(results: str | Path, out: str | Path, leave_out: Callable[[list[dict[str, Any]]], set[int]] | None = None
           ) -> int:
    """Write every cell record of a results folder (as stored) or of another export (in the current schema)
    to one gzipped JSON-lines file, the compact form that is committed; returns the number of records.
    ``leave_out(records)``: the positions of records not to write."""
    recs = load_results(results) if Path(results).is_dir() else read_records(results)
    if leave_out is not None:
        drop = leave_out(recs)
        recs = [r for i, r in enumerate(recs) if i not in drop]
    with io.atomic_open(out, "wt", opener=lambda p, m: gzip.open(p, m, compresslevel=9)) as f:
        for rec in sorted(recs, key=lambda r: r["_path"]):
            f.write(json.dumps({k: v for k, v in rec.items() if not k.startswith("_")}, sort_keys=True) + "\n")
    return len(recs)
