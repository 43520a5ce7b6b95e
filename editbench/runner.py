"""The grid of tasks x methods x budgets x seeds: cells, results, resumable execution.

A :class:`Cell` is a pure function of (task, method, method config, tuning budget, evidence budget n,
seed, evaluation size, checkpoints); its ``key`` hashes all of that plus the task and package versions.
Its result is one JSON file (:class:`CellResult`, written to a temporary file and renamed), so an
interrupted run resumes where it stopped and a finished cell is never recomputed. A cell that raises,
scores NaN or runs past its time limit is recorded as ``failed`` with the reason; the grid goes on.

Executors share one ``concurrent.futures``-style interface (``submit`` -> ``Future``): ``inline``
(in-process; tests) and ``process`` (each cell in its own process, killed at its time limit).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import random
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SAMPLE_IMAGES = 8  # before/after images kept per cell (a PNG next to its JSON)


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
    generator: str | None = None  # checkpoint folders (None: the shipped ones)
    meter: str | None = None
    tuned_on: str | None = None  # "n16-s0": config chosen by the tuning cell of that budget and seed

    def spec(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self, checkpoints: dict[str, str]) -> str:
        from editbench import __version__
        from editbench.benchmarks import get_task

        payload = {**self.spec(), "generator": None, "meter": None, "checkpoints": checkpoints,
                   "task_version": get_task(self.task).version, "package": __version__, "schema": SCHEMA_VERSION}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def filename(self, checkpoints: dict[str, str]) -> str:
        method = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.method)[:40]
        return f"{self.task}/{method}/n{self.budget}-s{self.seed}-{self.key(checkpoints)}.json"


@dataclass
class CellResult:
    """One cell's result file. ``status`` is ``ok`` or ``failed`` (with ``error``); ``scores`` holds
    the test primary, its 95% interval, the parts, per-slice scores and the transfer ratio."""

    schema_version: int
    key: str
    cell: dict[str, Any]
    status: str
    error: str | None = None
    family: str | None = None
    scores: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    tuning: list[dict[str, Any]] | None = None
    cost: dict[str, Any] | None = None
    timing: dict[str, float] | None = None
    provenance: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---- provenance ---------------------------------------------------------------------------------------
def _git() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"commit": None, "dirty": None}


def provenance(generator: str | None, meter: str | None) -> dict[str, Any]:
    import importlib.metadata as md

    from editbench import __version__
    from editbench.models import ASSETS

    versions = {}
    for pkg in ("torch", "diffusers", "transformers", "peft", "numpy", "safetensors"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    meter_accuracy = None
    if meter is None and (ASSETS / "report.json").exists():
        meter_accuracy = json.loads((ASSETS / "report.json").read_text())["meter"]
    return {
        "editbench": __version__, "git": _git(), "python": platform.python_version(), "versions": versions,
        "checkpoints": checkpoints(generator, meter), "meter_accuracy": meter_accuracy,
    }


def checkpoints(generator: str | None, meter: str | None) -> dict[str, str]:
    from editbench.models import checkpoint_hash

    return {"generator": checkpoint_hash(generator, "generator"), "meter": checkpoint_hash(meter, "meter")}


# ---- running one cell ---------------------------------------------------------------------------------
_MODELS: dict[tuple, Any] = {}
_BEFORE: dict[tuple, Any] = {}  # unedited samples and readings of the loaded models, shared by methods


def _models(generator: str | None, meter: str | None):
    from editbench.models import load_generator, load_meter

    key = (generator, meter)
    if key not in _MODELS:
        _MODELS.clear()
        _BEFORE.clear()
        _MODELS[key] = (load_generator(generator), load_meter(meter))
    return _MODELS[key]


def candidate_configs(method_cls: type, tune: int, seed: int = 0) -> list[dict[str, Any]]:
    """The default config, then up to ``tune - 1`` others from the method's search space (seeded)."""
    space = getattr(method_cls, "search_space", {}) or {}
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


def _fingerprint(model) -> list[float]:
    import torch

    with torch.no_grad():
        return [float(t.double().abs().sum()) for t in model.state_dict().values()]


def _check_unchanged(model, fingerprint: list[float]) -> None:
    """Methods must leave the shared model as they found it (they change a copy or return an Edit)."""
    if _fingerprint(model) != fingerprint:
        _MODELS.clear()
        _BEFORE.clear()
        from editbench.api import MethodError

        raise MethodError("the method changed the shared generator's weights in place; fit must edit a copy")


