"""Leaderboard: aggregate stored cell results with pandas, rank methods, publish, and gate on scores.

* :func:`load_frame` reads a results folder (one row per cell; failed cells stay, with their error).
* :func:`summarize` gives one row per (task, method, budget): the primary score pooled over images and
  seeds, its 95% interval from a bootstrap that resamples seeds and then images within each seed, the
  parts, cost, and a rank. Methods of a task and budget are scored on the same test scenes, so they are
  compared with a *paired* bootstrap (the same resampled seeds and images for every method): a method's
  rank is one plus the number of methods whose advantage over it has a 95% interval above zero, so
  methods the bootstrap cannot separate share a rank.
* :func:`publish` writes ``leaderboard.{md,csv,json,tex}``, plots and before/after grids (PNG) and a
  static ``index.html`` with sortable tables (no server, no network).
* :func:`check` compares results with a committed baseline cell by cell (direction-aware, with a
  tolerance from the baseline's interval) for the CI score gate.
"""

from __future__ import annotations

import html
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from editbench import runner

CELL_ID = ("task", "method", "budget", "seed")
# Gated metrics: +1 higher is better, -1 lower is better.
DIRECTIONS = {"primary": 1, "fidelity": -1}
TOLERANCE_FLOOR = {"primary": 0.01, "fidelity": 0.01}
FAMILY_ORDER = {"reference": 0, "edit": 1, "finetune": 2, "prompt": 3}


class LeaderboardError(ValueError):
    """Results or a baseline that cannot be read (a one-line message for the CLI)."""


# ---- loading ------------------------------------------------------------------------------------------
def load_frame(results: str | Path) -> tuple[pd.DataFrame, dict[int, dict[str, np.ndarray]]]:
    """One row per cell of a results folder, and per row its per-image part scores (ok cells only).
    Where a folder holds the same (task, method, budget, seed) more than once (results of other
    checkpoints or package versions), the most recently finished one is kept."""
    recs = read_records(results)
    rows, per_image = [], {}
    for rec in recs:
        if not isinstance(rec, dict) or "cell" not in rec or "status" not in rec:
            raise LeaderboardError(f"{rec.get('_path') if isinstance(rec, dict) else results}: not a cell result")
        if rec.get("schema_version") != runner.SCHEMA_VERSION:
            raise LeaderboardError(f"{rec['_path']}: schema version {rec.get('schema_version')}, "
                                   f"this editbench reads {runner.SCHEMA_VERSION}")
        c, sc, prov = rec["cell"], rec.get("scores") or {}, rec.get("provenance") or {}
        cost, timing = rec.get("cost") or {}, rec.get("timing") or {}
        slices = sc.get("slices") or {}
        row = {
            "task": c["task"], "method": c["method"], "family": rec.get("family") or "?", "budget": c["budget"],
            "seed": c["seed"], "status": rec["status"], "error": rec.get("error"),
            "primary": sc.get("primary", math.nan),
            "ci_lo": (sc.get("ci") or [math.nan, math.nan])[0], "ci_hi": (sc.get("ci") or [math.nan, math.nan])[1],
            "transfer_ratio": sc.get("transfer_ratio", math.nan),
            "evidence_primary": (slices.get("evidence_slice") or {}).get("primary", math.nan),
            "fidelity": float(np.mean([s["fidelity"] for s in slices.values()])) if slices else math.nan,
            "fit_s": cost.get("fit_seconds", math.nan), "evaluator_calls": cost.get("evaluator_calls", 0),
            "params_changed": cost.get("params_changed", 0), "examples_used": cost.get("examples_used", 0),
            "total_s": timing.get("total_s", math.nan), "finished_at": timing.get("finished_at", 0.0),
            "n_eval": c.get("n_eval"), "tune": c.get("tune"), "tuned_on": c.get("tuned_on"),
            "config": json.dumps(rec.get("config") or c.get("config") or {}, sort_keys=True),
            "version": prov.get("editbench"), "commit": (prov.get("git") or {}).get("commit"),
            "dirty": (prov.get("git") or {}).get("dirty"),
            "generator": (prov.get("checkpoints") or {}).get("generator"),
            "meter": (prov.get("checkpoints") or {}).get("meter"),
            "image": str(Path(rec["_path"]).with_suffix(".png")) if "#" not in rec["_path"] else "",
        }
        for p, v in (sc.get("parts") or {}).items():
            row[f"part_{p}"] = v
        rows.append((row, sc.get("per_image")))
    if not rows:
        raise LeaderboardError(f"no cell results under {str(results)!r}")
    rows.sort(key=lambda r: r[0]["finished_at"])
    latest: dict[tuple, tuple] = {}
    for row, pi in rows:
        latest[tuple(row[k] for k in CELL_ID)] = (row, pi)
    df = pd.DataFrame([r for r, _ in latest.values()])
    for i, (_, pi) in enumerate(latest.values()):
        if pi:
            per_image[i] = {p: np.asarray([np.nan if x is None else x for x in v], dtype=np.float64) for p, v in pi.items()}
    df["family_order"] = df["family"].map(FAMILY_ORDER).fillna(9)
    # the index is kept: it is the key of per_image
    return df.sort_values(["task", "budget", "family_order", "method", "seed"]), per_image


