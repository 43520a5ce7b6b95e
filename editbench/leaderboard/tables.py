"""The published tables: one row per (task, method) at one budget, as Markdown, CSV, JSON and LaTeX,
each headed by the line that says what it measured (suite, seeds, versions, commits, checkpoints)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from editbench.benchmarks.suites import SUITES


def meta(df: pd.DataFrame) -> dict[str, Any]:
    """What a table came from: suite shape, seeds, package versions, commits and checkpoint hashes."""
    budgets = sorted(df.budget.unique().tolist())
    at = {b: set(df.seed[df.budget == b].tolist()) for b in budgets}
    seeds = sorted(set.intersection(*at.values())) if at else []  # the seeds of every budget
    more = {int(b): sorted(s - set(seeds)) for b, s in at.items() if s - set(seeds)}  # a budget's extra seeds
    suite = next((name for name, s in SUITES.items() if list(s.budgets) == budgets and list(s.seeds) == seeds
                  and {b: list(x) for b, x in s.more_seeds.items()} == more), "custom")
    if any(len(kinds) > 1 for kinds in protocols(df).values()):  # a default-config row beside tuned ones: no one name
        suite = "mixed (rows differ in tuning: see each row's tuning and seeds)"
    return {
        "suite": suite, "budgets": budgets, "seeds": seeds, "more_seeds": more,
        "n_eval": sorted(df.n_eval.dropna().unique().tolist()),
        "cells": int(len(df)), "failed_cells": int((df.status != "ok").sum()),
        "expected_cells": int(df.groupby(["task", "method"]).ngroups * sum(len(s) for s in at.values())),
        "editbench": sorted(df.version.dropna().unique().tolist()),
        "commits": sorted({c[:10] + ("+dirty" if d else "") for c, d in zip(df.commit, df.dirty, strict=True) if c}),
        "tracks": sorted(df.track.dropna().unique().tolist()),
        "checkpoints": {c[5:]: sorted(df[c].dropna().unique().tolist()) for c in df.columns
                        if c.startswith("ckpt_") and df[c].notna().any()},
    }


def protocols(df: pd.DataFrame) -> dict[int, set[str]]:
    """Per budget, how its (task, method) rows of scored cells were configured (:func:`~.aggregate.tuning_of`);
    references (nothing to configure) aside. Each row's seeds are in its own column."""
    from .aggregate import tuning_of

    scored = df[(df.role == "scored") if "role" in df else slice(None)]
    scored = scored[scored.family != "reference"] if "family" in scored else scored
    out: dict[int, set[str]] = {}
    for (budget, _, _), g in scored.groupby(["budget", "task", "method"]):
        out.setdefault(int(budget), set()).add(tuning_of(g))
    return out


def _track_outputs(track: str) -> str:
    from editbench.tracks import TRACKS, get_track

    return get_track(track).outputs if track in TRACKS else "outputs"


def meta_line(m: dict[str, Any]) -> str:
    n_eval = "/".join(str(int(n)) for n in m["n_eval"])
    tracks = list(m.get("tracks", ()))
    outputs = _track_outputs(tracks[0]) if len(tracks) == 1 else "outputs"
    more = "".join(f", at n = {b} also seeds {extra}" for b, extra in m.get("more_seeds", {}).items())
    return (f"suite {m['suite']} (budgets {m['budgets']}, seeds {m['seeds']}{more}, {n_eval} test {outputs} per slice); "
            f"editbench {', '.join(m['editbench'])}; commit {', '.join(m['commits']) or '?'}; "
            + "".join(f"{kind} {', '.join(hashes)}; " for kind, hashes in m["checkpoints"].items())
            + (f"{m['cells']} cells" if m["cells"] >= m.get("expected_cells", 0)
               else f"{m['cells']} of {m['expected_cells']} cells (incomplete)")
            + f", {m['failed_cells']} failed")


def headline_budget(summary: pd.DataFrame) -> int:
    """The budget the headline table shows: 16 where present (the quick suite's), else the largest."""
    budgets = sorted(summary.budget.unique())
    return 16 if 16 in budgets else int(budgets[-1])


