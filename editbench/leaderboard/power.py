"""Statistical power: per task and evidence budget, the smallest difference between two methods the suite's
seeds and test outputs can detect, and the widest interval among its methods.

From the leaderboard's paired bootstrap draws (:func:`~.aggregate.summarize`, ``keep_draws``): for every pair of
methods that are not references (``none``, ``oracle``) and scored, the minimum detectable difference
(:func:`editbench.core.stats.detectable_difference`, 5% two-sided, 80% power); the table gives its median and
its maximum over the pairs.

The headline cells are each family's best method per task and budget (the families table's cells, on which
the leaderboard's conclusions rest); the table gives the widest of their intervals. How many seeds a headline
interval of about 0.1 would take: the bootstrap resamples seeds and then outputs within each
seed, so at a fixed number of outputs per seed an interval's width falls as one over the square root of the
seeds; ``seeds_for_target`` is ``ceil(seeds * (width / target) ** 2)`` for the widest headline interval, the number of
seeds (at the same outputs per seed) that would bring it to ``target``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from editbench.core.stats import detectable_difference

from .families import COMPARED_FAMILIES

TARGET_WIDTH = 0.1


def seeds_for(width: float, seeds: int, target: float = TARGET_WIDTH) -> int:
    """Seeds (at the same outputs per seed) that bring an interval of ``width`` at ``seeds`` seeds to ``target``."""
    return max(seeds, math.ceil(seeds * (width / target) ** 2 - 1e-9))


def power_table(summary: pd.DataFrame, draws: dict[tuple[str, int], dict[str, np.ndarray]],
                fam: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (task, budget): detectable differences, interval widths, and with ``fam`` (:func:`.families.families`)
    the widest headline interval and the seeds that would bring it to :data:`TARGET_WIDTH`."""
    heads: dict[tuple[str, int], set[str]] = {}
    if fam is not None and not fam.empty:
        for _, r in fam.iterrows():
            heads[(r.task, int(r.budget))] = {r[f"best_{f}"] for f in COMPARED_FAMILIES if isinstance(r[f"best_{f}"], str)}
    rows = []
    for (task, budget), grp in summary.groupby(["task", "budget"], sort=True):
        d = draws.get((task, int(budget)), {})
        methods = [m for m in grp[grp.family != "reference"].method if m in d]
        mdd = [detectable_difference(d[a], d[b]) for a, b in itertools.combinations(methods, 2)]
        mdd = [x for x in mdd if math.isfinite(x)]
        scored = grp[grp.family != "reference"].dropna(subset=["primary"])
        width = scored.ci_hi - scored.ci_lo
        widest = scored.loc[width.idxmax()] if not scored.empty else None
        rows.append({"track": grp.track.iloc[0], "task": task, "budget": int(budget), "methods": len(methods),
                     "mdd_median": float(np.median(mdd)) if mdd else math.nan,
                     "mdd_max": float(np.max(mdd)) if mdd else math.nan,
                     "widest_method": None if widest is None else widest.method,
                     "widest_width": math.nan if widest is None else float(widest.ci_hi - widest.ci_lo),
                     "median_width": float(width.median()) if not scored.empty else math.nan,
                     "seeds": grp.seeds.iloc[0]})
        head = scored[scored.method.isin(heads.get((task, int(budget)), set()))]
        hw = head.ci_hi - head.ci_lo
        top = head.loc[hw.idxmax()] if not head.empty else None
        rows[-1]["headline_method"] = None if top is None else top.method
        rows[-1]["headline_width"] = math.nan if top is None else float(top.ci_hi - top.ci_lo)
        n_seeds = len(str(grp.seeds.iloc[0]).split(","))
        rows[-1]["seeds_for_target"] = None if top is None else seeds_for(rows[-1]["headline_width"], n_seeds)
    return pd.DataFrame(rows)


def power_markdown(t: pd.DataFrame) -> str:
    view = pd.DataFrame([{
        "task": r.task, "n": r.budget, "seeds": r.seeds,
        "detectable difference (median, worst pair)": f"{r.mdd_median:.3f}, {r.mdd_max:.3f}",
        "interval width (median)": f"{r.median_width:.3f}",
        "widest interval": "-" if r.widest_method is None else f"{r.widest_method} {r.widest_width:.3f}",
        "widest headline interval": "-" if r.headline_method is None else f"{r.headline_method} {r.headline_width:.3f}",
        f"seeds for it to reach {TARGET_WIDTH}": "-" if r.seeds_for_target is None else str(r.seeds_for_target),
    } for _, r in t.iterrows()])
    return view.to_markdown(index=False, disable_numparse=True) + "\n"