def run_cell(cell: Cell) -> dict[str, Any]:
    """Compute one cell with one CPU thread (so every executor computes the same floats): tune on dev
    within the shared budget, fit, score on test. Returns the result dict; raises on failure."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_cell(cell)
    finally:
        torch.set_num_threads(threads)


def _run_cell(cell: Cell) -> dict[str, Any]:
    import torch

    from editbench import benchmarks as B
    from editbench.api import Budget, EditRequest, fit_method
    from editbench.registry import resolve

    torch.manual_seed(cell.seed)
    t0 = time.perf_counter()
    G, M = _models(cell.generator, cell.meter)
    task = B.get_task(cell.task)
    cls = resolve(cell.method)
    request = EditRequest.named(task.request)
    world = B.evidence_world(task)
    budget = Budget(cell.budget, cell.evaluator_calls, seed=B.EVIDENCE_SEED + cell.seed)
    fingerprint = _fingerprint(G)
    tuning = []
    configs = [cell.config] if cell.config else candidate_configs(cls, cell.tune, cell.seed)
    best, best_score = configs[0], -1.0
    if len(configs) > 1:
        for cfg in configs:
            method = cls(cfg)
            edit = fit_method(method, G, M, world, request, budget)
            _check_unchanged(G, fingerprint)
            dev = B.score(task, method, edit, G, M, split="dev", n=cell.n_dev, n_boot=50, cache=_BEFORE)
            tuning.append({"config": cfg, "dev_primary": dev["primary"]})
            if dev["primary"] > best_score:
                best, best_score = cfg, dev["primary"]
    t_tune = time.perf_counter() - t0
    method = cls(best)
    edit = fit_method(method, G, M, world, request, budget)
    _check_unchanged(G, fingerprint)
    t_fit = time.perf_counter()
    scores = B.score(task, method, edit, G, M, split="test", n=cell.n_eval, n_boot=cell.n_boot, cache=_BEFORE,
                     keep_images=SAMPLE_IMAGES)
    if not math.isfinite(scores["primary"]):
        raise FloatingPointError(f"primary score is {scores['primary']}")
    t_end = time.perf_counter()
    images = scores.pop("images", None)
    return {
        "images": images, "family": cls.family, "scores": scores,
        "config": method.config.as_dict(), "tuning": tuning, "cost": edit.cost().as_dict(),
        "timing": {"tune_s": t_tune, "fit_s": t_fit - t0 - t_tune, "score_s": t_end - t_fit, "total_s": t_end - t0,
                   "finished_at": time.time()},
    }


def _write_atomic(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_strip(path: Path, before, after) -> None:
    """The cell's before/after picture: unedited images on top, edited below (PNG, written atomically)."""
    import torch
    from PIL import Image

    grid = torch.cat([torch.cat(list(before), 2), torch.cat(list(after), 2)], 1)  # (3, 2H, kW)
    pixels = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    Image.fromarray(pixels).save(tmp, format="PNG")
    os.replace(tmp, path)


def _family(method: str) -> str | None:
    try:
        from editbench.registry import resolve

        return resolve(method).family
    except Exception:  # noqa: BLE001 - a method that cannot even be resolved has no family
        return None


def execute_cell(cell: Cell, path: str, key: str, prov: dict[str, Any]) -> str:
    """Run a cell and write its result file (ok or failed); returns the status."""
    start = time.perf_counter()
    try:
        out = run_cell(cell)
        images = out.pop("images", None)
        if images is not None:
            _write_strip(Path(path).with_suffix(".png"), images["before"], images["after"])
        rec = CellResult(SCHEMA_VERSION, key, cell.spec(), "ok", provenance=prov, **out)
    except Exception as e:  # noqa: BLE001 - every failure of a cell is recorded, the grid goes on
        last = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
        where = f" at {Path(last.filename).name}:{last.lineno}" if last else ""
        rec = CellResult(SCHEMA_VERSION, key, cell.spec(), "failed", error=f"{type(e).__name__}: {e}{where}",
                         family=_family(cell.method),
                         timing={"total_s": time.perf_counter() - start, "finished_at": time.time()}, provenance=prov)
    _write_atomic(Path(path), rec.as_dict())
    return rec.status