def read_records(results: str | Path) -> list[dict[str, Any]]:
    """Cell records from a results folder (one JSON per cell) or an export (``.jsonl`` / ``.jsonl.gz``)."""
    import gzip

    results = Path(results)
    try:
        if results.is_file() and results.name.endswith((".jsonl", ".jsonl.gz")):
            opener = gzip.open if results.suffix == ".gz" else open
            with opener(results, "rt") as f:
                recs = [json.loads(line) for line in f if line.strip()]
            for i, rec in enumerate(recs):
                rec["_path"] = f"{results}#{i}"
            return recs
        if not results.is_dir():
            raise LeaderboardError(f"results {str(results)!r}: no such folder or .jsonl(.gz) export")
        return runner.load_results(results)
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as e:
        raise LeaderboardError(f"results {str(results)!r} could not be read: {e}") from None


def export(results: str | Path, out: str | Path) -> int:
    """Write every cell record of a results folder to one gzipped JSON-lines file (the compact form that
    is committed); returns the number of records."""
    import gzip

    recs = read_records(results)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with gzip.open(tmp, "wt", compresslevel=9) as f:
        for rec in sorted(recs, key=lambda r: r["_path"]):
            f.write(json.dumps({k: v for k, v in rec.items() if k != "_path"}, sort_keys=True) + "\n")
    os.replace(tmp, out)
    return len(recs)


