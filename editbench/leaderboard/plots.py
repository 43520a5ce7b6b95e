"""Plots (matplotlib, PNG): evidence-budget curves, the transfer plot, cost against score."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from editbench.core import io


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
    if labels:  # none where no panel has a line (e.g. no cell counted its FLOPs)
        fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    io.write_with(out, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return out




def plot_budget_curves(summary: pd.DataFrame, out: Path) -> Path:
    """Primary score against the evidence budget, one panel per task; with both tracks, a task's image and text
    panels side by side in one row."""
    plt = _plt()
    tasks = sorted(summary.task.unique(), key=lambda t: (t.rsplit("/", 1)[-1], t))
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
    io.write_with(out, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
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



def plot_compute(summary: pd.DataFrame, out: Path) -> Path:
    """Score against compute per task: each method's budgets joined in order of evidence (FLOPs of the edited
    model's forward and backward passes, log scale; methods that spent none are left out)."""
    plt = _plt()
    s = summary[summary.flops.notna() & (summary.flops > 0)] if "flops" in summary else summary.iloc[:0]
    tasks = sorted(s.task.unique())
    colors = _colors(sorted(summary.method.unique()))
    fig, axes = _task_panels(plt, max(len(tasks), 1))
    for ax, task in zip(axes.flat, tasks, strict=False):
        for method, mg in s[s.task == task].groupby("method"):
            mg = mg.sort_values("budget")
            ax.plot(mg.flops, mg.primary, marker=FAMILY_MARKERS.get(mg.family.iloc[0], "o"), color=colors[method],
                    ms=4, lw=1, label=method)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("compute (FLOPs: forward + 2 x backward passes)")
        ax.set_ylabel("primary score")
        ax.grid(alpha=0.3)
    return _save_panels(plt, fig, axes, max(len(tasks), 1), out)
