"""Leaderboard: stored results -> frame -> aggregate and rank -> families -> tables, plots, grids, page;
and the score gate.

* :mod:`.frame`: one row per cell from one or several result folders and exports;
* :mod:`.aggregate`: one row per (task, method, budget), pooled over seeds, with intervals and ranks;
* :mod:`.families`: editing vs finetuning vs prompting;
* :mod:`.tables`, :mod:`.plots`, :mod:`.grids`, :mod:`.page`: what is written;
* :mod:`.power`: the smallest difference the seeds and outputs can detect;
* :mod:`.tuning`: every method's search and its regret;
* :mod:`.gate`: the CI score gate and the exact comparison.

:func:`publish` computes the numbers once and writes them in every form.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from editbench.core import io

from .aggregate import summarize
from .families import (
    cross_track,
    cross_track_markdown,
    families,
    families_at_compute,
    families_at_compute_markdown,
    families_markdown,
)
from .frame import CELL_ID, LeaderboardError, load_frame
from .gate import check, check_exact, format_check, format_exact, read_baseline, tolerance, write_baseline
from .grids import before_after_grid, before_after_text
from .page import activations_section, render_page
from .plots import plot_budget_curves, plot_compute, plot_cost, plot_transfer
from .power import power_markdown, power_table
from .tables import headline_budget, meta, meta_line, table, to_latex, to_markdown
from .trust import evaluator_table, evaluator_view, trust_section, write_trust
from .tuning import regret_of, tuning_markdown, tuning_table

__all__ = [
    "CELL_ID", "LeaderboardError", "check", "check_exact", "families", "format_check", "format_exact", "load_frame",
    "meta", "meta_line", "publish", "read_baseline", "summarize", "table", "tolerance", "trust_section",
    "write_baseline", "write_trust",
]


def publish(results: str | Path | Sequence[str | Path], out: str | Path, budget: int | None = None,
            n_boot: int = 1000, activations: str | Path | None = None, trust: str | Path | None = None,
            on_conflict: str = "error", submissions: str | Path | None = None) -> dict[str, Any]:
    """Build every leaderboard artefact from one or several result folders and exports into ``out``;
    ``activations``, ``trust``: folders of the activation-reporting and trust studies, shown as sections of the
    page; ``on_conflict``: what a cell that two sources give different results for does (:func:`load_frame`).
    ``submissions``: a folder of verified bundles (``leaderboard/submissions``), whose rows sit beside the
    others marked "verified: k of N cells re-run". Returns the summary, the table, its meta and the Markdown."""
    from editbench.benchmarks import TASKS

    sources = [results] if isinstance(results, str | Path) else list(results)
    marks: dict[str, str] = {}
    if submissions is not None:
        from .submissions import verified_sources

        for folder, mark in verified_sources(submissions):
            sources.append(folder)
            marks[str(folder)] = mark
    df_all, per_image = load_frame(sources, on_conflict)
    df_all["verified"] = df_all.source.map(marks).fillna("") if marks else ""
    searched = tuning_table(df_all)  # tuning cells: their searches are published, their scores never tabled
    df_all = df_all[df_all.role == "scored"]
    df = df_all[df_all.evaluator == "proxy"]  # the leaderboard's methods see the proxy; the other evaluators below
    draws: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    summary = summarize(df, per_image, n_boot=n_boot, keep_draws=draws)
    fam = families(summary, draws, regret_of(searched) if not searched.empty else None)
    m = meta(df)
    budget = headline_budget(summary) if budget is None else budget
    if budget not in set(summary.budget):
        raise LeaderboardError(f"no results at budget {budget}; budgets present: {sorted(summary.budget.unique())}")
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "grids").mkdir(parents=True, exist_ok=True)
    t = table(summary, budget)
    md = to_markdown(t, m)
    io.write_text(out / "leaderboard.md", md)
    io.write_text(out / "leaderboard.csv", f"# {meta_line(m)}\n" + t.to_csv(index=False))
    curves = summary.drop(columns=["image", "examples", "family_order"])
    payload = {"meta": m, "budget": budget, "rows": json.loads(t.to_json(orient="records", double_precision=15)),
               "curves": json.loads(curves.to_json(orient="records", double_precision=15)),
               "families": json.loads(fam.to_json(orient="records", double_precision=15))}
    io.write_text(out / "leaderboard.json", json.dumps(payload, indent=1))
    io.write_text(out / "leaderboard.tex", to_latex(t, m))
    fam_md = families_markdown(fam) if not fam.empty else ""
    io.write_text(out / "families.md", f"Best method of each family per task and evidence budget; {meta_line(m)}.\n\n" + fam_md)
    io.write_text(out / "families.csv", f"# {meta_line(m)}\n" + fam.to_csv(index=False))
    if not searched.empty:
        io.write_text(out / "tuning.md", tuning_markdown(searched, meta_line(m)))
        io.write_text(out / "tuning.csv", f"# {meta_line(m)}\n" + searched.to_csv(index=False))
    at_compute = families_at_compute(summary)
    if not at_compute.empty:
        io.write_text(out / "families_compute.md", "Best method of each family per task within a compute budget "
                      f"(any evidence budget); {meta_line(m)}.\n\n" + families_at_compute_markdown(at_compute))
    power = power_table(summary, draws, fam)
    io.write_text(out / "power.md", "Minimum detectable difference between two methods (paired, 5% two-sided, 80% "
                  f"power) and interval widths, per task and evidence budget; {meta_line(m)}.\n\n" + power_markdown(power))
    io.write_text(out / "power.csv", f"# {meta_line(m)}\n" + power.to_csv(index=False))
    tracks = dict(zip(summary.task, summary.track, strict=True))
    if t.track.nunique() > 1:  # per-track tables beside the combined ones
        for track in sorted(t.track.unique()):
            mt = meta(df[df.track == track])  # what this track's cells came from
            io.write_text(out / f"leaderboard-{track}.md", to_markdown(t[t.track == track].reset_index(drop=True), mt))
            f = fam[fam.task.map(tracks) == track] if not fam.empty else fam
            io.write_text(out / f"families-{track}.md", f"Best method of each family per task and evidence budget, "
                          f"{track} track; {meta_line(mt)}.\n\n" + (families_markdown(f) if not f.empty else ""))
    cross = cross_track(fam, tracks) if not fam.empty else pd.DataFrame()
    if not cross.empty:
        io.write_text(out / "cross_track.md", "Which family leads each task in images and in text, per evidence budget; "
                      f"{meta_line(m)}.\n\n" + cross_track_markdown(cross))
        io.write_text(out / "cross_track.csv", f"# {meta_line(m)}\n" + cross.to_csv(index=False))
    plots = {"budget": plot_budget_curves(summary, out / "plots" / "budget_curves.png"),
             "transfer": plot_transfer(summary, out / "plots" / "transfer.png", budget),
             "cost": plot_cost(summary, out / "plots" / "cost.png", budget),
             "compute": plot_compute(summary, out / "plots" / "compute.png")}
    grids = {task: before_after_grid(summary, task, budget, out / "grids" / f"{task.replace('/', '_')}.png")
             for task in sorted(summary.task.unique())}
    texts = {task: before_after_text(summary, task, budget) for task in sorted(summary.task.unique())}
    descriptions = {name: TASKS.get(name).description for name in t.task.unique() if name in TASKS}
    study = (activations_section(activations, out / "plots") if activations else "") + \
        (trust_section(trust, out / "plots") if trust else "")
    if df_all.evaluator.nunique() > 1:  # the suite ran the evaluator-calling methods under other evaluators too
        evals = evaluator_table(df_all, per_image, n_boot, budget)
        view = evaluator_view(evals)
        io.write_text(out / "evaluators.md", f"Evaluator quality at n = {budget}; {meta_line(m)}.\n\n"
                      + view.to_markdown(index=False, disable_numparse=True) + "\n")
        study += (f"<h2 id='evaluators'>Evaluator quality</h2>\n<p>At n = {budget}: the methods that call an evaluator "
                  "under evaluators of graded quality (on/off accuracy), against the best editing method.</p>\n"
                  + view.to_html(index=False, classes="families", border=0))
    io.write_text(out / "index.html", render_page(t, fam, m, budget, grids, plots, descriptions, texts, cross, study))
    return {"summary": summary, "table": t, "meta": m, "markdown": md, "out": out}