# ---- aggregation --------------------------------------------------------------------------------------
def _harmonic(means: np.ndarray) -> np.ndarray:
    """Harmonic mean over the first axis (parts); 0 where any part is <= 0, NaN where any is NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        h = means.shape[0] / (1.0 / means).sum(0)
    h = np.where((means <= 0).any(0), 0.0, h)
    return np.where(np.isnan(means).any(0), np.nan, h)


def _boot(parts: list[dict[str, np.ndarray]], seed_idx: np.ndarray, img_idx: np.ndarray) -> tuple[float, np.ndarray]:
    """Point and bootstrap draws of the pooled primary of one (task, method, budget)."""
    names = sorted(parts[0])
    X = np.stack([np.stack([p[k] for p in parts]) for k in names])  # (P, S, n)
    point = _harmonic(np.array([np.nanmean(X[i]) if np.isfinite(X[i]).any() else np.nan for i in range(len(names))]))
    S, n = X.shape[1], X.shape[2]
    s = seed_idx[:, :S] % S  # (B, S)
    j = img_idx[:, :S, :n] % n  # (B, S, n)
    draws = X[:, s[..., None], j]  # (P, B, S, n)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where a part applies to no image
        means = np.nanmean(draws.reshape(len(names), draws.shape[1], -1), axis=2)  # (P, B)
    return float(point), _harmonic(means)


def _better(draws: dict[str, np.ndarray], a: str, b: str) -> bool:
    """Is ``a`` significantly better than ``b`` (paired bootstrap, 95%)?"""
    if a not in draws or b not in draws:
        return False
    diff = draws[a] - draws[b]
    diff = diff[np.isfinite(diff)]
    return bool(diff.size and np.quantile(diff, 0.025) > 0)


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
                "task": task, "method": method, "family": mg.family.iloc[0], "budget": int(budget),
                "seeds": ",".join(str(s) for s in sorted(mg.seed)), "n_ok": len(ok), "n_failed": len(failed),
                "status": "ok" if failed.empty else ("failed" if ok.empty else "partial"),
                "error": failed.error.iloc[0] if not failed.empty else None,
                "primary": math.nan, "ci_lo": math.nan, "ci_hi": math.nan,
            }
            parts = [per_image[i] for i in ok.index if i in per_image]
            if parts and len({len(next(iter(p.values()))) for p in parts}) == 1:
                point, d = _boot(parts, seed_idx, img_idx)
                d_ok = d[np.isfinite(d)]
                row.update(primary=point, ci_lo=float(np.quantile(d_ok, 0.025)) if d_ok.size else math.nan,
                           ci_hi=float(np.quantile(d_ok, 0.975)) if d_ok.size else math.nan)
                draws[method] = d
            elif not ok.empty:  # results without per-image scores: mean over seeds, the cells' intervals
                row.update(primary=float(ok.primary.mean()), ci_lo=float(ok.ci_lo.min()), ci_hi=float(ok.ci_hi.max()))
            for col in [c for c in mg.columns if c.startswith("part_")]:
                row[col] = float(ok[col].mean()) if not ok.empty else math.nan
            for col in ("transfer_ratio", "evidence_primary", "fidelity"):
                row[col] = float(ok[col].mean()) if not ok.empty else math.nan
            row.update(fit_s=float(ok.fit_s.median()) if not ok.empty else math.nan,
                       evaluator_calls=int(ok.evaluator_calls.max()) if not ok.empty else 0,
                       params_changed=int(ok.params_changed.max()) if not ok.empty else 0,
                       config=mg.config.iloc[0], family_order=mg.family_order.iloc[0],
                       image=mg.sort_values("seed").image.iloc[0])
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
                    better += _better(draws, o, m)
                else:
                    better += orow["ci_lo"] > row["ci_hi"]
            row["rank"] = 1 + better
        out.extend(rows.values())
        if keep_draws is not None:
            keep_draws[(task, int(budget))] = draws
    s = pd.DataFrame(out)
    s["tied"] = s.duplicated(["task", "budget", "rank"], keep=False) & s["rank"].notna()
    return s.sort_values(["task", "budget", "primary", "rank"], ascending=[True, True, False, True],
                         na_position="last").reset_index(drop=True)


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
        lead = [f for f in best if not any(_better(d, best[o].method, best[f].method) for o in best if o != f)]
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


def _families_view(f: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in f.iterrows():
        row = {"task": r.task, "n": str(r.budget)}
        for fam in COMPARED_FAMILIES:
            p = r[f"{fam}_primary"]
            ci = f"[{_fmt(r[f'{fam}_ci_lo'])}, {_fmt(r[f'{fam}_ci_hi'])}]"
            row[f"best {fam}"] = "-" if not math.isfinite(p) else f"{r[f'best_{fam}']} {_fmt(p)} {ci}"
        row["leader"] = r.leader
        rows.append(row)
    return pd.DataFrame(rows)


def families_markdown(f: pd.DataFrame) -> str:
    """The families table: one row per (task, budget), each family's best method and the leader."""
    return _families_view(f).to_markdown(index=False, disable_numparse=True) + "\n"


def meta(df: pd.DataFrame) -> dict[str, Any]:
    """What a table came from: suite shape, seeds, package versions, commits and checkpoint hashes."""
    budgets, seeds = sorted(df.budget.unique().tolist()), sorted(df.seed.unique().tolist())
    suite = next((name for name, s in runner.SUITES.items() if s["budgets"] == budgets and s["seeds"] == seeds), "custom")
    return {
        "suite": suite, "budgets": budgets, "seeds": seeds, "n_eval": sorted(df.n_eval.dropna().unique().tolist()),
        "cells": int(len(df)), "failed_cells": int((df.status != "ok").sum()),
        "expected_cells": int(df.task.nunique() * df.method.nunique() * len(budgets) * len(seeds)),
        "editbench": sorted(df.version.dropna().unique().tolist()),
        "commits": sorted({c[:10] + ("+dirty" if d else "") for c, d in zip(df.commit, df.dirty, strict=True) if c}),
        "generator": sorted(df.generator.dropna().unique().tolist()), "meter": sorted(df.meter.dropna().unique().tolist()),
    }


