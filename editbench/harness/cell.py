"""One cell: (task, method, method config, tuning budget, evidence budget, seed, checkpoints), a pure
function of its key. :func:`fit` is the one path from a method to an edit; :func:`run_cell` tunes on
dev within the shared budget, fits and scores on test; :func:`execute_cell` writes its result file.

A *tuning cell* (``tune > 1``) runs the search every method gets (:func:`editbench.core.search.search`:
``tune`` trials of a seeded TPE sampler, each a fit on the cell's evidence and a
score on the dev split) on a seed no table scores, and records every trial, the dev noise of the best (its
bootstrap standard error) beside its margin over the runner-up, the fields tuned to the edge of their space,
and the test score of the best. With ``regret = r > 1`` it goes on to ``r * tune`` trials; the sampler's
first ``tune`` suggestions do not depend on how many follow, so one cell holds the matched search and the
search r times larger, and the test scores of both bests (the tuning regret). With ``grow = g > 0`` (a suite
grows a search still climbing in its last third of trials: :func:`search_climbing`) it goes on to ``2**g`` times
that, and records the grown search's best and test score beside them; its first trials are the shorter search's,
taken from that cell's journal where it was kept (a climbing search keeps it) and fitted again otherwise."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from editbench.benchmarks import EVIDENCE_SEED, evidence_world, get_task
from editbench.benchmarks.scoring import score
from editbench.core import Budget, Edit, Method, MethodError, one_thread
from editbench.core.schedule import steps_of
from editbench.core.search import VERSION as SEARCH_VERSION
from editbench.core.search import at_edge, scored_search, search, signature, still_climbing, trial_values
from editbench.methods import method_code, resolve
from editbench.results import SCHEMA_VERSION, CellResult, write_result, write_strip

from .journal import TrialJournal, journal_path
from .session import Session, Sessions

SAMPLE_OUTPUTS = 8  # before/after outputs kept per cell (a PNG next to its JSON)


@dataclass(frozen=True)
class Cell:
    task: str
    method: str
    budget: int
    seed: int
    config: dict[str, Any] = field(default_factory=dict)
    tune: int = 1  # trials of the search on dev; the same for every method; 1: no search
    n_eval: int = 64
    n_dev: int = 48
    evaluator_calls: int = 512
    n_boot: int = 500
    checkpoints: dict[str, str | None] = field(default_factory=dict)  # folders by kind (absent: the shipped ones)
    evaluator: str = "proxy"  # the evaluator that labels the evidence and answers evaluator calls (Track.evaluators)
    tuned_on: str | None = None  # "n16-s100": config chosen by the tuning cell of that budget and seed
    regret: int = 1  # a tuning cell goes on to regret * tune trials (the larger search the regret is measured by)
    start: dict[str, Any] = field(default_factory=dict)  # a tuning cell's first trial (another budget's tuned best)
    grow: int = 0  # a search still climbing when it stopped goes on: 2**grow times its trials (Suite.grow)

    @property
    def track(self) -> str:
        return get_task(self.task).track

    @property
    def fits(self) -> int:
        """How many fits the cell makes (an executor's limit is its timeout per fit): one, or for a tuning cell one
        per trial, the best's, and the larger search's best."""
        return 1 + (self.trials + (1 if self.regret > 1 else 0) + (1 if self.grow else 0)
                    if self.tune > 1 and not self.config else 0)

    @property
    def trials(self) -> int:
        """A tuning cell's trials in all: the matched search's, ``regret`` times as many, doubled per ``grow``."""
        return self.tune * max(1, self.regret) * 2 ** self.grow

    def spec(self) -> dict[str, Any]:
        """The cell's fields and track (``start`` and ``grow`` only where a search has them: the keys of cells
        without them are those they had before the fields existed)."""
        spec = {**dataclasses.asdict(self), "track": self.track}
        for name in ("start", "grow"):
            if not spec[name]:
                del spec[name]
        return spec

    def key(self, hashes: dict[str, str]) -> str:
        """Hash of the cell with its checkpoints' hashes (not their folders), the task version, the method's
        version (and for a method from outside editbench its code: :func:`~editbench.methods.method_code`),
        the package version and the result schema."""
        from editbench import __version__

        payload = {**self.spec(), "checkpoints": hashes, "task_version": get_task(self.task).version,
                   "method_version": method_version(self.method, self.track), "package": __version__, "schema": SCHEMA_VERSION}
        code = method_code(self.method)
        if code:  # a method from outside editbench: its file's hash or its distribution's version
            payload["method_code"] = code
        if self.tune > 1:
            payload["search"] = SEARCH_VERSION
            payload["space"] = method_space(self.method, self.track)
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def filename(self, hashes: dict[str, str]) -> str:
        method = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.method)[:40]
        return f"{self.task}/{method}/n{self.budget}-s{self.seed}-{self.key(hashes)}.json"

    # the job interface every executor runs (see executors.Job)
    def execute(self, path: str, key: str, prov: dict[str, Any], sessions: Sessions) -> str:
        return execute_cell(self, path, key, prov, sessions)

    def failed_record(self, key: str, error: str, prov: dict[str, Any], total_s: float) -> dict[str, Any]:
        return failed(self, key, error, prov, total_s).as_dict()


def method_version(method: str, track: str | None = None) -> str | None:
    """A method's declared version on ``track`` (:meth:`~editbench.core.Method.version_on`; None where it cannot be
    loaded: it fails as a cell)."""
    try:
        return resolve(method).version_on(track)
    except Exception:  # noqa: BLE001 - a method that cannot be resolved is keyed as it is named
        return None


def method_space(method: str, track: str) -> dict[str, str] | None:
    """The signature of the space a method is searched over on ``track`` (None where it cannot be loaded)."""
    try:
        return signature(resolve(method).space(track))
    except Exception:  # noqa: BLE001 - a method that cannot be resolved is keyed as it is named
        return None


def edges(space: dict[str, Any], cls: type[Method], track: str, config: dict[str, Any], n: int) -> list[str]:
    """The fields of ``config`` (searched values; the method's defaults fill the rest) at the edge of ``space``
    at ``n`` examples, ``epochs`` judged on the steps they buy within the schedule's floor and cap."""
    full = cls(config, track=track).config.as_dict()
    steps = steps_of(full, n)
    return at_edge(space, full, {"epochs": steps} if steps else None)


def default_config(method_cls: type[Method], track: str | None) -> dict[str, Any]:
    """The configuration a method runs with on ``track`` when nothing is given."""
    return method_cls(track=track).config.as_dict()


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
    cost = edit.cost()
    cost.examples_used = min(cost.examples_used or evidence.n, budget.n)
    per_pass = session.flops_per_pass(world)
    if cost.flops is None:  # a method that counted its own FLOPs (an auxiliary model's included) keeps them
        cost.flops = None if per_pass is None else (cost.forward + 2 * cost.backward) * per_pass
    return edit


def run_cell(cell: Cell, session: Session, journal: str | Path | None = None) -> dict[str, Any]:
    """Compute one cell with one CPU thread (so every executor computes the same floats). Returns the
    result's fields; raises on failure. ``journal``: where a tuning cell journals its trials and resumes from
    (:mod:`.journal`)."""
    with one_thread():
        return _run_cell(cell, session, TrialJournal(journal))


def _run_cell(cell: Cell, session: Session, journal: TrialJournal) -> dict[str, Any]:
    torch.manual_seed(cell.seed)
    t0 = time.perf_counter()
    session.models  # noqa: B018 - loaded (once per session) before anything is timed against it
    task = get_task(cell.task)
    cls = resolve(cell.method)
    request = session.track.request(task.request)
    world = evidence_world(task)
    budget = Budget(cell.budget, cell.evaluator_calls, seed=EVIDENCE_SEED + cell.seed)
    fingerprint = session.fingerprint()
    space = cls.space(task.track)

    def fit_checked(method: Method) -> Edit:
        edit = fit(method, session, request, budget, world, cell.evaluator)
        session.check_unchanged(fingerprint)
        return edit

    tuning: list[dict[str, Any]] = []
    searched: dict[str, Any] | None = None
    best = dict(cell.config)
    if not cell.config and cell.tune > 1 and space:
        def objective(cfg: dict[str, Any]) -> float:
            done = journal.replay(cfg)  # a trial an earlier, stopped run of this cell finished
            if done is not None:
                tuning.append(done[1])
                return done[0]
            t = time.perf_counter()
            try:
                edit = fit_checked(cls(cfg, track=task.track))
            except MethodError as e:  # a configuration that fails scores below any that works
                rec, value = {"config": cfg, "dev_primary": None, "error": str(e)}, -1.0
            else:
                dev = score(task, edit, session, split="dev", n=cell.n_dev, n_boot=200, primary_only=True)
                cost = edit.cost()
                rec = {"config": cfg, "dev_primary": dev["primary"], "dev_se": dev_se(dev),
                       "cost": {"steps": cost.steps, "examples_seen": cost.examples_seen, "forward": cost.forward,
                                "backward": cost.backward},
                       "seconds": round(time.perf_counter() - t, 3)}
                value = dev["primary"]
            tuning.append(rec)
            journal.record(cfg, value, rec)
            return value

        trials = search(space, objective, cell.trials, seed=cell.seed, start=cell.start)
        fitted = [i for i, t in enumerate(trials) if not t["repeat"]]  # the trials that fitted, in order
        for rec, i in zip(tuning, fitted, strict=True):
            rec["trial"] = i
        edges_of = lambda cfg: edges(space, cls, task.track, cfg, cell.budget)  # noqa: E731
        searched = summarise_search(space, trials[:cell.tune], tuning, edges_of)
        best = searched["best"]
        if cell.regret > 1:
            searched["larger"] = summarise_search(space, trials[:cell.tune * cell.regret], tuning, edges_of)
        if cell.grow:
            searched["grown"] = summarise_search(space, trials, tuning, edges_of)
    t_tune = time.perf_counter() - t0
    method = cls(best, track=task.track)
    edit = fit_checked(method)
    t_fit = time.perf_counter()
    scores = score(task, edit, session, split="test", n=cell.n_eval, n_boot=cell.n_boot, keep=SAMPLE_OUTPUTS)
    if not math.isfinite(scores["primary"]):
        raise MethodError(f"primary score is {scores['primary']}")
    t_score = time.perf_counter()
    collateral = session.track.collateral(session, edit)
    t_end = time.perf_counter()
    tested = [(best, scores["primary"])]  # the test score of each search's best (larger, grown), fitted once
    for part in ("larger", "grown"):
        if searched is not None and part in searched:
            cfg = searched[part]["best"]
            known = [p for c, p in tested if c == cfg]
            searched[part]["test_primary"] = known[0] if known else score(
                task, fit_checked(cls(cfg, track=task.track)), session, split="test", n=cell.n_eval,
                n_boot=cell.n_boot)["primary"]
            tested.append((cfg, searched[part]["test_primary"]))
    if searched is not None:
        searched["test_primary"] = scores["primary"]
    if space and (cell.tune > 1 or cell.tuned_on):
        searched = {**(searched or {}), "edges": edges(space, cls, task.track, method.config.as_dict(), cell.budget)}
    pictures = scores.pop("pictures", None)
    return {
        "pictures": pictures, "method_name": cls.name, "family": cls.family, "evidence": cls.consumes,
        "track": task.track, "scores": scores,
        "config": method.config.as_dict(), "tuning": tuning, "search": searched, "cost": edit.cost().as_dict(),
        "collateral": collateral,
        "timing": {"tune_s": t_tune, "fit_s": t_fit - t0 - t_tune, "score_s": t_score - t_fit,
                   "collateral_s": t_end - t_score, "total_s": time.perf_counter() - t0,
                   "finished_at": time.time(), **({"resumed_trials": journal.replayed} if journal.replayed else {})},
    }


def dev_se(dev: dict[str, Any]) -> float:
    """The standard error of a dev score, from its 95% bootstrap interval."""
    lo, hi = dev["ci"]
    return round((hi - lo) / (2 * 1.96), 5)


def summarise_search(space: dict[str, Any], trials: list[dict[str, Any]], records: list[dict[str, Any]],
                     edges_of: Any = None) -> dict[str, Any]:
    """The best of ``trials`` (the first of equals), its dev noise, its margin over the best
    other configuration, and the fields at the edge of the space (``edges_of(config)``; default: of the space
    alone)."""
    top = max(trials, key=lambda t: t["value"])
    others = [t["value"] for t in trials if t["config"] != top["config"]]
    rec = next((r for r in records if r["config"] == top["config"]), {})
    return {"trials": len(trials), "distinct": len({repr(sorted(t["config"].items())) for t in trials}),
            "best": top["config"], "dev_primary": top["value"], "dev_se": rec.get("dev_se"),
            "margin": round(top["value"] - max(others), 5) if others else None,
            "edges": (edges_of or (lambda cfg: at_edge(space, cfg)))(top["config"])}


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
    journal = journal_path(path) if cell.tune > 1 and not cell.config else None
    parent = shorter_journal(cell, path, prov["checkpoints"]) if journal is not None else None
    if parent is not None and parent.exists() and not journal.exists():
        shutil.copyfile(parent, journal)  # the shorter search's trials are this one's first
    try:
        out = run_cell(cell, sessions.get(cell.track, cell.checkpoints), journal)
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
    if journal is not None and rec.status == "ok":  # a failed cell keeps its finished trials for the next run
        if not search_climbing(rec.as_dict()):  # a climbing search's may start a longer one (Suite.grow)
            journal.unlink(missing_ok=True)
        if parent is not None:
            parent.unlink(missing_ok=True)
    return rec.status


def shorter_journal(cell: Cell, result: str | Path, hashes: dict[str, str]) -> Path | None:
    """Where the journal of a grown search's shorter one lies (kept there because that search was still climbing:
    its trials are the grown one's first); None for a search that did not grow."""
    if not cell.grow:
        return None
    shorter = dataclasses.replace(cell, grow=cell.grow - 1).filename(hashes)
    return journal_path(Path(result).with_name(Path(shorter).name))


def search_climbing(rec: dict[str, Any]) -> bool:
    """Whether a tuning cell's search (all its trials: the one its scored cells take their configuration from)
    was still climbing when it stopped (:func:`~editbench.core.search.still_climbing`, on its best's dev noise)."""
    s = rec.get("search") or {}
    if "best" not in s:
        return False
    return still_climbing(trial_values(rec.get("tuning") or []), scored_search(s).get("dev_se"))
