"""The study's grid: a :class:`Point` per finetuning run (a job the harness's executors run, resumable), the
named grids and the run over them."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from editbench.core import UserError, io, one_thread

from .data import DEPTH_N, MODELS, SIZES, _memo, choose_neurons, report_points
from .report import write_tables
from .reporter import run_point

if TYPE_CHECKING:
    from editbench.harness import ExecutorSpec


@dataclass(frozen=True)
class Point:
    """One finetuning run, and a job the harness's executors run: report neuron ``neuron`` of hook point
    ``layer`` of model ``model`` (an LM folder, or None for the shipped LM) from ``n_train`` distinct
    examples with ``mode`` (``lora`` or ``full``), ``steps`` optimiser steps of ``batch_size`` examples (the
    same compute at every ``n_train``: more examples, fewer passes over each)."""

    layer: str
    neuron: int
    n_train: int
    mode: str = "lora"
    model: str | None = None
    seed: int = 0
    steps: int = 256
    lr: float = 1e-3
    batch_size: int = 32
    rank: int = 8
    choice: str = ""  # why this neuron: "variance k" or "random k"
    reporter: str | None = None  # the cross-model control: another LM's folder, finetuned to report this one's neuron
    size: str = ""  # the model's name in the grid (small, base, large): a label, not part of the key

    def key(self, model_hash: str, reporter_hash: str | None = None) -> str:
        from editbench import __version__

        payload = {**asdict(self), "model": model_hash, "reporter": reporter_hash, "size": None, "version": 3,
                   "package": __version__}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def filename(self, model_hash: str, reporter_hash: str | None = None) -> str:
        who = "control" if self.reporter else "self"
        layer = self.layer.replace("transformer.", "")
        return (f"points/{model_hash[:12]}/{layer}/{who}-{self.mode}-n{self.n_train}-u{self.neuron}-s{self.seed}-"
                f"{self.key(model_hash, reporter_hash)}.json")

    # the harness's job interface (editbench.harness.Job): run in any executor, result written atomically
    def execute(self, path: str, key: str, prov: dict[str, Any], sessions: Any) -> str:
        from editbench.harness.cell import error_line
        from editbench.results import write_result
        from editbench.tracks.text.checkpoints import load_lm

        start = time.perf_counter()
        try:
            with one_thread():
                session = sessions.get("text", {"lm": self.model})
                lm = session.models["lm"]
                base = session.memo(("reporter", self.reporter), lambda: load_lm(self.reporter)) if self.reporter else None
                rec = {"status": "ok", "key": key, **run_point(lm, self, base, memo=session.memo), "provenance": prov}
        except Exception as e:  # noqa: BLE001 - a failed point is recorded, the grid goes on
            rec = self.failed_record(key, error_line(e), prov, time.perf_counter() - start)
        write_result(path, rec)
        return rec["status"]

    def failed_record(self, key: str, error: str, prov: dict[str, Any], total_s: float) -> dict[str, Any]:
        return {"status": "failed", "key": key, "point": asdict(self), "error": error, "seconds": total_s,
                "provenance": prov}


@dataclass(frozen=True)
class Part:
    """A block of the grid: ``models`` (names in :data:`MODELS`), their ``layers`` (None: every report
    point), neurons by the rule of :func:`choose_neurons`, training sizes and modes; ``control``: the points
    are also run with the control model reporting the first model's neuron."""

    name: str
    models: tuple[str, ...]
    layers: tuple[str, ...] | None
    n_train: tuple[int, ...]
    modes: tuple[str, ...] = ("lora",)
    k_variance: int = 1
    k_random: int = 0
    control: bool = False


@dataclass(frozen=True)
class Grid:
    parts: tuple[Part, ...]
    steps: int = 256  # optimiser steps of 32 examples per point
    seeds: tuple[int, ...] = (0,)

    def only(self, names: tuple[str, ...] | list[str]) -> Grid:
        """The grid restricted to the models ``names`` (a control part keeps its control points only where
        ``control`` is among them)."""
        from dataclasses import replace

        parts = []
        for p in self.parts:
            models = tuple(m for m in p.models if m in names)
            if models:
                parts.append(replace(p, models=models, control=p.control and "control" in names))
        return replace(self, parts=tuple(parts))