# ---- executors ----------------------------------------------------------------------------------------
class InlineExecutor:
    """Runs each cell in this process when submitted (no time limit)."""

    def __init__(self, workers: int = 1, timeout_s: float | None = None):
        self.timeout_s = timeout_s

    def submit(self, cell: Cell, path: str, key: str, prov: dict[str, Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        fut.set_result(execute_cell(cell, path, key, prov))
        return fut

    def shutdown(self) -> None:
        pass


def _worker(conn) -> None:
    """A long-lived cell process: runs the cells it is sent (keeping models and unedited samples loaded
    between them) and answers each with its status; exits when its pipe closes."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        status = execute_cell(*msg)
        try:
            conn.send(status)
        except (BrokenPipeError, OSError):
            return


class ProcessExecutor:
    """Cells run in ``workers`` long-lived (spawned) processes that keep the models loaded; a cell past
    ``timeout_s`` has its process killed (and replaced) and is recorded as failed, as is a cell whose
    process dies."""

    def __init__(self, workers: int = 2, timeout_s: float | None = None):
        self.timeout_s = timeout_s
        self.ctx = mp.get_context("spawn")
        self.jobs: queue.Queue = queue.Queue()
        self.threads = [threading.Thread(target=self._slot, daemon=True) for _ in range(max(1, workers))]
        for t in self.threads:
            t.start()

    def submit(self, cell: Cell, path: str, key: str, prov: dict[str, Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        self.jobs.put((fut, (cell, path, key, prov)))
        return fut

    def _spawn(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        proc.start()
        child.close()
        return proc, parent

    @staticmethod
    def _stop(proc, conn, kill: bool = False) -> None:
        if not kill:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            proc.join(10)
        if proc.is_alive():
            proc.kill()
        proc.join()
        conn.close()

    def _slot(self) -> None:
        worker = None
        while True:
            job = self.jobs.get()
            if job is None:
                break
            fut, (cell, path, key, prov) = job
            if worker is None or not worker[0].is_alive():
                worker = self._spawn()
            proc, conn = worker
            status, error = None, None
            try:
                conn.send((cell, path, key, prov))
                if conn.poll(self.timeout_s):
                    status = conn.recv()
                else:
                    error = f"TimeoutError: cell ran past its limit of {self.timeout_s:.0f} s"
            except (EOFError, BrokenPipeError, OSError):
                proc.join(5)
                error = f"the cell's process died with exit code {proc.exitcode}"
            if status is None:
                self._stop(proc, conn, kill=True)
                worker = None
                if error.startswith("TimeoutError") or not Path(path).exists():
                    rec = CellResult(SCHEMA_VERSION, key, cell.spec(), "failed", error=error,
                                     family=_family(cell.method), provenance=prov,
                                     timing={"total_s": float(self.timeout_s or 0) if error.startswith("Timeout")
                                             else float("nan"), "finished_at": time.time()})
                    _write_atomic(Path(path), rec.as_dict())
                    status = "failed"
                else:
                    status = json.loads(Path(path).read_text())["status"]
            fut.set_result(status)
        if worker is not None:
            self._stop(*worker)

    def shutdown(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join()


EXECUTORS = {"inline": InlineExecutor, "process": ProcessExecutor}


# ---- the grid -----------------------------------------------------------------------------------------
SUITES = {
    "quick": {"budgets": [16], "seeds": [0], "n_eval": 32, "n_dev": 16, "tune": 1, "n_boot": 300},
    "full": {"budgets": [1, 4, 16, 64, 256], "seeds": [0, 1, 2], "n_eval": 32, "n_dev": 16, "tune": 4,
             "tune_at": [16, 0], "n_boot": 1000},
}


def make_grid(tasks: list[str], methods: list[str], budgets: list[int], seeds: list[int], **cell_kw: Any) -> list[Cell]:
    return [Cell(task=t, method=m, budget=n, seed=s, **cell_kw)
            for t in tasks for m in methods for n in budgets for s in seeds]


def run_suite(tasks: list[str], methods: list[str], budgets: list[int], seeds: list[int], out: str | Path, *,
              tune: int = 1, tune_at: tuple[int, int] | list[int] | None = None, executor: str = "process",
              workers: int = 2, timeout_s: float | None = 1800, progress: bool = True, **cell_kw: Any
              ) -> dict[str, Any]:
    """Run a suite's grid. With ``tune > 1`` every method gets the same search budget: one tuning cell
    per (task, method), at budget and seed ``tune_at`` (the middle budget and first seed by default),
    tries ``tune`` configurations on the dev split and keeps the best; every other cell of that task and
    method then uses the chosen config (``tuned_on`` names the tuning cell). Only test scores are kept."""
    if tune <= 1:
        return run_grid(make_grid(tasks, methods, budgets, seeds, tune=1, **cell_kw), out, executor, workers,
                        timeout_s, progress)
    tb, ts = tune_at if tune_at else (budgets[len(budgets) // 2], seeds[0])
    tb = tb if tb in budgets else budgets[len(budgets) // 2]
    ts = ts if ts in seeds else seeds[0]
    tuning = make_grid(tasks, methods, [tb], [ts], tune=tune, **cell_kw)
    rep = run_grid(tuning, out, executor, workers, timeout_s, progress)
    chosen = {}
    for c in tuning:
        rec = json.loads((Path(out) / c.filename(rep["checkpoints"])).read_text())
        chosen[(c.task, c.method)] = (rec.get("config") or {}) if rec["status"] == "ok" else {}
    rest = [Cell(task=t, method=m, budget=n, seed=s, config=chosen[(t, m)], tune=1, tuned_on=f"n{tb}-s{ts}", **cell_kw)
            for t in tasks for m in methods for n in budgets for s in seeds if (n, s) != (tb, ts)]
    rep2 = run_grid(rest, out, executor, workers, timeout_s, progress)
    merged = {k: rep[k] + rep2[k] for k in ("cells", "skipped", "ran", "ok", "failed", "wall_s", "timings")}
    return {**merged, "checkpoints": rep["checkpoints"]}


def run_grid(cells: list[Cell], out: str | Path, executor: str = "process", workers: int = 2,
             timeout_s: float | None = 1800, progress: bool = True) -> dict[str, Any]:
    """Run every cell not already done; returns counts and per-cell timings (the timing report)."""
    from tqdm.auto import tqdm

    out = Path(out)
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose from {sorted(EXECUTORS)}")
    gen, met = cells[0].generator if cells else None, cells[0].meter if cells else None
    prov = provenance(gen, met)
    ck = prov["checkpoints"]
    for stale in out.rglob(".*.tmp") if out.exists() else []:  # left by a run that was killed mid-write
        stale.unlink(missing_ok=True)
    todo, skipped = [], 0
    for cell in cells:
        path = out / cell.filename(ck)
        if path.exists():
            try:
                if json.loads(path.read_text()).get("status") == "ok":
                    skipped += 1
                    continue
            except (json.JSONDecodeError, OSError):
                pass  # a corrupt file is recomputed
        todo.append((cell, path))
    # longest first (finetuning, then the five-slice transfer task), so no worker idles at the end
    todo.sort(key=lambda cp: (_family(cp[0].method) != "finetune", cp[0].task != "ood_transfer", -cp[0].tune))
    ex = EXECUTORS[executor](workers=workers, timeout_s=timeout_s)
    t0 = time.perf_counter()
    futures = {ex.submit(cell, str(path), cell.key(ck), prov): (cell, path) for cell, path in todo}
    status = {"ok": 0, "failed": 0}
    bar = tqdm(total=len(futures), desc="cells", disable=not progress)
    for fut in cf.as_completed(futures):
        status[fut.result()] += 1
        bar.update(1)
    bar.close()
    ex.shutdown()
    wall = time.perf_counter() - t0
    timings = []
    for cell, path in todo:
        rec = json.loads(path.read_text())
        tm = rec.get("timing") or {}
        timings.append({"task": cell.task, "method": cell.method, "budget": cell.budget, "seed": cell.seed,
                        "status": rec["status"], "total_s": tm.get("total_s", float("nan")),
                        "fit_s": tm.get("fit_s", 0.0), "score_s": tm.get("score_s", 0.0), "error": rec.get("error"),
                        "primary": (rec.get("scores") or {}).get("primary")})
    return {"cells": len(cells), "skipped": skipped, "ran": len(todo), **status, "wall_s": wall, "timings": timings,
            "checkpoints": ck}


def estimate_full(report: dict[str, Any], quick: dict[str, Any] = SUITES["quick"], full: dict[str, Any] = SUITES["full"]
                  ) -> float:
    """Rough wall time (s, one worker) of the full suite from a quick run's cell timings. Each quick cell
    stands for one tuning cell (``tune`` fits, ``tune`` dev scorings, one test scoring) and
    len(budgets) x len(seeds) - 1 cells that fit once and score n_eval_full / n_eval_quick as many images
    (fit time at larger budgets is not extrapolated)."""
    per = len(full["budgets"]) * len(full["seeds"]) - 1
    scale = full["n_eval"] / quick["n_eval"]
    total = 0.0
    for t in report["timings"]:
        if t["status"] != "ok":
            continue
        fit, sc = t.get("fit_s", 0.0), t.get("score_s", 0.0)
        total += fit * (full["tune"] + 1) + sc * (scale + full["tune"] * full["n_dev"] / quick["n_eval"])
        total += (fit + sc * scale) * per
    return total


def load_results(out: str | Path) -> list[dict[str, Any]]:
    """Every cell result under ``out`` (each with ``_path``, the file it came from)."""
    recs = []
    for p in sorted(Path(out).rglob("*.json")):
        if p.name.startswith("."):
            continue
        rec = json.loads(p.read_text())
        rec["_path"] = str(p)
        recs.append(rec)
    return recs
