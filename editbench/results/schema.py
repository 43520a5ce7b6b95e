"""The cell result schema and how older results are read.

Schema 4 (this one): a cell's ``cost`` carries its compute (optimiser steps, examples seen, forward and
backward passes, FLOPs), a tuning cell (``tune`` > 1, on a seed no table scores) its ``search`` (trials, best,
dev noise and margin, fields at the edge of their space, the test score of the best, and with ``regret`` the
larger search's), a cell tuned elsewhere the ``edges`` of the configuration it carries; the cell key includes
the method's version. Schema 3: every score is the judge's; ``scores`` also carries ``proxy`` (the same outputs read
by the proxy: primary, interval, parts, per-output scores), ``gap`` (proxy minus judge, paired interval),
``reader_floor`` and ``ci_sampling`` (the bootstrap's interval before the reader floor widens it); a cell
names its ``evaluator`` (who labels the evidence and answers evaluator calls) and its checkpoints include
the judge's. Schema 2: a cell names its ``checkpoints`` by kind (``{"generator": ..., "meter": ...}``) and
its task's ``track``; the record carries the method's ``method_name`` (what tables show), its ``family``
and ``track``, and where the track measures it the edit's ``collateral``; its scores are the meter's (the
image track's proxy today), read as they are, with no proxy block. Schema 1 results (the image track
before tracks existed) are read by :func:`upgrade`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from editbench.core.errors import UserError

SCHEMA_VERSION = 4
READABLE_SCHEMAS = (1, 2, 3, 4)


class ResultsError(UserError, ValueError):
    """Results that cannot be read (a one-line message)."""


@dataclass
class CellResult:
    """One cell's result file. ``status`` is ``ok`` or ``failed`` (with ``error``); ``scores`` holds
    the test primary, its 95% interval, the parts, per-slice scores and the transfer ratio."""

    schema_version: int
    key: str
    cell: dict[str, Any]
    status: str
    error: str | None = None
    method_name: str | None = None
    family: str | None = None
    evidence: str | None = None  # the evidence kind the method learns from (samples, targets, captions, none)
    track: str | None = None
    scores: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    tuning: list[dict[str, Any]] | None = None
    search: dict[str, Any] | None = None  # a tuning cell's search; a tuned cell's edges
    examples: list[dict[str, Any]] | None = None  # text tracks: captions with descriptions before and after
    collateral: dict[str, Any] | None = None  # text: lm-eval scores of the edited and the unedited LM
    cost: dict[str, Any] | None = None
    timing: dict[str, float] | None = None
    provenance: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def upgrade(rec: dict[str, Any], where: str = "") -> dict[str, Any]:
    """A result record in the current schema (older ones converted; unknown ones refused)."""
    if not isinstance(rec, dict) or "cell" not in rec or "status" not in rec:
        raise ResultsError(f"{where or 'record'}: not a cell result")
    version = rec.get("schema_version")
    if version not in READABLE_SCHEMAS:
        raise ResultsError(f"{where or 'record'}: schema version {version}, this editbench reads {list(READABLE_SCHEMAS)}")
    if version == 1:
        rec = dict(rec)
        cell = dict(rec["cell"])
        cell["checkpoints"] = {"generator": cell.pop("generator", None), "meter": cell.pop("meter", None)}
        cell["track"] = "image"
        rec.update(cell=cell, track="image", schema_version=SCHEMA_VERSION)
        rec.setdefault("method_name", cell["method"])
    return rec