def meta_line(m: dict[str, Any]) -> str:
    n_eval = "/".join(str(int(n)) for n in m["n_eval"])
    return (f"suite {m['suite']} (budgets {m['budgets']}, seeds {m['seeds']}, {n_eval} test images per slice); "
            f"editbench {', '.join(m['editbench'])}; commit {', '.join(m['commits']) or '?'}; "
            f"generator {', '.join(m['generator'])}; meter {', '.join(m['meter'])}; "
            + (f"{m['cells']} cells" if m["cells"] >= m.get("expected_cells", 0)
               else f"{m['cells']} of {m['expected_cells']} cells (incomplete)")
            + f", {m['failed_cells']} failed")


def headline_budget(summary: pd.DataFrame) -> int:
    """The budget the headline table shows: 16 where present (the quick suite's), else the largest."""
    budgets = sorted(summary.budget.unique())
    return 16 if 16 in budgets else int(budgets[-1])


def _fmt(x: float, nd: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{round(x, nd) + 0.0:.{nd}f}"  # no "-0.000"


TABLE_FIXED = ("task", "rank", "method", "family", "primary", "ci_lo", "ci_hi", "transfer_ratio", "fidelity", "fit_s",
               "evaluator_calls", "budget", "seeds", "status")


def table(summary: pd.DataFrame, budget: int | None = None) -> pd.DataFrame:
    """The published table: one row per (task, method) at one budget, numbers as in the JSON."""
    budget = headline_budget(summary) if budget is None else budget
    s = summary[summary.budget == budget]
    parts = [c for c in summary.columns if c.startswith("part_")]
    cols = ["task", "rank", "method", "family", "primary", "ci_lo", "ci_hi", *parts, "transfer_ratio", "fidelity", "fit_s",
            "evaluator_calls", "budget", "seeds", "status"]
    t = s[cols].copy()
    t["rank"] = [("=" if tied else "") + (str(int(r)) if math.isfinite(r) else "-")
                 for r, tied in zip(s["rank"], s["tied"], strict=True)]
    return t.rename(columns={p: p[5:] for p in parts}).reset_index(drop=True)


def to_markdown(t: pd.DataFrame, m: dict[str, Any]) -> str:
    """The README table: one row per (task, method); the parts that apply to a task in one column."""
    parts = [c for c in t.columns if c not in TABLE_FIXED]
    rows = []
    for _, r in t.iterrows():
        primary = "failed" if not math.isfinite(r.primary) else f"**{_fmt(r.primary)}** [{_fmt(r.ci_lo)}, {_fmt(r.ci_hi)}]"
        shown = ", ".join(f"{p} {_fmt(r[p])}" for p in [*parts, "transfer_ratio"] if math.isfinite(r[p]))
        rows.append({"task": r.task, "rank": r["rank"], "method": r.method, "family": r.family,
                     "primary [95% CI]": primary, "parts": shown, "fidelity": _fmt(r.fidelity),
                     "fit s": _fmt(r.fit_s, 1), "evaluator calls": str(r.evaluator_calls), "seeds": r.seeds,
                     "status": r.status})
    view = pd.DataFrame(rows)
    return (f"Evidence budget n = {int(t.budget.iloc[0])}. {meta_line(m)}.\n\n"
            + view.to_markdown(index=False, disable_numparse=True) + "\n")


def to_latex(t: pd.DataFrame, m: dict[str, Any]) -> str:
    view = t.drop(columns=["budget", "seeds", "status", "family"]).copy()
    view["primary"] = [f"{_fmt(p)} [{_fmt(lo)}, {_fmt(hi)}]" for p, lo, hi in
                       zip(view.primary, view.ci_lo, view.ci_hi, strict=True)]
    view = view.drop(columns=["ci_lo", "ci_hi"])
    view.columns = [c.replace("_", " ") for c in view.columns]
    styler = view.style.hide(axis="index").format(precision=3, na_rep="-")
    body = styler.to_latex(hrules=True, column_format="l" * 3 + "r" * (len(view.columns) - 3))
    return f"% {meta_line(m)}\n% evidence budget n = {int(t.budget.iloc[0])}; regenerate: editbench leaderboard build\n" \
        + body.replace("_", r"\_")


# ---- plots --------------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


FAMILY_MARKERS = {"reference": "s", "edit": "o", "finetune": "^", "prompt": "D"}


def _colors(methods: list[str]) -> dict[str, Any]:
    plt = _plt()
    cmap = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def _legend(axes) -> tuple[list, list]:
    """Legend entries of every panel, each method once."""
    seen: dict[str, Any] = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, h)
    return list(seen.values()), list(seen)


