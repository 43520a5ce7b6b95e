"""Editing vs finetuning vs prompting: per task and evidence budget, each family's best method and
the family (or families) that lead; a lead is *robust* where it is larger than what a larger search would
still gain for either family (:mod:`.tuning`). A second view matches compute instead of evidence
(:func:`families_at_compute`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from editbench.core.stats import paired_better

from .frame import LeaderboardError
from .tables import fmt


def _beats(draws: dict[str, np.ndarray], a: str, b: str) -> bool:
    return a in draws and b in draws and paired_better(draws[a], draws[b])


COMPARED_FAMILIES = ("edit", "finetune", "prompt")


def families(summary: pd.DataFrame, draws: dict[tuple[str, int], dict[str, np.ndarray]],
             regret: dict[tuple[str, str, int], float] | None = None) -> pd.DataFrame:
    """Editing vs finetuning vs prompting: per (task, budget), each family's best method (by primary)
    and the ``leader``: the families whose best is not significantly beaten by another family's best
    (paired bootstrap), joined by " = " when the bootstrap cannot separate them. With ``regret``
    ((task, method, budget) -> gain of a larger search), ``robust`` says whether a single leader's margin over
    the runner-up family exceeds both families' regret (:func:`~.tuning.regret_of`: at least the late gain of a
    search still climbing when it stopped; None where neither is measured)."""
    from .tuning import regret_at

    rows = []
    for (task, budget), st in summary[summary.family.isin(COMPARED_FAMILIES)].groupby(["task", "budget"], sort=True):
        best: dict[str, pd.Series] = {}
        for fam in COMPARED_FAMILIES:
            f = st[(st.family == fam) & st.primary.notna()]
            if not f.empty:
                best[fam] = f.loc[f.primary.idxmax()]
        d = draws.get((task, int(budget)), {})
        lead = [f for f in best if not any(_beats(d, best[o].method, best[f].method) for o in best if o != f)]
        lead.sort(key=lambda f: -best[f].primary)
        row: dict[str, Any] = {"task": task, "budget": int(budget), "leader": " = ".join(lead) or "-"}
        for fam in COMPARED_FAMILIES:
            b = best.get(fam)
            row[f"best_{fam}"] = None if b is None else b.method
            row[f"{fam}_primary"] = math.nan if b is None else float(b.primary)
            row[f"{fam}_ci_lo"] = math.nan if b is None else float(b.ci_lo)
            row[f"{fam}_ci_hi"] = math.nan if b is None else float(b.ci_hi)
            row[f"{fam}_regret"] = math.nan if b is None or regret is None else regret_at(regret, task, b.method, budget)
        row["robust"] = None
        if len(lead) == 1 and len(best) > 1:
            runner = max((f for f in best if f != lead[0]), key=lambda f: best[f].primary)
            margin = float(best[lead[0]].primary - best[runner].primary)
            regrets = [row[f"{lead[0]}_regret"], row[f"{runner}_regret"]]
            row["margin"] = margin
            if all(math.isfinite(r) for r in regrets):
                row["robust"] = bool(margin > max(regrets))
        rows.append(row)
    return pd.DataFrame(rows)


def families_at_compute(summary: pd.DataFrame) -> pd.DataFrame:
    """The families at matched compute: per task and compute level (powers of ten of FLOPs, those the cells
    span), each family's best (task, method, budget) among the rows that spent at most that much, whatever
    their evidence budget, and the families not beaten by another's (intervals apart: the rows compared are
    of different budgets, so no pairing)."""
    rows = []
    s = summary[summary.family.isin(COMPARED_FAMILIES) & summary.primary.notna() & summary.flops.notna()
                & (summary.flops > 0)] if "flops" in summary else summary.iloc[:0]
    for task, st in s.groupby("task", sort=True):
        lo, hi = math.floor(math.log10(st.flops.min())), math.ceil(math.log10(st.flops.max()))
        for e in range(lo + 1, hi + 1):
            within = st[st.flops <= 10.0 ** e]
            by = {f: within[within.family == f] for f in COMPARED_FAMILIES}
            best = {f: rows.loc[rows.primary.idxmax()] for f, rows in by.items() if not rows.empty}
            if not best:
                continue
            lead = [f for f in best if not any(best[o].ci_lo > best[f].ci_hi for o in best if o != f)]
            lead.sort(key=lambda f: -best[f].primary)
            row: dict[str, Any] = {"task": task, "flops_at_most": 10.0 ** e, "leader": " = ".join(lead)}
            for f in COMPARED_FAMILIES:
                b = best.get(f)
                row[f"best_{f}"] = None if b is None else f"{b.method} n={int(b.budget)}"
                row[f"{f}_primary"] = math.nan if b is None else float(b.primary)
                row[f"{f}_ci_lo"] = math.nan if b is None else float(b.ci_lo)
                row[f"{f}_ci_hi"] = math.nan if b is None else float(b.ci_hi)
            rows.append(row)
    return pd.DataFrame(rows)


def families_at_compute_markdown(f: pd.DataFrame) -> str:
    rows = []
    for _, r in f.iterrows():
        row = {"task": r.task, "FLOPs at most": f"{r.flops_at_most:.0e}"}
        for fam in COMPARED_FAMILIES:
            p = r[f"{fam}_primary"]
            row[f"best {fam}"] = "-" if not math.isfinite(p) else \
                f"{r[f'best_{fam}']} {fmt(p)} [{fmt(r[f'{fam}_ci_lo'])}, {fmt(r[f'{fam}_ci_hi'])}]"
        row["leader"] = r.leader
        rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n"


def families_view(f: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in f.iterrows():
        row = {"task": r.task, "n": str(r.budget)}
        for fam in COMPARED_FAMILIES:
            p = r[f"{fam}_primary"]
            ci = f"[{fmt(r[f'{fam}_ci_lo'])}, {fmt(r[f'{fam}_ci_hi'])}]"
            row[f"best {fam}"] = "-" if not math.isfinite(p) else f"{r[f'best_{fam}']} {fmt(p)} {ci}"
        row["leader"] = r.leader
        if "robust" in f and f.robust.notna().any():
            row["lead"] = {True: "robust", False: "within regret", None: "-"}.get(r.robust, "-") \
                if " = " not in r.leader else "tie"
        rows.append(row)
    return pd.DataFrame(rows)


def families_markdown(f: pd.DataFrame) -> str:
    """The families table: one row per (task, budget), each family's best method and the leader."""
    return families_view(f).to_markdown(index=False, disable_numparse=True) + "\n"



