"""The static page: sortable tables per task, the families table, plots and before/after grids, with its
script and style inlined from ``page.js`` and ``page.css`` (it works from the file system, no server, no
network)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .families import cross_track_view, families_view
from .tables import fmt, gap_text, meta_line

_HERE = Path(__file__).resolve().parent


def _html_table(t: pd.DataFrame, task: str) -> str:
    cols = [c for c in t.columns if c not in ("task", "ci_lo", "ci_hi", "budget", "gap_lo", "gap_hi", "gap_flag")
            and not (t[c].dtype.kind == "f" and t[c].isna().all())  # e.g. collateral on image tasks
            and not (c == "verified" and not (t[c].fillna("") != "").any())]  # no submission among the rows
    head = "".join(f'<th class="{"text" if t[c].dtype.kind not in "fi" and c != "rank" else ""}">'
                   f"{html.escape(c.replace('_', ' '))}</th>" for c in cols)
    body = []
    for _, r in t.iterrows():
        tds = []
        for c in cols:
            v = r[c]
            if c == "primary":
                txt = "failed" if not math.isfinite(v) else f"{v:.3f} [{fmt(r.ci_lo)}, {fmt(r.ci_hi)}]"
                tds.append(f'<td data-value="{v if math.isfinite(v) else -1}">{txt}</td>')
            elif c == "gap":
                flag = ' class="flag" title="the judge does not confirm this part of the score"' if r.gap_flag else ""
                tds.append(f'<td data-value="{v if math.isfinite(v) else ""}"{flag}>{html.escape(gap_text(r))}</td>')
            elif isinstance(v, float):
                tds.append(f'<td data-value="{v if math.isfinite(v) else ""}">{fmt(v, 1 if c == "fit_s" else 3)}</td>')
            elif c == "rank":
                tds.append(f'<td data-value="{str(v).lstrip("=")}">{html.escape(str(v))}</td>')
            else:
                tds.append(f'<td class="{"" if isinstance(v, int | np.integer) else "text"}">{html.escape(str(v))}</td>')
        cls = ' class="failed"' if r.status != "ok" else ""
        body.append(f"<tr{cls}>{''.join(tds)}</tr>")
    return (f'<table class="sortable" id="table-{html.escape(task)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")




def render_page(t: pd.DataFrame, fam: pd.DataFrame, m: dict[str, Any], budget: int, grids: dict[str, Path | None],
                plots: dict[str, Path | None], descriptions: dict[str, str], texts: dict[str, str] | None = None,
                cross: pd.DataFrame | None = None, study: str = "") -> str:
    """The page's HTML: one section per task (its description, sortable table, and its before/after grid or
    descriptions), the families table and the plots."""
    sections = []
    for task in sorted(t.task.unique()):
        about = html.escape(descriptions.get(task, ""))
        grid = grids.get(task)
        sections.append(f"<h2 id='{task}'>{task}</h2>\n<p>{about}</p>\n{_html_table(t[t.task == task], task)}\n"
                        + (f'<img class="grid" src="grids/{grid.name}" alt="before and after, {task}">' if grid else "")
                        + (texts or {}).get(task, ""))
    if not fam.empty:
        sections.append("<h2 id='families'>Editing vs finetuning vs prompting</h2>\n<p>Each family's best method per task "
                        "and evidence budget (primary [95% interval]); the leader is every family whose best is not "
                        "significantly beaten by another's (paired bootstrap).</p>\n"
                        + families_view(fam).to_html(index=False, classes="families", border=0))
    if cross is not None and not cross.empty:
        sections.append("<h2 id='cross-track'>Images vs text</h2>\n<p>For each task both tracks pose, the family that "
                        "leads in images and the one that leads in text (its best method and primary), and whether "
                        "they agree.</p>\n" + cross_track_view(cross).to_html(index=False, classes="families", border=0))
    if study:
        sections.append(study)
    figs = "".join(f'<h3>{html.escape(name)}</h3><img src="plots/{p.name}" alt="{name} plot">'
                   for name, p in plots.items() if p)
    css, js = (_HERE / "page.css").read_text(), (_HERE / "page.js").read_text()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>editbench leaderboard</title>
<style>
{css}</style></head><body>
<h1>editbench leaderboard</h1>
<p class="meta">{html.escape(meta_line(m))}. Evidence budget n = {budget}. Primary: harmonic mean of the task's parts;
95% interval from a bootstrap over seeds and images; a rank shared (=) where a paired bootstrap cannot
separate the methods. Every score is the judge's (a reader no method sees); the proxy's primary is what
the method's own evaluator reads, and the gap (proxy minus judge, paired interval) is flagged where it lies
above zero: part of the score the judge does not confirm. Click a column header to sort.</p>
{''.join(sections)}
<h2>Plots</h2>{figs}
<script>
{js}</script>
</body></html>
"""


ACTIVATION_PLOTS = ("accuracy_by_depth.png", "accuracy_by_examples.png")


def activations_section(folder: str | Path, plots_out: Path) -> str:
    """The page's section on the activation-reporting study, from the folder ``editbench experiment activations``
    wrote (its ``activations.json`` and plots, copied into ``plots_out``); empty where the folder has no tables."""
    import json
    import shutil

    data_path = Path(folder) / "activations.json"
    if not data_path.exists():
        return ""
    data = json.loads(data_path.read_text())
    ans = pd.DataFrame(data.get("answer") or [])
    figs = []
    for name in ACTIVATION_PLOTS:
        if (Path(folder) / name).exists():
            shutil.copy2(Path(folder) / name, plots_out / f"activations_{name}")
            figs.append(f'<img src="plots/activations_{name}" alt="activation reporting: {name[:-4]}">')
    table = ""
    if not ans.empty:
        view = pd.DataFrame({
            "model": ans["size"], "LM": ans["lm"], "layers": ans["layers"], "beat chance": ans["beat_chance"],
            "deepest beating chance": ans["deepest_beating"], "first failing": ans["first_failing"],
            "last layer": [f"{a:.3f} [{c[0]:.3f}, {c[1]:.3f}]" for a, c in zip(ans.last_accuracy, ans.last_ci,
                                                                             strict=True)],
            "probe share where beating": ans["probe_share_where_beating"].round(3),
            "self vs control (mean accuracy; layers self above / below)": [
                f"{r['self_mean']:.3f} vs {r['control_mean']:.3f}; {r['self_above_control']} / {r['self_below_control']}"
                if r.get("control_points") else "" for r in ans.to_dict("records")]})
        table = view.to_html(index=False, classes="families", border=0)
    chance = data.get("chance", {}).get("accuracy", 0.1)
    return ("<h2 id='activation-reporting'>Activation reporting</h2>\n<p>Can the lamp LM be finetuned to report "
            "one of its own neurons (its decile, 1-10, after a sentence ends), and how many layers down does it stop "
            f"working? Exact-bin accuracy on {data.get('n_test', '')} held-out sentences, 95% interval; chance "
            f"{chance:.2f}. A layer beats chance where its interval's lower end is above it; the probe share is the "
            "accuracy over a linear probe's from the final residual stream. Every point is in the study's "
            "<code>activations.md</code>.</p>\n" + table + "".join(figs))
