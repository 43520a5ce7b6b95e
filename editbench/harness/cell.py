"""One cell: (task, method, method config, tuning budget, evidence budget, seed, checkpoints), a pure
function of its key. :func:`fit` is the one path from a method to an edit; :func:`run_cell` tunes on
dev within the shared budget, fits and scores on test; :func:`execute_cell` writes its result file."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import random
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from editbench.core import Budget, Edit, Method, MethodError, one_thread
from editbench.methods import resolve
from editbench.results import SCHEMA_VERSION, CellResult, write_result, write_strip
from editbench.tasks import EVIDENCE_SEED, evidence_world, get_task
from editbench.tasks.scoring import score

from .session import Session, Sessions

SAMPLE_OUTPUTS = 8  # before/after outputs kept per cell (a PNG next to its JSON)


@dataclass(frozen=True)
class Cell:
    task: str
    method: str
    budget: int
    seed: int
    config: dict[str, Any] = field(default_factory=dict)
    tune: int = 1  # configurations tried on dev (the default first); the same for every method
    n_eval: int = 64
    n_dev: int = 24
    evaluator_calls: int = 512
    n_boot: int = 500
    checkpoints: dict[str, str | None] = field(default_factory=dict)  # folders by kind (absent: the shipped ones)
    evaluator: str = "proxy"  # the evaluator that labels the evidence and answers evaluator calls (Track.evaluators)
    tuned_on: str | None = None  # "n16-s0": config chosen by the tuning cell of that budget and seed

    @property
    def track(self) -> str:
        return get_task(self.task).track

    def spec(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "track": self.track}

    def key(self, hashes: dict[str, str]) -> str:
        """Hash of the cell with its checkpoints' hashes (not their folders), the task version, the package
        version and the result schema."""
        from editbench import __version__

        payload = {**self.spec(), "checkpoints": hashes, "task_version": get_task(self.task).version,
                   "package": __version__, "schema": SCHEMA_VERSION}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def filename(self, hashes: dict[str, str]) -> str:
        method = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.method)[:40]
        return f"{self.task}/{method}/n{self.budget}-s{self.seed}-{self.key(hashes)}.json"

    # the job interface every executor runs (see executors.Job)
    def execute(self, path: str, key: str, prov: dict[str, Any], sessions: Sessions) -> str:
        return execute_cell(self, path, key, prov, sessions)

    def failed_record(self, key: str, error: str, prov: dict[str, Any], total_s: float) -> dict[str, Any]:
        return failed(self, key, error, prov, total_s).as_dict()


def candidate_configs(method_cls: type[Method], tune: int, seed: int = 0, track: str | None = None
                      ) -> list[dict[str, Any]]:
    """The default config, then up to ``tune - 1`` others from the method's search space on ``track`` (seeded)."""
    space = method_cls.space(track) or {}
    keys = sorted(space)
    grid = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(space[k] for k in keys))]
    random.Random(seed).shuffle(grid)
    out: list[dict[str, Any]] = [{}]
    for g in grid:
        if len(out) >= tune:
            break
        if g not in out:
            out.append(g)
    return out


def fit(method: Method, session: Session, request: Any, budget: Budget, world: Any, evaluator: str = "proxy") -> Edit:
    """Build the method's evidence on the session's track, labelled and evaluated by ``evaluator``, and fit
    it (the path every harness takes)."""
    track = session.track
    if track.name not in method.tracks:
        raise MethodError(f"method {method.name!r} supports tracks {list(method.tracks)}, not {track.name!r}")
    evidence = track.build_evidence(method.consumes, session.models, request, budget, world, method.uses_evaluator,
                                    evaluator)
    evidence.track = track.name
    edit = method.run(session.edited_model, request, evidence, budget)
    edit.cost().examples_used = min(edit.cost().examples_used or evidence.n, budget.n)
    return edit


def run_cell(cell: Cell, session: Session) -> dict[str, Any]:
    """Compute one cell with one CPU thread (so every executor computes the same floats). Returns the
    result's fields; raises on failure."""
    with one_thread():
        return _run_cell(cell, session)