GRIDS = {
    "quick": Grid((Part("depth", ("base",), ("transformer.h.0", "transformer.h.3.mlp.act"), (512,)),), steps=64),
    "default": Grid((
        Part("depth", SIZES, None, (DEPTH_N,)),  # every layer of every size, the top-variance neuron
        Part("random neurons", ("base",), ("transformer.drop", "transformer.h.0.mlp.act", "transformer.h.1",
                                           "transformer.h.2.mlp.act", "transformer.h.3"), (DEPTH_N,), k_random=1),
        Part("control", ("base",), None, (DEPTH_N,), control=True),  # another model reports the base's neuron
        Part("full finetuning", ("base",), ("transformer.drop", "transformer.h.1", "transformer.h.3"), (DEPTH_N,),
             modes=("full",)),
        Part("training examples", ("base",), ("transformer.h.0", "transformer.h.2", "transformer.h.3"), (256, 1024)),
    )),
}


def grid_points(grid: Grid, lms: dict[str, nn.Module], folders: dict[str, str | None]) -> list[Point]:
    """Every point of the grid, once (parts may overlap), in grid order. ``lms``: the loaded models by name
    (to choose their neurons), ``folders``: their folders (None: the shipped LM)."""
    points: dict[Point, None] = {}
    memo = _memo()
    for part in grid.parts:
        for name in part.models:
            lm = lms[name]
            for layer in part.layers or tuple(report_points(lm)):
                for neuron, why in choose_neurons(lm, layer, part.k_variance, part.k_random, seed=0, memo=memo):
                    for reporter in ((None, folders["control"]) if part.control else (None,)):
                        for n in part.n_train:
                            for mode in part.modes:
                                for s in grid.seeds:
                                    points[Point(layer, neuron, n, mode, folders[name], s, grid.steps, choice=why,
                                                 reporter=reporter, size=name)] = None
    return list(points)


def run_grid(out: str | Path, grid: Grid, models: dict[str, str | None] | None = None, executor: str | ExecutorSpec = "process",
             workers: int = 2, timeout_s: float | None = 1800, progress: bool = True) -> dict[str, Any]:
    """Run every point of ``grid`` not already in ``out`` on one of the harness's executors (one result file
    per point, written atomically: an interrupted run resumes, a failed point is recorded and redone next
    time), then write the tables and plots. ``models`` overrides :data:`MODELS` by name. Returns the records
    (ok points), the failed ones and the wall time."""
    from editbench.harness import is_done, run_jobs
    from editbench.results import provenance
    from editbench.tracks import get_track
    from editbench.tracks.text.checkpoints import lm_hash, load_lm

    out = Path(out)
    folders = {**MODELS, **(models or {})}
    names = sorted({m for part in grid.parts for m in part.models}, key=lambda m: (m not in SIZES, m))
    if any(part.control for part in grid.parts):
        names.append("control")
    unknown = [n for n in names if n not in folders]
    if unknown:
        raise UserError(f"unknown model {unknown[0]!r}; known: {', '.join(folders)}")
    lms = {n: load_lm(folders[n]) for n in names}
    hashes = {folders[n]: lm_hash(folders[n]) for n in names}
    provs: dict[str | None, dict[str, Any]] = {}
    io.clean_stale(out)
    todo, paths = [], []
    for p in grid_points(grid, lms, folders):
        if p.model not in provs:
            provs[p.model] = provenance(get_track("text"), {"lm": p.model})
        rh = hashes[p.reporter] if p.reporter else None
        prov = {**provs[p.model], "reporter_lm": rh}
        path = out / p.filename(hashes[p.model], rh)
        paths.append(path)
        if not is_done(path):
            todo.append((p, path, p.key(hashes[p.model], rh), prov))
    del lms
    todo.sort(key=lambda job: names.index(job[0].size))  # one model at a time: a worker loads each model once
    status, wall = run_jobs(todo, executor, workers, timeout_s, progress, desc="activation reporting")
    records, failed = [], []
    for path in paths:
        rec = json.loads(path.read_text())
        (records if rec["status"] == "ok" else failed).append(rec)
    write_tables(records, out)
    return {"records": records, "failed": failed, "ran": len(todo), "wall_s": wall, "status": status}
