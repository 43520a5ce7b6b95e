"""Aggregate and rank: one row per (task, method, budget) from the cells of all seeds.

The primary (the judge's) is pooled over outputs and seeds; its 95% interval comes from a bootstrap that
resamples seeds and then outputs within each seed (:func:`editbench.core.stats.bootstrap`), no tighter than
the cells' reader floor (:func:`editbench.core.stats.widen`). The proxy's
primary is pooled the same way on the same resamples, so the proxy-judge ``gap`` has a paired interval;
``gap_flag`` marks a method whose gap lies above zero (the judge does not confirm part of its score). Methods of a task and
budget are scored on the same test inputs, so they are compared with a *paired* bootstrap (the same
resampled seeds and outputs for every method): a method's rank is one plus the number of methods whose
advantage over it has a 95% interval above zero, so methods the bootstrap cannot separate share a rank.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from editbench.core.stats import bootstrap, interval, paired_better, widen


def tuning_of(cells: pd.DataFrame) -> str:
    """How a row's cells were configured: ``tuned`` (every cell carries the config a tuning cell chose),
    ``defaults`` (none, and none was given a config), ``given config``, or ``mixed``."""
    tuned = cells.tuned_on.notna() if "tuned_on" in cells else pd.Series(False, index=cells.index)
    given = (cells.given_config != "{}") & ~tuned if "given_config" in cells else pd.Series(False, index=cells.index)
    if tuned.all():
        return "tuned"
    if not tuned.any():
        return "given config" if given.all() else ("defaults" if not given.any() else "mixed")
    return "mixed"


# the frame's collateral columns (text cells; NaN elsewhere), averaged over a method's ok seeds
COLLATERAL = ("facts_acc", "facts_acc_base", "facts_stderr", "word_ppl", "word_ppl_base")


def pooled_draws(parts: list[dict[str, np.ndarray]], seed_idx: np.ndarray, img_idx: np.ndarray
                 ) -> tuple[float, torch.Tensor]:
    """Point and bootstrap draws of the pooled primary of one (task, method, budget): ``parts`` holds
    one dict of per-output part scores per seed; the resampling indices are shared by every method."""
    names = sorted(parts[0])
    S, n = len(parts), len(parts[0][names[0]])
    X = {k: torch.from_numpy(np.stack([p[k] for p in parts])) for k in names}  # (S, n) each
    seeds = torch.from_numpy(seed_idx[:, :S] % S)
    images = torch.from_numpy(img_idx[:, :S, :n] % n)
    return bootstrap(X, seeds, images)


def first_strip(mg: pd.DataFrame) -> str:
    """The before/after picture of a method's lowest seed that has one ("" if none does: an export keeps no
    pictures, nor does a results folder restored from one)."""
    return next((p for p in mg.sort_values("seed").image if p and Path(p).is_file()), "")


def summarize(df: pd.DataFrame, per_image: dict[int, dict[str, np.ndarray]], n_boot: int = 1000,
              seed: int = 0, keep_draws: dict[tuple[str, int], dict[str, np.ndarray]] | None = None) -> pd.DataFrame:
    """One row per (task, method, budget) with pooled primary, 95% interval, parts, cost and rank.
    ``keep_draws``: a dict to receive the paired bootstrap draws, ``{(task, budget): {method: draws}}``."""
    rng = np.random.default_rng(seed)
    out = []
    for (task, budget), grp in df.groupby(["task", "budget"], sort=True):
        max_s = int(grp.groupby("method").size().max())
        max_n = max([len(next(iter(per_image[i].values()))) for i in grp.index if i in per_image] or [1])
        seed_idx = rng.integers(0, 1 << 30, size=(n_boot, max_s))
        img_idx = rng.integers(0, 1 << 30, size=(n_boot, max_s, max_n))
        draws: dict[str, np.ndarray] = {}
        rows = {}
        for method, mg in grp.groupby("method", sort=False):
            ok = mg[mg.status == "ok"]
            failed = mg[mg.status != "ok"]
            row: dict[str, Any] = {
                "task": task, "method": method, "track": mg.track.iloc[0], "family": mg.family.iloc[0],
                "budget": int(budget),
                "seeds": ",".join(str(s) for s in sorted(mg.seed)), "n_ok": len(ok), "n_failed": len(failed),
                "status": "ok" if failed.empty else ("failed" if ok.empty else "partial"),
                "error": failed.error.iloc[0] if not failed.empty else None,
                "primary": math.nan, "ci_lo": math.nan, "ci_hi": math.nan,
            }
            parts = [per_image[i] for i in ok.index if i in per_image]
            row.update(proxy_primary=math.nan, gap=math.nan, gap_lo=math.nan, gap_hi=math.nan)
            if parts and len({len(next(iter(p.values()))) for p in parts}) == 1:
                point, d = pooled_draws(parts, seed_idx, img_idx)
                lo, hi = widen(point, *interval(d), float(ok.reader_floor.max()) if "reader_floor" in ok else None)
                row.update(primary=point, ci_lo=lo, ci_hi=hi)
                draws[method] = d.numpy()
                proxy = [p for p in ok.proxy_per_image if p] if "proxy_per_image" in ok else []
                if len(proxy) == len(parts):
                    p_point, p_draws = pooled_draws(proxy, seed_idx, img_idx)
                    g_lo, g_hi = interval(p_draws - d)
                    row.update(proxy_primary=p_point, gap=p_point - point, gap_lo=g_lo, gap_hi=g_hi)
            elif not ok.empty:  # results without per-image scores: mean over seeds, the cells' intervals
                row.update(primary=float(ok.primary.mean()), ci_lo=float(ok.ci_lo.min()), ci_hi=float(ok.ci_hi.max()))
            for col in [c for c in mg.columns if c.startswith("part_")]:
                row[col] = float(ok[col].mean()) if not ok.empty else math.nan
            for col in ("transfer_ratio", "evidence_primary", "fidelity", *COLLATERAL):
                row[col] = float(ok[col].mean()) if not ok.empty and col in ok else math.nan
            # collateral (text): lm-eval's lamp_facts accuracy change and lamp_perplexity ratio, edited / unedited
            row["facts_change"] = row["facts_acc"] - row["facts_acc_base"]
            row["ppl_ratio"] = row["word_ppl"] / row["word_ppl_base"] if row["word_ppl_base"] else math.nan
            for col in ("flops", "steps", "epochs", "examples_seen"):  # compute: the median cell's
                row[col] = float(ok[col].median()) if not ok.empty and col in ok else math.nan
            row["evidence"] = mg.evidence.iloc[0] if "evidence" in mg else "?"
            row["tuning"] = tuning_of(mg)
            row["verified"] = next((v for v in mg.verified if v), "") if "verified" in mg else ""
            row["edges"] = ",".join(sorted({e for x in (mg.edges if "edges" in mg else []) if x for e in x.split(",")}))
            row.update(fit_s=float(ok.fit_s.median()) if not ok.empty else math.nan,
                       evaluator_calls=int(ok.evaluator_calls.max()) if not ok.empty else 0,
                       params_changed=int(ok.params_changed.max()) if not ok.empty else 0,
                       config=mg.config.iloc[0], family_order=mg.family_order.iloc[0],
                       image=first_strip(mg), examples=mg.sort_values("seed").examples.iloc[0])
            rows[method] = row
        # ranks: 1 + methods significantly better (paired bootstrap: same resamples for every method)
        for m, row in rows.items():
            if not math.isfinite(row["primary"]):
                row["rank"] = math.nan
                continue
            better = 0
            for o, orow in rows.items():
                if o == m or not math.isfinite(orow["primary"]) or orow["primary"] <= row["primary"]:
                    continue
                if m in draws and o in draws:
                    better += paired_better(draws[o], draws[m])
                else:
                    better += orow["ci_lo"] > row["ci_hi"]
            row["rank"] = 1 + better
        out.extend(rows.values())
        if keep_draws is not None:
            keep_draws[(task, int(budget))] = draws
    s = pd.DataFrame(out)
    s["gap_flag"] = s.gap_lo > 0
    s["tied"] = s.duplicated(["task", "budget", "rank"], keep=False) & s["rank"].notna()
    return s.sort_values(["task", "budget", "primary", "rank"], ascending=[True, True, False, True],
                         na_position="last").reset_index(drop=True)