def cross_track(fam: pd.DataFrame, tracks: dict[str, str]) -> pd.DataFrame:
    """For each task several tracks pose (``unlit_lamps`` and ``text/unlit_lamps``) and budget: which family
    leads on each track (with its best method and primary), and whether they agree (``same``: the same leaders;
    ``overlap``: a leader in common on every track; ``differ``: otherwise). ``tracks``: task -> track."""
    from editbench.benchmarks import TRACK_PREFIX

    def base(task: str) -> str:
        prefix = TRACK_PREFIX.get(tracks.get(task, ""), f"{tracks.get(task, '')}/")
        return task[len(prefix):] if prefix and task.startswith(prefix) else task

    order = list(dict.fromkeys(sorted(set(tracks.values()), key=lambda t: (t != "image", t))))
    by: dict[tuple[str, int], dict[str, Any]] = {}
    for _, r in fam.iterrows():
        if r.task in tracks:
            by.setdefault((base(r.task), int(r.budget)), {})[tracks[r.task]] = r
    rows = []
    for (task, budget), per in sorted(by.items()):
        if len(per) < 2:
            continue
        row: dict[str, Any] = {"task": task, "budget": budget}
        leaders = []
        for name in [t for t in order if t in per]:
            x = per[name]
            lead = x.leader.split(" = ")[0]
            row[f"{name}_leader"] = x.leader
            row[f"{name}_best"] = x.get(f"best_{lead}") if lead in COMPARED_FAMILIES else None
            row[f"{name}_primary"] = float(x[f"{lead}_primary"]) if lead in COMPARED_FAMILIES else math.nan
            leaders.append(set(x.leader.split(" = ")))
        row["agreement"] = ("same" if all(s == leaders[0] for s in leaders) else
                            "overlap" if set.intersection(*leaders) else "differ")
        rows.append(row)
    return pd.DataFrame(rows)


def cross_track_view(c: pd.DataFrame) -> pd.DataFrame:
    from editbench.tracks import TRACKS, get_track

    rows = []
    for _, r in c.iterrows():
        row = {"task": r.task, "n": str(r.budget)}
        for name in TRACKS.names():
            if f"{name}_leader" not in c.columns or not isinstance(r[f"{name}_leader"], str):
                continue
            best = f" ({r[f'{name}_best']} {fmt(r[f'{name}_primary'])})" if r[f"{name}_best"] else ""
            row[f"leads in {get_track(name).label or name}"] = f"{r[f'{name}_leader']}{best}"
        row["agreement"] = r.agreement
        rows.append(row)
    return pd.DataFrame(rows)