def _task_panels(plt, n: int):
    """One panel per task, two to a row."""
    cols = min(2, n)
    rows = (n + cols - 1) // cols
    return plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)


def _save_panels(plt, fig, axes, n: int, out: Path) -> Path:
    """Hide unused panels, one legend for all of them below, save."""
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    handles, labels = _legend(axes)
    fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_budget_curves(summary: pd.DataFrame, out: Path) -> Path:
    plt = _plt()
    tasks = sorted(summary.task.unique())
    methods = sorted(summary.method.unique(), key=lambda m: (summary[summary.method == m].family_order.iloc[0], m))
    colors = _colors(methods)
    fig, axes = _task_panels(plt, len(tasks))
    for ax, task in zip(axes.flat, tasks, strict=False):
        st = summary[summary.task == task]
        for m in methods:
            d = st[st.method == m].sort_values("budget")
            if d.empty:
                continue
            fam = d.family.iloc[0]
            ax.plot(d.budget, d.primary, marker=FAMILY_MARKERS.get(fam, "o"), ms=4, color=colors[m], label=m,
                    ls="--" if fam == "reference" else "-")
            ax.fill_between(d.budget, d.ci_lo, d.ci_hi, color=colors[m], alpha=0.12, lw=0)
        ax.set_xscale("log", base=2)
        budgets = sorted(st.budget.unique())
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("evidence budget n (examples)")
        ax.set_ylabel("primary score")
        ax.grid(alpha=0.3)
    return _save_panels(plt, fig, axes, len(tasks), out)


def plot_transfer(summary: pd.DataFrame, out: Path, budget: int) -> Path | None:
    plt = _plt()
    st = summary[(summary.budget == budget) & summary.evidence_primary.notna()]
    if st.empty:
        return None
    colors = _colors(sorted(summary.method.unique()))
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="no loss under shift")
    for _, r in st.iterrows():
        ax.errorbar(r.evidence_primary, r.primary, yerr=[[r.primary - r.ci_lo], [r.ci_hi - r.primary]], fmt=
                    FAMILY_MARKERS.get(r.family, "o"), color=colors[r.method], label=r.method, ms=6, capsize=2)
    ax.set_xlabel("score on the evidence slice")
    ax.set_ylabel("score on the shifted slices (primary)")
    ax.set_title(f"{', '.join(sorted(st.task.unique()))}, n = {budget}", fontsize=10)
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_cost(summary: pd.DataFrame, out: Path, budget: int) -> Path:
    plt = _plt()
    st = summary[summary.budget == budget]
    tasks = sorted(st.task.unique())
    colors = _colors(sorted(summary.method.unique()))
    fig, axes = _task_panels(plt, len(tasks))
    for ax, task in zip(axes.flat, tasks, strict=False):
        for _, r in st[st.task == task].iterrows():
            x = max(r.fit_s, 1e-2) if math.isfinite(r.fit_s) else math.nan
            ax.scatter(x, r.primary, marker=FAMILY_MARKERS.get(r.family, "o"), color=colors[r.method], s=36,
                       label=r.method)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{task}, n = {budget}", fontsize=10)
        ax.set_xlabel("fit time (s, one CPU thread; 0 shown at 0.01)")
        ax.set_ylabel("primary score")
        ax.grid(alpha=0.3)
    return _save_panels(plt, fig, axes, len(tasks), out)


