"""The grid of tasks x methods x budgets x seeds: resumable, each method tuned with the same budget.

A finished cell is never recomputed (its file is skipped); an interrupted run resumes where it stopped;
a cell that raises, scores NaN, changes the shared model or runs past its limit is recorded as failed
and the grid goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from editbench.benchmarks.suites import SUITES, Suite
from editbench.core import UserError, io
from editbench.core.search import scored_search
from editbench.results import provenance
from editbench.tracks import get_track

from .cell import Cell, describe, search_climbing
from .executors import ExecutorSpec, Job, executor_spec


def supports(method: str, task: str) -> bool:
    """Whether a method declares the task's track (a method that cannot be loaded is kept, to fail as a cell)."""
    from editbench.benchmarks import get_task
    from editbench.methods import resolve

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


def nearest_budget(budget: int, tuned: tuple[int, ...] | list[int]) -> int:
    """The tuned budget nearest ``budget`` on a log scale (ties go to the larger: more evidence tells
    configurations apart better)."""
    return min(tuned, key=lambda b: (abs(math.log(max(b, 1)) - math.log(max(budget, 1))), -b))


def searches(method: str, task: str) -> bool:
    """Whether a method has a search space on the task's track (one that cannot be loaded: yes, to fail as a cell)."""
    from editbench.benchmarks import get_task
    from editbench.methods import resolve

    try:
        return bool(resolve(method).space(get_task(task).track))
    except Exception:  # noqa: BLE001 - a broken method fails as its tuning cell
        return True


def run_suite(tasks: list[str], methods: list[str], budgets: list[int], seeds: list[int], out: str | Path, *,
              tune: int = 1, tune_budgets: tuple[int, ...] | list[int] | None = None, tune_seed: int = 100,
              regret: dict[int, int] | None = None, warm: dict[int, int] | None = None,
              executor: str | ExecutorSpec = "process",
              workers: int = 2, timeout_s: float | None = 1800, progress: bool = True,
              evaluators: tuple[str, ...] = ("proxy",), evaluator_budgets: tuple[int, ...] | list[int] = (),
              more_seeds: dict[int, tuple[int, ...]] | None = None, scored: bool = True, grow: int = 0,
              **cell_kw: Any) -> dict[str, Any]:
    """Run a suite's grid. With ``tune > 1`` every method with a search space gets the same search: one
    tuning cell per (task, method, tuned budget) at each of ``tune_budgets`` (default: every budget), on
    ``tune_seed`` (a seed no table scores), ``tune`` trials on the dev split (``regret[budget]`` times as many
    where given, the first ``tune`` of them being the matched search); every scored cell then uses the
    configuration tuned at the nearest tuned budget (``tuned_on`` names its tuning cell): the best of all its
    trials (:func:`scored_config`: at a regret budget, the larger search's, which every method gets alike).
    ``warm[budget] = b``: the search at ``budget`` tries the configuration tuned at ``b`` first (those tuning cells
    run after the ones they start from; where that one failed, the search starts cold). ``evaluators``
    beyond the first (the proxy): the methods that call an evaluator run again under each, with the config
    tuned under the proxy (the evaluator-quality axis), at ``evaluator_budgets`` (empty: every budget).
    ``more_seeds``: extra seeds per budget (the headline budget's, for power). ``grow``: how many times a search
    still climbing when it stops (:func:`~editbench.harness.cell.search_climbing`) goes on to twice its trials,
    before the searches that start from it and the scored cells take its best. ``scored=False``: the tuning cells
    only (a regret probe: a larger search at a budget whose scored cells use the matched one; it does not grow)."""
    plan = SuitePlan(tasks, methods, budgets, seeds, tune=tune, tune_budgets=tune_budgets, tune_seed=tune_seed,
                     regret=regret, warm=warm, evaluators=evaluators, evaluator_budgets=evaluator_budgets,
                     more_seeds=more_seeds, grow=grow if scored else 0, cell_kw=cell_kw)
    chosen: dict[tuple[str, str, int], dict[str, Any]] = {}
    reports = []
    for phase in plan.phases:
        tuning = plan.tuning_cells(phase, chosen)
        while tuning:  # the phase's searches, then the longer ones of those still climbing, until none grows
            r = run_grid(tuning, out, executor, workers, timeout_s, progress)
            longer = []
            for c in tuning:
                rec = json.loads((Path(out) / r["paths"][id(c)]).read_text())
                g = plan.grown(c, rec)
                if g is not None:
                    longer.append(g)
                else:
                    chosen[(c.task, c.method, c.budget)] = scored_config(rec) if rec["status"] == "ok" else {}
            reports.append(r)
            tuning = longer
    if scored or not reports:
        reports.append(run_grid([c for c, _ in plan.scored_cells(chosen)] if scored else [], out, executor, workers,
                                timeout_s, progress))
    return {k: v for k, v in functools.reduce(_merged, reports).items() if k != "paths"}