def cross_track_markdown(c: pd.DataFrame) -> str:
    """The cross-track table: per task and budget, the leading family in images and in text."""
    return cross_track_view(c).to_markdown(index=False, disable_numparse=True) + "\n"


def read_families(path: str | Path) -> pd.DataFrame:
    """A families table as :func:`publish` writes it (``families.csv``, its first line the meta comment), from the
    file or the leaderboard folder holding it."""
    p = Path(path)
    p = p / "families.csv" if p.is_dir() else p
    if not p.is_file():
        raise LeaderboardError(f"{path}: no families table there (a leaderboard folder or its families.csv)")
    try:
        with open(p, encoding="utf-8") as fh:
            skip = 1 if fh.readline().startswith("#") else 0
        f = pd.read_csv(p, skiprows=skip)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise LeaderboardError(f"{p}: not a families table ({' '.join(str(e).split())})") from None
    missing = {"task", "budget", "leader"} - set(f.columns)
    if missing:
        raise LeaderboardError(f"{p}: not a families table (no column {', '.join(sorted(missing))})")
    return f


def verdict(before: set[str], after: set[str]) -> str:
    """What became of a conclusion: the leading families ``before`` against those ``after`` (a tie is a set of
    several). ``held``, ``flipped`` (no leader in common), ``became a tie`` (the leader now tied with another),
    ``tie resolved`` (one of the tied families now leads alone), ``tie changed`` (still a tie, other members)."""
    if before == after:
        return "held" if len(after) == 1 else "tie held"
    if not before & after:
        return "flipped"
    if len(before) == 1:
        return "became a tie"
    return "tie resolved" if len(after) == 1 else "tie changed"


def protocol_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Each conclusion of one families table set against another's (a republish under a new protocol): per
    (task, budget) in either, the leaders before and after, the :func:`verdict`, and each family's best method
    and primary before and after. A row in one table only is ``not measured before`` / ``not measured now``."""

    def rows(f: pd.DataFrame) -> dict[tuple[str, int], pd.Series]:
        return {(str(r.task), int(r.budget)): r for _, r in f.iterrows()}

    b, a = rows(before), rows(after)
    out = []
    for key in sorted(set(b) | set(a)):
        rb, ra = b.get(key), a.get(key)
        lb = set(str(rb.leader).split(" = ")) if rb is not None and isinstance(rb.leader, str) and rb.leader != "-" else set()
        la = set(str(ra.leader).split(" = ")) if ra is not None and isinstance(ra.leader, str) and ra.leader != "-" else set()
        row: dict[str, Any] = {"task": key[0], "budget": key[1],
                               "leader_before": rb.leader if rb is not None else None,
                               "leader_after": ra.leader if ra is not None else None,
                               "verdict": "not measured before" if not lb else "not measured now" if not la
                               else verdict(lb, la)}
        for fam in COMPARED_FAMILIES:
            for when, r in (("before", rb), ("after", ra)):
                ok = r is not None and f"{fam}_primary" in r and math.isfinite(float(r[f"{fam}_primary"]))
                row[f"{fam}_{when}"] = r[f"best_{fam}"] if ok else None
                row[f"{fam}_{when}_primary"] = float(r[f"{fam}_primary"]) if ok else math.nan
        out.append(row)
    return pd.DataFrame(out)


VERDICTS = ("held", "tie held", "flipped", "became a tie", "tie resolved", "tie changed", "not measured before",
            "not measured now")


def protocol_changes_markdown(c: pd.DataFrame) -> str:
    """The changes as a count of each verdict and a table of every (task, budget): leaders before and after, and
    each family's best before -> after."""
    counts = c.verdict.value_counts()
    head = ", ".join(f"{int(counts[v])} {v}" for v in VERDICTS if v in counts)
    def named(x: Any) -> bool:  # a leader or method name (a side not measured reads None, or NaN once in a frame)
        return isinstance(x, str) and x != ""

    rows = []
    for _, r in c.iterrows():
        row = {"task": r.task, "n": str(r.budget),
               "leader before": r.leader_before if named(r.leader_before) else "-",
               "leader now": r.leader_after if named(r.leader_after) else "-", "verdict": r.verdict}
        for fam in COMPARED_FAMILIES:
            side = [f"{r[f'{fam}_{w}']} {fmt(r[f'{fam}_{w}_primary'])}" if named(r[f"{fam}_{w}"]) else "-"
                    for w in ("before", "after")]
            row[f"best {fam}, before -> now"] = " -> ".join(side)
        rows.append(row)
    return f"{len(c)} conclusions: {head}.\n\n" + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n"
