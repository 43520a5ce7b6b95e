"""The grid of tasks x methods x budgets x seeds: resumable, each method tuned with the same budget.

A finished cell is never recomputed (its file is skipped); an interrupted run resumes where it stopped;
a cell that raises, scores NaN, changes the shared model or runs past its limit is recorded as failed
and the grid goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from editbench.core import UserError, io
from editbench.results import provenance
from editbench.tracks import get_track

from .cell import Cell, describe
from .executors import ExecutorSpec, Job, executor_spec
from .suites import SUITES, Suite


def supports(method: str, task: str) -> bool:
    """Whether a method declares the task's track (a method that cannot be loaded is kept, to fail as a cell)."""
    from editbench.methods import resolve
    from editbench.tasks import get_task

    try:
        return get_task(task).track in resolve(method).tracks
    except Exception:  # noqa: BLE001 - a broken method is recorded as a failed cell, not dropped
        return True


def reads_evaluator(method: str) -> bool:
    """Whether a method's fit depends on the evaluator: it calls one, or its evidence is labelled by one."""
    from editbench.methods import resolve

    cls = resolve(method)
    return cls.uses_evaluator or cls.consumes == "samples"


def uses_evaluator(method: str) -> bool:
    """Whether a method calls an evaluator (a method that cannot be loaded: no)."""
    from editbench.methods import resolve

    try:
        return resolve(method).uses_evaluator
    except Exception:  # noqa: BLE001 - a broken method fails as its proxy cell
        return False


def seeds_at(budget: int, seeds: list[int], more_seeds: dict[int, tuple[int, ...]] | None) -> list[int]:
    """The seeds a budget runs: ``seeds``, and the extra seeds ``more_seeds`` gives that budget."""
    return sorted({*seeds, *(more_seeds or {}).get(budget, ())})


def make_grid(tasks: list[str], methods: list[str], budgets: list[int], seeds: list[int], *,
              more_seeds: dict[int, tuple[int, ...]] | None = None, **cell_kw: Any) -> list[Cell]:
    """Every (task, method, budget, seed) whose method supports the task's track; a budget in ``more_seeds``
    also runs its extra seeds."""
    return [Cell(task=t, method=m, budget=n, seed=s, **cell_kw)
            for t in tasks for m in methods if supports(m, t) for n in budgets for s in seeds_at(n, seeds, more_seeds)]


