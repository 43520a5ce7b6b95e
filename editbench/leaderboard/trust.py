"""Trust tables and plots, from the cells of ``editbench experiment trust`` (or any results holding
several evaluator budgets or evaluators): the over-optimisation curve and the evaluator-quality table.

Both are built with the leaderboard's own aggregation (:func:`summarize`: pooled over seeds and outputs,
bootstrap intervals no tighter than the reader floor, the paired proxy-judge gap), applied to one slice of
the cells at a time: one evaluator budget, or one evaluator (with the methods that see no evaluator in
every slice).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from editbench.core import io
from editbench.core.stats import paired_better

from .aggregate import summarize
from .frame import LeaderboardError, load_frame
from .plots import _plt
from .tables import fmt, gap_text, meta, meta_line


def evaluator_quality(evaluator: str, track: str) -> float:
    """An evaluator's quality: its per-lamp on/off accuracy against the world's truth (the track says:
    :meth:`editbench.tracks.Track.evaluator_quality`)."""
    from editbench.tracks import get_track

    return get_track(track).evaluator_quality(evaluator)


def overoptimisation(df: pd.DataFrame, per_image: dict[int, dict[str, np.ndarray]], n_boot: int = 1000) -> pd.DataFrame:
    """``finetune_reward`` per task and evaluator budget (proxy evaluator, its cells with a config of their own:
    the lifted step limit): the judge's primary and interval, the proxy's, the gap and the evaluator calls spent."""
    rows = []
    reward = df[_overoptimisation_cells(df) & (df.evaluator == "proxy")]
    for calls, grp in reward.groupby("evaluator_budget", sort=True):
        s = summarize(grp, per_image, n_boot=n_boot)
        for _, r in s.iterrows():
            spent = grp[(grp.task == r.task) & (grp.status == "ok")].evaluator_calls
            rows.append({"track": r.track, "task": r.task, "evaluator_budget": int(calls), "calls_spent": float(spent.mean()),
                         "judge": r.primary, "judge_lo": r.ci_lo, "judge_hi": r.ci_hi, "proxy": r.proxy_primary,
                         "gap": r.gap, "gap_lo": r.gap_lo, "gap_hi": r.gap_hi, "gap_flag": bool(r.gap_flag),
                         "seeds": r.seeds, "status": r.status})
    return pd.DataFrame(rows)


def _overoptimisation_cells(df: pd.DataFrame) -> pd.Series:
    """The over-optimisation curve's cells: ``finetune_reward`` with a config of its own (the lifted step limit).
    A suite's cells that carry the config their tuning cell chose (``tuned_on``) are ordinary grid cells."""
    return (df.method == "finetune_reward") & (df.given_config != "{}") & df.tuned_on.isna()


