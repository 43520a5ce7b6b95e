"""How far a results folder has got through a searched suite, and roughly what is left (``editbench run --status``).

A suite that takes longer than one working session (the full suite on a CPU) is run in pieces; before each one
the question is what is done, what is in flight and how long the rest will take. :func:`suite_status` walks the
suite's plan (:class:`~editbench.harness.grid.SuitePlan`, the cells :func:`~editbench.harness.grid.run_suite`
would run, in its order) against the folder without running anything: a cell is *done* where its result file is
there and ok, *in flight* where a tuning cell has journalled trials, *waiting* where it cannot be named yet (a
scored cell, or a search started from another budget's best, whose tuning cell has not finished), *failed* where
its result says so (the next run redoes it), else *to do*. A finished search that was still climbing (and the suite
grows it) is followed by its longer search, a further tuning cell, which the scored cells then wait for; a search
that has not finished cannot say whether it will grow, so what is left does not count growth yet.

What is left is priced from the cells already done in the same folder, on the same machine: a cell's time is the
median of its done peers' (the same task, method and kind, tuning or scored, at the same budget; else the same track's
other tasks), scaled by the fits it makes; where no peer ran at its budget, the nearest budget's, its fits scaled by
how much longer the method's fit takes there (:func:`~editbench.harness.grid.fit_scale`, the full-suite estimate's
rule) and its scoring not, so a projection to a budget nothing has run at yet is rough. A tuning cell in flight is
priced for the fits its journal does not hold yet. Cells with no done peer at all are counted, not priced. A fit's
recorded seconds are wall time: a host paused while a fit ran (a working session that ended mid-cell) inflates them,
so a search's best fit is taken as no longer than its slowest trial, and peers are pooled by their median.
"""

from __future__ import annotations

import functools
import math
import statistics
from pathlib import Path
from typing import Any

from .cell import Cell, shorter_journal
from .grid import Provenances, SuitePlan, fit_scale, read_record, scored_config
from .journal import TrialJournal, journal_path

STATES = ("done", "in flight", "failed", "to do", "waiting")


def suite_status(plan: SuitePlan, out: str | Path) -> list[dict[str, Any]]:
    """Every cell of ``plan`` with its state in ``out``: one dict per cell (``kind`` tuning or scored, ``task``,
    ``method``, ``budget``, ``state`` one of :data:`STATES`, ``seconds`` its measured total where done,
    ``estimate`` the seconds left where priced, else None)."""
    out = Path(out)
    prov_of = Provenances()
    rows: list[dict[str, Any]] = []
    cells: list[tuple[Cell, dict[str, Any]]] = []  # each cell and its row (a waiting cell's fields as planned so far)
    chosen: dict[tuple[str, str, int], dict[str, Any]] = {}  # the configurations of the tuning cells done

    def add(cell: Cell, kind: str, named: bool) -> None:
        row = {"kind": kind, "task": cell.task, "method": cell.method, "budget": cell.budget, "state": "waiting",
               "seconds": None, "fit_s": None, "score_s": None, "estimate": None, "journalled": 0}
        if named:
            path = out / cell.filename(prov_of(cell)["checkpoints"])
            rec = read_record(path)
            if rec is not None and rec.get("status") == "ok":
                tm = rec.get("timing") or {}
                fit_s = float(tm.get("fit_s") or 0.0)
                trials = [float(t.get("seconds") or 0.0) for t in rec.get("tuning") or []]
                if trials:  # a fit takes no longer than the slowest trial (each a fit and a dev scoring) took
                    fit_s = min(fit_s, max(trials))
                row.update(state="done", seconds=float(tm.get("total_s") or 0.0), fit_s=fit_s,
                           score_s=float(tm.get("score_s") or 0.0))
            else:
                k = len(TrialJournal(journal_path(path)).entries) if kind == "tuning" else 0
                shorter = shorter_journal(cell, path, prov_of(cell)["checkpoints"]) if kind == "tuning" else None
                if not k and shorter is not None:  # a grown search starts from its shorter one's kept trials
                    k = len(TrialJournal(shorter).entries)
                row.update(state="in flight" if k else "failed" if rec is not None else "to do", journalled=k)
        rows.append(row)
        cells.append((cell, row))
        if kind == "tuning" and row["state"] == "done":
            longer = plan.grown(cell, rec)  # a search still climbing goes on before it hands on its best
            if longer is not None:
                add(longer, "tuning", named=True)
            else:
                chosen[(cell.task, cell.method, cell.budget)] = scored_config(rec)

    for phase in plan.phases:
        for c in plan.tuning_cells(phase, chosen):
            src = (c.task, c.method, plan.warm[c.budget]) if c.budget in plan.warm else None
            add(c, "tuning", named=src is None or src in chosen)
    for c, src in plan.scored_cells(chosen):
        add(c, "scored", named=src is None or src in chosen)

    peers = [(c, r["seconds"], r["fit_s"], r["score_s"]) for c, r in cells if r["state"] == "done" and r["seconds"]]
    for c, r in cells:
        if r["state"] != "done":
            est = _estimate(c, peers)
            if est is not None and r["journalled"]:
                est *= max(0, c.fits - r["journalled"]) / c.fits
            r["estimate"] = est
    return rows