def before_after_grid(summary: pd.DataFrame, task: str, budget: int, out: Path, scale: int = 1) -> Path | None:
    """Rows: the unedited samples, then each method's edited samples (same latents and captions; the
    oracle's row is the renderer's answer), at ``scale`` x the native 64 px, labelled on the left."""
    from PIL import Image, ImageDraw, ImageFont

    st = summary[(summary.task == task) & (summary.budget == budget)].sort_values(["family_order", "method"])
    strips = [(r.method, Path(r.image)) for _, r in st.iterrows() if r.image and Path(r.image).is_file()]
    if not strips:
        return None
    rows: list[tuple[str, Image.Image]] = []
    for m, p in strips:
        a = Image.open(p).convert("RGB")
        h = a.height // 2
        if not rows and m != "oracle":
            rows.append(("unedited", a.crop((0, 0, a.width, h))))
        rows.append((m + (" (renders)" if m == "oracle" else ""), a.crop((0, h, a.width, 2 * h))))
    if rows[0][0] != "unedited":  # only the oracle had pictures: its renders before the edit
        a = Image.open(strips[0][1]).convert("RGB")
        rows.insert(0, ("unedited (renders)", a.crop((0, 0, a.width, a.height // 2))))
    w, h = rows[0][1].width * scale, rows[0][1].height * scale
    label_w, gap, top = 130, 3, 20
    canvas = Image.new("RGB", (label_w + w + gap, top + len(rows) * (h + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    draw.text((4, 4), f"{task}, n = {budget}: unedited, then each method (same latents and captions)",
              fill="black", font=font)
    for i, (label, img) in enumerate(rows):
        y = top + i * (h + gap)
        canvas.paste(img.resize((w, h), Image.NEAREST), (label_w, y))
        draw.text((label_w - 8, y + h // 2), label, fill="black", font=font, anchor="rm")
    tmp = out.with_name(f".{out.name}.tmp")
    canvas.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, out)
    return out


# ---- publishing ---------------------------------------------------------------------------------------
_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var asc = th.getAttribute('data-order') !== 'asc';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-order'); });
      th.setAttribute('data-order', asc ? 'asc' : 'desc');
      function key(row) {
        var cell = row.cells[col];
        var v = cell.getAttribute('data-value');
        if (v === null) { v = cell.textContent.trim(); }
        var x = parseFloat(v);
        return isNaN(x) ? v.toLowerCase() : x;
      }
      rows.sort(function (a, b) {
        var ka = key(a), kb = key(b);
        if (typeof ka !== typeof kb) { return typeof ka === 'number' ? -1 : 1; }
        return (ka < kb ? -1 : ka > kb ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; }
th { cursor: pointer; background: #f4f4f4; user-select: none; }
th[data-order=asc]::after { content: " \\25B2"; } th[data-order=desc]::after { content: " \\25BC"; }
td.text, th.text { text-align: left; } tr.failed td { color: #b00; }
.meta { color: #555; font-size: 12px; } img { max-width: 100%; }
img.grid { image-rendering: pixelated; width: 100%; max-width: 1000px; }
table.families th { cursor: default; } table.families td, table.families th { text-align: left; }
"""


def _html_table(t: pd.DataFrame, task: str) -> str:
    cols = [c for c in t.columns if c not in ("task", "ci_lo", "ci_hi", "budget")]
    head = "".join(f'<th class="{"text" if t[c].dtype.kind not in "fi" and c != "rank" else ""}">'
                   f"{html.escape(c.replace('_', ' '))}</th>" for c in cols)
    body = []
    for _, r in t.iterrows():
        tds = []
        for c in cols:
            v = r[c]
            if c == "primary":
                txt = "failed" if not math.isfinite(v) else f"{v:.3f} [{_fmt(r.ci_lo)}, {_fmt(r.ci_hi)}]"
                tds.append(f'<td data-value="{v if math.isfinite(v) else -1}">{txt}</td>')
            elif isinstance(v, float):
                tds.append(f'<td data-value="{v if math.isfinite(v) else ""}">{_fmt(v, 1 if c == "fit_s" else 3)}</td>')
            elif c == "rank":
                tds.append(f'<td data-value="{str(v).lstrip("=")}">{html.escape(str(v))}</td>')
            else:
                tds.append(f'<td class="{"" if isinstance(v, int | np.integer) else "text"}">{html.escape(str(v))}</td>')
        cls = ' class="failed"' if r.status != "ok" else ""
        body.append(f"<tr{cls}>{''.join(tds)}</tr>")
    return (f'<table class="sortable" id="table-{html.escape(task)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def publish(results: str | Path, out: str | Path, budget: int | None = None, n_boot: int = 1000) -> dict[str, Any]:
    """Build every leaderboard artefact from a results folder into ``out``; returns paths and the table."""
    df, per_image = load_frame(results)
    draws: dict[tuple[str, int], dict[str, np.ndarray]] = {}
    summary = summarize(df, per_image, n_boot=n_boot, keep_draws=draws)
    fam = families(summary, draws)
    m = meta(df)
    budget = headline_budget(summary) if budget is None else budget
    if budget not in set(summary.budget):
        raise LeaderboardError(f"no results at budget {budget}; budgets present: {sorted(summary.budget.unique())}")
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "grids").mkdir(parents=True, exist_ok=True)
    t = table(summary, budget)
    md = to_markdown(t, m)
    _atomic_text(out / "leaderboard.md", md)
    _atomic_text(out / "leaderboard.csv", f"# {meta_line(m)}\n" + t.to_csv(index=False))
    curves = summary.drop(columns=["image", "family_order"])
    payload = {"meta": m, "budget": budget, "rows": json.loads(t.to_json(orient="records", double_precision=15)),
               "curves": json.loads(curves.to_json(orient="records", double_precision=15)),
               "families": json.loads(fam.to_json(orient="records", double_precision=15))}
    _atomic_text(out / "leaderboard.json", json.dumps(payload, indent=1))
    _atomic_text(out / "leaderboard.tex", to_latex(t, m))
    fam_md = families_markdown(fam) if not fam.empty else ""
    _atomic_text(out / "families.md", f"Best method of each family per task and evidence budget; {meta_line(m)}.\n\n" + fam_md)
    _atomic_text(out / "families.csv", f"# {meta_line(m)}\n" + fam.to_csv(index=False))
    plots = {"budget": plot_budget_curves(summary, out / "plots" / "budget_curves.png"),
             "transfer": plot_transfer(summary, out / "plots" / "transfer.png", budget),
             "cost": plot_cost(summary, out / "plots" / "cost.png", budget)}
    grids = {task: before_after_grid(summary, task, budget, out / "grids" / f"{task}.png")
             for task in sorted(summary.task.unique())}
    sections = []
    for task in sorted(t.task.unique()):
        tt = t[t.task == task]
        grid = grids.get(task)
        from editbench.benchmarks import TASKS

        about = html.escape(TASKS[task].description) if task in TASKS else ""
        sections.append(f"<h2 id='{task}'>{task}</h2>\n<p>{about}</p>\n{_html_table(tt, task)}\n"
                        + (f'<img class="grid" src="grids/{task}.png" alt="before and after, {task}">' if grid else ""))
    if not fam.empty:
        sections.append("<h2 id='families'>Editing vs finetuning vs prompting</h2>\n<p>Each family's best method per task "
                        "and evidence budget (primary [95% interval]); the leader is every family whose best is not "
                        "significantly beaten by another's (paired bootstrap).</p>\n"
                        + _families_view(fam).to_html(index=False, classes="families", border=0))
    figs = "".join(f'<h3>{html.escape(name)}</h3><img src="plots/{p.name}" alt="{name} plot">'
                   for name, p in plots.items() if p)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>editbench leaderboard</title>
<style>{_CSS}</style></head><body>
<h1>editbench leaderboard</h1>
<p class="meta">{html.escape(meta_line(m))}. Evidence budget n = {budget}. Primary: harmonic mean of the task's parts;
95% interval from a bootstrap over seeds and images; a rank shared (=) where a paired bootstrap cannot
separate the methods. Click a column header to sort.</p>
{''.join(sections)}
<h2>Plots</h2>{figs}
<script>{_JS}</script>
</body></html>
"""
    _atomic_text(out / "index.html", page)
    return {"summary": summary, "table": t, "meta": m, "markdown": md, "out": out}


# ---- the score gate -----------------------------------------------------------------------------------
def cell_id(row) -> str:
    return f"{row['task']}/{row['method']}/n{int(row['budget'])}/s{int(row['seed'])}"


def baseline_from(results: str | Path) -> dict[str, Any]:
    df, _ = load_frame(results)
    cells = {}
    for _, r in df.iterrows():
        cells[cell_id(r)] = {"status": r.status, "primary": _num(r.primary), "ci": [_num(r.ci_lo), _num(r.ci_hi)],
                             "fidelity": _num(r.fidelity)}
    return {"schema_version": 1, "meta": meta(df), "cells": dict(sorted(cells.items()))}


def _num(x: float) -> float | None:
    return round(float(x), 6) if x is not None and math.isfinite(x) else None


def write_baseline(results: str | Path, path: str | Path) -> dict[str, Any]:
    b = baseline_from(results)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_text(path, json.dumps(b, indent=1) + "\n")
    return b


def read_baseline(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise LeaderboardError(f"baseline {str(path)!r} does not exist (write one with editbench check --update)")
    try:
        b = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LeaderboardError(f"baseline {str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(b, dict) or not isinstance(b.get("cells"), dict):
        raise LeaderboardError(f"baseline {str(path)!r} has no 'cells' mapping")
    return b


def tolerance(metric: str, base: dict[str, Any]) -> float:
    """Half the baseline's 95% interval for the primary (its noise band), never below a floor."""
    if metric == "primary" and base.get("ci") and None not in base["ci"]:
        return max(TOLERANCE_FLOOR[metric], (base["ci"][1] - base["ci"][0]) / 2)
    if metric == "fidelity" and base.get("fidelity") is not None:
        return max(TOLERANCE_FLOOR[metric], 0.25 * abs(base["fidelity"]))
    return TOLERANCE_FLOOR.get(metric, 0.01)


def check(baseline: dict[str, Any], results: str | Path) -> dict[str, Any]:
    """Compare results with a baseline. A cell fails when a gated metric moves the wrong way by more
    than its tolerance, or when it was ok in the baseline and failed now. Missing and new cells are
    reported; a missing cell fails the gate, a new one does not."""
    df, _ = load_frame(results)
    now = {cell_id(r): r for _, r in df.iterrows()}
    base = baseline["cells"]
    drops, rows = [], []
    for cid, b in sorted(base.items()):
        if cid not in now:
            continue
        r = now[cid]
        if b.get("status") == "ok" and r.status != "ok":
            drops.append({"cell": cid, "metric": "status", "baseline": "ok", "now": f"failed: {r.error}",
                          "change": None, "tolerance": None})
            continue
        for metric, sign in DIRECTIONS.items():
            bv, nv = b.get(metric), _num(r[metric])
            if bv is None or nv is None:
                continue
            tol = tolerance(metric, b)
            change = nv - bv
            row = {"cell": cid, "metric": metric, "baseline": bv, "now": nv, "change": change, "tolerance": tol}
            rows.append(row)
            if sign * change < -tol:
                drops.append(row)
    missing = sorted(set(base) - set(now))
    new = sorted(set(now) - set(base))
    return {"drops": drops, "missing": missing, "new": new, "compared": rows, "ok": not drops and not missing}


def format_check(rep: dict[str, Any]) -> str:
    lines = []
    n_cells = len({r["cell"] for r in rep["compared"]})
    if rep["drops"]:
        lines.append(f"{len(rep['drops'])} score(s) got worse beyond their tolerance:")
        lines.append(f"  {'cell':<44}{'metric':<10}{'baseline':>10}{'now':>10}{'change':>10}{'tolerance':>11}")
        for d in rep["drops"]:
            if d["metric"] == "status":
                lines.append(f"  {d['cell']:<44}{'status':<10}{'ok':>10}  {d['now']}")
                continue
            lines.append(f"  {d['cell']:<44}{d['metric']:<10}{d['baseline']:>10.4f}{d['now']:>10.4f}"
                         f"{d['change']:>+10.4f}{d['tolerance']:>11.4f}")
    for cid in rep["missing"]:
        lines.append(f"missing cell (in the baseline, not in the results): {cid}")
    for cid in rep["new"]:
        lines.append(f"new cell (not in the baseline; not gated): {cid}")
    lines.append(("PASS" if rep["ok"] else "FAIL") + f": {n_cells} cells compared, {len(rep['drops'])} worse, "
                 f"{len(rep['missing'])} missing, {len(rep['new'])} new")
    return "\n".join(lines)