def evaluator_table(df: pd.DataFrame, per_image: dict[int, dict[str, np.ndarray]], n_boot: int = 1000,
                    budget: int | None = None) -> pd.DataFrame:
    """Per task and evaluator: its quality, the best editing method, ``finetune_reward`` and ``prompt`` (judge's
    primary and interval, and the reward finetuning's gap), and whether the best editing method beats reward
    finetuning (paired bootstrap), ties it, or loses. Cells at the default evaluator budget and at one evidence
    budget (``budget``; default 16 where present, else the largest)."""
    from editbench.harness.cell import Cell

    default = Cell.evaluator_calls
    if budget is None:
        budget = 16 if 16 in set(df.budget) else int(df.budget.max())
    df = df[(df.budget == budget) & (df.role == "scored" if "role" in df else True)]  # tuning cells are never tabled
    base = df[(df.evaluator_budget == default) & ~_overoptimisation_cells(df)]
    free = base[base.evaluator == "proxy"]  # methods that see no evaluator ran once, under the proxy
    rows = []
    for task, tg in base.groupby("task", sort=True):
        track = tg.track.iloc[0]
        # the default first, then the others from the best to the worst
        quality = {e: float(np.nan_to_num(evaluator_quality(e, track), nan=-1.0)) for e in set(tg.evaluator)}
        evaluators = sorted(quality, key=lambda e: (e != "proxy", -quality[e], e))
        reads = set(tg[tg.evaluator != "proxy"].method)  # methods that ran under another evaluator read it
        for e in evaluators:
            cells = tg[tg.evaluator == "proxy"] if e == "proxy" else \
                pd.concat([tg[tg.evaluator == e], free[(free.task == task) & ~free.method.isin(reads)]])
            draws: dict[tuple[str, int], dict[str, np.ndarray]] = {}
            s = summarize(cells, per_image, n_boot=n_boot, keep_draws=draws)
            d = next(iter(draws.values()), {})
            edit = s[(s.family == "edit") & s.primary.notna()]
            best = edit.loc[edit.primary.idxmax()] if not edit.empty else None
            row: dict[str, Any] = {"track": track, "task": task, "evaluator": e, "quality": evaluator_quality(e, track)}
            for name, r in (("edit", best), *((m, _row(s, m)) for m in ("finetune_reward", "prompt"))):
                row[f"{name}_method"] = None if r is None else r.method
                for k in ("primary", "ci_lo", "ci_hi", "gap"):
                    row[f"{name}_{k}"] = math.nan if r is None else float(r[k])
            reward = _row(s, "finetune_reward")
            if best is None or reward is None:
                row["edit_vs_reward"] = "-"
            elif best.method in d and reward.method in d and paired_better(d[best.method], d[reward.method]):
                row["edit_vs_reward"] = "edit better"
            elif best.method in d and reward.method in d and paired_better(d[reward.method], d[best.method]):
                row["edit_vs_reward"] = "reward finetuning better"
            else:
                row["edit_vs_reward"] = "tied"
            rows.append(row)
    return pd.DataFrame(rows)


def _row(s: pd.DataFrame, method: str) -> pd.Series | None:
    r = s[(s.method == method) & s.primary.notna()]
    return None if r.empty else r.iloc[0]


def _ci(p: float, lo: float, hi: float) -> str:
    return "-" if not math.isfinite(p) else f"{fmt(p)} [{fmt(lo)}, {fmt(hi)}]"