@functools.cache
def _fit_scale(method: str, track: str, budget: int, searched: bool) -> float:
    return fit_scale(method, track, budget, 1, searched=searched)


def _estimate(cell: Cell, peers: list[tuple[Cell, float, float, float]]) -> float | None:
    """Seconds a cell should take, from the done cells like it (module docstring); None where none is. A peer's
    time is its fits (``fit_s`` each, its best's fit standing for every trial's) and the rest (scoring); the fits
    scale with the cell's number of fits and, from another budget, with :func:`fit_scale`; the rest with the
    number of fits only (a trial's dev scoring does not depend on n). A scored cell none of whose kind has run is
    priced from the tuning cells of its method: its best's fit and test scoring are what a scored cell does."""
    tuning = cell.tune > 1
    searched = tuning or bool(cell.tuned_on)
    scored_like = not tuning

    def pools(as_tuning: bool) -> tuple[list, list]:
        return ([p for p in peers if (p[0].task, p[0].method, p[0].tune > 1) == (cell.task, cell.method, as_tuning)],
                [p for p in peers if (p[0].track, p[0].method, p[0].tune > 1) == (cell.track, cell.method, as_tuning)])

    def ratio(b: int) -> float:
        return _fit_scale(cell.method, cell.track, cell.budget, searched) / max(
            _fit_scale(cell.method, cell.track, b, searched), 1e-9)

    def nearest(pool: list) -> int:
        return min({p[0].budget for p in pool}, key=lambda x: (abs(math.log(x / cell.budget)), -x))

    def priced(pool: list, b: int) -> float:
        at = []
        for c, total, fit, _ in pool:
            if c.budget == b:
                fits = min(fit * c.fits, total)
                at.append((fits * ratio(b) + (total - fits)) * cell.fits / c.fits)
        return statistics.median(at)

    def from_tuning(pool: list) -> float:
        b = nearest(pool)
        at = [fit * ratio(b) + sc for c, _, fit, sc in pool if c.budget == b]
        return statistics.median(at)

    like = pools(tuning)
    for pool in like:
        if any(p[0].budget == cell.budget for p in pool):
            return priced(pool, cell.budget)
    if scored_like:
        for pool in pools(True):
            if pool:
                return from_tuning(pool)
    for pool in like:
        if pool:
            return priced(pool, nearest(pool))
    return None


def status_table(rows: list[dict[str, Any]], workers: int = 1) -> str:
    """The status as text: per kind and budget, the cells in each state, the hours they took and roughly what is
    left; then the total, and the wall time left on ``workers`` workers."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["budget"]), []).append(r)
    head = (f"{'cells':<14}{'done':>7}{'in flight':>11}{'failed':>8}{'to do':>7}{'waiting':>9}{'h done':>9}{'h left':>9}"
            f"{'unpriced':>10}")
    lines = [head]

    def totals(rs: list[dict[str, Any]]) -> tuple[dict[str, int], float, float, int]:
        """Cells per state, hours done, hours left (priced) and cells left unpriced."""
        left = [r for r in rs if r["state"] != "done"]
        return ({s: sum(r["state"] == s for r in rs) for s in STATES}, sum(r["seconds"] or 0.0 for r in rs) / 3600,
                sum(r["estimate"] or 0.0 for r in left) / 3600, sum(r["estimate"] is None for r in left))

    def line(name: str, rs: list[dict[str, Any]]) -> str:
        n, done_h, left_h, unpriced = totals(rs)
        return (f"{name:<14}{n['done']:>7}{n['in flight']:>11}{n['failed']:>8}{n['to do']:>7}{n['waiting']:>9}{done_h:>9.1f}"
                f"{left_h:>9.1f}{unpriced:>10}")

    for kind, b in sorted(groups, key=lambda kb: (kb[0] != "tuning", kb[1])):
        lines.append(line(f"{kind} n={b}", groups[(kind, b)]))
    lines.append(line("all", rows))
    n, _, left_h, unpriced = totals(rows)
    lines.append(f"\n{n['done']} of {len(rows)} cells done; about {left_h:.1f} h of cell time left "
                 f"({left_h / max(workers, 1):.1f} h on {workers} worker{'s' if workers != 1 else ''})"
                 + (f", besides {unpriced} cells not priced (nothing like them has run yet)" if unpriced else "")
                 + ". Priced from this folder's finished cells; rough where a budget has none yet.")
    return "\n".join(lines)