def fmt(x: float, nd: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{round(x, nd) + 0.0:.{nd}f}"  # no "-0.000"


TABLE_FIXED = ("track", "task", "rank", "method", "family", "evidence", "primary", "ci_lo", "ci_hi", "proxy_primary", "gap",
               "gap_lo", "gap_hi", "gap_flag", "transfer_ratio", "fidelity", "facts_change", "facts_stderr", "ppl_ratio",
               "fit_s", "flops", "epochs", "edges", "evaluator_calls", "tuning", "verified", "budget", "seeds", "status")
EVIDENCE_WORDS = {"samples": "samples (proxy-read)", "targets": "world targets", "captions": "captions + calls",
                  "none": "none"}


def compute_text(flops: float, epochs: float) -> str:
    """A cell's compute: FLOPs (forward + 2 x backward passes of the edited model) and epochs over the evidence."""
    if not math.isfinite(flops):
        return "-"
    return f"{flops:.1e}" + (f", {epochs:.3g} ep" if math.isfinite(epochs) and epochs > 0 else "")


def table(summary: pd.DataFrame, budget: int | None = None) -> pd.DataFrame:
    """The published table: one row per (task, method) at one budget, numbers as in the JSON."""
    budget = headline_budget(summary) if budget is None else budget
    s = summary[summary.budget == budget]
    parts = [c for c in summary.columns if c.startswith("part_")]
    cols = ["track", "task", "rank", "method", "family", "evidence", "primary", "ci_lo", "ci_hi", "proxy_primary", "gap",
            "gap_lo", "gap_hi", "gap_flag", *parts, "transfer_ratio", "fidelity", "facts_change", "facts_stderr", "ppl_ratio",
            "fit_s", "flops", "epochs", "edges", "evaluator_calls", "tuning", "verified", "budget", "seeds", "status"]
    s = s.assign(tuning=s.tuning if "tuning" in s else "?", verified=s.verified if "verified" in s else "")
    s = s.assign(**{c: s[c] if c in s else math.nan for c in ("facts_change", "facts_stderr", "ppl_ratio", "proxy_primary",
                                                               "gap", "gap_lo", "gap_hi", "flops", "epochs")})
    s = s.assign(evidence=s.evidence if "evidence" in s else "?", edges=s.edges if "edges" in s else "")
    s = s.assign(gap_flag=s.gap_flag if "gap_flag" in s else False)
    t = s[cols].copy()
    t["rank"] = [("=" if tied else "") + (str(int(r)) if math.isfinite(r) else "-")
                 for r, tied in zip(s["rank"], s["tied"], strict=True)]
    return t.rename(columns={p: p[5:] for p in parts}).reset_index(drop=True)


def _collateral(r: pd.Series) -> str:
    """lm-eval's lamp_facts accuracy change (with its standard error) and lamp_perplexity ratio, edited vs
    unedited; "-" where not measured."""
    if not (math.isfinite(r.facts_change) or math.isfinite(r.ppl_ratio)):
        return "-"
    return f"facts {r.facts_change:+.3f} ± {fmt(r.facts_stderr)}, ppl x{fmt(r.ppl_ratio)}"


def gap_text(r: Any) -> str:
    """The proxy-judge gap with its paired interval, flagged (``!``) where the interval lies above zero."""
    if not math.isfinite(r.gap):
        return "-"
    return f"{r.gap:+.3f} [{r.gap_lo:+.3f}, {r.gap_hi:+.3f}]" + (" !" if r.gap_flag else "")


def to_markdown(t: pd.DataFrame, m: dict[str, Any]) -> str:
    """The README table: one row per (task, method); the parts that apply to a task in one column (and the
    track, where the results hold more than one; and the collateral, where text cells measured it)."""
    parts = [c for c in t.columns if c not in TABLE_FIXED]
    several = t.track.nunique() > 1
    collateral = bool(t.facts_change.notna().any() or t.ppl_ratio.notna().any())
    edges = bool((t.edges.fillna("") != "").any())
    mixed = "tuning" in t and t.tuning.nunique() > 1  # rows configured differently: each says how
    submitted = "verified" in t and bool((t.verified.fillna("") != "").any())  # verified submissions beside
    rows = []
    for _, r in t.iterrows():
        primary = "failed" if not math.isfinite(r.primary) else f"**{fmt(r.primary)}** [{fmt(r.ci_lo)}, {fmt(r.ci_hi)}]"
        shown = ", ".join(f"{p} {fmt(r[p])}" for p in [*parts, "transfer_ratio"] if math.isfinite(r[p]))
        rows.append({**({"track": r.track} if several else {}), "task": r.task, "rank": r["rank"], "method": r.method,
                     "family": r.family, "evidence": EVIDENCE_WORDS.get(r.evidence, r.evidence),
                     "primary [95% CI]": primary, "proxy-judge gap": gap_text(r), "parts": shown,
                     "fidelity": fmt(r.fidelity),
                     **({"collateral": _collateral(r)} if collateral else {}),
                     "fit s": fmt(r.fit_s, 1), "FLOPs, epochs": compute_text(r.flops, r.epochs),
                     **({"tuned at edge": r.edges or "-"} if edges else {}),
                     "evaluator calls": str(r.evaluator_calls), **({"tuning": r.tuning} if mixed else {}),
                     **({"source": r.verified or "published"} if submitted else {}),
                     "seeds": r.seeds,
                     "status": r.status})
    view = pd.DataFrame(rows)
    return (f"Evidence budget n = {int(t.budget.iloc[0])}. Scores are the judge's; the proxy-judge gap is the proxy's "
            f"primary minus the judge's, paired 95% interval, ! where it lies above zero. {meta_line(m)}.\n\n"
            + view.to_markdown(index=False, disable_numparse=True) + "\n")


def to_latex(t: pd.DataFrame, m: dict[str, Any]) -> str:
    unmeasured = [c for c in ("facts_change", "facts_stderr", "ppl_ratio") if t[c].isna().all()]
    view = t.drop(columns=["budget", "seeds", "status", "family", "proxy_primary", "gap_lo", "gap_hi", "gap_flag",
                           "edges", "epochs", "tuning", "verified", *unmeasured]
                  + (["track"] if t.track.nunique() <= 1 else [])).copy()
    view["primary"] = [f"{fmt(p)} [{fmt(lo)}, {fmt(hi)}]" for p, lo, hi in
                       zip(view.primary, view.ci_lo, view.ci_hi, strict=True)]
    view = view.drop(columns=["ci_lo", "ci_hi"])
    view.columns = [c.replace("_", " ") for c in view.columns]
    styler = view.style.hide(axis="index").format(precision=3, na_rep="-")
    body = styler.to_latex(hrules=True, column_format="l" * 3 + "r" * (len(view.columns) - 3))
    return f"% {meta_line(m)}\n% evidence budget n = {int(t.budget.iloc[0])}; regenerate: editbench leaderboard build\n" \
        + body.replace("_", r"\_")