def run_suite(tasks: list[str], methods: list[str], budgets: list[int], seeds: list[int], out: str | Path, *,
              tune: int = 1, tune_at: tuple[int, int] | list[int] | None = None, executor: str | ExecutorSpec = "process",
              workers: int = 2, timeout_s: float | None = 1800, progress: bool = True,
              evaluators: tuple[str, ...] = ("proxy",), more_seeds: dict[int, tuple[int, ...]] | None = None,
              **cell_kw: Any) -> dict[str, Any]:
    """Run a suite's grid. With ``tune > 1`` every method gets the same search budget: one tuning cell
    per (task, method), at budget and seed ``tune_at`` (the middle budget and first seed by default),
    tries ``tune`` configurations on the dev split and keeps the best; every other cell of that task and
    method then uses the chosen config (``tuned_on`` names the tuning cell). Only test scores are kept.
    ``evaluators`` beyond the first (the proxy): the methods that call an evaluator run again under each, with
    the config tuned under the proxy (the evaluator-quality axis). ``more_seeds``: extra seeds per budget (the
    headline budget's, for power)."""
    others = tuple(e for e in evaluators if e != "proxy")
    if tune <= 1:
        cells = make_grid(tasks, methods, budgets, seeds, more_seeds=more_seeds, tune=1, **cell_kw)
        cells += [dataclasses.replace(c, evaluator=e) for c in cells if uses_evaluator(c.method) for e in others]
        return run_grid(cells, out, executor, workers, timeout_s, progress)
    tb, ts = tune_at if tune_at else (budgets[len(budgets) // 2], seeds[0])
    tb = tb if tb in budgets else budgets[len(budgets) // 2]
    ts = ts if ts in seeds else seeds[0]
    tuning = make_grid(tasks, methods, [tb], [ts], tune=tune, **cell_kw)
    rep = run_grid(tuning, out, executor, workers, timeout_s, progress)
    chosen = {}
    for c in tuning:
        rec = json.loads((Path(out) / rep["paths"][id(c)]).read_text())
        chosen[(c.task, c.method)] = (rec.get("config") or {}) if rec["status"] == "ok" else {}
    rest = [Cell(task=t, method=m, budget=n, seed=s, config=chosen[(t, m)], tune=1, tuned_on=f"n{tb}-s{ts}", evaluator=e,
                 **cell_kw)
            for (t, m) in chosen for e in ("proxy", *(others if uses_evaluator(m) else ())) for n in budgets
            for s in seeds_at(n, seeds, more_seeds) if (n, s, e) != (tb, ts, "proxy")]
    rep2 = run_grid(rest, out, executor, workers, timeout_s, progress)
    merged = {k: rep[k] + rep2[k] for k in ("cells", "skipped", "ran", "ok", "failed", "wall_s", "timings")}
    return {**merged, "checkpoints": rep["checkpoints"]}


def run_named_suite(suite: str | Suite, tasks: list[str], methods: list[str], out: str | Path, *,
                    budgets: list[int] | None = None, seeds: list[int] | None = None, **kw: Any) -> dict[str, Any]:
    """:func:`run_suite` with a registered suite's shape (budgets and seeds may be overridden; seeds given
    replace the suite's, its extra seeds per budget included)."""
    s = SUITES.get(suite) if isinstance(suite, str) else suite
    return run_suite(tasks, methods, list(budgets or s.budgets), list(seeds or s.seeds), out, tune=s.tune,
                     tune_at=s.tune_at, evaluators=s.evaluators, more_seeds=s.more_seeds_for(seeds),
                     **s.cell_kwargs(), **kw)


def is_done(path: Path) -> bool:
    """Whether a job's result file is there and ok (a failed or corrupt one is recomputed)."""
    try:
        return json.loads(path.read_text()).get("status") == "ok"
    except (json.JSONDecodeError, OSError):
        return False


def restore(results: str | Path, out: str | Path) -> dict[str, int]:
    """Write the cell records of an export (or another results folder) into ``out`` as the files the grid
    writes, so that a run into ``out`` skips them: a published suite is extended (more seeds, budgets or
    methods) without recomputing it. A record is restored only where this version gives its cell the same
    key (same package, task version and result schema, the same checkpoints); an ok file already in
    ``out`` is kept. Returns the counts ``restored``, ``kept`` and ``stale`` (records of another key)."""
    from editbench.results import read_records, write_result

    counts = {"restored": 0, "kept": 0, "stale": 0}
    for rec in read_records(results):
        hashes = (rec.get("provenance") or {}).get("checkpoints") or {}
        try:
            cell = Cell(**{k: v for k, v in (rec.get("cell") or {}).items() if k != "track"})
            same = cell.key(hashes) == rec.get("key")
        except (TypeError, UserError):  # a cell of another schema, or of a task this version does not have
            same = False
        if not same:
            counts["stale"] += 1
            continue
        path = Path(out) / cell.filename(hashes)
        if is_done(path):
            counts["kept"] += 1
            continue
        write_result(path, {k: v for k, v in rec.items() if not k.startswith("_")})
        counts["restored"] += 1
    return counts


def run_jobs(todo: list[tuple[Job, Path, str, dict[str, Any]]], executor: str | ExecutorSpec = "process", workers: int = 2,
             timeout_s: float | None = 1800, progress: bool = True, desc: str = "cells") -> tuple[dict[str, int], float]:
    """Run (job, result path, key, provenance) items on an executor; returns the status counts and the wall time."""
    from tqdm.auto import tqdm

    ex = executor_spec(executor).make(workers, timeout_s)
    t0 = time.perf_counter()
    futures = {ex.submit(job, str(path), key, prov): job for job, path, key, prov in todo}
    ex.flush()
    status = {"ok": 0, "failed": 0}
    bar = tqdm(total=len(futures), desc=desc, disable=not progress)
    for fut in cf.as_completed(futures):
        status[fut.result()] += 1
        bar.update(1)
    bar.close()
    ex.shutdown()
    return status, time.perf_counter() - t0


def run_grid(cells: list[Cell], out: str | Path, executor: str | ExecutorSpec = "process", workers: int = 2,
             timeout_s: float | None = 1800, progress: bool = True) -> dict[str, Any]:
    """Run every cell not already done; returns counts, per-cell timings (the timing report) and each
    cell's result path (``paths``, by ``id(cell)``)."""
    out = Path(out)
    executor = executor_spec(executor)  # an unknown executor fails before anything runs
    provs: dict[tuple, dict[str, Any]] = {}

    def prov_of(cell: Cell) -> dict[str, Any]:
        k = (cell.track, tuple(sorted(cell.checkpoints.items())))
        if k not in provs:
            provs[k] = provenance(get_track(cell.track), cell.checkpoints)
        return provs[k]

    io.clean_stale(out)  # temporary files of a run that was killed mid-write
    todo, skipped, paths = [], 0, {}
    for cell in cells:
        prov = prov_of(cell)
        path = out / cell.filename(prov["checkpoints"])
        paths[id(cell)] = path.relative_to(out).as_posix()
        if is_done(path):
            skipped += 1
            continue
        todo.append((cell, path, prov))
    # longest first (finetuning, then the five-slice transfer task), so no worker idles at the end
    todo.sort(key=lambda cp: (describe(cp[0].method)["family"] != "finetune", cp[0].task != "ood_transfer",
                              -cp[0].tune))
    status, wall = run_jobs([(cell, path, cell.key(prov["checkpoints"]), prov) for cell, path, prov in todo],
                            executor, workers, timeout_s, progress)
    timings = []
    for cell, path, _ in todo:
        rec = json.loads(path.read_text())
        tm = rec.get("timing") or {}
        timings.append({"task": cell.task, "method": cell.method, "budget": cell.budget, "seed": cell.seed,
                        "status": rec["status"], "total_s": tm.get("total_s", float("nan")),
                        "fit_s": tm.get("fit_s", 0.0), "score_s": tm.get("score_s", 0.0), "error": rec.get("error"),
                        "primary": (rec.get("scores") or {}).get("primary")})
    first = next(iter(provs.values()), {})
    return {"cells": len(cells), "skipped": skipped, "ran": len(todo), **status, "wall_s": wall, "timings": timings,
            "checkpoints": first.get("checkpoints", {}), "paths": paths}


def estimate_full(report: dict[str, Any], quick: Suite | None = None, full: Suite | None = None) -> float:
    """Rough wall time (s, one worker) of the full suite from a quick run's cell timings. Each quick cell
    stands for one tuning cell (``tune`` fits, ``tune`` dev scorings, one test scoring) and, for every other
    (budget, seed) of the full suite (its extra seeds included), a cell that fits once and scores
    n_eval_full / n_eval_quick as many outputs (fit time at larger budgets is not extrapolated)."""
    quick, full = quick or SUITES.get("quick"), full or SUITES.get("full")
    per = sum(len(seeds_at(b, list(full.seeds), full.more_seeds)) for b in full.budgets) - 1
    scale = full.n_eval / quick.n_eval
    total = 0.0
    for t in report["timings"]:
        if t["status"] != "ok":
            continue
        fit, sc = t.get("fit_s", 0.0), t.get("score_s", 0.0)
        total += fit * (full.tune + 1) + sc * (scale + full.tune * full.n_dev / quick.n_eval)
        total += (fit + sc * scale) * per
    return total
