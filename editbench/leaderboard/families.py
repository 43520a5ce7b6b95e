"""Editing vs finetuning vs prompting: per task and evidence budget, each family's best method and
the family (or families) that lead."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from editbench.core.stats import paired_better

from .tables import fmt


def _beats(draws: dict[str, np.ndarray], a: str, b: str) -> bool:
    return a in draws and b in draws and paired_better(draws[a], draws[b])


COMPARED_FAMILIES = ("edit", "finetune", "prompt")


def families(summary: pd.DataFrame, draws: dict[tuple[str, int], dict[str, np.ndarray]]) -> pd.DataFrame:
    """Editing vs finetuning vs prompting: per (task, budget), each family's best method (by primary)
    and the ``leader``: the families whose best is not significantly beaten by another family's best
    (paired bootstrap), joined by " = " when the bootstrap cannot separate them."""
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
        rows.append(row)
    return pd.DataFrame(rows)


def families_view(f: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in f.iterrows():
        row = {"task": r.task, "n": str(r.budget)}
        for fam in COMPARED_FAMILIES:
            p = r[f"{fam}_primary"]
            ci = f"[{fmt(r[f'{fam}_ci_lo'])}, {fmt(r[f'{fam}_ci_hi'])}]"
            row[f"best {fam}"] = "-" if not math.isfinite(p) else f"{r[f'best_{fam}']} {fmt(p)} {ci}"
        row["leader"] = r.leader
        rows.append(row)
    return pd.DataFrame(rows)


def families_markdown(f: pd.DataFrame) -> str:
    """The families table: one row per (task, budget), each family's best method and the leader."""
    return families_view(f).to_markdown(index=False, disable_numparse=True) + "\n"