def evaluators_at(method: str, n: int, evaluators: tuple[str, ...], evaluator_budgets: tuple[int, ...] | list[int]
                  ) -> tuple[str, ...]:
    """The evaluators a method's cells at budget ``n`` run under: the proxy, and the suite's others where the method
    calls an evaluator and ``n`` is one of ``evaluator_budgets`` (empty: every budget)."""
    others = tuple(e for e in evaluators if e != "proxy")
    return ("proxy", *others) if uses_evaluator(method) and (not evaluator_budgets or n in evaluator_budgets) \
        else ("proxy",)


@dataclass
class SuitePlan:
    """The cells of a suite, in the order :func:`run_suite` runs them: the tuning cells phase by phase (cold
    searches first, then those that start from another budget's best), then the scored cells with the
    configurations the tuning cells chose (a suite with ``tune <= 1`` has no tuning cells). :func:`run_suite` runs
    it; :func:`~editbench.harness.status.suite_status` reads how far a results folder has got through it."""
    tasks: list[str]
    methods: list[str]
    budgets: list[int]
    seeds: list[int]
    tune: int
    tune_budgets: tuple[int, ...] | list[int] | None = None
    tune_seed: int = 100
    regret: dict[int, int] | None = None
    warm: dict[int, int] | None = None
    evaluators: tuple[str, ...] = ("proxy",)
    evaluator_budgets: tuple[int, ...] | list[int] = ()
    more_seeds: dict[int, tuple[int, ...]] | None = None
    grow: int = 0
    cell_kw: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        scored_seeds = {*self.seeds, *(s for v in (self.more_seeds or {}).values() for s in v)}
        if self.tune > 1 and self.tune_seed in scored_seeds:
            raise UserError(f"the tuning seed {self.tune_seed} is also scored; choose one outside the suite's seeds")
        self.tbs = sorted({b for b in (self.tune_budgets or self.budgets)})
        self.warm = {b: w for b, w in (self.warm or {}).items() if b in self.tbs and w != b and w not in (self.warm or {})}
        self.searched = [(t, m) for t in self.tasks for m in self.methods if supports(m, t) and searches(m, t)
                         and self.tune > 1]  # a suite that searches nothing runs every method's default
        # cold searches first (those a warm one starts from among them, asked for or not), then the warm ones
        cold = tuple(sorted({b for b in self.tbs if b not in self.warm} | set(self.warm.values())))
        self.phases = [p for p in (cold, tuple(b for b in self.tbs if b in self.warm)) if p]

    def tuning_cells(self, phase: tuple[int, ...], chosen: dict[tuple[str, str, int], dict[str, Any]]) -> list[Cell]:
        """A phase's tuning cells; a warm search starts from ``chosen``, the earlier phase's configurations."""
        return [Cell(task=t, method=m, budget=b, seed=self.tune_seed, tune=self.tune,
                     regret=(self.regret or {}).get(b, 1),
                     start=chosen.get((t, m, self.warm[b]), {}) if b in self.warm else {}, **self.cell_kw)
                for t, m in self.searched for b in phase]

    def grown(self, cell: Cell, rec: dict[str, Any] | None) -> Cell | None:
        """The longer search a finished tuning cell goes on to: the same search with twice its trials, where the
        cell is ok, its search was still climbing when it stopped and it has grown fewer than ``grow`` times; None
        where its best is the one handed on."""
        if rec is None or rec.get("status") != "ok" or cell.grow >= self.grow or not search_climbing(rec):
            return None
        return dataclasses.replace(cell, grow=cell.grow + 1)

    def scored_cells(self, chosen: dict[tuple[str, str, int], dict[str, Any]]
                     ) -> list[tuple[Cell, tuple[str, str, int] | None]]:
        """Every scored cell, with the tuning cell it takes its configuration from (None: an unsearched method).
        A cell whose tuning cell ``chosen`` lacks (not run yet) gets an empty configuration."""
        rest = []
        for t in self.tasks:
            for m in self.methods:
                if not supports(m, t):
                    continue
                tuned = (t, m) in self.searched
                for n in self.budgets:
                    tb = nearest_budget(n, self.tbs)
                    src = (t, m, tb) if tuned else None
                    cfg, on = (chosen.get(src, {}), f"n{tb}-s{self.tune_seed}") if tuned else ({}, None)
                    for e in evaluators_at(m, n, self.evaluators, self.evaluator_budgets):
                        rest += [(Cell(task=t, method=m, budget=n, seed=s, config=cfg, tune=1, tuned_on=on, evaluator=e,
                                       **self.cell_kw), src) for s in seeds_at(n, self.seeds, self.more_seeds)]
        return rest