def overoptimisation_view(t: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame([{"task": r.task, "evaluator calls": f"{r.evaluator_budget} ({r.calls_spent:.0f} spent)",
                          "judge [95% CI]": _ci(r.judge, r.judge_lo, r.judge_hi), "proxy": fmt(r.proxy),
                          "proxy-judge gap": gap_text(r), "seeds": r.seeds} for _, r in t.iterrows()])


def evaluator_view(t: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in t.iterrows():
        rows.append({"task": r.task, "evaluator": r.evaluator, "on/off accuracy": fmt(r.quality),
                     "best editing method": "-" if r.edit_method is None else
                     f"{r.edit_method} {_ci(r.edit_primary, r.edit_ci_lo, r.edit_ci_hi)}",
                     "finetune_reward": _ci(r.finetune_reward_primary, r.finetune_reward_ci_lo, r.finetune_reward_ci_hi),
                     "its gap": fmt(r.finetune_reward_gap),
                     "prompt": _ci(r.prompt_primary, r.prompt_ci_lo, r.prompt_ci_hi),
                     "edit vs reward finetuning": r.edit_vs_reward})
    return pd.DataFrame(rows)


def _markdown(view: pd.DataFrame) -> str:
    return view.to_markdown(index=False, disable_numparse=True) + "\n"


def _task_panels(t: pd.DataFrame, out: Path, draw: Any, sort: str, xlabel: str, ylabel: str, title: str,
                 ncol: int) -> Path | None:
    """One panel per task of ``t`` (rows sorted by ``sort``), drawn by ``draw(ax, rows)``, a shared legend."""
    if t.empty:
        return None
    plt = _plt()
    tasks = sorted(t.task.unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        draw(ax, t[t.task == task].sort_values(sort))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 1)
        ax.set_title(title.format(task=task), fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    io.write_with(out, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return out


def plot_overoptimisation(t: pd.DataFrame, out: Path) -> Path | None:
    """Judge and proxy against the evaluator budget (log scale), one panel per task."""
    def draw(ax: Any, d: pd.DataFrame) -> None:
        ax.plot(d.evaluator_budget, d.proxy, "s--", color="tab:orange", label="proxy (what it optimises)")
        ax.plot(d.evaluator_budget, d.judge, "o-", color="tab:blue", label="judge (the score)")
        ax.fill_between(d.evaluator_budget, d.judge_lo, d.judge_hi, color="tab:blue", alpha=0.15)
        ax.set_xscale("log", base=2)

    return _task_panels(t, out, draw, "evaluator_budget", "evaluator calls", "primary", "finetune_reward, {task}", 2)


def plot_evaluators(t: pd.DataFrame, out: Path) -> Path | None:
    """The best editing method, reward finetuning and prompt search against the evaluator's quality."""
    def draw(ax: Any, d: pd.DataFrame) -> None:
        for key, label, style in (("edit", "best editing method", "o-"), ("finetune_reward", "finetune_reward", "^-"),
                                  ("prompt", "prompt", "D-")):
            ax.errorbar(d.quality, d[f"{key}_primary"], yerr=[d[f"{key}_primary"] - d[f"{key}_ci_lo"],
                        d[f"{key}_ci_hi"] - d[f"{key}_primary"]], fmt=style, capsize=3, label=label)
        for _, r in d.iterrows():
            ax.annotate(r.evaluator, (r.quality, 0.02), fontsize=7, ha="center")

    return _task_panels(t, out, draw, "quality", "evaluator's on/off accuracy", "primary (judge)", "{task}", 3)


def write_trust(results: str | Path, out: str | Path, n_boot: int = 1000) -> dict[str, Any]:
    """Both tables (Markdown, CSV, JSON) and both plots from the cells in ``results``, into ``out``."""
    df, per_image = load_frame(results)
    if df.empty:
        raise LeaderboardError(f"no cells in {str(results)!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    over, evals = overoptimisation(df, per_image, n_boot), evaluator_table(df, per_image, n_boot)
    m = meta(df)
    head = f"{meta_line(m)}.\n\n"
    io.write_text(out / "overoptimisation.md", "finetune_reward as its evaluator budget grows: the judge's score and the "
                  "proxy's (what it optimises). " + head + _markdown(overoptimisation_view(over)))
    io.write_text(out / "evaluators.md", "Every method under evaluators of graded quality (the evaluator labels the "
                  "evidence and answers evaluator calls; scores are the judge's). " + head + _markdown(evaluator_view(evals)))
    for name, t in (("overoptimisation", over), ("evaluators", evals)):
        io.write_text(out / f"{name}.csv", f"# {meta_line(m)}\n" + t.to_csv(index=False))
    io.write_text(out / "trust.json", json.dumps({"meta": m, "overoptimisation": json.loads(over.to_json(orient="records")),
                                                  "evaluators": json.loads(evals.to_json(orient="records"))}, indent=1))
    plots = {"overoptimisation": plot_overoptimisation(over, out / "overoptimisation.png"),
             "evaluators": plot_evaluators(evals, out / "evaluators.png")}
    return {"overoptimisation": over, "evaluators": evals, "meta": m, "plots": plots}


def trust_section(folder: str | Path, plots_out: Path) -> str:
    """The page's trust section from a folder ``write_trust`` filled (tables and plots copied beside the page);
    empty where the folder has no tables."""
    import html
    import shutil

    folder = Path(folder)
    if not (folder / "trust.json").exists():
        return ""
    data = json.loads((folder / "trust.json").read_text())
    figs = []
    for name in ("overoptimisation.png", "evaluators.png"):
        if (folder / name).exists():
            shutil.copy2(folder / name, plots_out / f"trust_{name}")
            figs.append(f'<img src="plots/trust_{name}" alt="trust: {name[:-4]}">')
    over, evals = pd.DataFrame(data["overoptimisation"]), pd.DataFrame(data["evaluators"])
    return ("<h2 id='trust'>Trust: the judge and the evaluator</h2>\n<p>Reward finetuning as its evaluator budget grows "
            "(the proxy is what it optimises, the judge what scores it), and every method under evaluators of graded "
            f"quality. {html.escape(meta_line(data['meta']))}.</p>\n"
            + (overoptimisation_view(over).to_html(index=False, classes="families", border=0) if not over.empty else "")
            + (evaluator_view(evals).to_html(index=False, classes="families", border=0) if not evals.empty else "")
            + "".join(figs))