def _run_cell(cell: Cell, session: Session) -> dict[str, Any]:
    torch.manual_seed(cell.seed)
    t0 = time.perf_counter()
    session.models  # noqa: B018 - loaded (once per session) before anything is timed against it
    task = get_task(cell.task)
    cls = resolve(cell.method)
    request = session.track.request(task.request)
    world = evidence_world(task)
    budget = Budget(cell.budget, cell.evaluator_calls, seed=EVIDENCE_SEED + cell.seed)
    fingerprint = session.fingerprint()
    tuning = []
    configs = [cell.config] if cell.config else candidate_configs(cls, cell.tune, cell.seed, task.track)
    best, best_score = configs[0], -1.0
    if len(configs) > 1:
        for cfg in configs:
            edit = fit(cls(cfg, track=task.track), session, request, budget, world, cell.evaluator)
            session.check_unchanged(fingerprint)
            dev = score(task, edit, session, split="dev", n=cell.n_dev, n_boot=50)
            tuning.append({"config": cfg, "dev_primary": dev["primary"]})
            if dev["primary"] > best_score:
                best, best_score = cfg, dev["primary"]
    t_tune = time.perf_counter() - t0
    method = cls(best, track=task.track)
    edit = fit(method, session, request, budget, world, cell.evaluator)
    session.check_unchanged(fingerprint)
    t_fit = time.perf_counter()
    scores = score(task, edit, session, split="test", n=cell.n_eval, n_boot=cell.n_boot, keep=SAMPLE_OUTPUTS)
    if not math.isfinite(scores["primary"]):
        raise MethodError(f"primary score is {scores['primary']}")
    t_score = time.perf_counter()
    collateral = session.track.collateral(session, edit)
    t_end = time.perf_counter()
    pictures = scores.pop("pictures", None)
    return {
        "pictures": pictures, "method_name": cls.name, "family": cls.family, "track": task.track, "scores": scores,
        "config": method.config.as_dict(), "tuning": tuning, "cost": edit.cost().as_dict(), "collateral": collateral,
        "timing": {"tune_s": t_tune, "fit_s": t_fit - t0 - t_tune, "score_s": t_score - t_fit,
                   "collateral_s": t_end - t_score, "total_s": t_end - t0,
                   "finished_at": time.time()},
    }


def describe(method: str) -> dict[str, Any]:
    """``method_name`` and ``family`` of a method reference (None where it cannot even be resolved)."""
    try:
        cls = resolve(method)
        return {"method_name": cls.name, "family": cls.family}
    except Exception:  # noqa: BLE001 - a method that cannot be resolved is recorded as it is named
        return {"method_name": None, "family": None}


def failed(cell: Cell, key: str, error: str, prov: dict[str, Any], total_s: float) -> CellResult:
    return CellResult(SCHEMA_VERSION, key, cell.spec(), "failed", error=error, track=cell.track, provenance=prov,
                      timing={"total_s": total_s, "finished_at": time.time()}, **describe(cell.method))


def error_line(e: BaseException) -> str:
    """A failed job's error in one line: the exception and where it was raised."""
    last = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    where = f" at {Path(last.filename).name}:{last.lineno}" if last else ""
    return f"{type(e).__name__}: {e}{where}"


def execute_cell(cell: Cell, path: str, key: str, prov: dict[str, Any], sessions: Sessions) -> str:
    """Run a cell and write its result file (ok or failed); returns the status."""
    start = time.perf_counter()
    try:
        out = run_cell(cell, sessions.get(cell.track, cell.checkpoints))
        pictures = out.pop("pictures", None)
        if pictures is not None and isinstance(pictures["before"], torch.Tensor):
            write_strip(Path(path).with_suffix(".png"), pictures["before"], pictures["after"])
        elif pictures is not None:
            out["examples"] = [{"caption": c, "before": b, "after": a} for c, b, a in
                               zip(pictures["captions"], pictures["before"], pictures["after"], strict=True)]
        rec = CellResult(SCHEMA_VERSION, key, cell.spec(), "ok", provenance=prov, **out)
    except Exception as e:  # noqa: BLE001 - every failure of a cell is recorded, the grid goes on
        rec = failed(cell, key, error_line(e), prov, time.perf_counter() - start)
    write_result(path, rec.as_dict())
    return rec.status