def _merged(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two grid reports as one (counts, wall time and timings added; the checkpoints of the later, else the
    earlier)."""
    return {**{k: a[k] + b[k] for k in ("cells", "skipped", "ran", "ok", "failed", "wall_s", "timings")},
            "checkpoints": b["checkpoints"] or a["checkpoints"]}


def scored_config(rec: dict[str, Any]) -> dict[str, Any]:
    """The configuration a tuning cell hands the scored cells: its best, or where it went on to a larger search
    (the regret budget), the larger search's best: every method searched alike, the more trials the better the
    config (the regret, matched against larger, says what the matched trials at the other budgets may leave);
    where the search grew (it was still climbing), the grown search's best."""
    return {**(rec.get("config") or {}), **(scored_search(rec.get("search") or {}).get("best") or {})}


def run_named_suite(suite: str | Suite, tasks: list[str], methods: list[str], out: str | Path, *,
                    budgets: list[int] | None = None, seeds: list[int] | None = None, **kw: Any) -> dict[str, Any]:
    """:func:`run_suite` with a registered suite's shape (budgets and seeds may be overridden; seeds given
    replace the suite's, its extra seeds per budget included)."""
    return run_suite(tasks, methods, out=out, **suite_shape(suite, budgets, seeds), **kw)


def suite_shape(suite: str | Suite, budgets: list[int] | None = None, seeds: list[int] | None = None
                ) -> dict[str, Any]:
    """A registered suite's grid as :func:`run_suite`'s arguments (budgets and seeds as :func:`run_named_suite`
    takes them), its cells' fields included."""
    s = SUITES.get(suite) if isinstance(suite, str) else suite
    b = list(budgets or s.budgets)
    return dict(budgets=b, seeds=list(seeds or s.seeds), tune=s.tune,
                tune_budgets=[x for x in s.tune_budgets if x in b] or None if s.tune_budgets else None,
                tune_seed=s.tune_seed, regret=s.regret, warm=s.warm, grow=s.grow, evaluators=s.evaluators,
                evaluator_budgets=s.evaluator_budgets, more_seeds=s.more_seeds_for(seeds), **s.cell_kwargs())


def plan_named_suite(suite: str | Suite, tasks: list[str], methods: list[str], *, budgets: list[int] | None = None,
                     seeds: list[int] | None = None, **cell_kw: Any) -> SuitePlan:
    """The :class:`SuitePlan` of a registered suite (``cell_kw``: further cell fields, e.g. checkpoints)."""
    shape = suite_shape(suite, budgets, seeds)
    plan_fields = {f for f in SuitePlan.__dataclass_fields__ if f != "cell_kw"}
    return SuitePlan(tasks=tasks, methods=methods, **{k: v for k, v in shape.items() if k in plan_fields},
                     cell_kw={**{k: v for k, v in shape.items() if k not in plan_fields}, **cell_kw})


def read_record(path: Path) -> dict[str, Any] | None:
    """A job's result, where its file is there and reads as a record; None otherwise (a corrupt one is recomputed,
    as a missing one)."""
    try:
        rec = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None
    return rec if isinstance(rec, dict) else None


def is_done(path: Path) -> bool:
    """Whether a job's result file is there and ok (a failed or corrupt one is recomputed)."""
    rec = read_record(path)
    return rec is not None and rec.get("status") == "ok"


def cell_of(rec: dict[str, Any]) -> Cell | None:
    """The cell a record is of, where this version gives it the record's key (the same package, task, method and
    search versions and space, the same checkpoints); None otherwise (a cell of another schema or of a task this
    version does not have included)."""
    try:
        cell = Cell(**{k: v for k, v in (rec.get("cell") or {}).items() if k != "track"})
        return cell if cell.key((rec.get("provenance") or {}).get("checkpoints") or {}) == rec.get("key") else None
    except (TypeError, UserError):
        return None


def restore(results: str | Path, out: str | Path) -> dict[str, int]:
    """Write the cell records of an export (or another results folder) into ``out`` as the files the grid
    writes, so that a run into ``out`` skips them: a published suite is extended (more seeds, budgets or
    methods) without recomputing it. A record is restored only where this version gives its cell the same
    key (same package, task version and result schema, the same checkpoints); an ok file already in
    ``out`` is kept. Returns the counts ``restored``, ``kept`` and ``stale`` (records of another key)."""
    from editbench.results import read_records, write_result

    counts = {"restored": 0, "kept": 0, "stale": 0}
    for rec in read_records(results):
        cell = cell_of(rec)
        if cell is None:
            counts["stale"] += 1
            continue
        path = Path(out) / cell.filename((rec.get("provenance") or {}).get("checkpoints") or {})
        if is_done(path):
            counts["kept"] += 1
            continue
        write_result(path, {k: v for k, v in rec.items() if not k.startswith("_")})
        counts["restored"] += 1
    return counts


def not_of_suite(records: list[dict[str, Any]], suite: str | Suite) -> dict[int, str]:
    """The records (by position) that a run of ``suite`` would not use, and why: a cell this version keys
    differently (another method version or search space, another package), a tuning cell of another search than
    the suite gives its budget (fewer trials, another start; a larger search is a regret probe and is kept), a
    scored cell whose configuration is not the one its tuning cell hands on. What a republish drops before it is
    exported, so that tables show only the searches the scored cells used."""
    s = SUITES.get(suite) if isinstance(suite, str) else suite
    out: dict[int, str] = {}
    cells: dict[int, Cell] = {}
    for i, rec in enumerate(records):
        cell = cell_of(rec)
        if cell is None:
            out[i] = "keyed differently by this version"
        else:
            cells[i] = cell
    handed: dict[tuple[str, str, int, int], dict[str, Any]] = {}  # (task, method, budget, seed) -> tuned config
    for warm in (False, True):  # the searches a warm one starts from first
        grown: dict[tuple[str, str, int, int], dict[int, int]] = {}  # the suite's searches: grow -> record
        for i, c in cells.items():
            if c.tune <= 1 or (c.budget in s.warm) != warm:
                continue
            want_start = handed.get((c.task, c.method, s.warm[c.budget], c.seed)) if warm else {}
            if c.tune != s.tune or c.regret < s.regret.get(c.budget, 1):
                out[i] = f"a search of {c.tune * c.regret} trials, where the suite runs {s.tune * s.regret.get(c.budget, 1)}"
            elif want_start is None or c.start != want_start:
                out[i] = "a search started elsewhere than the suite starts it"
            elif records[i].get("status") == "ok" and c.regret == s.regret.get(c.budget, 1):
                grown.setdefault((c.task, c.method, c.budget, c.seed), {})[c.grow] = i
        for k, by_grow in grown.items():  # a search hands on its best unless it grew (it climbed): then the longer's
            g = 0
            while g in by_grow and g < s.grow and search_climbing(records[by_grow[g]]):
                g += 1
            if g in by_grow:
                handed[k] = scored_config(records[by_grow[g]])
            for h, i in by_grow.items():
                if h > g:
                    out[i] = "a longer search than the suite grows this one to"
    for i, c in cells.items():
        if c.tune > 1 or not c.tuned_on:
            continue
        b, seed = (int(x) for x in c.tuned_on[1:].split("-s"))
        cfg = handed.get((c.task, c.method, b, seed))
        if cfg is None:
            out[i] = f"its tuning cell ({c.tuned_on}) is not among these records"
        elif c.config != cfg:
            out[i] = f"a configuration its tuning cell ({c.tuned_on}) no longer hands on"
    return out


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


class Provenances:
    """Each cell's provenance (versions, commit, its checkpoints' hashes: what its key and path are made of),
    computed once per (track, checkpoints)."""

    def __init__(self) -> None:
        self.cache: dict[tuple, dict[str, Any]] = {}

    def __call__(self, cell: Cell) -> dict[str, Any]:
        k = (cell.track, tuple(sorted(cell.checkpoints.items())))
        if k not in self.cache:
            self.cache[k] = provenance(get_track(cell.track), cell.checkpoints)
        return self.cache[k]


def run_grid(cells: list[Cell], out: str | Path, executor: str | ExecutorSpec = "process", workers: int = 2,
             timeout_s: float | None = 1800, progress: bool = True) -> dict[str, Any]:
    """Run every cell not already done; returns counts, per-cell timings (the timing report) and each
    cell's result path (``paths``, by ``id(cell)``)."""
    out = Path(out)
    executor = executor_spec(executor)  # an unknown executor fails before anything runs
    prov_of = Provenances()
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
    first = next(iter(prov_of.cache.values()), {})
    return {"cells": len(cells), "skipped": skipped, "ran": len(todo), **status, "wall_s": wall, "timings": timings,
            "checkpoints": first.get("checkpoints", {}), "paths": paths}


def fit_scale(method: str, track: str, budget: int, quick_budget: int, searched: bool = False) -> float:
    """How much longer a fit takes at ``budget`` than the quick suite's default fit at ``quick_budget``: a
    method trained for epochs by its schedule's steps (averaged over the searched epochs, log-uniform, when
    ``searched``); an editor that reads its samples in proportion to n; anything else (evaluator-bound, or
    nothing to fit) the same."""
    import numpy as np

    from editbench.core.schedule import steps_of
    from editbench.core.search import Choice, LogFloat, dimension
    from editbench.methods import resolve

    try:
        cls = resolve(method)
    except Exception:  # noqa: BLE001 - a method that cannot be loaded costs what it cost in the quick suite
        return 1.0
    cfg = cls(track=track).config.as_dict()
    if steps_of(cfg, 1) and cls.consumes in ("targets", "samples"):
        def steps(n: int, e: float) -> int:
            return steps_of(cfg, n)[0](e)
        base = steps(quick_budget, cfg["epochs"])
        space = cls.space(track)
        dim = space.get("epochs")
        if searched and dim is not None and isinstance(dimension(dim), LogFloat):
            d = dimension(dim)
            grid = np.exp(np.linspace(np.log(d.lo), np.log(d.hi), 17))
            per_step = get_track(track).step_cost  # a searched option that trains more per step, on average
            options = 1.0
            for name, spec in space.items():
                if isinstance(dimension(spec), Choice):
                    options *= float(np.mean([per_step({**cfg, name: v}) for v in dimension(spec).values])) / per_step(cfg)
            return options * float(np.mean([steps(budget, float(e)) for e in grid])) / max(base, 1)
        return steps(budget, cfg["epochs"]) / max(base, 1)
    if cls.consumes == "samples":
        return budget / quick_budget
    return 1.0


def estimate_full(report: dict[str, Any], quick: Suite | None = None, full: Suite | None = None,
                  breakdown: dict[str, float] | None = None) -> float:
    """Rough cell time (s, one worker) of the full suite from a quick run's cell timings (each method's default
    fit and its test scoring at the quick budget). Per (task, method): a tuning cell at each tuned budget (its
    trials, ``regret`` times as many where the suite measures regret, each a fit at the searched configurations'
    mean schedule and step cost (``Track.step_cost``) and a dev scoring of ``n_dev`` outputs, then the best's
    fit and test scoring, twice with a regret search), and for every (budget, seed) of the suite a scored cell
    (a fit and a test scoring of ``n_eval`` outputs, its fit priced as a searched one where the method is
    tuned), under every evaluator for the methods that call one at the budgets they run under it. Fit time is scaled by
    :func:`fit_scale`; scoring by the outputs scored. ``breakdown`` (a dict) receives the seconds by
    ``"{track} {family} {tuning|scored}"``."""
    from editbench.benchmarks import get_task
    from editbench.methods import resolve

    quick, full = quick or SUITES.get("quick"), full or SUITES.get("full")
    qb = quick.budgets[0]
    tuned = list(full.tune_budgets or full.budgets)
    total = 0.0
    for t in report["timings"]:
        if t["status"] != "ok":
            continue
        track, fit, sc = get_task(t["task"]).track, t.get("fit_s", 0.0), t.get("score_s", 0.0)
        family = describe(t["method"])["family"] or "?"
        try:
            has_space = bool(resolve(t["method"]).space(track)) and full.tune > 1
            calls = resolve(t["method"]).uses_evaluator
        except Exception:  # noqa: BLE001 - a broken method costs what it cost once
            has_space, calls = False, False
        evaluators = {b: len(full.evaluators) if calls and (not full.evaluator_budgets or b in full.evaluator_budgets)
                      else 1 for b in full.budgets}
        test = sc * full.n_eval / quick.n_eval
        tuning = 0.0
        if has_space:
            for b in tuned:
                trials = full.tune * full.regret.get(b, 1)
                dev = sc * full.n_dev / quick.n_eval
                tuning += trials * (fit * fit_scale(t["method"], track, b, qb, searched=True) + dev)
                tuning += (2 if full.regret.get(b, 1) > 1 else 1) * (fit * fit_scale(t["method"], track, b, qb, True) + test)
        scored = sum(evaluators[b] * len(seeds_at(b, list(full.seeds), full.more_seeds))  # at a searched config
                     * (fit * fit_scale(t["method"], track, b, qb, searched=has_space) + test) for b in full.budgets)
        total += tuning + scored
        if breakdown is not None:
            for kind, v in (("tuning", tuning), ("scored", scored)):
                breakdown[f"{track} {family} {kind}"] = breakdown.get(f"{track} {family} {kind}", 0.0) + v
    return total
